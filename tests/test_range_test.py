import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_model

import kt_lr


def test_sweep_records_curve_and_suggestions(data):
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01))
    res = kt_lr.range_test(model, x, y, num_steps=60, start_lr=1e-5, end_lr=10, verbose=0)
    n = len(res.lrs)
    assert 10 < n <= 60
    np.testing.assert_allclose(res.lrs, np.geomspace(1e-5, 10, 60)[:n])
    assert res.losses.shape == res.smoothed.shape == (n,)
    assert set(res.suggestions) == {"steepest", "valley", "min/10", "slide"}
    assert res.lr is not None and res.low is not None and res.low <= res.high
    # SGD on this linear problem diverges above ~1: the test must stop before end_lr
    assert res.stop_step < 60 and "lr=" in res.stop_reason
    frame = res.to_frame()
    assert list(frame.columns) == ["lr", "loss", "smoothed"] and len(frame) == n


def test_linear_mode_and_validation_losses(data):
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    res = kt_lr.range_test(
        model,
        x,
        y,
        num_steps=20,
        mode="linear",
        start_lr=1e-4,
        end_lr=1e-2,
        validation_data=(x[:64], y[:64]),
        verbose=0,
    )
    np.testing.assert_allclose(res.lrs, np.linspace(1e-4, 1e-2, 20)[: len(res.lrs)])
    assert res.val_losses is not None and np.all(np.isfinite(res.val_losses))
    assert "val_loss" in res.to_frame().columns


def test_bias_corrected_smoothing_starts_at_first_loss(data):
    x, y = data
    model = make_model()
    res = kt_lr.range_test(model, x, y, num_steps=10, end_lr=1e-3, verbose=0)
    assert res.smoothed[0] == pytest.approx(res.losses[0], rel=1e-6)


@pytest.mark.parametrize("repeat", [False, True])
def test_tf_data_input_cycles(data, repeat):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)  # 4 batches only
    if repeat:
        ds = ds.repeat()
    model = make_model()
    res = kt_lr.range_test(model, ds, num_steps=12, end_lr=1e-2, verbose=0)
    assert len(res.lrs) == 12 and np.all(np.isfinite(res.losses))


def test_pydataset_input(data):
    x, y = data

    class Seq(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 64 : (i + 1) * 64], y[i * 64 : (i + 1) * 64]

    model = make_model()
    res = kt_lr.range_test(model, Seq(), num_steps=10, end_lr=1e-2, verbose=0)
    assert len(res.lrs) == 10


def test_same_seed_same_curve(data):
    x, y = data
    a = kt_lr.range_test(make_model(), x, y, num_steps=15, seed=4, verbose=0)
    b = kt_lr.range_test(make_model(), x, y, num_steps=15, seed=4, verbose=0)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.suggestions == b.suggestions


def test_nan_loss_from_first_step_is_an_error(data):
    x, y = data
    model = make_model()
    weights = model.get_weights()
    weights[0][:] = np.nan  # finite data, a model that outputs NaN
    model.set_weights(weights)
    with pytest.raises(RuntimeError, match="NaN"):
        kt_lr.range_test(model, x, y, num_steps=10, verbose=0)
    y = y.copy()
    y[:] = np.nan  # NaN targets are refused before any step (issue 16 item 4)
    with pytest.raises(ValueError, match="`y` holds 256 NaN/inf"):
        kt_lr.range_test(make_model(), x, y, num_steps=10, verbose=0)
