"""benchmarks.fit_rule: the shipped coefficients come back from the cached corpus."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import fit_rule
from benchmarks.corpus import tasks as corpus_tasks
from kt_lr import pick


def test_narrowest_band_holds_the_share_asked_for():
    errors = np.array([-3.0, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 5.0, 0.05, -0.05])
    lo, hi = fit_rule.narrowest_band(errors, coverage=0.8)
    assert (lo, hi) == (-0.2, 0.3)
    assert np.mean((errors >= lo) & (errors <= hi)) >= 0.8


def test_check_compares_numbers_to_a_tolerance_and_everything_else_exactly():
    a = {"targets": {"best": {"coef": [0.1, -0.42276417611847356], "features": ["x", "y"]}}}
    b = {"targets": {"best": {"coef": [0.1, -0.4227641761184734], "features": ["x", "y"]}}}
    assert fit_rule.same_rules(a, b)  # last digits of another BLAS build
    b["targets"]["best"]["coef"][0] = 0.1 + 1e-6
    assert not fit_rule.same_rules(a, b)
    b["targets"]["best"]["coef"][0] = 0.1
    b["targets"]["best"]["features"] = ["x", "z"]
    assert not fit_rule.same_rules(a, b)
    assert not fit_rule.same_rules(a, {"targets": {}})
    assert not fit_rule.same_rules({"v": [1.0]}, {"v": [1.0, 2.0]})


@pytest.fixture(scope="module")
def corpus_rows():
    return fit_rule.build_rows(corpus_tasks.get_specs())


def test_rows_cover_the_corpus_with_every_feature(corpus_rows):
    rows = corpus_rows["rows"]
    assert len({r["task"] for r in rows}) >= 58
    assert all(set(r["features"]) == set(pick.FEATURES) for r in rows)
    assert "digits_mlp_adafactor" in corpus_rows["excluded"]["final"]


@pytest.mark.parametrize("target", pick.TARGETS)
def test_refit_reproduces_the_shipped_rule(corpus_rows, target):
    rows = [r for r in corpus_rows["rows"] if r["task"] not in corpus_rows["excluded"][target]]
    a = fit_rule.final_rule(rows, target, corpus_rows["tables"])
    b = fit_rule.final_rule(list(reversed(rows)), target, corpus_rows["tables"])
    shipped = pick.load_rule(target)
    for rule in (a, b):
        assert rule.features == shipped.features
        assert rule.coef == pytest.approx(shipped.coef, abs=1e-9)
        assert rule.intercept == pytest.approx(shipped.intercept, abs=1e-9)
        assert (rule.shift, rule.info["lambda"]) == (shipped.shift, shipped.info["lambda"])
        assert rule.interval == pytest.approx(shipped.interval, abs=1e-9)


def test_ablation_seed_placements_come_from_the_inner_picks_only():
    from benchmarks import fit_rule_ablations as ab

    # half the tasks have their best LR a decade below the pick, half 0.75 decade above
    rows, tables, logs = [], {}, []
    for i in range(8):
        best = -1.0 if i % 2 else 0.75
        name = f"t{i}"
        rows.append({"task": name, "best": {"best": best - 2.0}})
        tables[name] = {"best": lambda x, b=best - 2.0: np.exp(np.abs(np.asarray(x) - b))}
        logs.append(-2.0)
    choices = {"logs": np.array(logs), "interval": (-1.8, 1.8)}
    below, above = ab.fitted_seeds(tables, "best")(rows, choices)
    assert (below, above) == (-1.0, 0.75)
    lo, hi = ab.quantile_seeds("best")(rows, choices)
    assert lo == pytest.approx(-1.0) and hi == pytest.approx(0.75)
