"""``python -m benchmarks.fit_rule``: fit the learned pick (:mod:`kt_lr.pick`) on the corpus.

From the cached probes (``benchmarks/corpus/probes/``: ``find_lr`` at its defaults, 5
probe seeds per task) and the cached ground truth (``benchmarks/corpus/truth/``), with
no training:

1. one row per (task, probe seed): the features of :func:`kt_lr.pick.features`; the
   target is the log10 distance of the task's curve-best LR (per target: final / best
   epoch) from that probe's edge. Tasks with degenerate ground truth are left out.
2. **Leave-one-family-out cross-validation** (the figure reported): for each family, the
   ridge penalty and a final shift (decades) are chosen by an inner leave-one-family-out
   loop on the other families (minimising their mean capped log regret), the rule is
   fitted on the other families and picks for the held-out family; the interval is the
   narrowest band of the inner loop's errors that held the best LR on >= 95% of rows.
   Every held-out pick is scored on the task's curve (:mod:`benchmarks.corpus.metric`).
3. The shipped rule: the same choices made on all families, fitted on all rows;
   written to ``kt_lr/data/pick_rule.json`` (deterministic: closed-form ridge, fixed
   grids, sorted inputs).

Writes ``benchmarks/results/fit_rule.json`` (out-of-fold picks per task and probe seed,
read by ``python -m benchmarks.corpus report``) and the "Learned pick" section of
``benchmarks/RESULTS.md``. ``--check`` refits and fails if the shipped coefficients differ.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.corpus import metric, report, truth
from benchmarks.corpus import tasks as corpus_tasks
from benchmarks.corpus.probes import PROBE_DIR, load_probes
from kt_lr import pick

RULE_PATH = Path(pick.__file__).resolve().parent / "data" / "pick_rule.json"
OUT = common.RESULTS / "fit_rule.json"
PARAMS = common.RESULTS / "fit_rule_params.json"
LAMBDAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
SHIFTS = tuple(np.round(np.arange(-0.8, 0.41, 0.05), 2))
CAP = math.log(20.0)  # a diverged or worse-than-20x pick counts as 20x in the objective
COVERAGE = 0.95


# ------------------------------------------------------------------------------ data


def model_params(specs) -> dict[str, int]:
    """Trainable parameters per task (cached: building 60 models takes a minute)."""
    cached = common.load_json(PARAMS) or {}
    missing = [s for s in specs if s.name not in cached]
    for spec in missing:
        model = corpus_tasks.build_model(spec, 0)
        cached[spec.name] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    if missing:
        common.save_json(PARAMS, dict(sorted(cached.items())))
    return {s.name: int(cached[s.name]) for s in specs}


class RegretTable:
    """A task's curve regret tabulated on a fine log-LR grid (fast lookups in CV)."""

    def __init__(self, curve: metric.Curve, step: float = 0.01):
        lo, hi = curve.log_lrs[0] - 4.0, curve.log_lrs[-1] + 2.0
        self.x = np.arange(lo, hi + step / 2, step)
        self.r = np.array([curve.regret(10**x) for x in self.x])
        self.step, self.lo = step, lo

    def __call__(self, log_lr: np.ndarray) -> np.ndarray:
        idx = np.clip(np.round((np.asarray(log_lr) - self.lo) / self.step), 0, len(self.x) - 1)
        return self.r[idx.astype(int)]


def build_rows(specs, truth_dir: Path = truth.TRUTH_DIR, probe_dir: Path = PROBE_DIR) -> dict:
    """The feature table: rows per (task, probe seed) with anchor, features, and per
    target the curve's best LR and a regret table; degenerate tasks are listed apart."""
    params = model_params(specs)
    rows, tables, excluded = [], {}, {t: [] for t in pick.TARGETS}
    for spec in sorted(specs, key=lambda s: s.name):
        rec, probes = truth.load_truth(spec.name, truth_dir), load_probes(spec.name, probe_dir)
        if not rec or not rec.get("done") or not probes or not probes.get("kt_lr"):
            continue
        init = truth.initial_loss(rec)
        curves = {t: report.task_curve(rec, t) for t in pick.TARGETS}
        for t, c in curves.items():
            if metric.degenerate(c, init):
                excluded[t].append(spec.name)
        tables[spec.name] = {t: RegretTable(c) for t, c in curves.items()}
        ctx = pick.Context(
            optimizer=spec.optimizer,
            batch_size=spec.batch_size,
            samples=corpus_tasks.train_samples(spec),
            params=params[spec.name],
            epochs=spec.epochs,
        )
        for seed in sorted(probes["kt_lr"], key=int):
            run = probes["kt_lr"][seed]
            cands = run.get("candidates") or {}
            if not run.get("lr") or not cands.get("edge"):
                continue  # a refusal or an error: no pick, scored as such by the report
            anchor, feats = pick.features(cands, ctx)
            rows.append(
                {
                    "task": spec.name,
                    "family": spec.family,
                    "seed": int(seed),
                    "anchor": anchor,
                    "features": feats,
                    "candidates": dict(cands),
                    "best": {t: math.log10(c.best_lr) for t, c in curves.items()},
                }
            )
    return {"rows": rows, "tables": tables, "excluded": excluded}


