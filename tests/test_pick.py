"""The learned pick (kt_lr.pick): features, the fit, the budget properties it relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kt_lr import pick

CANDS = {
    "edge": 0.1,
    "range_test:edge": 0.2,
    "range_test:valley": 0.01,
    "range_test:steepest": 0.005,
    "differential:edge": 0.05,
    "differential:lowest_mean": 0.02,
}


def _ctx(**kw) -> pick.Context:
    base = {"optimizer": "Adam", "batch_size": 32, "samples": 1000, "params": 5000, "epochs": 20}
    return pick.Context(**{**base, **kw})


def test_features_are_distances_from_the_edge_and_the_context_in_log10():
    anchor, f = pick.features(CANDS, _ctx())
    assert anchor == pytest.approx(-1.0)
    assert f["log_edge"] == pytest.approx(-1.0)
    assert f["rt_edge"] == pytest.approx(math.log10(2))
    assert f["rt_valley"] == pytest.approx(-1.0)
    assert f["ld_edge"] == pytest.approx(math.log10(0.5))
    assert f["log_budget"] == pytest.approx(math.log10(20 * 32))  # ceil(1000 / 32) = 32
    assert f["log_epochs"] == pytest.approx(math.log10(20))
    assert f["log_params"] == pytest.approx(math.log10(5))
    assert (f["sgd"], f["sign"], f["accumulator"]) == (0.0, 0.0, 0.0)
    assert set(f) == set(pick.FEATURES)


def test_missing_probe_budget_and_unknown_optimizer_are_none():
    _, f = pick.features({"edge": 0.1}, _ctx(epochs=None, optimizer="MyOpt"))
    assert f["rt_valley"] is None and f["ld_edge"] is None
    assert f["log_budget"] is None and f["log_epochs"] is None
    assert f["sgd"] is None
    _, f = pick.features(CANDS, _ctx(samples=None, steps_per_epoch=10))
    assert f["log_budget"] == pytest.approx(math.log10(200))
    assert f["log_samples"] == pytest.approx(math.log10(320))
    with pytest.raises(ValueError, match="edge"):
        pick.features({"edge": None}, _ctx())


def test_ridge_keeps_constrained_coefficients_nonpositive():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2] + 1.0
    free = pick.ridge(x, y, 0.0)
    assert free == pytest.approx([1.0, 0.8, -0.5, 0.3])
    held = pick.ridge(x, y, 0.0, nonpositive=[0, 1])
    assert held[1] == 0.0 and held[2] < 0  # x0 wanted +0.8: dropped; x1 kept
    shrunk = pick.ridge(x, y, 1e6)
    assert np.all(np.abs(shrunk[1:]) < 1e-2) and shrunk[0] == pytest.approx(y.mean(), abs=0.01)


@pytest.mark.parametrize("target", pick.TARGETS)
def test_shipped_rule_budget_coefficients_are_nonpositive(target):
    rule = pick.load_rule(target)
    for name in pick.NONPOSITIVE:
        assert rule.coef[rule.features.index(name)] <= 0.0
    assert rule.interval[0] < 0 < rule.interval[1]
    assert rule.info["command"] == "python -m benchmarks.fit_rule"


@pytest.mark.parametrize("target", pick.TARGETS)
def test_a_longer_budget_never_raises_the_pick(target):
    rng = np.random.default_rng(1)
    for _ in range(50):
        cands = {k: v * 10 ** rng.uniform(-1, 1) for k, v in CANDS.items()}
        ctx = {
            "optimizer": str(rng.choice(list(pick.OPTIMIZER_FAMILIES))),
            "batch_size": int(rng.choice([16, 64, 512])),
            "samples": int(rng.integers(300, 50_000)),
            "params": int(rng.integers(1_000, 500_000)),
        }
        picks = [pick.apply(cands, _ctx(epochs=e, **ctx), target=target)[0] for e in (1, 3, 10, 60)]
        assert all(b <= a * (1 + 1e-12) for a, b in zip(picks, picks[1:], strict=False))
        steps = [
            pick.apply(cands, _ctx(epochs=10, steps_per_epoch=s, **ctx), target=target)[0]
            for s in (5, 50, 500)
        ]
        assert all(b <= a * (1 + 1e-12) for a, b in zip(steps, steps[1:], strict=False))


def test_the_pick_never_goes_above_either_probe_edge():
    rule = pick.load_rule("final")
    generous = pick.PickRule.from_dict({**rule.to_dict(), "intercept": 5.0})
    lr, low, high, reasons = pick.apply(CANDS, _ctx(), rule=generous)
    assert lr == pytest.approx(0.05)  # the differentials' edge, the lower of the two
    assert low <= lr <= high
    assert any("capped" in r for r in reasons)


def test_without_a_budget_the_pick_takes_the_corpus_mean_and_says_so():
    rule = pick.load_rule("final")
    lr, _, _, reasons = pick.apply(CANDS, _ctx(epochs=None))
    assert any("no training budget" in r for r in reasons)
    # the same as a run whose budget features sit at the corpus's means
    i, j = rule.features.index("log_budget"), rule.features.index("log_epochs")
    epochs = 10 ** rule.mean[j]
    steps = 10 ** (rule.mean[i] - rule.mean[j])
    at_mean = pick.apply(CANDS, _ctx(epochs=epochs, samples=None, steps_per_epoch=steps))[0]
    # steps_per_epoch is an int in use; compare within the rounding of the step count
    assert lr == pytest.approx(at_mean, rel=0.05)


def test_reasons_name_what_moved_the_pick_and_the_interval():
    lr, low, high, reasons = pick.apply(CANDS, _ctx(epochs=60), target="best")
    assert reasons[0].startswith("learned pick (best epoch)")
    assert "the budget" in reasons[0]
    assert reasons[-1].startswith(f"picked {lr:.3g}")
    assert low < lr < high


def test_bounds_clip_the_answer_and_unknown_optimizers_are_named():
    lr, low, high, reasons = pick.apply(CANDS, _ctx(optimizer="MyOpt"), bounds=(1e-7, 1e-3))
    assert lr <= 1e-3 and high <= 1e-3 and low <= lr
    assert any("MyOpt" in r for r in reasons)


def test_rule_round_trips_and_bad_target_says_what_to_use():
    rule = pick.load_rule("best")
    assert pick.PickRule.from_dict(rule.to_dict()) == rule
    with pytest.raises(ValueError, match="'final'.*'best'"):
        pick.load_rule("last")
