"""Curve regret of every method on the corpus, overall and by family, for both targets.

Reads the ground truth (``truth/``) and the probes (``probes/``); trains nothing. Only
tasks whose ground truth is finished are scored, and the table says how many.

Per method and task: the regret of every probe seed's pick on the task's curve
(:mod:`benchmarks.corpus.metric`); the task's figure is the median over probe seeds.
Reported: the median over tasks, the worst task, the worst single probe, the share of
probes whose interval holds the curve's best LR (interval methods), the pick's spread
over probe seeds (median and worst task), and the median by family. The noise floor is
the bootstrap regret of a rule that knew the grid but only its seeds.

Targets: ``final`` (train N epochs, keep the model: what find_lr's user does) and
``best`` (the best epoch: what Keras Tuner ranks a trial by and what
``EarlyStopping(restore_best_weights=True)`` keeps).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, md_table, save_json, text_table, update_results_md
from benchmarks.corpus import metric, truth
from benchmarks.corpus import tasks as corpus_tasks
from benchmarks.corpus.probes import load_probes

KT_LR = "kt_lr v1 (fuse.py)"  # the method with a search interval
METHODS = (
    KT_LR,
    "oracle: best of 3 seeded trials",
    "rt:valley (fast.ai)",
    "rt:steepest",
    "rt:min/10",
    "ld:largest_negative",
    "keras_default",
    "autolrtuner:log",
)
CANDIDATE = {
    "rt:valley (fast.ai)": "range_test:valley",
    "rt:steepest": "range_test:steepest",
    "rt:min/10": "range_test:min/10",
    "ld:largest_negative": "differential:largest_negative",
}


def task_curve(record: dict, target: str) -> metric.Curve:
    """The fitted curve of one task's ground truth for ``target`` ('final' or 'best')."""
    fn = truth.TARGETS[target]
    lrs = np.array([run["lr"] for run in record["runs"].values()], float)
    losses = np.array([fn(run["val"]) for run in record["runs"].values()], float)
    return metric.fit_curve(lrs, losses, cap=truth.initial_loss(record))


def task_floor(record: dict, target: str, draws: int = 30) -> float:
    fn = truth.TARGETS[target]
    lrs = np.array([run["lr"] for run in record["runs"].values()], float)
    losses = np.array([fn(run["val"]) for run in record["runs"].values()], float)
    return metric.bootstrap_floor(lrs, losses, truth.initial_loss(record), draws=draws)


def method_picks(spec, probes: dict) -> dict[str, list]:
    """``{method: [pick or list of picks per probe seed]}`` from a task's probe cache."""
    from kt_lr.space import seed_lrs

    runs = [probes["kt_lr"][k] for k in sorted(probes["kt_lr"], key=int)]
    out: dict[str, list] = {m: [] for m in METHODS}
    for r in runs:
        lr = r.get("lr")
        out[KT_LR].append(lr)
        out["oracle: best of 3 seeded trials"].append(
            seed_lrs(lr, r["low"], r["high"], 3) if lr else None
        )
        for method, key in CANDIDATE.items():
            out[method].append((r.get("candidates") or {}).get(key))
        out["keras_default"].append(spec.default_lr())
    peer = probes.get("peers", {}).get("autolrtuner:log")
    out["autolrtuner:log"] = [peer.get("lr")] if peer else []
    return out


def _regret(curve: metric.Curve, pick) -> float:
    if isinstance(pick, list):
        return min(curve.regret(p) for p in pick)
    return curve.regret(pick)


def score(specs, truth_dir: Path, probe_dir: Path, floors: bool = True) -> dict:
    """Per task, target and method: regrets per probe seed, interval hits, spread."""
    rows = {}
    for spec in specs:
        rec = truth.load_truth(spec.name, truth_dir)
        probes = load_probes(spec.name, probe_dir)
        if not rec or not rec.get("done") or not probes or not probes.get("kt_lr"):
            continue
        picks = method_picks(spec, probes)
        kt = [probes["kt_lr"][k] for k in sorted(probes["kt_lr"], key=int)]
        row = {"family": spec.family, "optimizer": spec.optimizer_label(), "targets": {}}
        for target in truth.TARGETS:
            curve = task_curve(rec, target)
            per = {m: [_regret(curve, p) for p in ps] for m, ps in picks.items()}
            hits = [bool(r.get("lr")) and r["low"] <= curve.best_lr <= r["high"] for r in kt]
            row["targets"][target] = {
                "best_lr": curve.best_lr,
                "cut": curve.cut,
                "regret": per,
                "interval_hits": hits,
                "floor": task_floor(rec, target) if floors else None,
            }
        row["spread"] = {
            m: metric.spread(ps) for m, ps in picks.items() if m in CANDIDATE or m == KT_LR
        }
        row["errors"] = sorted({r["error"].split(":")[0] for r in kt if r.get("error")})
        row["truth_seconds"] = sum(run["seconds"] for run in rec["runs"].values())
        row["probe_seconds"] = float(np.median([r.get("seconds", np.nan) for r in kt]))
        rows[spec.name] = row
    return rows


def _med(values) -> float:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else math.nan


