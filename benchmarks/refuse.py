"""Re-fuse cached probe results with the current :func:`kt_lr.fuse.fuse` (no re-probing).

``python -m benchmarks.refuse [--quick] [--tasks a,b]`` rewrites the kt_lr pick, interval and
edges in ``results/probes_<task>.json`` from the stored range-test curve and the
stored loss-differential rules, so a change of the fusion rule is evaluated on the
very same probe measurements; ``python -m benchmarks.regret`` then trains only the
new picks (training results are cached by LR).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.common import RESULTS
from kt_lr.fuse import fuse
from kt_lr.results import LossDifferentialResult, RangeTestResult


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def refuse_record(rec: dict) -> dict:
    """The record with the pick/interval/edges recomputed from its stored probes."""
    rt_d, ld_d, cand = rec["range_test"], rec["differential"], rec["candidates"]
    lrs = _arr(rt_d["lrs"])
    rt = RangeTestResult(
        lrs=lrs,
        losses=_arr(rt_d["losses"]),
        smoothed=_arr(rt_d["smoothed"]),
        val_losses=None,
        stop_step=len(lrs),
        stop_reason=rt_d.get("stop_reason", ""),
        suggestions={k.split(":", 1)[1]: v for k, v in cand.items() if k.startswith("range_test:")},
        lr=None,
        low=None,
        high=None,
    )
    ld_lrs = _arr(ld_d["lrs"])
    z = np.zeros_like(ld_lrs)
    best = {k.split(":", 1)[1]: v for k, v in cand.items() if k.startswith("differential:")}
    best.pop("edge", None)
    ld = LossDifferentialResult(
        lrs=ld_lrs,
        deltas=np.zeros((2, ld_lrs.size)),
        base_losses=np.ones(2),
        mean=_arr(ld_d["mean"]),
        median=_arr(ld_d["median"]),
        std=z,
        t_low=_arr(ld_d["t_low"]),
        t_high=_arr(ld_d["t_high"]),
        boot_low=z,
        boot_high=z,
        confidence=0.95,
        best=best,
        method=ld_d.get("method", "affine"),
        holdout=False,
    )
    f = fuse(rt, ld, bounds=(1e-7, 10.0))
    out = dict(rec)
    out.update(lr=f.lr, low=f.low, high=f.high, reasons=f.reasons + ["(re-fused offline)"])
    out["candidates"] = {**cand, **{k: v for k, v in f.candidates.items() if "edge" in k}}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=None, help="comma-separated task names")
    parser.add_argument("--quick", action="store_true", help="the --quick runs' probes")
    args = parser.parse_args(argv)
    names = args.tasks.split(",") if args.tasks else None
    for path in sorted(RESULTS.glob("probes_*.json")):
        task = path.stem[len("probes_") :]
        if task.endswith("_quick") != args.quick:
            continue
        task = task.removesuffix("_quick")
        if names and task not in names:
            continue
        data = json.loads(path.read_text())
        old = [r["lr"] for r in data["kt_lr"].values()]
        data["kt_lr"] = {s: refuse_record(r) for s, r in data["kt_lr"].items()}
        path.write_text(json.dumps(data))
        new = [r["lr"] for r in data["kt_lr"].values()]
        print(f"{task}: " + ", ".join(f"{a:.3g}->{b:.3g}" for a, b in zip(old, new, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
