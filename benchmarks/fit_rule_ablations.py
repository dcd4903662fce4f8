"""``python -m benchmarks.fit_rule_ablations``: what else the learned pick could have been.

The same nested leave-one-family-out cross-validation as :mod:`benchmarks.fit_rule`
(no training: the cached probes and ground truth), for alternatives that were tried and
not shipped, each beside the shipped rule:

- **more probe features**: a candidate of ``find_lr``'s probes that the shipped rule does
  not read (the range test's minimum / 10 and its "slide"; the loss differentials' lowest
  upper confidence bound, largest negative mean and lowest median), as its distance from
  the edge, one at a time and all together;
- **where the oracle's second and third seeded trials go**: the shipped fixed bracket
  (pick / 10 and pick x 10^0.5, set before the corpus existed) against two placements
  taken from the cross-validated error distribution, as issue 15 proposed, each from the
  inner loop only: the pair of offsets whose best of three did best on the inner
  out-of-fold picks (a grid of 15 x 11), and the 20% / 80% quantiles of the inner errors.

Writes ``benchmarks/results/fit_rule_ablations.json`` and the "Learned pick: alternatives
tried" section of RESULTS.md (about 2 minutes; ``--report`` rewrites the section from the
JSON).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from benchmarks import common
from benchmarks import fit_rule as fr
from benchmarks.corpus import tasks as corpus_tasks
from kt_lr import pick

OUT = common.RESULTS / "fit_rule_ablations.json"
EXTRA_FEATURES = {
    "rt_min10": "range_test:min/10",
    "rt_slide": "range_test:slide",
    "ld_lowest_upper": "differential:lowest_upper",
    "ld_largest_negative": "differential:largest_negative",
    "ld_lowest_median": "differential:lowest_median",
}
SEEDS_BELOW = tuple(float(v) for v in np.round(np.arange(-2.0, -0.24, 0.125), 3))
SEEDS_ABOVE = tuple(float(v) for v in np.round(np.arange(0.25, 1.51, 0.125), 3))
QUANTILE = 0.2


def add_features(rows: list[dict]) -> None:
    """Each extra candidate's log10 distance from the edge, in the rows' features."""
    for r in rows:
        for name, key in EXTRA_FEATURES.items():
            v = r["candidates"].get(key)
            r["features"][name] = math.log10(v) - r["anchor"] if v and v > 0 else None


def fitted_seeds(tables, target):
    """Seeds placement: the grid pair with the best inner best-of-three objective."""

    def place(rows, choices) -> tuple[float, float]:
        logs = choices["logs"]
        offsets = np.clip(np.array([*SEEDS_BELOW, *SEEDS_ABOVE]), *choices["interval"])
        at = logs[:, None] + offsets[None, :]
        table = np.minimum(
            np.array([np.log(tables[r["task"]][target](at[i])) for i, r in enumerate(rows)]),
            fr.CAP,
        )
        base = np.minimum(fr.log_regret(rows, logs, tables, target), fr.CAP)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["task"]] = counts.get(r["task"], 0) + 1
        weight = np.array([1.0 / (len(counts) * counts[r["task"]]) for r in rows])
        n = len(SEEDS_BELOW)
        best = None
        for a in range(n):
            scores = weight @ np.minimum(np.minimum(base, table[:, a])[:, None], table[:, n:])
            b = int(np.argmin(scores))
            if best is None or scores[b] < best[0] - 1e-12:
                best = (float(scores[b]), float(offsets[a]), float(offsets[n + b]))
        return best[1], best[2]

    return place


def quantile_seeds(target):
    """Seeds placement: the inner errors' QUANTILE and 1 - QUANTILE quantiles."""

    def place(rows, choices) -> tuple[float, float]:
        errors = np.array([r["best"][target] for r in rows]) - choices["logs"]
        return float(np.quantile(errors, QUANTILE)), float(np.quantile(errors, 1 - QUANTILE))

    return place


def run(data: dict, name: str, names=pick.FEATURES, seeds=None) -> dict:
    """One variant's cross-validated figures, per rule target, scored on both targets."""
    out = {}
    for target in pick.TARGETS:
        rows = [r for r in data["rows"] if r["task"] not in data["excluded"][target]]
        place = seeds(data["tables"], target) if seeds is not None else None
        cv = fr.cross_validate(rows, target, data["tables"], log=lambda *a: None,
                               names=names, seeds=place)  # fmt: skip
        figs = {t: fr.figures(cv, data, t) for t in pick.TARGETS}
        out[target] = {
            t: {k: f[k] for k in ("median", "worst", "worst_task", "diverged", "worst_finite",
                                  "oracle_median", "oracle_worst", "interval_rows")}
            for t, f in figs.items()
        }  # fmt: skip
        f = figs[target]
        print(
            f"{name:<40} {target}-epoch rule: median {f['median']:.3f}, worst {f['worst']:.3g} "
            f"({f['worst_task']}), interval {f['interval_rows']}, oracle "
            f"{f['oracle_median']:.3f} / {f['oracle_worst']:.3g}; on the other epoch: oracle "
            f"{figs[[t for t in pick.TARGETS if t != target][0]]['oracle_median']:.3f}",
            flush=True,
        )
    return out


