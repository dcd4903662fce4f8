import keras
import numpy as np
import pytest
from conftest import make_model

import kt_lr
from kt_lr.data import BatchStream

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.01),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.01, momentum=0.9),
    "nesterov": lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "adamw": lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.05),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-3, momentum=0.5),
    "adagrad": lambda: keras.optimizers.Adagrad(1e-2),
    "nadam": lambda: keras.optimizers.Nadam(1e-3),
    "lion": lambda: keras.optimizers.Lion(1e-4),
}
LRS = np.geomspace(1e-4, 3.0, 9)


def _reference_deltas(model, batch, lrs):
    """A real optimizer step on a fresh copy of model and optimizer, per LR."""
    xb, yb, _ = batch
    loss_fn = keras.losses.MeanSquaredError()
    out = []
    for lr in lrs:
        m2 = keras.models.clone_model(model)
        m2.set_weights(model.get_weights())
        opt2 = type(model.optimizer).from_config(model.optimizer.get_config())
        opt2.build(m2.trainable_variables)
        for v2, v in zip(opt2.variables, model.optimizer.variables, strict=True):
            v2.assign(v)
        opt2.learning_rate = float(lr)
        import tensorflow as tf

        with tf.GradientTape() as tape:
            before = loss_fn(yb, m2(xb, training=True))
        grads = tape.gradient(before, m2.trainable_variables)
        opt2.apply_gradients(zip(grads, m2.trainable_variables, strict=True))
        after = loss_fn(yb, m2(xb, training=True))
        out.append(float(after) - float(before))
    return np.array(out)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="reference uses tf.GradientTape"
)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_affine_matches_brute_force_reference(data, name):
    x, y = data
    model = make_model(OPTIMIZERS[name]())
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # moments, momentum non-zero
    res = kt_lr.loss_differential(
        model, x, y, lrs=LRS, num_subsamples=2, batch_size=32, seed=3, verbose=0
    )
    assert res.method == "affine"
    batch = BatchStream(x, y, batch_size=32, seed=3).random_batch()
    ref = _reference_deltas(model, batch, LRS)
    scale = np.abs(res.base_losses[0]) + np.abs(ref)
    np.testing.assert_array_less(np.abs(res.deltas[0] - ref), 1e-4 * scale + 1e-6)
    brute = kt_lr.loss_differential(
        model, x, y, lrs=LRS, num_subsamples=2, seed=3, method="brute_force", verbose=0
    )
    np.testing.assert_allclose(res.deltas, brute.deltas, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "opt", [lambda: keras.optimizers.Adafactor(), lambda: keras.optimizers.Ftrl()]
)
def test_non_affine_optimizer_falls_back(data, opt):
    x, y = data
    model = make_model(opt())
    res = kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=2, seed=0, verbose=0)
    assert res.method == "brute_force"
    assert any("not affine" in r for r in res.reasons)
    with pytest.raises(RuntimeError, match="not affine"):
        kt_lr.loss_differential(
            model, x, y, lrs=LRS, num_subsamples=2, seed=0, method="affine", verbose=0
        )


def test_result_shapes_rules_and_frame(data):
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01))
    res = kt_lr.loss_differential(model, x, y, num_subsamples=8, seed=0, verbose=0)
    assert res.deltas.shape == (8, 50)
    assert res.lrs[0] == pytest.approx(1e-7) and res.lrs[-1] == pytest.approx(10.0)
    # tiny LRs barely move the loss; the best mean is a clear decrease
    assert abs(res.mean[0]) < 1e-3 * res.base_losses.mean()
    assert np.nanmin(res.mean) < 0
    assert set(res.best) >= {"lowest_mean", "lowest_median", "lowest_upper", "largest_negative"}
    assert res.best["lowest_mean"] is not None
    frame = res.to_frame()
    assert list(frame.columns[:4]) == ["lr", "mean", "median", "std"] and len(frame) == 50
    assert np.all(res.t_low <= res.mean + 1e-12) and np.all(res.mean <= res.t_high + 1e-12)


def test_holdout_uses_other_batches(data):
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01))
    same = kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=4, seed=0, verbose=0)
    held = kt_lr.loss_differential(
        model, x, y, lrs=LRS, num_subsamples=4, seed=0, holdout=True, verbose=0
    )
    assert held.holdout and not same.holdout
    assert not np.allclose(same.deltas, held.deltas)


def test_same_seed_same_answer(data):
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    a = kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=4, seed=7, verbose=0)
    b = kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=4, seed=7, verbose=0)
    np.testing.assert_array_equal(a.deltas, b.deltas)
    assert a.best == b.best


def test_refined_sequential_probe_matches_the_full_estimator(data):
    """12 of 50 LRs per subsample, subsamples until the edge is settled: the batches come
    in the same order as the full 100 x 50 estimator's, so every ΔL measured is its entry,
    and the rules land within one grid step of its answers."""
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01, momentum=0.9))
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    before = [v.numpy().copy() for v in model.variables + model.optimizer.variables]
    full = kt_lr.loss_differential(model, x, y, seed=3, verbose=0)
    fast = kt_lr.loss_differential(
        model, x, y, seed=3, verbose=0, lr_points=12, num_subsamples=None
    )
    after = [v.numpy() for v in model.variables + model.optimizer.variables]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    m = fast.deltas.shape[0]
    assert fast.settings["stop_reason"] == "settled" and m < 100
    assert fast.settings["num_subsamples"] == m and fast.settings["lr_points"] == 12
    assert fast.settings["lattice"] == pytest.approx(list(full.lrs))
    assert fast.measured.shape == fast.deltas.shape
    np.testing.assert_array_equal(fast.count, fast.measured.sum(axis=0))
    cols = np.searchsorted(full.lrs, fast.lrs)
    np.testing.assert_allclose(full.lrs[cols], fast.lrs)
    np.testing.assert_allclose(
        fast.deltas[fast.measured], full.deltas[:m, cols][fast.measured], rtol=1e-4, atol=1e-6
    )
    step = np.log10(full.lrs[1] / full.lrs[0])
    for rule in ("largest_negative", "lowest_mean"):
        assert abs(np.log10(fast.best[rule] / full.best[rule])) <= 1.01 * step, rule
    assert "subsamples (the edge was settled), 12 of the 50 LRs" in " ".join(fast.reasons)
    assert list(fast.to_frame().columns)[-1] == "count"


def test_time_budget_stops_sequential_sampling_past_the_minimum(data, monkeypatch):
    from kt_lr import refine

    monkeypatch.setattr(refine.Sampler, "settled", lambda self, found: False)
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    res = kt_lr.loss_differential(
        model, x, y, seed=0, verbose=0, num_subsamples=None, lr_points=12, time_budget=1e-6
    )
    assert res.settings["stop_reason"] == "time budget"
    assert 20 <= res.deltas.shape[0] <= 24
    fixed = kt_lr.loss_differential(
        model, x, y, seed=0, verbose=0, num_subsamples=6, lr_points=12, time_budget=1e-6
    )
    assert fixed.deltas.shape[0] == 6 and fixed.settings["stop_reason"] == "fixed"


def test_refined_probe_falls_back_to_brute_force(data):
    x, y = data
    model = make_model(keras.optimizers.Adafactor())
    res = kt_lr.loss_differential(
        model,
        x,
        y,
        lrs=np.geomspace(1e-4, 3.0, 20),
        num_subsamples=6,
        lr_points=8,
        seed=0,
        verbose=0,
    )
    assert res.method == "brute_force" and res.deltas.shape[0] == 6
    assert np.all(res.measured[4:].sum(axis=1) == 8)
