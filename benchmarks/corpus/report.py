"""Curve regret of every method on the corpus, overall and by family, for both targets.

Reads the ground truth (``truth/``) and the probes (``probes/``); trains nothing. Only
tasks whose ground truth is finished are scored, and the table says how many.

Per method and task: the regret of every probe seed's pick on the task's curve
(:mod:`benchmarks.corpus.metric`); the task's figure is the median over probe seeds.
A task's figure is infinite when most probe seeds gave no finite regret; it then counts
as **diverged** (most such picks at or above the divergence cut) or **no pick** (most
such probes gave no LR: a refusal or an error), and both are counted apart from the
finite figures. Reported: the median over tasks (an infinite task figure counts as
worse than any finite one), the worst finite task, the number of tasks diverged and
with no pick, the worst finite single probe, the share of probes whose interval holds
the curve's best LR (interval methods), the pick's spread over probe seeds (median and
worst over tasks where every probe gave a pick), and the median by family. The noise
floor is the bootstrap regret of a rule that knew the grid but only its seeds.

**Degenerate truth** (:func:`benchmarks.corpus.metric.degenerate`): a task whose fitted
curve never gets below 0.9x the untrained model's loss for a target trains at no grid
LR; it is left out of every figure for that target and listed by name with the reason.

A method is a name in :data:`METHODS` and a function ``(spec, probe record) -> [pick
per probe seed]`` (a pick: an LR, a list of LRs tried, best one counts, or ``None``).

Targets: ``final`` (train N epochs, keep the model: what find_lr's user does) and
``best`` (the best epoch: what Keras Tuner ranks a trial by and what
``EarlyStopping(restore_best_weights=True)`` keeps).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from benchmarks.common import (
    RESULTS,
    load_json,
    md_table,
    save_json,
    text_table,
    update_results_md,
)
from benchmarks.corpus import metric, truth
from benchmarks.corpus import tasks as corpus_tasks
from benchmarks.corpus.probes import load_probes

KT_LR = "kt_lr v1 (fuse.py)"  # the method with a search interval


def _kt_runs(probes: dict) -> list[dict]:
    """``find_lr``'s runs of a task's probe record, in probe-seed order."""
    return [probes["kt_lr"][k] for k in sorted(probes["kt_lr"], key=int)]


def _kt_lr(spec, probes: dict) -> list:
    return [r.get("lr") for r in _kt_runs(probes)]


def _oracle(spec, probes: dict) -> list:
    from kt_lr.space import seed_lrs

    return [
        seed_lrs(r["lr"], r["low"], r["high"], 3) if r.get("lr") else None for r in _kt_runs(probes)
    ]


def _candidate(key: str):
    """One heuristic's candidate from the same ``find_lr`` runs."""

    def picks(spec, probes: dict) -> list:
        return [(r.get("candidates") or {}).get(key) for r in _kt_runs(probes)]

    return picks


def _keras_default(spec, probes: dict) -> list:
    return [spec.default_lr()] * len(_kt_runs(probes))


def _peer(name: str):
    """A peer run once per task (``probes["peers"][name]``); no run, no figure."""

    def picks(spec, probes: dict) -> list:
        peer = probes.get("peers", {}).get(name)
        return [peer.get("lr")] if peer else []

    return picks


@functools.cache
def _fit_rule_cv() -> dict:
    """The learned rule's out-of-fold picks (``python -m benchmarks.fit_rule``):
    ``{rule target: {task: {probe seed: record}}}``; empty before it has run."""
    data = load_json(RESULTS / "fit_rule.json") or {}
    out: dict = {}
    for target, recs in (data.get("cv") or {}).items():
        for rec in recs:
            out.setdefault(target, {}).setdefault(rec["task"], {})[str(rec["seed"])] = rec
    return out


