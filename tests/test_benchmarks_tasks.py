"""Benchmark task definitions and the regret benchmark's argument checks (no training)."""

import numpy as np
import pytest

from benchmarks import regret
from benchmarks.tasks import HELDOUT, TASKS, get_tasks


def test_heldout_tasks_are_separate_and_resolvable():
    assert not set(TASKS) & set(HELDOUT)
    assert [t.name for t in get_tasks(None)] == list(TASKS)  # the default: tuning tasks only
    assert [t.name for t in get_tasks("bn_lion,ts_sgd")] == ["bn_lion", "ts_sgd"]
    with pytest.raises(SystemExit, match="unknown task"):
        get_tasks("no_such_task")


@pytest.mark.parametrize("name", sorted(HELDOUT))
def test_heldout_task_builds_and_computes_a_finite_loss(name):
    task = HELDOUT[name]
    x, y, xv, yv = task.make_data(0)
    assert len(x) == len(y) and len(xv) == len(yv) and len(x) > len(xv) > 0
    model = task.build_model(0)
    pred = model(x[:8])
    loss = float(task.loss()(y[:8], pred))
    assert np.isfinite(loss) and loss > 0
    assert model.optimizer.__class__.__name__ == task.optimizer
    assert np.isclose(float(model.optimizer.learning_rate), task.default_lr())


def test_heldout_refuses_the_other_modes():
    with pytest.raises(SystemExit, match="--heldout runs on its own"):
        regret.main(["--heldout", "--quick"])


def test_interpolated_loss_between_and_beyond_grid_points():
    grid = {
        "points": {
            "a": {"lr": 1e-3, "val_loss": [1.0, 1.0, 1.0]},
            "b": {"lr": 1e-2, "val_loss": [4.0, 4.0, 4.0]},
            "c": {"lr": 1e-1, "val_loss": [float("inf"), 9.0, float("inf")]},
        }
    }
    assert regret.interpolated_loss(grid, 10**-2.5) == pytest.approx(2.0)  # geometric
    assert regret.interpolated_loss(grid, 1e-5) == 1.0  # below the grid: nearest
    assert regret.interpolated_loss(grid, 0.02) == 4.0  # next to a diverged point: nearest
    assert regret.grid_best(grid) == (1e-3, 1.0)