# ------------------------------------------------------------------------------ fitting


def _matrix(rows, names, mean=None, scale=None):
    raw = np.array([[np.nan if r["features"][n] is None else r["features"][n] for n in names]
                    for r in rows], float)  # fmt: skip
    if mean is None:
        mean = np.nanmean(raw, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.nanstd(raw, axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 1e-9), scale, 1.0)
    z = (raw - mean) / scale
    return np.where(np.isfinite(z), z, 0.0), mean, scale


def fit(rows, target: str, lam: float, names=pick.FEATURES) -> pick.PickRule:
    """A rule fitted by ridge on ``rows`` (no shift, no interval yet)."""
    z, mean, scale = _matrix(rows, names)
    y = np.array([r["best"][target] - r["anchor"] for r in rows])
    nonpos = [i for i, n in enumerate(names) if n in pick.NONPOSITIVE]
    sol = pick.ridge(z, y, lam, nonpos)
    return pick.PickRule(
        target=target,
        features=list(names),
        mean=[float(v) for v in mean],
        scale=[float(v) for v in scale],
        coef=[float(v) for v in sol[1:]],
        intercept=float(sol[0]),
        interval=(0.0, 0.0),
    )


def predict(rule: pick.PickRule, rows) -> np.ndarray:
    """log10 picks of ``rule`` for ``rows`` (shift included)."""
    return np.array([r["anchor"] + rule.gap(r["features"]) for r in rows])


def log_regret(rows, logs: np.ndarray, tables, target: str) -> np.ndarray:
    return np.array(
        [math.log(tables[r["task"]][target](v)) for r, v in zip(rows, logs, strict=True)]
    )


def objective(rows, logs, tables, target) -> float:
    """Mean over tasks of the mean capped log regret over their probe seeds."""
    lr = np.minimum(log_regret(rows, logs, tables, target), CAP)
    per_task: dict[str, list[float]] = {}
    for r, v in zip(rows, lr, strict=True):
        per_task.setdefault(r["task"], []).append(v)
    return float(np.mean([np.mean(v) for v in per_task.values()]))


def narrowest_band(errors: np.ndarray, coverage: float = COVERAGE) -> tuple[float, float]:
    """The narrowest ``[a, b]`` holding at least ``coverage`` of ``errors``."""
    e = np.sort(np.asarray(errors, float))
    k = max(1, math.ceil(coverage * len(e)))
    widths = e[k - 1 :] - e[: len(e) - k + 1]
    i = int(np.argmin(widths))
    return float(e[i]), float(e[i + k - 1])


def _oof(rows, target, lam, names=pick.FEATURES) -> np.ndarray:
    """Out-of-fold log picks (leave one family out) at penalty ``lam``, no shift."""
    fams = sorted({r["family"] for r in rows})
    out = np.empty(len(rows))
    for f in fams:
        train = [r for r in rows if r["family"] != f]
        idx = [i for i, r in enumerate(rows) if r["family"] == f]
        rule = fit(train, target, lam, names)
        out[idx] = predict(rule, [rows[i] for i in idx])
    return out


def choose(rows, target, tables, names=pick.FEATURES) -> dict:
    """Penalty, shift and interval chosen by leave-one-family-out CV on ``rows`` (and
    the out-of-fold log picks ``logs`` they were chosen on, shift included)."""
    best = None
    for lam in LAMBDAS:
        logs = _oof(rows, target, lam, names)
        for shift in SHIFTS:
            score = objective(rows, logs + shift, tables, target)
            if best is None or score < best[0] - 1e-12:
                best = (score, lam, float(shift), logs)
    score, lam, shift, logs = best
    errors = np.array([r["best"][target] for r in rows]) - (logs + shift)
    return {
        "lam": lam,
        "shift": shift,
        "interval": narrowest_band(errors),
        "score": score,
        "logs": logs + shift,
    }


