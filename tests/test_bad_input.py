import keras
import numpy as np
import pytest
from conftest import make_model

import kt_lr
from kt_lr import state
from kt_lr.data import BatchStream, fixed_batches

PROBES = ["range_test", "loss_differential", "find_lr"]


def _untouched(model, fn):
    model.optimizer.build(model.trainable_variables)
    before = state.snapshot(model)
    fn()
    assert state.state_equal(before, state.snapshot(model))


@pytest.mark.parametrize("probe", PROBES)
def test_uncompiled_model(data, probe):
    x, y = data
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile"):
        getattr(kt_lr, probe)(model, x, y, verbose=0)


@pytest.mark.parametrize("probe", PROBES)
def test_not_a_model(data, probe):
    x, y = data
    with pytest.raises(ValueError, match="keras.Model"):
        getattr(kt_lr, probe)(object(), x, y, verbose=0)


@pytest.mark.parametrize("probe", PROBES)
def test_empty_and_one_batch_data(data, probe):
    x, y = data
    model = make_model()
    with pytest.raises(ValueError, match="empty"):
        getattr(kt_lr, probe)(model, x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        _untouched(model, lambda: getattr(kt_lr, probe)(model, x[:40], y[:40], verbose=0))


@pytest.mark.parametrize("probe", PROBES)
def test_shape_mismatch(data, probe):
    x, y = data
    model = make_model()
    with pytest.raises(ValueError, match="input shape"):
        _untouched(model, lambda: getattr(kt_lr, probe)(model, x[:, :5], y, verbose=0))
    with pytest.raises(ValueError, match="same length"):
        getattr(kt_lr, probe)(model, x, y[:100], verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start_lr": 0.0}, "start_lr"),
        ({"start_lr": -1e-3}, "start_lr"),
        ({"start_lr": 1e-1, "end_lr": 1e-3}, "smaller than"),
        ({"end_lr": float("inf")}, "end_lr"),
        ({"num_steps": 4}, "num_steps"),
        ({"mode": "cubic"}, "mode"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"diverge_factor": 1.0}, "diverge_factor"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_range_test_bad_arguments(data, kwargs, match):
    x, y = data
    model = make_model()
    with pytest.raises(ValueError, match=match):
        _untouched(model, lambda: kt_lr.range_test(model, x, y, verbose=0, **kwargs))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lrs": [1e-3]}, "at least 2"),
        ({"lrs": [1e-3, -1.0]}, "> 0"),
        ({"num_subsamples": 1}, "num_subsamples"),
        ({"confidence": 1.5}, "confidence"),
        ({"method": "fast"}, "method"),
    ],
)
def test_differential_bad_arguments(data, kwargs, match):
    x, y = data
    model = make_model()
    with pytest.raises(ValueError, match=match):
        _untouched(model, lambda: kt_lr.loss_differential(model, x, y, verbose=0, **kwargs))


def test_schedule_optimizer_refused_with_fix(data):
    x, y = data
    sched = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9)
    model = make_model(keras.optimizers.Adam(sched))
    for probe in PROBES:
        with pytest.raises(ValueError, match="schedule_from"):
            getattr(kt_lr, probe)(model, x, y, verbose=0)


def test_all_nan_loss_everywhere(data):
    x, y = data
    model = make_model()
    bad_x = np.full_like(x, np.nan)
    with pytest.raises(RuntimeError, match="NaN"):
        _untouched(model, lambda: kt_lr.find_lr(model, bad_x, y, verbose=0, num_steps=10))


def test_find_lr_unknown_option(data):
    x, y = data
    with pytest.raises(TypeError, match="num_stepz"):
        kt_lr.find_lr(make_model(), x, y, verbose=0, num_stepz=10)


class _Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.batches[i]


def _dataset(x, y, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x, y: BatchStream(None), "`x` is None"),
        (lambda x, y: BatchStream(x, y, batch_size=0), "batch_size"),
        (lambda x, y: BatchStream(x, y, batch_size=True), "batch_size"),
        (lambda x, y: BatchStream(x, np.float32(1.0)), "leading sample dimension"),
        (lambda x, y: BatchStream(_dataset(x, y, 32), y), "`y` must be None"),
        (lambda x, y: BatchStream(_dataset(x[:0], y[:0], 32)), "empty"),
        (lambda x, y: BatchStream(_dataset(x, y, 1000)), "single batch"),
        (lambda x, y: BatchStream(_Batches([])), "empty"),
    ],
)
def test_data_errors_say_what_to_do(data, make, match):
    x, y = data
    with pytest.raises(ValueError, match=match):
        make(x, y)


@pytest.mark.parametrize(
    "batches, match",
    [
        ([(1, 2, 3, 4)] * 3, "4 parts"),
        ([()] * 3, "0 parts"),
        ([(np.zeros((0, 8)), np.zeros((0, 1)))] * 3, "empty batch"),
    ],
)
def test_bad_batches_from_a_dataset(batches, match):
    with pytest.raises(ValueError, match=match):
        BatchStream(_Batches(batches)).next_batch()


def test_a_dataset_that_yields_nothing(data):
    x, y = data

    class Nothing:
        def __iter__(self):
            return iter(())

    with pytest.raises(ValueError, match="yielded no batches"):
        BatchStream(Nothing()).next_batch()
    with pytest.raises(ValueError, match="`validation_data` is empty"):
        fixed_batches((x[:0], y[:0]), batch_size=32)
    with pytest.raises(ValueError, match="`validation_data` yielded no batches"):
        fixed_batches(Nothing(), batch_size=32)
