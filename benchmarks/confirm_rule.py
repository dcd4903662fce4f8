"""``python -m benchmarks.confirm_rule``: train the learned rule's picks on a third of the
corpus and set the trained regret beside the curve regret.

Tasks: every third task by name among those that are not ``large`` (the 50,000-sample
tasks cost minutes per run) and whose truth is not degenerate. Per task and rule (the
final-epoch rule scored on the final epoch, the best-epoch rule on the best epoch): the
out-of-fold pick of the median probe seed (``benchmarks/results/fit_rule.json``, from
``python -m benchmarks.fit_rule``), trained with the ground truth's seeds 0, 1, 2 through
the same :class:`benchmarks.corpus.truth.Trainer`. Trained regret = median over the seeds
of the target's validation loss / exp(the fitted curve's minimum); a run that diverged or
ended no better than the untrained model counts as diverged. Resumable (one JSON cache);
writes the "Learned pick: trained confirmation" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from benchmarks import common
from benchmarks.corpus import report, truth
from benchmarks.corpus import tasks as corpus_tasks

CACHE = common.RESULTS / "confirm_rule.json"
SEEDS = (0, 1, 2)


def chosen_tasks(cv: dict) -> list:
    specs = [s for s in corpus_tasks.get_specs() if not s.large]
    specs = [s for s in sorted(specs, key=lambda s: s.name) if s.name in cv]
    return specs[::3]


def median_pick(recs: list[dict]) -> float:
    lrs = sorted(r["lr"] for r in recs)
    return float(lrs[len(lrs) // 2])


def run(log=print) -> dict:
    fit = common.load_json(common.RESULTS / "fit_rule.json")
    if not fit:
        raise SystemExit("run python -m benchmarks.fit_rule first")
    cv = {t: {} for t in fit["cv"]}
    for target, recs in fit["cv"].items():
        for rec in recs:
            cv[target].setdefault(rec["task"], []).append(rec)
    cache = common.load_json(CACHE) or {}
    for spec in chosen_tasks(cv["final"]):
        rec = truth.load_truth(spec.name)
        trainer = None
        for target in ("final", "best"):
            if spec.name not in cv[target]:
                continue
            key = f"{spec.name}/{target}"
            lr = median_pick(cv[target][spec.name])
            entry = cache.get(key)
            if entry is None or entry["lr"] != lr:
                entry = {"lr": lr, "runs": {}}
            for seed in SEEDS:
                if str(seed) in entry["runs"]:
                    continue
                trainer = trainer or truth.Trainer(spec)
                out = trainer.run(lr, seed)
                entry["runs"][str(seed)] = out["val"]
                cache[key] = entry
                common.save_json(CACHE, cache)
                log(f"{key}: lr={lr:.3g} seed={seed} ({out['seconds']:.1f}s)")
            curve = report.task_curve(rec, target)
            init = truth.initial_loss(rec)
            fn = truth.TARGETS[target]
            losses = [fn(v) for v in entry["runs"].values()]
            failed = truth.failed(losses, init)
            vals = [v if math.isfinite(v) else math.inf for v in losses]
            trained = math.inf if failed else float(np.median(vals)) / math.exp(curve.minimum)
            entry.update({"trained": trained, "curve": curve.regret(lr), "family": spec.family})
            cache[key] = entry
    common.save_json(CACHE, cache)
    return cache


def section(cache: dict, seconds: float) -> str:
    rows, by = [], {"final": [], "best": []}
    for key in sorted(cache):
        task, target = key.split("/")
        e = cache[key]
        if "trained" not in e:
            continue
        by[target].append((e["trained"], e["curve"]))
        rows.append([task, target, f"{e['lr']:.3g}", e["curve"], e["trained"]])
    summary = []
    for target, pairs in by.items():
        if pairs:
            tr, cu = np.array(pairs).T
            summary.append(
                [
                    f"{target}-epoch rule / {target} epoch",
                    len(pairs),
                    float(np.median(cu)),
                    float(np.median(tr)),
                    float(np.max(cu)),
                    float(np.max(tr)),
                ]
            )
    text = [
        "`python -m benchmarks.confirm_rule` (resumable; "
        f"{seconds / 60:.1f} min this run): the learned rule's out-of-fold pick (median probe "
        "seed) **trained** with the truth's seeds 0-2 on every third non-large task, beside "
        "its curve regret. Trained regret = median over seeds of the loss / exp(curve "
        "minimum), so it carries the seeds' noise (the noise floor of one 3-seed point is "
        "about 1.0-1.3).",
        "",
        common.md_table(
            [
                "rule / target",
                "tasks",
                "curve median",
                "trained median",
                "curve worst",
                "trained worst",
            ],
            summary,
        ),  # fmt: skip
        "",
        common.md_table(["task", "target", "pick", "curve regret", "trained regret"], rows),
    ]
    return "\n".join(text)


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="python -m benchmarks.confirm_rule").parse_args(argv)
    start = time.perf_counter()
    cache = run(log=lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True))
    common.update_results_md(
        "Learned pick: trained confirmation", section(cache, time.perf_counter() - start)
    )
    print(section(cache, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