def final_rule(rows, target, tables, names=pick.FEATURES, choices=None) -> pick.PickRule:
    """The shipped rule: choices by CV on all families, fitted on all rows (``choices``:
    :func:`choose`'s answer, when already made)."""
    c = choices or choose(rows, target, tables, names)
    rule = fit(rows, target, c["lam"], names)
    rule.shift, rule.interval = c["shift"], c["interval"]
    rule.info = {"lambda": c["lam"], "rows": len(rows), "tasks": len({r["task"] for r in rows})}
    return rule


def cross_validate(rows, target, tables, log=print, names=pick.FEATURES, seeds=None) -> list[dict]:
    """Nested leave-one-family-out picks: one record per row of a held-out family.

    ``seeds(train_rows, choices) -> (below, above)``, when given, places the held-out
    picks' second and third seeded trials in decades from the pick (from the inner loop
    only); the records then carry them as ``"seeds"`` (rates)."""
    out = []
    for f in sorted({r["family"] for r in rows}):
        train = [r for r in rows if r["family"] != f]
        test = [r for r in rows if r["family"] == f]
        choices = choose(train, target, tables, names)
        rule = final_rule(train, target, tables, names, choices)
        offsets = seeds(train, choices) if seeds is not None else None
        logs = predict(rule, test)
        for r, v in zip(test, logs, strict=True):
            out.append(
                {
                    "task": r["task"],
                    "family": f,
                    "seed": r["seed"],
                    "lr": 10**v,
                    "low": 10 ** (v + rule.interval[0]),
                    "high": 10 ** (v + rule.interval[1]),
                    **({"seeds": [10 ** (v + d) for d in offsets]} if offsets else {}),
                }
            )
        log(
            f"  [{target}] held out {f}: lambda {rule.info['lambda']:g}, shift "
            f"{rule.shift:+.2f}, interval [{rule.interval[0]:+.2f}, {rule.interval[1]:+.2f}]"
        )
    return out


# ------------------------------------------------------------------------------ figures


def oracle_seeds(record: dict) -> list[float]:
    """The oracle's first three trials for a cross-validated pick
    (:func:`kt_lr.space.seed_lrs`; its default bracket unless the record names seeds)."""
    from kt_lr.space import seed_lrs

    return seed_lrs(record["lr"], record["low"], record["high"], 3, record.get("seeds"))


def figures(cv: list[dict], data: dict, target: str) -> dict:
    """Curve-regret figures of the out-of-fold picks on ``target``."""
    tables = data["tables"]
    keep = [c for c in cv if c["task"] not in data["excluded"][target]]
    per_task: dict[str, dict] = {}
    for c in keep:
        t = per_task.setdefault(c["task"], {"family": c["family"], "r": [], "o": [], "h": []})
        t["r"].append(float(tables[c["task"]][target](math.log10(c["lr"]))))
        seeds = oracle_seeds(c)
        t["o"].append(min(float(tables[c["task"]][target](math.log10(s))) for s in seeds))
        best = data["best"][c["task"]][target]
        t["h"].append(c["low"] <= 10**best <= c["high"])
        t.setdefault("lrs", []).append(c["lr"])
    med = {n: float(np.median(t["r"])) for n, t in per_task.items()}
    orc = {n: float(np.median(t["o"])) for n, t in per_task.items()}
    worst = max(med, key=med.get)
    finite = {n: v for n, v in med.items() if math.isfinite(v)}
    spreads = [max(t["lrs"]) / min(t["lrs"]) for t in per_task.values()]
    hits = [h for t in per_task.values() for h in t["h"]]
    task_hits = [np.mean(t["h"]) >= 0.5 for t in per_task.values()]
    fams = sorted({t["family"] for t in per_task.values()})
    return {
        "tasks": len(med),
        "median": float(np.median(list(med.values()))),
        "worst": med[worst],
        "worst_task": worst,
        "diverged": int(sum(not math.isfinite(v) for v in med.values())),
        "worst_finite": max(finite.values()) if finite else math.inf,
        "worst_probe": float(max(v for t in per_task.values() for v in t["r"])),
        "oracle_median": float(np.median(list(orc.values()))),
        "oracle_worst": float(max(orc.values())),
        "interval_rows": f"{sum(hits)}/{len(hits)}",
        "interval_tasks": f"{sum(task_hits)}/{len(task_hits)}",
        "spread_median": float(np.median(spreads)),
        "spread_worst": float(max(spreads)),
        "by_family": {
            f: float(np.median([med[n] for n, t in per_task.items() if t["family"] == f]))
            for f in fams
        },
        "per_task": med,
    }