def summary(rows: dict, target: str) -> list[list]:
    """One table row per method: median, worst task, worst probe, interval, spread."""
    table = []
    for m in METHODS:
        task_med = {
            name: _med(r["targets"][target]["regret"][m])
            for name, r in rows.items()
            if r["targets"][target]["regret"][m]
        }
        if not task_med:
            continue
        worst_task = max(task_med, key=lambda n: task_med[n])
        singles = [v for r in rows.values() for v in r["targets"][target]["regret"][m]]
        spreads = [r["spread"][m] for r in rows.values() if m in r["spread"]]
        hits = (
            [h for r in rows.values() for h in r["targets"][target]["interval_hits"]]
            if m == KT_LR
            else []
        )
        table.append(
            [
                m,
                _med(task_med.values()),
                f"{task_med[worst_task]:.3g} ({worst_task})",
                max(singles),
                f"{sum(hits)}/{len(hits)}" if hits else "",
                _med(spreads) if spreads else None,
                max(spreads) if spreads else None,
                len(task_med),
            ]
        )
    floors = [r["targets"][target]["floor"] for r in rows.values()]
    if any(f is not None for f in floors):
        floors = [f for f in floors if f is not None]
        table.append(["noise floor (bootstrap)", _med(floors), f"{max(floors):.3g}"] + [None] * 5)
    return table


def by_family(rows: dict, target: str) -> tuple[list[str], list[list]]:
    fams = [f for f in corpus_tasks.FAMILIES if any(r["family"] == f for r in rows.values())]
    out = []
    for m in METHODS:
        line = [m]
        for f in fams:
            vals = [
                _med(r["targets"][target]["regret"][m])
                for r in rows.values()
                if r["family"] == f and r["targets"][target]["regret"][m]
            ]
            line.append(_med(vals) if vals else None)
        out.append(line)
    counts = [sum(r["family"] == f for r in rows.values()) for f in fams]
    return ["method"] + [f"{f} ({c})" for f, c in zip(fams, counts, strict=True)], out


HEADERS = [
    "method",
    "median",
    "worst task",
    "worst probe",
    "interval holds best",
    "spread median",
    "spread worst",
    "tasks",
]


def run(specs, truth_dir: Path, probe_dir: Path, quick: bool = False, log=print) -> dict:
    rows = score(specs, truth_dir, probe_dir, floors=not quick)
    if not rows:
        log("no task has both a finished ground truth and probes yet")
        return {}
    done = len(rows)
    hours = sum(r["truth_seconds"] for r in rows.values()) / 3600
    parts = [
        f"{done} of {len(specs)} tasks scored (ground truth finished and probed); "
        f"ground-truth training time of these tasks: {hours:.1f} CPU-hours."
    ]
    for target in truth.TARGETS:
        table = summary(rows, target)
        fam_headers, fam_rows = by_family(rows, target)
        log(f"\n[{target} epoch]\n" + text_table(HEADERS, table))
        parts += [
            f"\n### Target: the {target} epoch\n",
            md_table(HEADERS, table),
            "\nMedian regret by family (tasks):\n",
            md_table(fam_headers, fam_rows),
        ]
    suffix = "_quick" if quick else ""
    save_json(RESULTS / f"corpus{suffix}.json", rows)
    if not quick:
        plot_curves(specs, truth_dir, probe_dir, RESULTS / "corpus_curves.png")
        parts.append(
            "\nEvery finished task's runs, fitted curves, cut and picks: "
            "`benchmarks/results/corpus_curves.png`."
        )
        update_results_md("Corpus: curve regret of every method", "\n".join(parts))
    return rows


def plot_curves(specs, truth_dir: Path, probe_dir: Path, path: Path, cols: int = 4) -> Path | None:
    """One panel per finished task: every run's final (dots) and best-epoch (crosses)
    loss, both fitted curves, the divergence cut and the picks of kt_lr v1 and the valley."""
    from matplotlib.figure import Figure

    recs = [(s, truth.load_truth(s.name, truth_dir)) for s in specs]
    recs = [(s, r) for s, r in recs if r and r.get("done")]
    if not recs:
        return None
    rows = math.ceil(len(recs) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (spec, rec) in zip(axes, recs, strict=False):
        init = truth.initial_loss(rec)
        for target, marker, colour in (("final", "o", "C0"), ("best", "x", "C2")):
            fn = truth.TARGETS[target]
            lrs = [run["lr"] for run in rec["runs"].values()]
            vals = [min(fn(run["val"]), init) for run in rec["runs"].values()]
            ax.scatter(lrs, vals, s=9, marker=marker, color=colour, alpha=0.5)
            curve = task_curve(rec, target)
            ax.plot(10**curve.log_lrs, np.exp(curve.values), color=colour, label=f"{target} epoch")
            ax.axvline(curve.best_lr, color=colour, lw=0.8, ls=":")
            if curve.cut is not None:
                ax.axvline(curve.cut, color="red", lw=0.8, ls="--")
        probes = load_probes(spec.name, probe_dir)
        if probes and probes.get("kt_lr"):
            picks = method_picks(spec, probes)
            ymin = ax.get_ylim()[0]
            for m, colour in ((KT_LR, "C3"), ("rt:valley (fast.ai)", "C1")):
                vals = [p for p in picks[m] if p]
                ax.scatter(vals, [ymin] * len(vals), marker="^", color=colour, s=30, label=m)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{spec.name} ({spec.epochs} ep)", fontsize=9)
    for ax in axes[len(recs) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("learning rate (red dashed: divergence cut; dotted: the curve's minimum)")
    fig.supylabel("validation loss")
    fig.savefig(path, dpi=80)
    return path
