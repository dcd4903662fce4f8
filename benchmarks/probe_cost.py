"""What ``find_lr`` costs against one epoch of ``fit``, on real-size models (issue 18).

``python -m benchmarks.probe_cost [--quick] [--tasks a,b] [--backends tensorflow,jax,torch]``
(default: every task of :mod:`benchmarks.probe_models` and :mod:`benchmarks.tasks` on
TensorFlow; ``--quick``: ts_sgd, digits_mlp and mlp_100k, under 5 minutes, written to
``results/probe_cost_quick.json`` only: the full figures in ``results/probe_cost.json`` and
RESULTS.md are left alone). Results of earlier runs for other tasks or backends are kept in
the JSON and the table.

Every measurement runs in a subprocess of its own (``KERAS_BACKEND`` set, one intra-op
thread), on a model built from seed 0 and generated data:

- **probe**: ``find_lr`` at its defaults (cold: tracing included), again (warm), the
  process's peak RSS so far (``ru_maxrss``); then the full-grid reference on the same model,
  ``find_lr(budget=None)`` (range test 100 steps, 100 subsamples x 50 LRs, as before
  issue 18), whose pick the budgeted pick is compared with;
- **fit**: one epoch of ``fit`` (cold), the peak RSS; a warm epoch (on real-size models a
  quarter epoch, x 4).

Targets: cold ``find_lr`` <= 1 epoch of cold ``fit`` on the real-size models and <= 3 on
the small tasks; the pick within one grid step (10^0.1) of the full grid's; the probe's peak
RSS <= 1.5 x fit's. The figures before issue 18 are in ``results/probe_cost_v1.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.common import RESULTS, load_json, save_json

OUT = RESULTS / "probe_cost.json"
QUICK_OUT = RESULTS / "probe_cost_quick.json"
BEFORE = RESULTS / "probe_cost_v1.json"
QUICK = "ts_sgd,digits_mlp,mlp_100k"
TARGETS = {"real_epochs": 1.0, "small_epochs": 3.0, "pick_decades": 0.1, "rss_ratio": 1.5}
CHILD_TIMEOUT = 4 * 3600


# -- inside a measurement's subprocess -----------------------------------------------------
def _task(name: str):
    from benchmarks.probe_models import REAL_TASKS
    from benchmarks.tasks import TASKS

    return ({**TASKS, **REAL_TASKS})[name], name in REAL_TASKS


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pin_threads(backend: str) -> None:
    if backend == "tensorflow":
        common.setup(1)
    elif backend == "torch":
        import torch

        torch.set_num_threads(1)


def _edges(finding) -> dict:
    c = finding.candidates
    return {
        "lr": finding.lr,
        "edge": c.get("edge"),
        "differential_edge": c.get("differential:edge"),
        "range_test_edge": c.get("range_test:edge"),
    }


def child_probe(name: str, backend: str) -> dict:
    import kt_lr

    _pin_threads(backend)
    task, _ = _task(name)
    x, y = task.make_data(0)[:2]
    model = task.build_model(0)
    kw = {"batch_size": task.batch_size, "seed": 0, "verbose": 0}
    with common.timer() as t:
        finding = kt_lr.find_lr(model, x, y, **kw)
    cold = t()
    with common.timer() as t:
        kt_lr.find_lr(model, x, y, **kw)
    warm = t()
    rss = _rss_mb()
    with common.timer() as t:
        full = kt_lr.find_lr(model, x, y, budget=None, **kw)
    ld = finding.differential.settings
    plan = finding.settings["budget"]
    return {
        "cold_s": cold,
        "warm_s": warm,
        "rss_mb": rss,
        "full_s": t(),
        "budgeted": _edges(finding),
        "full": _edges(full),
        "plan": {k: plan[k] for k in ("budget_seconds", "range_steps", "lr_points")},
        "estimate": plan["estimate"],
        "range_test_steps": len(finding.range_test.lrs),
        "subsamples": ld["num_subsamples"],
        "lr_points": ld["lr_points"],
        "stop_reason": ld["stop_reason"],
        "differential_s": ld["seconds"],
        "vectorized": ld["vectorized"],
    }


def child_fit(name: str, backend: str) -> dict:
    _pin_threads(backend)
    task, real = _task(name)
    x, y = task.make_data(0)[:2]
    model = task.build_model(0)
    kw = {"batch_size": task.batch_size, "verbose": 0}
    with common.timer() as t:
        model.fit(x, y, epochs=1, **kw)
    cold = t()
    rss = _rss_mb()
    part = 4 if real else 1
    n = len(x) // part
    with common.timer() as t:
        model.fit(x[:n], y[:n], epochs=1, **kw)
    return {
        "cold_s": cold,
        "warm_s": t() * part,
        "rss_mb": rss,
        "steps": math.ceil(len(x) / task.batch_size),
    }


# -- the parent ------------------------------------------------------------------------------
def _run_child(kind: str, name: str, backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, "-m", "benchmarks.probe_cost", "--child", kind, "--tasks", name]
    cmd += ["--backends", backend, "--out", str(out)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
            timeout=CHILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT} s"}
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        return {"error": proc.stderr[-2000:]}
    result = json.loads(out.read_text())
    out.unlink()
    result.update(process_s=time.perf_counter() - start, load_before=load)
    result["load_after"] = os.getloadavg()[0]
    return result


def _summary(row: dict) -> dict:
    """Ratios and distances of one (backend, task) row."""
    probe, fit = row["probe"], row["fit"]
    if "error" in probe or "error" in fit:
        return {}
    pick = probe["budgeted"]["lr"]
    full = probe["full"]["lr"]
    return {
        "cold_epochs": probe["cold_s"] / fit["cold_s"],
        "warm_epochs": probe["warm_s"] / fit["warm_s"],
        "rss_ratio": probe["rss_mb"] / fit["rss_mb"],
        "pick_decades": abs(math.log10(pick / full)),
        "edge_decades": _decades(probe["budgeted"]["edge"], probe["full"]["edge"]),
        "differential_edge_decades": _decades(
            probe["budgeted"]["differential_edge"], probe["full"]["differential_edge"]
        ),
    }


def _decades(a, b):
    if a is None or b is None:
        return None if a is b else math.inf
    return abs(math.log10(a / b))


def _verdicts(key: str, row: dict) -> list[list]:
    s = row.get("summary") or {}
    if not s:
        return [[key, "all (the measurement failed)", "error", "", "**missed**"]]
    real = row["real"]
    limit = TARGETS["real_epochs"] if real else TARGETS["small_epochs"]
    checks = [
        ("find_lr cold / fit epoch cold", s["cold_epochs"], limit),
        ("pick vs full grid (decades)", s["pick_decades"], TARGETS["pick_decades"] + 1e-9),
        ("probe peak RSS / fit's", s["rss_ratio"], TARGETS["rss_ratio"]),
    ]
    return [
        [key, label, value, f"<= {target:g}", "**met**" if value <= target else "**missed**"]
        for label, value, target in checks
    ]


HEADERS = [
    "backend / task",
    "epoch steps",
    "fit cold s",
    "find_lr cold s",
    "cold epochs",
    "fit warm s",
    "find_lr warm s",
    "warm epochs",
    "plan: RT steps, LRs/subsample",
    "subsamples (stop)",
    "probe / fit RSS MB",
    "pick / full-grid pick",
    "pick decades",
    "ΔL edge decades",
    "full grid s",
]


def _table_row(key: str, row: dict) -> list:
    probe, fit, s = row["probe"], row["fit"], row.get("summary") or {}
    if not s:
        error = (probe.get("error") or fit.get("error") or "").strip().splitlines()
        return [key, "error: " + (error[-1] if error else "")[-120:], *[""] * (len(HEADERS) - 2)]
    return [
        key,
        fit["steps"],
        fit["cold_s"],
        probe["cold_s"],
        s["cold_epochs"],
        fit["warm_s"],
        probe["warm_s"],
        s["warm_epochs"],
        f"{probe['range_test_steps']}, {probe['lr_points']}",
        f"{probe['subsamples']} ({probe['stop_reason']})",
        f"{probe['rss_mb']:.0f} / {fit['rss_mb']:.0f}",
        f"{probe['budgeted']['lr']:.3g} / {probe['full']['lr']:.3g}",
        s["pick_decades"],
        s["differential_edge_decades"],
        probe["full_s"],
    ]


def _before_table() -> tuple[list[str], list[list]]:
    """The figures before issue 18 (``results/probe_cost_v1.json``): find_lr in epochs."""
    old = load_json(BEFORE, {}) or {}
    rows = []
    for name, t in (old.get("tasks") or {}).items():
        f, d = t["items"]["f"], t["items"]["d"]
        rows.append([name, f["cold_s"], f["cold_s"] / d["cold_s"], f["warm_s"] / d["warm_s"]])
    return ["task", "find_lr cold s", "cold epochs", "warm epochs"], rows


def _not_measured(runs: dict) -> str:
    """The real-size models missing on a backend that ran other tasks, in words."""
    from benchmarks.probe_models import REAL_TASKS

    backends = dict.fromkeys(k.split("/")[0] for k in runs)
    missing = []
    for backend in backends:
        names = [n for n in REAL_TASKS if f"{backend}/{n}" not in runs]
        if names:
            missing.append(f"{', '.join(names)} on {backend}")
    return "; ".join(missing)


def report(payload: dict, write: bool = True) -> None:
    """Print the tables and (``write``) rewrite the 'Probe cost' section of RESULTS.md.

    Args:
        payload: the merged results (``runs``, ``uptime``).
        write: whether to rewrite RESULTS.md (not for ``--quick`` runs).
    """
    runs = payload["runs"]
    keys = sorted(runs, key=lambda k: (k.split("/")[0] != "tensorflow", not runs[k]["real"], k))
    rows = [_table_row(k, runs[k]) for k in keys]
    verdicts = [v for k in keys for v in _verdicts(k, runs[k])]
    print(common.text_table(HEADERS, [r + [""] * (len(HEADERS) - len(r)) for r in rows]))
    print()
    print(common.text_table(["run", "target", "value", "bound", "verdict"], verdicts))
    before_headers, before_rows = _before_table()
    loads = payload.get("uptime", [])
    md = [
        "Command: `nice -n 5 python -m benchmarks.probe_cost` (`--quick`: ts_sgd, digits_mlp, "
        "mlp_100k, written to `results/probe_cost_quick.json`, not here). Each figure comes from a subprocess of its own, one intra-op thread, "
        "generated data, models from seed 0; cold = a freshly built model (tracing "
        "included), warm = the second call on it. `find_lr` at its defaults (budget: one "
        "epoch); the full grid is `find_lr(budget=None)` (range test 100 steps, 100 "
        "subsamples x 50 LRs: the estimator before issue 18) on the same model. Peak RSS: "
        "`ru_maxrss` of the probe's process after both calls against the fit process's "
        "after its cold epoch (both hold the data). The machine's 2 cores were shared "
        "with other jobs: " + "; ".join(loads) + ".",
        "",
        common.md_table(HEADERS, [r + [""] * (len(HEADERS) - len(r)) for r in rows]),
        "",
        "Targets (issue 18):",
        "",
        common.md_table(["run", "target", "value", "bound", "verdict"], verdicts),
        "",
        "Missed: "
        + (
            "; ".join(
                f"{v[0]}, {v[1]}: "
                + (f"{v[2]:.3g} ({v[3]})" if isinstance(v[2], int | float) else str(v[2]))
                for v in verdicts
                if "missed" in v[4]
            )
            or "none"
        )
        + ".",
        "",
        "Not measured: " + (_not_measured(runs) or "none") + ".",
        "",
        "Before issue 18 (`results/probe_cost_v1.json`, the 100x50 estimator and 100 range-"
        "test steps, load 2.4-3.4; on the BatchNorm CNN of issue 18, measured by hand: "
        "343 s against 46-82 s for one epoch, 4-7 epochs):",
        "",
        common.md_table(before_headers, before_rows),
    ]
    if write:
        common.update_results_md("Probe cost", "\n".join(md))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=None, help="comma-separated (default: all)")
    parser.add_argument("--backends", default="tensorflow")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    parser.add_argument("--child", choices=("probe", "fit"), default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--report", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args(argv)
    if args.report:
        report(load_json(OUT))
        return 0
    if args.child:
        fn = child_probe if args.child == "probe" else child_fit
        result = fn(args.tasks, args.backends)
        Path(args.out).write_text(json.dumps(common.clean(result)))
        return 0
    from benchmarks.probe_models import REAL_TASKS
    from benchmarks.tasks import TASKS

    names = (args.tasks or (QUICK if args.quick else ",".join([*REAL_TASKS, *TASKS]))).split(",")
    out = QUICK_OUT if args.quick else OUT  # a quick run never overwrites the full figures
    payload = load_json(out, {}) or {}
    if "runs" not in payload:
        payload = {"runs": {}, "targets": TARGETS, "uptime": []}
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    start = time.perf_counter()
    for backend in args.backends.split(","):
        for name in names:
            key = f"{backend}/{name}"
            row = {"real": name in REAL_TASKS, "backend": backend, "task": name}
            for kind in ("fit", "probe"):
                row[kind] = _run_child(kind, name, backend)
                print(f"  {key} {kind}: {json.dumps(common.clean(row[kind]))[:300]}", flush=True)
            row["summary"] = _summary(row)
            payload["runs"][key] = row
            save_json(out, payload)
    end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    payload["uptime"] = [
        f"`{args.backends}` {','.join(names)}: start `{uptime}`, end `{end}`, "
        f"{time.perf_counter() - start:.0f} s"
    ] + [
        u
        for u in payload.get("uptime", [])
        if not u.startswith(f"`{args.backends}` {','.join(names)}:")
    ][:8]
    save_json(out, payload)
    report(payload, write=not args.quick)
    print(f"\nwrote {out}" + ("" if args.quick else " and the 'Probe cost' section of RESULTS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
