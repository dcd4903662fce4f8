"""Smoke test of benchmarks/schedules.py's bookkeeping (no training)."""

import math

import keras

from benchmarks import schedules


def test_epochs_to_reach():
    assert schedules.epochs_to_reach([3.0, 2.0, 1.0], 2.0) == 2
    assert schedules.epochs_to_reach([3.0, 2.5], 2.0) is None
    assert schedules.epochs_to_reach([1.0], math.inf) is None


def test_zero_momentum_detects_optimizers_the_callback_refuses():
    assert schedules._zero_momentum(keras.optimizers.SGD())
    assert schedules._zero_momentum(keras.optimizers.RMSprop())
    assert schedules._zero_momentum(keras.optimizers.Adagrad())
    assert not schedules._zero_momentum(keras.optimizers.Adam())
    assert not schedules._zero_momentum(keras.optimizers.SGD(momentum=0.9))


def _seed(seed, finals):
    runs = {}
    ref = finals[schedules.REFERENCE]
    for name, final in finals.items():
        curve = [2 * final, final]
        runs[name] = {
            "val_loss": curve,
            "final": final,
            "diverged": not math.isfinite(final),
            "seconds": 1.0,
            "peak_lr": 0.1,
            "options": {},
            "ratio": final / ref,
            "epochs_to_reach": schedules.epochs_to_reach(curve, ref),
        }
    return {"seed": seed, "probe": {"lr": 0.1, "seconds": 1.0}, "runs": runs}


def test_summaries_tables_and_reading():
    finals = dict(zip(schedules.RUNS, [2.0, 1.0, 0.9, math.inf, 1.1], strict=True))
    seeds = [_seed(s, finals) for s in range(2)]
    entry = {"seeds": seeds, "epochs": 2, "optimizer": "Adam", "default_lr": 1e-3}
    entry["summary"] = schedules.summarize_task(seeds)
    per_task = {"t": entry}
    summary = schedules.summarize(per_task)
    assert summary["kt_lr one_cycle"]["tasks_better"] == ["t"]
    assert summary["kt_lr cosine"]["diverged_runs"] == 2
    assert entry["summary"]["kt_lr cosine"]["reach_median"] is None
    _, rows = schedules.task_rows(per_task)
    assert len(rows) == len(schedules.RUNS)
    text = "\n".join(schedules.reading(per_task, summary))
    assert "diverged" in text