def rule_table(rules: dict[str, pick.PickRule]) -> tuple[list[str], list[list]]:
    headers = ["feature", *[f"{t}: decades per sd" for t in rules], "corpus mean", "sd"]
    first = next(iter(rules.values()))
    body = [
        [n, *[r.coef[i] for r in rules.values()], first.mean[i], first.scale[i]]
        for i, n in enumerate(first.features)
    ]
    body.append(["intercept + shift", *[r.intercept + r.shift for r in rules.values()], "", ""])
    body.append(
        ["interval (decades)", *[f"[{r.interval[0]:+.2f}, {r.interval[1]:+.2f}]"
                                 for r in rules.values()], "", ""]
    )  # fmt: skip
    return headers, body


def peer_figures() -> dict[str, dict[str, tuple]]:
    """``{target: {peer: (median, worst finite, diverged + no-pick tasks)}}`` from the
    corpus report's rows (``benchmarks/results/corpus.json``), the learned rule and the
    oracles left out."""
    rows = common.load_json(common.RESULTS / "corpus.json") or {}
    out: dict[str, dict[str, tuple]] = {}
    for target in pick.TARGETS:
        for line in report.summary(rows, target) if rows else []:
            name = line[0]
            if "learned" in name or "oracle" in name or "noise" in name:
                continue
            worst = float(str(line[2]).split(" ")[0]) if line[2] else math.inf
            out.setdefault(target, {})[name] = (line[1], worst, line[3] + line[4])
    return out


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets_table(figs: dict) -> tuple[list[str], list[list]]:
    """Issue 15's targets against the cross-validated figures (rule matched to target)."""
    peers = peer_figures()
    body = []
    for t in pick.TARGETS:
        f = figs[t][t]
        n_rows, n_all = (int(v) for v in f["interval_rows"].split("/"))
        ours = (f["diverged"], f["worst_finite"])
        beaten = [
            n for n, (m, w, bad) in peers.get(t, {}).items() if m < f["median"] or (bad, w) < ours
        ]
        body += [
            [f"{t} epoch: median regret", "<= 1.03", f"{f['median']:.3g}",
             _verdict(f["median"] <= 1.03)],
            [f"{t} epoch: worst task", "<= 1.15", f"{f['worst']:.3g} ({f['worst_task']})",
             _verdict(f["worst"] <= 1.15)],
            [f"{t} epoch: interval holds the best LR (probes)", ">= 95%",
             f"{n_rows / n_all:.1%} ({f['interval_rows']})", _verdict(n_rows / n_all >= 0.95)],
            [f"{t} epoch: pick spread over probe seeds (median / worst task)", "<= 2x",
             f"{f['spread_median']:.2g} / {f['spread_worst']:.3g}",
             _verdict(f["spread_worst"] <= 2)],
            [f"{t} epoch: oracle's best of 3 seeded trials, median", "<= 1.02",
             f"{f['oracle_median']:.3g}", _verdict(f["oracle_median"] <= 1.02)],
            [f"{t} epoch: ahead of every peer on median and worst", "all peers",
             "behind: " + ", ".join(beaten) if beaten else "ahead of all",
             _verdict(not beaten)],
        ]  # fmt: skip
    return ["target", "asked", "measured (CV)", "verdict"], body


