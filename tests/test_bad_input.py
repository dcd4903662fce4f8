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


def test_all_nan_x_is_refused_before_probing(data):
    # issue 16 item 4: a network can map NaN inputs to finite outputs, and the probes
    # then answered confidently from garbage; now the data is refused up front
    x, y = data
    model = make_model()
    bad_x = np.full_like(x, np.nan)
    with pytest.raises(
        ValueError, match=r"`x` holds 2048 NaN/inf value\(s\), the first in sample 0"
    ):
        _untouched(model, lambda: kt_lr.find_lr(model, bad_x, y, verbose=0, num_steps=10))


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("part", ["x", "y", "sample_weight"])
def test_nan_or_inf_in_array_data_names_the_argument_and_the_fix(data, probe, part):
    x, y = data
    arrays = {"x": x.copy(), "y": y.copy(), "sample_weight": np.ones(len(x), "float32")}
    arrays[part][7] = np.inf if part == "y" else np.nan
    model = make_model()
    with pytest.raises(ValueError, match=f"`{part}` holds .* sample 7.*Remove or impute"):
        _untouched(model, lambda: getattr(kt_lr, probe)(model, **arrays, verbose=0))


def test_nan_in_a_dataset_batch_or_in_validation_data(data):
    x, y = data
    bad = x.copy()
    bad[100, 2] = np.nan
    model = make_model()
    with pytest.raises(ValueError, match="`x` holds 1 NaN/inf value.*in a batch of the dataset"):
        _untouched(model, lambda: kt_lr.find_lr(model, _dataset(bad, y, 32), verbose=0))
    y_val = y[:40].copy()
    y_val[3] = np.nan
    with pytest.raises(ValueError, match="`y` holds 1 NaN/inf value.*in validation_data"):
        kt_lr.range_test(model, x, y, validation_data=(x[:40], y_val), verbose=0)


def test_integer_and_boolean_data_is_not_checked_for_nan():
    ints = BatchStream(np.arange(64)[:, None], np.arange(64) % 2 == 0, batch_size=8)
    assert ints.next_batch()[0].dtype.kind == "i"


@pytest.mark.parametrize("probe", PROBES)
def test_no_targets_for_a_loss_that_needs_them(data, probe):
    # was: "None values not supported" from deep inside the loss
    x, y = data
    model = make_model()
    with pytest.raises(ValueError, match="`y` is None.*loss='mse'.*find_lr\\(model, x, y\\)"):
        _untouched(model, lambda: getattr(kt_lr, probe)(model, x, verbose=0))
    x_only = _dataset(x, y, 32).map(lambda a, b: a)
    with pytest.raises(ValueError, match="`y` is None"):
        _untouched(model, lambda: getattr(kt_lr, probe)(model, x_only, verbose=0))


def test_a_model_that_needs_no_targets_runs_without_y(data):
    # an autoencoder whose own compute_loss compares the output with x: fit(x) works
    x, _ = data

    class AutoEncoder(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return keras.ops.mean((x - y_pred) ** 2)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    model = AutoEncoder(inputs, keras.layers.Dense(8)(keras.layers.Dense(4)(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    f = kt_lr.find_lr(model, x, num_steps=20, num_subsamples=3, verbose=0)
    assert np.isfinite(f.range_test.losses).all() and f.differential is not None


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
