"""benchmarks/search.py's bookkeeping (no search is run)."""

import math

from benchmarks import search


def _run(scores, probe_first=False, seconds=1.0):
    log = []
    t = 0.0
    if probe_first:
        t += 5.0
        log.append({"t": t, "score": None, "probe": True, "lr": 1e-3, "status": "COMPLETED"})
    for s in scores:
        t += seconds
        log.append({"t": t, "score": s, "probe": False, "lr": 1e-3, "status": "COMPLETED"})
    return {"seconds": t, "log": log, "probe_seconds": 5.0 if probe_first else 0.0}


def test_curves_skip_the_probe_and_count_nan_as_inf():
    best, times = search.curves(_run([3.0, float("nan"), 2.0, None, 2.5], probe_first=True))
    assert best == [3.0, 3.0, 2.0, 2.0, 2.0]
    assert times == [6.0, 7.0, 8.0, 9.0, 10.0]  # the probe's 5 s are in the wall time


def test_trials_and_seconds_to_match_stock_final_best():
    stock = _run([5.0, 4.0, 3.0, 2.0])
    assert search.trials_to_match(_run([6.0, 2.0, 1.0], probe_first=True), stock) == 2
    assert search.seconds_to_match(_run([6.0, 2.0], probe_first=True), stock) == 7.0
    assert search.trials_to_match(_run([6.0, 2.5]), stock) is None
    assert search._median_ttm([2, None, 4]) == 4.0
    assert math.isinf(search._median_ttm([None, None, 3]))


def test_summary_and_table():
    runs = {
        "task": {
            "random": {
                "0": {"stock": _run([3.0, 2.0]), "kt_lr": _run([1.0, 1.5], probe_first=True)},
                "1": {"stock": _run([3.0, 1.0]), "kt_lr": _run([2.0, 2.0], probe_first=True)},
            }
        }
    }
    summary = search.summarize(runs)["task/random"]
    assert summary["trials_to_match"] == [1, None]
    assert summary["kt_lr_better_or_equal"] == 1 and summary["seeds"] == 2
    assert summary["probe_seconds_median"] == 5.0
    headers, rows = search.table({"task/random": summary})
    assert len(rows) == 1 and len(rows[0]) == len(headers)
    assert "1, -" in rows[0]
