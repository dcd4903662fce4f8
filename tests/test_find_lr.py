import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_model

import kt_lr


def test_find_lr_fuses_both_probes(data):
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01))
    f = kt_lr.find_lr(model, x, y, seed=0, verbose=0, num_steps=60, num_subsamples=10)
    assert isinstance(f, kt_lr.LRFinding)
    assert f.low <= f.lr <= f.high
    assert f.range_test is not None and f.differential is not None
    assert f.differential.method == "affine"
    assert len(f.reasons) >= 3
    # the differential grid ends where the range test stopped
    assert f.differential.lrs[-1] <= 2.0 * f.range_test.lrs[-1] * (1 + 1e-9)


def test_find_lr_pick_trains_well(data):
    """The pick must actually train: far better than a tiny LR, and no divergence."""
    x, y = data
    f = kt_lr.find_lr(make_model(), x, y, seed=0, verbose=0, num_steps=60, num_subsamples=10)

    def final_loss(lr):
        m = make_model(keras.optimizers.SGD(lr))
        return m.fit(x, y, epochs=5, batch_size=32, verbose=0).history["loss"][-1]

    picked, tiny = final_loss(f.lr), final_loss(1e-5)
    assert np.isfinite(picked) and picked < 0.2 * tiny


def test_find_lr_reproducible_with_seed(data):
    x, y = data
    a = kt_lr.find_lr(make_model(), x, y, seed=5, verbose=0, num_steps=30, num_subsamples=6)
    b = kt_lr.find_lr(make_model(), x, y, seed=5, verbose=0, num_steps=30, num_subsamples=6)
    assert (a.lr, a.low, a.high) == (b.lr, b.low, b.high)


def test_find_lr_single_probe_and_dataset(data):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    f = kt_lr.find_lr(make_model(), ds, verbose=0, probes=("loss_differential",), num_subsamples=5)
    assert f.range_test is None and f.differential is not None
    with pytest.raises(ValueError, match="probes"):
        kt_lr.find_lr(make_model(), x, y, verbose=0, probes=("grid",))


def test_find_lr_warns_when_the_loss_still_falls_at_end_lr(data):
    # every LR up to 1e-4 lowers this model's loss: the edge lies above the probed range
    x, y = data
    with pytest.warns(UserWarning, match="top of the probed range"):
        f = kt_lr.find_lr(
            make_model(), x, y, seed=0, verbose=0, end_lr=1e-4, num_steps=30, num_subsamples=6
        )
    assert f.settings["edge_at_top"] and f.lr <= 1e-4


@pytest.mark.parametrize(
    "option, value",
    [("decades_below", -1.0), ("decades_above", float("nan")), ("max_disagreement", -2)],
)
def test_find_lr_checks_the_fusion_options_before_probing(data, option, value):
    x, y = data
    model = make_model()
    before = model.get_weights()
    # checked first: the error names the option even though `model` is no model at all
    with pytest.raises(ValueError, match=f"`{option}`"):
        kt_lr.find_lr(object(), x, y, verbose=0, **{option: value})
    with pytest.raises(ValueError, match=f"`{option}`.*e.g."):
        kt_lr.find_lr(model, x, y, verbose=0, **{option: value})
    for w0, w1 in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
