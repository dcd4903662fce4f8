import keras
import numpy as np
import pytest
from conftest import make_model

import kt_lr
from kt_lr import state

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
