"""The probes on every Keras backend: wall time, and how far the answers differ.

``python -m benchmarks.backends [--backends tensorflow,jax,torch] [--threads 1] [--repeats 2]``

Each backend runs in a fresh subprocess (``KERAS_BACKEND`` set, ``--threads``
intra-op threads) on the seed-001 time series and its Adam model
(:func:`kt_lr.demo.build_timeseries_model`), every model starting from the same
initial weights (saved by the first backend to a ``.npz`` file, loaded with
``set_weights`` by all). Timed, "cold" on a freshly built model (compilation
included) and "warm" (median of ``--repeats`` further calls on the same model):

- ``range_test``: 100 steps;
- ``loss_differential``: 100 subsamples x 50 LRs (default grid), method ``auto``;
- ``find_lr``: default settings;
- ``fit``: one epoch, batch 32.

Answers compared against the first backend: ``find_lr``'s lr / low / high and the
differentials' ΔL (100 x 50, seed 0). Writes ``benchmarks/results/backends.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, clean, save_json, timer, unclean

BACKENDS = ("tensorflow", "jax", "torch")
ITEMS = {
    "range_test": "range_test 100 steps",
    "loss_differential": "loss_differential 100x50",
    "find_lr": "find_lr defaults",
    "fit": "fit 1 epoch",
}


# -- inside one backend's subprocess -----------------------------------------------------
def _pin_threads(backend: str, threads: int) -> None:
    if backend == "tensorflow":
        from benchmarks import common

        common.setup(threads)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)


def _versions(backend: str) -> dict:
    import keras

    out = {"keras": keras.__version__}
    module = __import__(backend)
    out[backend] = getattr(module, "__version__", "?")
    if backend == "jax":
        import jaxlib

        out["jaxlib"] = jaxlib.__version__
    return out


def _fresh_model(weights_path: Path):
    from kt_lr.demo import build_timeseries_model

    model = build_timeseries_model()
    if weights_path.exists():
        with np.load(weights_path) as f:
            model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
    else:
        np.savez(weights_path, *model.get_weights())
    return model


def child(backend: str, weights_path: Path, threads: int, repeats: int) -> dict:
    import keras

    import kt_lr
    from kt_lr.demo import timeseries_data

    assert keras.backend.backend() == backend, keras.backend.backend()
    _pin_threads(backend, threads)
    x, y, _, _ = timeseries_data()
    kw = {"batch_size": 32, "seed": 0, "verbose": 0}
    calls = {
        "range_test": lambda m: kt_lr.range_test(m, x, y, num_steps=100, **kw),
        "loss_differential": lambda m: kt_lr.loss_differential(m, x, y, num_subsamples=100, **kw),
        "find_lr": lambda m: kt_lr.find_lr(m, x, y, **kw),
        "fit": lambda m: m.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False),
    }
    items, answers = {}, {}
    for name, call in calls.items():
        model = _fresh_model(weights_path)
        with timer() as t:
            result = call(model)
        cold = t()
        if name != "fit":
            answers[name] = result  # from the initial weights: fit moves them
        warm = []
        for _ in range(repeats):
            with timer() as t:
                call(model)
            warm.append(t())
        items[name] = {"what": ITEMS[name], "cold_s": cold, "warm_s": float(np.median(warm))}
        items[name]["warm_runs"] = warm
        if name == "loss_differential":
            items[name]["method"] = result.method
    finding, ld, rt = answers["find_lr"], answers["loss_differential"], answers["range_test"]
    return {
        "backend": backend,
        "versions": _versions(backend),
        "threads": threads,
        "items": items,
        "answers": {
            "find_lr": {"lr": finding.lr, "low": finding.low, "high": finding.high},
            "deltas": ld.deltas,
            "base_losses": ld.base_losses,
            "range_test_losses": rt.losses,
            "range_test_lr": rt.lr,
        },
    }


# -- the parent: one subprocess per backend, then the comparison ----------------------------
def _run_backend(backend: str, weights: Path, threads: int, repeats: int) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if threads == 1:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        ).strip()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, "-m", "benchmarks.backends", "--child", backend]
    cmd += ["--weights", str(weights), "--out", str(out)]
    cmd += ["--threads", str(threads), "--repeats", str(repeats)]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        return {"backend": backend, "error": proc.stderr[-3000:]}
    result = unclean(json.loads(out.read_text()))
    out.unlink()
    result["process_s"] = time.perf_counter() - start
    return result


def _compare(ref: dict, other: dict) -> dict:
    a, b = ref["answers"], other["answers"]
    d_ref, d_oth = np.asarray(a["deltas"], float), np.asarray(b["deltas"], float)
    base = np.abs(np.asarray(a["base_losses"], float))[:, None]
    both = np.isfinite(d_ref) & np.isfinite(d_oth)
    diff = np.where(both, np.abs(d_oth - d_ref), 0.0)
    # two regimes: steps that change the loss by less than the loss itself, where the
    # difference is best counted in float32 steps (ulps) of the loss, and larger ones
    # (divergence), where it is relative
    ulp = np.spacing(base.astype(np.float32)).astype(float) * np.ones_like(d_ref)
    small = both & (np.abs(d_ref) < base)
    large = both & ~small
    rel = diff / np.maximum(np.abs(d_ref), 1e-30)
    rt_ref, rt_oth = np.asarray(a["range_test_losses"]), np.asarray(b["range_test_losses"])
    n = min(len(rt_ref), len(rt_oth))
    fl = {
        k: None
        if a["find_lr"][k] is None or b["find_lr"][k] is None
        else abs(a["find_lr"][k] - b["find_lr"][k])
        for k in ("lr", "low", "high")
    }
    return {
        "find_lr_abs_diff": fl,
        "find_lr": b["find_lr"],
        "deltas_max_abs_diff": float(diff.max()),
        "small_steps_max_abs_diff": float(diff[small].max()) if small.any() else None,
        "small_steps_max_diff_in_loss_ulps": float((diff / ulp)[small].max())
        if small.any()
        else None,
        "large_steps_max_rel_diff": float(rel[large].max()) if large.any() else None,
        "cells": {"small": int(small.sum()), "large": int(large.sum())},
        "deltas_nan_mismatch": int(np.sum(np.isfinite(d_ref) != np.isfinite(d_oth))),
        "mean_curve_max_rel_diff": float(
            np.nanmax(
                np.abs(np.nanmean(d_oth, 0) - np.nanmean(d_ref, 0)) / np.abs(np.nanmean(d_ref, 0))
            )
        ),
        "base_losses_max_abs_diff": float(
            np.max(np.abs(np.asarray(a["base_losses"]) - np.asarray(b["base_losses"])))
        ),
        "range_test_steps": [len(rt_ref), len(rt_oth)],
        "range_test_losses_max_rel_diff": float(
            np.max(np.abs(rt_oth[:n] - rt_ref[:n]) / np.abs(rt_ref[:n]))
        ),
    }


def _table(runs: dict) -> str:
    """Seconds, cold (first call, compilation included) / warm (median of the repeats)."""
    names = list(ITEMS)
    head = f"{'backend':<11}" + "".join(f"{n:>20}" for n in names)
    lines = [head + "   (cold / warm s)", "-" * (len(head) + 18)]
    for backend, run in runs.items():
        if "error" in run:
            lines.append(f"{backend:<11} failed: {run['error'].strip().splitlines()[-1]}")
            continue
        cells = "".join(
            f"{run['items'][n]['cold_s']:>12.2f} / {run['items'][n]['warm_s']:<5.2f}" for n in names
        )
        lines.append(f"{backend:<11}{cells}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, Path(args.weights), args.threads, args.repeats)
        Path(args.out).write_text(json.dumps(clean(result)))
        return
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "initial_weights.npz"
        for backend in backends:
            print(f"running {backend} ...", flush=True)
            runs[backend] = _run_backend(backend, weights, args.threads, args.repeats)
    ok = [b for b in backends if "error" not in runs[b]]
    comparison = {}
    if ok:
        ref = runs[ok[0]]
        comparison = {f"{b}_vs_{ok[0]}": _compare(ref, runs[b]) for b in ok[1:]}
    print(_table(runs))
    for key, comp in comparison.items():
        fl = comp["find_lr_abs_diff"]
        print(
            f"{key}: find_lr |Δ| lr={fl['lr']} low={fl['low']} high={fl['high']}; "
            f"ΔL where |ΔL| < L: max abs diff {comp['small_steps_max_abs_diff']:.3g} "
            f"= {comp['small_steps_max_diff_in_loss_ulps']:.1f} float32 ulps of L; "
            f"where |ΔL| >= L: max rel diff {comp['large_steps_max_rel_diff']:.3g}; "
            f"mean curve max rel diff {comp['mean_curve_max_rel_diff']:.3g}"
        )
    for run in runs.values():
        run.get("answers", {}).pop("deltas", None)  # 5000 numbers per backend: not kept
    save_json(
        RESULTS / "backends.json",
        {
            "task": "seed-001 time series, build_timeseries_model (Adam 1e-3), batch 32",
            "threads": args.threads,
            "repeats": args.repeats,
            "runs": runs,
            "comparison": comparison,
        },
    )
    print(f"wrote {RESULTS / 'backends.json'}")


if __name__ == "__main__":
    main()