def _learned(rule_target: str, oracle: bool = False):
    """The learned rule (fitted for ``rule_target``), cross-validated: each task's picks
    come from the rule fitted with its family held out; a probe that gave no edge has
    no pick. With ``oracle``, the oracle's first 3 seeded trials from those picks."""

    def picks(spec, probes: dict) -> list:
        recs = _fit_rule_cv().get(rule_target, {}).get(spec.name)
        if not recs:
            return []
        from kt_lr.space import seed_lrs

        out = []
        for key in sorted(probes["kt_lr"], key=int):
            rec = recs.get(key)
            if rec is None:
                out.append(None)
            elif oracle:
                out.append(seed_lrs(rec["lr"], rec["low"], rec["high"], 3))
            else:
                out.append(rec["lr"])
        return out

    return picks


# name -> (spec, probe record) -> [pick per probe seed]; a pick is an LR, a list of LRs
# (the best of them counts) or None (no pick). Add a method here and every table has it.
METHODS = {
    KT_LR: _kt_lr,
    "oracle: best of 3 seeded trials": _oracle,
    "rt:valley (fast.ai)": _candidate("range_test:valley"),
    "rt:steepest": _candidate("range_test:steepest"),
    "rt:min/10": _candidate("range_test:min/10"),
    "ld:largest_negative": _candidate("differential:largest_negative"),
    "keras_default": _keras_default,
    "autolrtuner:log": _peer("autolrtuner:log"),
    "kt_lr learned, final-epoch rule (CV)": _learned("final"),
    "kt_lr learned, best-epoch rule (CV)": _learned("best"),
    "oracle learned: best of 3 seeded trials (CV)": _learned("best", oracle=True),
}


