"""find_lr sized to a budget: the cost estimate, the plan, explicit sizes winning."""

import keras
import numpy as np
import pytest
from conftest import make_model

import kt_lr


def _variables(model):
    return [v.numpy().copy() for v in model.variables + model.optimizer.variables]


def test_find_lr_at_defaults_plans_its_probes_and_restores_the_model(data, capsys):
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01, momentum=0.9))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    before = _variables(model)
    f = kt_lr.find_lr(model, x, y, seed=0, verbose=1)
    for a, b in zip(before, _variables(model), strict=True):
        np.testing.assert_array_equal(a, b)
    printed = capsys.readouterr().out
    assert "find_lr cost estimate: training step" in printed and "budget 1 epoch(s)" in printed
    plan = f.settings["budget"]
    assert plan["budget_epochs"] == 1.0 and plan["estimate"]["steps_per_epoch"] == 8
    assert f.range_test.settings["num_steps"] == plan["range_steps"]
    ld = f.differential.settings
    assert ld["stop_reason"] in ("settled", "max_subsamples", "time budget")
    assert 20 <= ld["num_subsamples"] <= 100
    assert f.settings["seconds"] > 0


def test_the_budgeted_pick_is_within_a_grid_step_of_the_full_estimators(data):
    x, y = data
    model = make_model(keras.optimizers.SGD(0.01, momentum=0.9))
    fast = kt_lr.find_lr(model, x, y, seed=2, verbose=0)
    full = kt_lr.find_lr(model, x, y, seed=2, verbose=0, budget=None)
    assert full.differential.deltas.shape == (100, 50) and full.settings["budget"] is None
    assert full.range_test.settings["num_steps"] == 100
    assert abs(np.log10(fast.lr / full.lr)) <= 0.1 + 1e-9


def test_explicit_sizes_win(data):
    x, y = data
    model = make_model()
    lrs = np.geomspace(1e-4, 1.0, 9)
    f = kt_lr.find_lr(model, x, y, seed=0, verbose=0, num_steps=30, num_subsamples=6, lrs=lrs)
    assert f.range_test.settings["num_steps"] == 30
    assert f.differential.deltas.shape == (6, 9) and f.differential.measured is None
    g = kt_lr.find_lr(model, x, y, seed=0, verbose=0, lr_points=12, num_subsamples=8)
    assert g.differential.settings["lr_points"] == 12 and g.differential.deltas.shape[0] == 8
    assert "as given" in " ".join(g.settings["budget"]["notes"])


def test_num_subsamples_alone_wins_over_the_budget(data):
    """Only ``num_subsamples`` given: exactly that many, no time budget stops them; the
    LRs per subsample are still planned."""
    x, y = data
    f = kt_lr.find_lr(make_model(), x, y, seed=0, verbose=0, num_subsamples=30)
    ld = f.differential
    assert ld.deltas.shape[0] == 30 and ld.settings["num_subsamples"] == 30
    assert ld.settings["stop_reason"] == "fixed"
    assert "num_subsamples=30 as given" in " ".join(f.settings["budget"]["notes"])


def test_lrs_alone_win_over_the_budget(data):
    """Only ``lrs`` given: every one of them measured on every subsample (no refinement),
    the subsamples sequential within the budget."""
    x, y = data
    lrs = np.geomspace(1e-4, 1.0, 13)
    f = kt_lr.find_lr(make_model(), x, y, seed=0, verbose=0, lrs=lrs)
    ld = f.differential
    np.testing.assert_allclose(ld.lrs, lrs)
    assert ld.measured is None and ld.settings["lr_points"] == 13
    assert ld.deltas.shape == (ld.settings["num_subsamples"], 13)
    assert f.settings["budget"]["lr_points"] is None


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_budget(data, budget):
    x, y = data
    with pytest.raises(ValueError, match=r"`budget` must be a finite number of epochs > 0.*None"):
        kt_lr.find_lr(make_model(), x, y, verbose=0, budget=budget)
