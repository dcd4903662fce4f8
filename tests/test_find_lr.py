import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_model, make_regression

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


def test_an_answer_at_the_bottom_of_the_probed_range_is_warned(data):
    # issue 16 item 8: Ftrl's first step from a fresh state shrinks every weight towards
    # zero at any rate, so the loss rises from the start and the answer sat at start_lr
    x, y = data
    with pytest.warns(UserWarning, match="bottom of the probed range \\(1e-07\\).*start_lr"):
        f = kt_lr.find_lr(
            make_model(keras.optimizers.Ftrl(0.01)), x, y, seed=0, verbose=0, num_subsamples=5
        )
    assert f.settings["edge_at_bottom"] and not f.settings["edge_at_top"]
    assert any("bottom of the probed range" in r for r in f.reasons)


def test_find_lr_reads_back_the_finding_json_a_search_saves(tmp_path):
    # issue 16 item 10: LRFinding.from_dict(json.load(finding.json)) raised KeyError: 'lr'
    import json
    import os

    x, y = make_regression(128, 4)

    def build(hp):
        model = make_model(keras.optimizers.Adam(hp.Float("learning_rate", 1e-5, 1.0)), d=4)
        return model

    tuner = kt_lr.RandomSearch(
        build,
        objective="loss",
        max_trials=1,
        directory=str(tmp_path),
        project_name="json",
        save_probe_plots=False,
        probe_options={"num_steps": 15, "num_subsamples": 3},
    )
    tuner.search(x, y, epochs=1, verbose=0)
    probe = tuner.lr_report().probes["*"]
    with open(os.path.join(probe.artifacts, "finding.json")) as fh:
        saved = json.load(fh)
    finding = kt_lr.LRFinding.from_dict(saved)
    assert (finding.lr, finding.low, finding.high) == (probe.lr, probe.low, probe.high)
    assert finding.reasons == probe.reasons
    assert len(finding.range_test.losses) == len(finding.range_test.lrs) > 0
    assert finding.differential.deltas.shape == (3, len(finding.differential.lrs))


def test_the_learned_pick_follows_the_budget_and_keeps_the_fused_answer(data):
    x, y = data
    kw = {"seed": 0, "verbose": 0, "num_steps": 40, "num_subsamples": 8}
    short = kt_lr.find_lr(make_model(), x, y, epochs=2, **kw)
    long = kt_lr.find_lr(make_model(), x, y, epochs=200, **kw)
    assert long.lr < short.lr  # same probes (same seed), a longer budget: a lower pick
    assert short.candidates["edge"] == long.candidates["edge"]
    assert short.settings["rule"] == "learned" and short.settings["epochs"] == 2
    assert short.candidates["fused_pick"] > 0
    assert any(r.startswith("learned pick (final epoch)") for r in short.reasons)
    assert short.low <= short.lr <= short.high
    fused = kt_lr.find_lr(make_model(), x, y, rule="fused", **kw)
    assert fused.lr == pytest.approx(short.candidates["fused_pick"])
    nobudget = kt_lr.find_lr(make_model(), x, y, target="best", **kw)
    assert any("no training budget" in r for r in nobudget.reasons)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs=0: pass a positive number"),
        ({"steps_per_epoch": -3}, "steps_per_epoch=-3"),
        ({"target": "last"}, "target='last': use 'final'"),
        ({"rule": "magic"}, "rule='magic': use 'learned'"),
        ({"rule": "learned", "divisor": 2.0}, "divisor set the fused rule's pick"),
    ],
)
def test_budget_and_rule_arguments_are_checked_before_probing(data, kwargs, match):
    x, y = data
    with pytest.raises(ValueError, match=match):
        kt_lr.find_lr(object(), x, y, verbose=0, **kwargs)  # fails before touching a model


def test_a_search_passes_its_trial_budget_to_the_probe():
    from kt_lr.tuners import trial_epochs

    class Hyperband:
        max_epochs = 27

    class Random:
        pass

    assert trial_epochs(Hyperband(), {"epochs": 5}) == 27
    assert trial_epochs(Random(), {"epochs": 5}) == 5
    assert trial_epochs(Random(), {}) == 1  # fit's default