def task_records(record: dict, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Every run's LR and loss for ``target`` ('final' or 'best')."""
    fn = truth.TARGETS[target]
    lrs = np.array([run["lr"] for run in record["runs"].values()], float)
    losses = np.array([fn(run["val"]) for run in record["runs"].values()], float)
    return lrs, losses


def task_curve(record: dict, target: str) -> metric.Curve:
    """The fitted curve of one task's ground truth for ``target`` ('final' or 'best')."""
    lrs, losses = task_records(record, target)
    return metric.fit_curve(lrs, losses, cap=truth.initial_loss(record))


def task_floor(record: dict, target: str, draws: int = 30) -> float:
    lrs, losses = task_records(record, target)
    return metric.bootstrap_floor(lrs, losses, truth.initial_loss(record), draws=draws)


def method_picks(spec, probes: dict) -> dict[str, list]:
    """``{method: [pick or list of picks per probe seed]}`` from a task's probe cache."""
    return {m: fn(spec, probes) for m, fn in METHODS.items()}


def _no_pick(pick) -> bool:
    if isinstance(pick, list):
        return all(_no_pick(p) for p in pick)
    return pick is None or not math.isfinite(pick) or pick <= 0


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
        kt = _kt_runs(probes)
        init = truth.initial_loss(rec)
        row = {"family": spec.family, "optimizer": spec.optimizer_label(), "targets": {}}
        for target in truth.TARGETS:
            curve = task_curve(rec, target)
            _, losses = task_records(rec, target)
            per = {m: [_regret(curve, p) for p in ps] for m, ps in picks.items()}
            hits = [bool(r.get("lr")) and r["low"] <= curve.best_lr <= r["high"] for r in kt]
            row["targets"][target] = {
                "best_lr": curve.best_lr,
                "cut": curve.cut,
                "untrained_ratio": metric.untrained_ratio(curve, init),
                "degenerate": metric.degenerate(curve, init),
                "runs": len(losses),
                "diverged_runs": int(np.count_nonzero(~np.isfinite(losses))),
                "regret": per,
                "no_pick": {m: [_no_pick(p) for p in ps] for m, ps in picks.items()},
                "interval_hits": hits,
                "floor": task_floor(rec, target) if floors else None,
            }
        # the spread of methods with one scalar pick per probe seed
        row["spread"] = {
            m: metric.spread(ps)
            for m, ps in picks.items()
            if len(ps) > 1 and not any(isinstance(p, list) for p in ps)
        }
        row["errors"] = sorted({r["error"].split(":")[0] for r in kt if r.get("error")})
        row["truth_seconds"] = sum(run["seconds"] for run in rec["runs"].values())
        row["probe_seconds"] = float(np.median([r.get("seconds", np.nan) for r in kt]))
        rows[spec.name] = row
    return rows


def _med(values) -> float:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else math.nan


def scored(rows: dict, target: str) -> dict:
    """The rows whose ground truth is not degenerate for ``target``."""
    return {n: r for n, r in rows.items() if not r["targets"][target].get("degenerate")}


def task_outcome(row: dict, target: str, method: str) -> tuple[str, float] | None:
    """``(kind, figure)`` of one method on one task: the median regret over probe seeds
    and whether it is ``finite``, ``diverged`` (most of the probes without a finite
    regret picked at or above the cut) or ``no pick`` (most of them gave no LR);
    ``None`` when the method has no picks on the task."""
    t = row["targets"][target]
    regrets = t["regret"].get(method)
    if not regrets:
        return None
    figure = _med(regrets)
    if math.isfinite(figure):
        return "finite", figure
    no_pick = t.get("no_pick", {}).get(method) or [False] * len(regrets)
    inf = [n for r, n in zip(regrets, no_pick, strict=True) if not math.isfinite(r)]
    return ("no pick" if sum(inf) * 2 > len(inf) else "diverged"), figure


def summary(rows: dict, target: str) -> list[list]:
    """One table row per method: median, worst finite task, diverged and no-pick counts,
    worst finite probe, interval, spread (degenerate tasks left out)."""
    rows = scored(rows, target)
    table = []
    for m in METHODS:
        outcome = {n: o for n, r in rows.items() if (o := task_outcome(r, target, m))}
        if not outcome:
            continue
        finite = {n: v for n, (kind, v) in outcome.items() if kind == "finite"}
        kinds = [kind for kind, _ in outcome.values()]
        worst = max(finite, key=lambda n: finite[n]) if finite else None
        singles = [
            v for r in rows.values() for v in r["targets"][target]["regret"][m] if math.isfinite(v)
        ]
        spreads = [
            r["spread"][m] for r in rows.values() if math.isfinite(r["spread"].get(m, math.inf))
        ]
        hits = (
            [h for r in rows.values() for h in r["targets"][target]["interval_hits"]]
            if m == KT_LR
            else []
        )
        table.append(
            [
                m,
                _med(v for _, v in outcome.values()),
                f"{finite[worst]:.3g} ({worst})" if worst else None,
                kinds.count("diverged"),
                kinds.count("no pick"),
                max(singles) if singles else None,
                f"{sum(hits)}/{len(hits)}" if hits else "",
                _med(spreads) if spreads else None,
                max(spreads) if spreads else None,
                len(outcome),
            ]
        )
    floors = [r["targets"][target]["floor"] for r in rows.values()]
    if any(f is not None for f in floors):
        floors = [f for f in floors if f is not None]
        table.append(["noise floor (bootstrap)", _med(floors), f"{max(floors):.3g}"] + [None] * 7)
    return table


def by_family(rows: dict, target: str) -> tuple[list[str], list[list]]:
    """Median regret by family; a cell also counts the family's tasks diverged (``div``)
    and with no pick (``none``), when there are any."""
    rows = scored(rows, target)
    fams = [f for f in corpus_tasks.FAMILIES if any(r["family"] == f for r in rows.values())]
    out = []
    for m in METHODS:
        line = [m]
        for f in fams:
            outcome = [
                o for r in rows.values() if r["family"] == f and (o := task_outcome(r, target, m))
            ]
            if not outcome:
                line.append(None)
                continue
            cell = metric_cell(_med(v for _, v in outcome))
            kinds = [kind for kind, _ in outcome]
            extra = [
                f"{kinds.count(kind)} {short}"
                for kind, short in (("diverged", "div"), ("no pick", "none"))
                if kinds.count(kind)
            ]
            line.append(f"{cell} ({', '.join(extra)})" if extra else cell)
        out.append(line)
    counts = [sum(r["family"] == f for r in rows.values()) for f in fams]
    return ["method"] + [f"{f} ({c})" for f, c in zip(fams, counts, strict=True)], out


def metric_cell(v: float) -> str:
    return "inf" if v == math.inf else f"{v:.3g}"


def excluded(rows: dict) -> list[str]:
    """One line per task with degenerate ground truth on either target, with the reason."""
    out = []
    for name, r in rows.items():
        bad = [t for t in truth.TARGETS if r["targets"][t].get("degenerate")]
        if not bad:
            continue
        ratios = sorted({f"{r['targets'][t]['untrained_ratio']:.2f}" for t in bad})
        where = "both targets" if len(bad) == len(truth.TARGETS) else f"the {bad[0]} epoch"
        t = r["targets"][bad[0]]
        runs = (
            f"all {t['runs']} runs diverged (NaN)"
            if t["diverged_runs"] == t["runs"]
            else f"{t['diverged_runs']} of {t['runs']} runs diverged"
        )
        out.append(
            f"{name} (curve minimum {'/'.join(ratios)} x the untrained model's loss on "
            f"{where}; {runs}: no grid LR trains it)"
        )
    return out


HEADERS = [
    "method",
    "median",
    "worst finite task",
    "diverged (tasks)",
    "no pick (tasks)",
    "worst finite probe",
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
    dropped = excluded(rows)
    parts.append(
        "\nExcluded from every figure below (degenerate ground truth: the fitted curve's "
        f"minimum above {metric.DEGENERATE:g}x the untrained model's loss, so no LR trains "
        "the task and every pick's regret is meaningless): "
        + ("; ".join(dropped) if dropped else "none")
        + "."
    )
    for line in dropped:
        log(f"excluded: {line}")
    parts.append(
        "\nColumns: `median` over tasks of the median over probe seeds (a task whose median "
        "is infinite counts as worse than any finite one); `worst finite task`; "
        "`diverged (tasks)`: tasks where most probes' picks sit at or above the divergence "
        "cut; `no pick (tasks)`: tasks where most probes gave no LR (a refusal or an error); "
        "`worst finite probe`: the worst single probe seed's finite regret; spread = max / "
        "min pick over probe seeds, over the tasks where every probe gave a pick."
    )
    for target in truth.TARGETS:
        table = summary(rows, target)
        fam_headers, fam_rows = by_family(rows, target)
        log(f"\n[{target} epoch]\n" + text_table(HEADERS, table))
        log("by family:\n" + text_table(fam_headers, fam_rows))
        parts += [
            f"\n### Target: the {target} epoch\n",
            md_table(HEADERS, table),
            "\nMedian regret by family (tasks; in brackets the family's tasks diverged "
            "and with no pick, when any):\n",
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
    loss, both fitted curves, the divergence cut and the picks of kt_lr v1 and the valley;
    a task with degenerate truth says so in its title."""
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
        flat = []
        for target, marker, colour in (("final", "o", "C0"), ("best", "x", "C2")):
            fn = truth.TARGETS[target]
            lrs = [run["lr"] for run in rec["runs"].values()]
            vals = [min(fn(run["val"]), init) for run in rec["runs"].values()]
            ax.scatter(lrs, vals, s=9, marker=marker, color=colour, alpha=0.5)
            curve = task_curve(rec, target)
            if metric.degenerate(curve, init):
                flat.append(target)
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
        note = f"\nEXCLUDED: degenerate truth ({', '.join(flat)})" if flat else ""
        ax.set_title(f"{spec.name} ({spec.epochs} ep){note}", fontsize=9)
    for ax in axes[len(recs) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("learning rate (red dashed: divergence cut; dotted: the curve's minimum)")
    fig.supylabel("validation loss")
    fig.savefig(path, dpi=80)
    return path