def results_section(figs: dict, rules: dict, data: dict, seconds: float) -> str:
    """The "Learned pick" section of RESULTS.md."""
    excluded = sorted({n for v in data["excluded"].values() for n in v})
    lines = [
        "`python -m benchmarks.fit_rule` (no training: the cached probes and ground truth; "
        f"{seconds:.0f} s). The rule (`kt_lr/pick.py`): the pick is the probes' edge x "
        "10^(predicted gap); the gap is a ridge regression in log space on the edge and both "
        "probes' shape (each candidate's distance from the edge), the "
        "optimizer's family, batch size, training samples, parameters per sample and the "
        "budget (epochs x steps, and epochs; their coefficients kept <= 0). One rule per "
        "target. Figures are **nested leave-one-family-out**: each family's picks come from "
        "a rule whose penalty, shift and interval were chosen and fitted on the other "
        "families only. Scored with the corpus's curve regret; every probe seed's pick "
        f"counts. Left out (degenerate truth): {', '.join(excluded) or 'none'}.",
        "",
    ]
    head = [
        "rule (CV) / target",
        "median",
        "worst task",
        "diverged tasks",
        "worst probe",
        "interval holds best (probes; tasks)",
        "spread median / worst",
        "oracle best of 3, median (worst)",
    ]
    body = []
    for rule_target, by in figs.items():
        for target, f in by.items():
            body.append(
                [
                    f"{rule_target}-epoch rule / {target} epoch",
                    f"{f['median']:.3g}",
                    f"{f['worst']:.3g} ({f['worst_task']})",
                    f["diverged"],
                    f"{f['worst_probe']:.3g}",
                    f"{f['interval_rows']}; {f['interval_tasks']}",
                    f"{f['spread_median']:.2g} / {f['spread_worst']:.3g}",
                    f"{f['oracle_median']:.3g} ({f['oracle_worst']:.3g})",
                ]
            )
    lines += [common.md_table(head, body), ""]
    lines += [
        "Issue 15's targets (peers: the corpus report's figures on the same tasks; a peer "
        "counts as ahead when its median is lower, or on the worst case when it fails (diverges "
        "or gives no pick) on fewer tasks, or as few and its worst finite task is lower). The "
        "probes "
        'are the same as before, so find_lr\'s cost is unchanged (see "Probe cost").',
        "",
        common.md_table(*targets_table(figs)),
        "",
    ]
    fams = sorted({f for by in figs.values() for g in by.values() for f in g["by_family"]})
    fam_body = [
        [f"{rt}-epoch rule / {t} epoch", *[by[t]["by_family"].get(f) for f in fams]]
        for rt, by in figs.items()
        for t in by
        if t == rt
    ]
    lines += [
        "Median curve regret by family (each family held out), rule matched to its target:",
        "",
        common.md_table(["rule / target", *fams], fam_body),
        "",
        "The shipped coefficients (fitted on every family; decades of gap per standard "
        "deviation of each feature):",
        "",
        common.md_table(*rule_table(rules)),
    ]
    return "\n".join(lines)


def same_rules(a, b, tol: float = 1e-9) -> bool:
    """Whether two stored rules agree: equal structure and text, numbers within ``tol``
    (another numpy or BLAS build moves the last digits of a refit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_rules(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_rules(u, v, tol) for u, v in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return a == b or abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    return a == b


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fit_rule", description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the refit differs")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    data = build_rows(corpus_tasks.get_specs())
    rows = data["rows"]
    data["best"] = {r["task"]: r["best"] for r in rows}
    print(f"{len(rows)} rows, {len({r['task'] for r in rows})} tasks", flush=True)
    rules, cvs, figs = {}, {}, {}
    for target in pick.TARGETS:
        fit_rows = [r for r in rows if r["task"] not in data["excluded"][target]]
        rules[target] = final_rule(fit_rows, target, data["tables"])
        cvs[target] = cross_validate(fit_rows, target, data["tables"])
        figs[target] = {t: figures(cvs[target], data, t) for t in pick.TARGETS}
        for t, f in figs[target].items():
            print(
                f"{target}-epoch rule on the {t} epoch: median {f['median']:.3f}, worst "
                f"{f['worst']:.3g} ({f['worst_task']}), diverged {f['diverged']}, "
                f"interval {f['interval_rows']}, spread {f['spread_median']:.2f}/"
                f"{f['spread_worst']:.3g}, oracle {f['oracle_median']:.3f} "
                f"({f['oracle_worst']:.3g})",
                flush=True,
            )
    for target, rule in rules.items():
        f = figs[target][target]
        rule.info.update(
            {
                "command": "python -m benchmarks.fit_rule",
                "cv_median_regret": round(f["median"], 4),
                "cv_worst_regret": round(f["worst"], 4),
                "interval_coverage": f["interval_rows"],
            }
        )
    stored = {
        "about": "kt_lr.pick coefficients; refit with python -m benchmarks.fit_rule",
        "targets": {t: r.to_dict() for t, r in rules.items()},
    }
    text = json.dumps(stored, indent=1, sort_keys=True) + "\n"
    if args.check:
        same = RULE_PATH.exists() and same_rules(json.loads(RULE_PATH.read_text()), stored)
        print(
            "shipped rule reproduced (to 1e-9)" if same else "shipped rule DIFFERS from the refit"
        )
        return 0 if same else 1
    RULE_PATH.parent.mkdir(exist_ok=True)
    RULE_PATH.write_text(text)
    common.save_json(OUT, {"cv": cvs, "figures": figs, "excluded": data["excluded"]})
    seconds = time.perf_counter() - start
    common.update_results_md("Learned pick", results_section(figs, rules, data, seconds))
    print(f"wrote {RULE_PATH}, {OUT} and RESULTS.md 'Learned pick' in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