def variants() -> list[tuple[str, dict]]:
    base = tuple(pick.FEATURES)
    out = [("shipped rule", {})]
    out += [(f"+ {n} ({k})", {"names": (*base, n)}) for n, k in EXTRA_FEATURES.items()]
    out += [("+ all five", {"names": (*base, *EXTRA_FEATURES)})]
    out += [
        ("seeds: offsets fitted on inner picks", {"seeds": fitted_seeds}),
        (
            f"seeds: {QUANTILE:.0%}/{1 - QUANTILE:.0%} quantiles of inner errors",
            {"seeds": lambda tables, target: quantile_seeds(target)},
        ),
    ]
    return out


def _cell(f: dict) -> str:
    worst = float(f["worst"])
    worst = f"{worst:.3g}" if math.isfinite(worst) else "diverged"
    return f"{f['median']:.3f} / {worst}"


def verdicts(results: dict) -> str:
    """What the table says, in words, from its own figures."""
    base = results["shipped rule"]
    feats = {n: r for n, r in results.items() if n.startswith("+")}
    seeds = {n: r for n, r in results.items() if n.startswith("seeds")}
    moves = [abs(r[t][t]["median"] - base[t][t]["median"]) for r in feats.values() for t in r]
    worst = [float(r["best"]["best"]["worst"]) for r in feats.values()]
    text = (
        f"Extra probe features move the cross-validated median by at most {max(moves):.3f} "
        f"(the shipped rule: {base['final']['final']['median']:.3f} final, "
        f"{base['best']['best']['median']:.3f} best); the best-epoch worst task ranges "
        f"{min(worst):.3g}-{max(worst):.3g} over the feature sets against "
        f"{float(base['best']['best']['worst']):.3g} shipped, one task deciding it. "
    )
    for name, r in seeds.items():
        text += (
            f"{name[7:].capitalize()}: the oracle's best of 3 (best-epoch rule) "
            f"{r['best']['best']['oracle_median']:.3f} on the best epoch and "
            f"{r['best']['final']['oracle_median']:.3f} on the final one, against "
            f"{base['best']['best']['oracle_median']:.3f} and "
            f"{base['best']['final']['oracle_median']:.3f} with the fixed bracket "
            f"(final-epoch rule: {r['final']['final']['oracle_median']:.3f} against "
            f"{base['final']['final']['oracle_median']:.3f}). "
        )
    return text + (
        "None of these was adopted: the feature gains are within the CV noise, and the "
        "oracle runs the best-epoch rule, for which the fixed bracket does as well on the "
        "best epoch and better on the final one (the regret is asymmetric: a seed too high "
        "diverges, one too low only trains slowly; the errors' distribution is not)."
    )


def section(results: dict, seconds: float) -> str:
    head = [
        "variant (CV)",
        "final rule, final epoch: median / worst",
        "best rule, best epoch: median / worst",
        "interval holds best (final; best)",
        "oracle best of 3, best epoch: median / worst",
        "oracle best of 3, final epoch: median / worst",
    ]
    body = []
    for name, r in results.items():
        fin, best = r["final"]["final"], r["best"]["best"]
        oracle_final = r["best"]["final"]
        body.append(
            [
                name,
                _cell(fin),
                _cell(best),
                f"{fin['interval_rows']}; {best['interval_rows']}",
                f"{best['oracle_median']:.3f} / {float(best['oracle_worst']):.3g}",
                f"{oracle_final['oracle_median']:.3f} / {float(oracle_final['oracle_worst']):.3g}",
            ]
        )
    return "\n".join(
        [
            f"`python -m benchmarks.fit_rule_ablations` ({seconds:.0f} s, no training): the "
            "nested leave-one-family-out figures of alternatives tried and not shipped, "
            "beside the shipped rule (the oracle runs the best-epoch rule; its seeded trials "
            "are scored on both epochs).",
            "",
            common.md_table(head, body),
            "",
            verdicts(results),
        ]
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fit_rule_ablations")
    ap.add_argument("--report", action="store_true", help="only rewrite RESULTS.md")
    args = ap.parse_args(argv)
    if args.report:
        saved = common.load_json(OUT)
        common.update_results_md(
            "Learned pick: alternatives tried", section(saved["variants"], saved["seconds"])
        )
        return 0
    start = time.perf_counter()
    data = fr.build_rows(corpus_tasks.get_specs())
    data["best"] = {r["task"]: r["best"] for r in data["rows"]}
    add_features(data["rows"])
    results = {name: run(data, name, **kw) for name, kw in variants()}
    seconds = time.perf_counter() - start
    common.save_json(OUT, {"variants": results, "seconds": seconds})
    common.update_results_md("Learned pick: alternatives tried", section(results, seconds))
    print(f"wrote {OUT} and RESULTS.md 'Learned pick: alternatives tried' in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
