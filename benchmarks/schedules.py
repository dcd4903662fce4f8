"""Schedules sized from a kt_lr probe vs a constant rate vs Keras defaults (issue 7).

``python -m benchmarks.schedules [--quick] [--tasks a,b] [--seeds 3] [--render]``

Per task and seed ``s``: the data is ``task.make_data(0)``; the probe is
``kt_lr.find_lr(task.build_model(s), ...)`` at defaults (``seed=s``, the task's batch
size, the validation split as ``validation_data``). Then five fresh models (weights
from seed ``s``: ``keras.utils.set_random_seed(s)`` before building; the task's own
optimizer class and options, only ``learning_rate`` differs) are trained for exactly
``task.epochs`` epochs with ``model.fit(..., shuffle=True)`` and the per-epoch
validation loss is recorded:

* ``keras default``: constant at the optimizer class's default LR;
* ``kt_lr constant``: ``schedule_from(finding, "constant")`` (the pick);
* ``kt_lr one_cycle``: ``schedule_from(finding, "one_cycle", ...)`` with its callbacks
  (the momentum cycle; dropped, ``cycle_momentum=False``, when the task's optimizer
  has momentum 0: there is no momentum to cycle);
* ``kt_lr cosine``: ``schedule_from(finding, "cosine", ...)``;
* ``keras default cosine``: ``CosineDecay(default LR, decay_steps=total steps)``: a
  schedule without the probe, to separate the schedule's effect from the probe's.

Diverged runs (NaN/inf, stopped by ``TerminateOnNaN``) count as ``inf``. Figures per
task, median over seeds: final validation loss; its ratio to the kt_lr-constant run of
the same seed (paired: same weights, same data order); epochs to reach = first epoch
(1-based) whose validation loss is <= the kt_lr-constant run's final one, same seed
("never" if it does not); wall seconds. ``--quick``: 2 tasks, 1 seed, a quarter of the
epochs, written to ``results/schedules_quick.json``. ``--render``: rewrite the table,
plot and RESULTS.md section from the saved JSON without training.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.common import RESULTS, load_json, save_json  # noqa: E402

RUNS = (
    "keras default",
    "kt_lr constant",
    "kt_lr one_cycle",
    "kt_lr cosine",
    "keras default cosine",
)
REFERENCE = "kt_lr constant"
DEFAULT_TASKS = "ts_adam,digits_mlp,cancer_rmsprop,diabetes_adamw,digits_cnn"
QUICK_TASKS = "ts_adam,digits_mlp"
TASKS_WHY = "same tasks as the regret benchmark"


def log(msg: str) -> None:
    """Print a timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- training


def _finite(v: Any) -> float:
    """``v`` as a float, non-finite (NaN/inf/None) -> inf."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.inf
    return f if math.isfinite(f) else math.inf


def _zero_momentum(optimizer: Any) -> bool:
    """True when the optimizer's momentum-like float (``beta_1``/``momentum``) is 0."""
    for attr in ("beta_1", "momentum"):
        value = getattr(optimizer, attr, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value == 0
    return True


def _peak(schedule: Any) -> float:
    """The highest learning rate of a constant or a (kt_lr / Keras) schedule."""
    if isinstance(schedule, int | float):
        return float(schedule)
    for attr in ("max_lr", "warmup_target", "initial_learning_rate"):
        value = getattr(schedule, attr, None)
        if value is not None:
            return float(value)
    return math.nan


def _lr_curve(schedule: Any, total: int, points: int = 60) -> dict:
    """The schedule at up to ``points`` steps of the run (for the JSON)."""
    from kt_lr.schedules import schedule_values

    steps = np.unique(np.linspace(0, total - 1, min(total, points)).round().astype(np.int64))
    return {"steps": steps.tolist(), "lr": schedule_values(schedule, steps).tolist()}


def train_run(task, data, schedule: Any, callbacks: list, seed: int, epochs: int) -> dict:
    """Train a fresh ``task`` model (weights from ``seed``) with ``schedule`` as its
    optimizer's ``learning_rate`` for ``epochs`` epochs; per-epoch losses.

    Epochs after a divergence (``TerminateOnNaN``) are recorded as ``inf``.
    """
    import keras

    x_tr, y_tr, x_va, y_va = data
    keras.backend.clear_session()
    with common.timer() as t:
        keras.utils.set_random_seed(int(seed))
        model = task.build()
        opt = getattr(keras.optimizers, task.optimizer)(
            learning_rate=schedule, **dict(task.optimizer_kwargs)
        )
        model.compile(optimizer=opt, loss=task.loss())
        hist = model.fit(
            x_tr,
            y_tr,
            epochs=epochs,
            batch_size=task.batch_size,
            validation_data=(x_va, y_va),
            verbose=0,
            shuffle=True,
            callbacks=list(callbacks) + [keras.callbacks.TerminateOnNaN()],
        )
    val = [_finite(v) for v in hist.history.get("val_loss", [])]
    train = [_finite(v) for v in hist.history.get("loss", [])]
    # an epoch whose training loss went non-finite is diverged, whatever its val loss
    val = [math.inf if not math.isfinite(tr) else v for v, tr in zip(val, train, strict=False)]
    val += [math.inf] * (epochs - len(val))
    train += [math.inf] * (epochs - len(train))
    return {
        "val_loss": val,
        "train_loss": train,
        "final": val[-1],
        "diverged": not math.isfinite(val[-1]),
        "seconds": t(),
    }


def epochs_to_reach(curve: list[float], target: float) -> int | None:
    """First epoch (1-based) with ``curve[e] <= target``; None if never (or no target)."""
    if not math.isfinite(target):
        return None
    for i, v in enumerate(curve):
        if v <= target:
            return i + 1
    return None


def run_seed(task, data, seed: int, epochs: int) -> dict:
    """Probe once with seed ``seed``, then train the five runs; all records of that seed."""
    import keras

    import kt_lr
    from kt_lr.schedules import schedule_from

    x_tr, y_tr, x_va, y_va = data
    steps_per_epoch = math.ceil(len(x_tr) / task.batch_size)
    total = steps_per_epoch * epochs
    keras.backend.clear_session()
    with common.timer() as t:
        finding = kt_lr.find_lr(
            task.build_model(seed),
            x_tr,
            y_tr,
            batch_size=task.batch_size,
            seed=seed,
            validation_data=(x_va, y_va),
            verbose=0,
        )
    probe = {
        "lr": finding.lr,
        "low": finding.low,
        "high": finding.high,
        "edge": finding.candidates.get("edge"),
        "seconds": t(),
        "reasons": list(finding.reasons),
    }
    default = task.default_lr()
    probe_opt = getattr(keras.optimizers, task.optimizer)(**dict(task.optimizer_kwargs))
    one_cycle_opts = {"cycle_momentum": False} if _zero_momentum(probe_opt) else {}
    plans: dict[str, tuple[Any, list, list[str], dict]] = {
        "keras default": (default, [], [f"constant {default:g}: the optimizer's default"], {}),
        "keras default cosine": (
            keras.optimizers.schedules.CosineDecay(default, decay_steps=total),
            [],
            [f"Keras CosineDecay({default:g}, decay_steps={total}): default LR, no probe"],
            {},
        ),
    }
    for kind in ("constant", "one_cycle", "cosine"):
        opts = one_cycle_opts if kind == "one_cycle" else {}
        sched = schedule_from(finding, kind, steps_per_epoch, epochs, **opts)
        reasons = list(sched.reasons)
        if opts:
            reasons.append(
                f"cycle_momentum=False: {task.optimizer} has momentum 0 here and "
                "there is no momentum to cycle; the task's optimizer is kept as is"
            )
        plans[f"kt_lr {kind}"] = (sched.schedule, list(sched.callbacks), reasons, opts)
    runs: dict[str, dict] = {}
    for name in RUNS:
        schedule, callbacks, reasons, opts = plans[name]
        rec = train_run(task, data, schedule, callbacks, seed, epochs)
        rec.update(
            {
                "peak_lr": _peak(schedule),
                "reasons": reasons,
                "options": opts,
                "lr_curve": _lr_curve(schedule, total),
            }
        )
        runs[name] = rec
    ref = runs[REFERENCE]["final"]
    for rec in runs.values():
        rec["epochs_to_reach"] = epochs_to_reach(rec["val_loss"], ref)
        rec["ratio"] = (
            rec["final"] / ref if math.isfinite(ref) and ref > 0 else math.nan
        )  # inf when the run diverged and the reference did not
    return {"seed": seed, "probe": probe, "runs": runs, "steps_per_epoch": steps_per_epoch}


# --------------------------------------------------------------------------- figures


def _median(values: list) -> float:
    arr = np.array([_finite(v) if v is not None else math.inf for v in values], dtype=float)
    return float(np.median(arr)) if arr.size else math.nan


def summarize_task(seeds: list[dict]) -> dict:
    """Per run kind: medians over seeds of final loss, ratio, epochs to reach, seconds."""
    out: dict[str, dict] = {}
    for name in RUNS:
        recs = [s["runs"][name] for s in seeds]
        reach = [r["epochs_to_reach"] for r in recs]
        ratios = [r["ratio"] for r in recs]
        med_reach = _median(reach)
        out[name] = {
            "final_median": _median([r["final"] for r in recs]),
            "final_per_seed": [r["final"] for r in recs],
            "ratio_median": _median(ratios) if all(not math.isnan(x) for x in ratios) else None,
            "ratio_per_seed": ratios,
            "seeds_better": sum(1 for x in ratios if x < 1),
            "reach_median": med_reach if math.isfinite(med_reach) else None,
            "reach_per_seed": reach,
            "reached": sum(1 for x in reach if x is not None),
            "seconds_median": _median([r["seconds"] for r in recs]),
            "peak_lr_median": _median([r["peak_lr"] for r in recs]),
            "diverged": sum(1 for r in recs if r["diverged"]),
        }
    finals = [x for x in out[REFERENCE]["final_per_seed"] if math.isfinite(x)]
    if len(seeds) < 2:
        out["_constant_spread"] = None  # one seed: no spread to compare with
    elif len(finals) == len(seeds) and min(finals) > 0:
        out["_constant_spread"] = max(finals) / min(finals)
    else:
        out["_constant_spread"] = math.inf
    out["_probe_seconds_median"] = _median([s["probe"]["seconds"] for s in seeds])
    out["_pick_median"] = _median([s["probe"]["lr"] for s in seeds])
    return out


def summarize(per_task: dict) -> dict:
    """Per run kind, over tasks: median ratio to the constant, wins and losses."""
    out = {}
    for name in RUNS:
        ratios = {t: v["summary"][name]["ratio_median"] for t, v in per_task.items()}
        vals = [r for r in ratios.values() if r is not None]
        spread = {t: v["summary"]["_constant_spread"] for t, v in per_task.items()}
        out[name] = {
            "ratio_median_over_tasks": _median(vals) if vals else None,
            "tasks_better": sorted(t for t, r in ratios.items() if r is not None and r < 1),
            "tasks_worse": sorted(t for t, r in ratios.items() if r is not None and r > 1),
            "tasks_worse_beyond_spread": sorted(
                t
                for t, r in ratios.items()
                if r is not None and spread[t] is not None and r > max(1.0, spread[t])
            ),
            "tasks_better_beyond_spread": sorted(
                t
                for t, r in ratios.items()
                if r is not None and spread[t] is not None and r < min(1.0, 1.0 / spread[t])
            ),
            "seeds_worse": sum(
                1
                for v in per_task.values()
                for x in v["summary"][name]["ratio_per_seed"]
                if not math.isnan(x) and x > 1
            ),
            "seeds_total": sum(len(v["seeds"]) for v in per_task.values()),
            "spread_known": all(x is not None for x in spread.values()),
            "diverged_runs": sum(v["summary"][name]["diverged"] for v in per_task.values()),
        }
    return out


def _reach_text(s: dict, n_seeds: int) -> str:
    med = s["reach_median"]
    head = "never" if med is None else f"{med:g}"
    return f"{head} ({s['reached']}/{n_seeds})"


def task_rows(per_task: dict) -> tuple[list[str], list[list]]:
    """Headers and rows of the per-task table."""
    headers = [
        "task",
        "run",
        "peak LR",
        "final val loss",
        "/ kt_lr constant",
        "seeds better",
        "epochs to reach (seeds)",
        "epochs",
        "diverged",
        "wall s",
    ]
    rows = []
    for t, v in per_task.items():
        n = len(v["seeds"])
        for name in RUNS:
            s = v["summary"][name]
            rows.append(
                [
                    t,
                    name,
                    s["peak_lr_median"],
                    s["final_median"],
                    s["ratio_median"],
                    f"{s['seeds_better']}/{n}",
                    _reach_text(s, n),
                    v["epochs"],
                    f"{s['diverged']}/{n}",
                    s["seconds_median"],
                ]
            )
    return headers, rows


def summary_rows(summary: dict, n_tasks: int) -> tuple[list[str], list[list]]:
    """Headers and rows of the over-tasks summary table."""
    headers = [
        "run",
        "median over tasks of final / kt_lr constant",
        "tasks better",
        "tasks worse",
        "better beyond constant's seed spread",
        "worse beyond constant's seed spread",
        "seeds worse",
        "diverged runs",
    ]
    rows = []
    for name in RUNS:
        s = summary[name]
        rows.append(
            [
                name,
                s["ratio_median_over_tasks"],
                f"{len(s['tasks_better'])}/{n_tasks}",
                f"{len(s['tasks_worse'])}/{n_tasks}",
                (", ".join(s["tasks_better_beyond_spread"]) or "none")
                if s["spread_known"]
                else "n/a (1 seed)",
                (", ".join(s["tasks_worse_beyond_spread"]) or "none")
                if s["spread_known"]
                else "n/a (1 seed)",
                f"{s['seeds_worse']}/{s['seeds_total']}",
                s["diverged_runs"],
            ]
        )
    return headers, rows


def plot(per_task: dict, path) -> None:
    """One subplot per task: median val loss over seeds vs epoch per run kind, log y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(per_task)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    styles = {
        "keras default": {"color": "0.55", "ls": ":"},
        "kt_lr constant": {"color": "k", "lw": 2},
        "kt_lr one_cycle": {"color": "C0"},
        "kt_lr cosine": {"color": "C1"},
        "keras default cosine": {"color": "C2", "ls": "--"},
    }
    for ax, t in zip(axes.ravel(), names, strict=False):
        v = per_task[t]
        epochs = np.arange(1, v["epochs"] + 1)
        for name in RUNS:
            curves = np.array([s["runs"][name]["val_loss"] for s in v["seeds"]], dtype=float)
            med = np.median(curves, axis=0)
            med[~np.isfinite(med)] = np.nan
            ax.plot(epochs, med, label=name, **styles[name])
        ax.set_yscale("log")
        ax.set_title(f"{t} ({len(v['seeds'])} seeds)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("median val loss")
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Validation loss per epoch: constant vs schedules (median over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else ("inf (diverged)" if not math.isfinite(r) else f"{r:.3g}")


def reading(per_task: dict, summary: dict) -> list[str]:
    """Data-driven sentences: where each schedule wins and loses, and how that compares
    with the constant run's own seed spread."""
    lines = []
    n = len(per_task)
    spreads = {t: v["summary"]["_constant_spread"] for t, v in per_task.items()}
    if all(x is not None for x in spreads.values()):
        lines.append(
            "- Seed noise at a constant rate: the kt_lr-constant run's final val loss varies by "
            + ", ".join(f"{t} x{s:.3g}" for t, s in spreads.items())
            + " (max/min over seeds). A ratio inside that spread is not a clear effect."
        )
    else:
        lines.append("- One seed: no seed spread to judge the ratios against.")
    for name in RUNS:
        if name == REFERENCE:
            continue
        s = summary[name]
        worse = [
            f"{t} {_fmt_ratio(per_task[t]['summary'][name]['ratio_median'])}"
            for t in s["tasks_worse"]
        ]
        better = [
            f"{t} {_fmt_ratio(per_task[t]['summary'][name]['ratio_median'])}"
            for t in s["tasks_better"]
        ]
        text = (
            f"- **{name}**: median ratio {_fmt_ratio(s['ratio_median_over_tasks'])}; better than "
            f"the constant pick on {len(better)}/{n} ({', '.join(better) or 'none'}), worse on "
            f"{len(worse)}/{n} ({', '.join(worse) or 'none'})"
        )
        beyond = s["tasks_worse_beyond_spread"]
        wins = s["tasks_better_beyond_spread"]
        if s["spread_known"]:
            text += (
                f"; wins beyond the constant's seed spread: {', '.join(wins) or 'none'}"
                f"; losses beyond it: {', '.join(beyond) or 'none'}"
            )
        text += f"; worse on {s['seeds_worse']}/{s['seeds_total']} single (task, seed) pairs"
        if s["diverged_runs"]:
            text += f"; **{s['diverged_runs']} diverged run(s)**"
        lines.append(text + ".")
    # schedule effect with and without the probe
    pairs = []
    for t, v in per_task.items():
        kd = v["summary"]["keras default"]["final_median"]
        kc = v["summary"]["keras default cosine"]["final_median"]
        pk = v["summary"][REFERENCE]["final_median"]
        pc = v["summary"]["kt_lr cosine"]["final_median"]
        if all(math.isfinite(x) and x > 0 for x in (kd, kc, pk, pc)):
            pairs.append(f"{t} {kc / kd:.3g} vs {pc / pk:.3g}")
    if pairs:
        lines.append(
            "- Cosine's own effect (median cosine / median constant at the same base rate), "
            "Keras default rate vs kt_lr's probe: " + ", ".join(pairs) + "."
        )
    probe_beats = [
        t
        for t, v in per_task.items()
        if v["summary"][REFERENCE]["final_median"] < v["summary"]["keras default"]["final_median"]
    ]
    lines.append(
        f"- The probe's own effect: kt_lr's constant pick beats the Keras default constant on "
        f"{len(probe_beats)}/{n} tasks ({', '.join(probe_beats) or 'none'})."
    )
    best_lines = []
    for t, v in per_task.items():
        best = min(RUNS, key=lambda r: v["summary"][r]["final_median"])
        if not best.startswith("kt_lr"):
            kt_best = min(
                (r for r in RUNS if r.startswith("kt_lr")),
                key=lambda r: v["summary"][r]["final_median"],
            )
            best_lines.append(
                f"{t} ({best} {v['summary'][best]['final_median']:.3g} vs best kt_lr run, "
                f"{kt_best}, {v['summary'][kt_best]['final_median']:.3g})"
            )
    lines.append(
        "- Tasks where a run without the probe ends lowest (a schedule built on the pick "
        "cannot rescue a poor pick): " + (", ".join(best_lines) or "none") + "."
    )
    for name in ("kt_lr one_cycle", "kt_lr cosine"):
        slower = []
        for t, v in per_task.items():
            mine, ref = v["summary"][name]["reach_median"], v["summary"][REFERENCE]["reach_median"]
            if ref is not None and (mine is None or mine > ref):
                slower.append(f"{t} {'never' if mine is None else f'{mine:g}'} vs {ref:g}")
        lines.append(
            f"- {name} reaches the constant's final loss later (median epoch) than the "
            "constant run itself first gets there on: "
            + (", ".join(slower) or "none")
            + " (warm-up; where the constant gets there before its last epoch its val loss "
            "went back up afterwards)."
        )
    costs = [
        f"{t} x{v['summary']['kt_lr one_cycle']['seconds_median'] / v['summary'][REFERENCE]['seconds_median']:.2g}"
        for t, v in per_task.items()
    ]
    lines.append(
        "- Wall time of one_cycle / constant (median seconds; the momentum cycle is a Python "
        "callback per batch): " + ", ".join(costs) + "."
    )
    no_cycle = [
        t
        for t, v in per_task.items()
        if v["seeds"] and v["seeds"][0]["runs"]["kt_lr one_cycle"]["options"]
    ]
    if no_cycle:
        lines.append(
            "- one_cycle ran without its momentum cycle on "
            + ", ".join(no_cycle)
            + " (the task's optimizer has momentum 0: nothing to cycle), so "
            "there it is only the LR cycle."
        )
    return lines


def results_section(payload: dict) -> str:
    """The ``## Schedules`` body of RESULTS.md."""
    per_task = payload["tasks"]
    timings = payload["timings"]
    n = len(per_task)
    seeds = payload["config"]["seeds"]
    th, tr = task_rows(per_task)
    sh, sr = summary_rows(payload["summary"], n)
    probe = common.md_table(
        ["task", "optimizer", "epochs", "kt_lr pick (median)", "Keras default", "probe s (median)"],
        [
            [
                t,
                v["optimizer"],
                v["epochs"],
                v["summary"]["_pick_median"],
                v["default_lr"],
                v["summary"]["_probe_seconds_median"],
            ]
            for t, v in per_task.items()
        ],
    )
    quick = payload["mode"] == "quick"
    from benchmarks.tasks import TASKS

    skipped = [t for t in TASKS if t not in per_task]
    left_out = f"; {', '.join(skipped)} left out for time" if skipped else ""
    cmd = "python -m benchmarks.schedules" + (" --quick" if quick else "")
    lines = [
        f"Mode: **{payload['mode']}**{' (partial)' if payload.get('partial') else ''}; tasks: "
        f"{', '.join(per_task)} ({TASKS_WHY}{left_out}); seeds: "
        f"{', '.join(map(str, seeds))}; the same epochs for every run (the task's budget"
        f"{', a quarter of it in quick mode' if quick else ''}). Wall time "
        f"{timings['total_s'] / 60:.1f} min (TensorFlow on 1 thread; the 2 cores are shared, "
        "so seconds are noisy).",
        "",
        "Per task and seed: one `kt_lr.find_lr` probe at defaults (`seed=s`, model weights "
        "from seed s), then five fresh models with the same weights (seed s) and the task's "
        "optimizer, trained with `model.fit(shuffle=True)` for the same epochs: **keras "
        "default** (constant, the optimizer's default LR), **kt_lr constant** (the pick), "
        "**kt_lr one_cycle** and **kt_lr cosine** (`schedule_from(finding, kind, "
        "steps_per_epoch, epochs)` at its defaults: one-cycle peak sqrt(pick x top), floor "
        "low/100; cosine peak min(2 x pick, sqrt(pick x top)), 5% warm-up, floor low/100), "
        "**keras default cosine** (`CosineDecay(default LR, decay_steps=total steps)`: a "
        "schedule without the probe). NaN/inf = diverged = inf.",
        "",
        "Columns (median over seeds): `final val loss` at the last epoch; `/ kt_lr constant` "
        "= median of the per-seed ratio to the kt_lr-constant run of the same seed (paired: "
        "same weights, same data order); `seeds better` = seeds with ratio < 1; `epochs to "
        "reach` = first epoch whose val loss <= the kt_lr-constant run's final one (same "
        "seed), `never` if the median seed never gets there, with the number of seeds that "
        "do; `wall s` = build + fit seconds; `peak LR` = the highest rate of the run.",
        "",
        common.md_table(th, tr),
        "",
        "Over tasks (a task counts as better/worse by its median ratio):",
        "",
        common.md_table(sh, sr),
        "",
        "Probes:",
        "",
        probe,
        "",
        f"![validation loss per epoch](results/{payload['timings']['plot']})",
        "",
        "Reading (generated from the figures above):",
        "",
        *reading(per_task, payload["summary"]),
        "",
        f"Reproduce: `{cmd}` (writes `benchmarks/results/{payload['timings']['json']}`, "
        f"`{payload['timings']['plot']}` and this section; `--render` redraws them from the "
        "JSON without training). The full run's log is `results/schedules_full.log`. "
        f"Command of this run: `{payload['command']}`.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def render(payload: dict) -> None:
    """Print the tables, redraw the plot and rewrite the RESULTS.md section."""
    per_task = payload["tasks"]
    for v in per_task.values():
        v["summary"] = summarize_task(v["seeds"])
    payload["summary"] = summarize(per_task)
    th, tr = task_rows(per_task)
    sh, sr = summary_rows(payload["summary"], len(per_task))
    print("\n" + common.text_table(th, tr))
    print("\n" + common.text_table(sh, sr))
    print("\n" + "\n".join(reading(per_task, payload["summary"])))
    plot(per_task, RESULTS / payload["timings"]["plot"])
    if payload["mode"] == "quick":  # the RESULTS.md section holds the full run only
        print("\n(quick mode: RESULTS.md left unchanged)")
        return
    common.update_results_md("Schedules", results_section(payload))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 tasks, 1 seed, 1/4 epochs")
    parser.add_argument("--tasks", default=None, help=f"comma-separated (default {DEFAULT_TASKS})")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--render", action="store_true", help="redraw from the saved JSON")
    args = parser.parse_args(argv)
    suffix = "_quick" if args.quick else ""
    out_path = RESULTS / f"schedules{suffix}.json"
    if args.render:
        payload = load_json(out_path)
        if payload is None:
            raise SystemExit(f"no {out_path}: run without --render first")
        render(payload)
        return 0
    common.setup(threads=1)
    from benchmarks.tasks import get_tasks

    tasks = get_tasks(args.tasks or (QUICK_TASKS if args.quick else DEFAULT_TASKS))
    n_seeds = args.seeds or (1 if args.quick else 3)
    seeds = list(range(n_seeds))
    start = time.perf_counter()
    per_task: dict[str, dict] = {}
    payload: dict = {
        "mode": "quick" if args.quick else "full",
        "command": "python -m benchmarks.schedules "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {"tasks": [t.name for t in tasks], "seeds": seeds, "runs": list(RUNS)},
        "tasks": per_task,
    }
    payload["command"] = payload["command"].rstrip()
    load = os.getloadavg()[0]
    for task in tasks:
        epochs = max(3, task.epochs // 4) if args.quick else task.epochs
        data = task.make_data(0)
        entry = {
            "optimizer": task.optimizer,
            "optimizer_kwargs": dict(task.optimizer_kwargs),
            "default_lr": task.default_lr(),
            "epochs": epochs,
            "batch_size": task.batch_size,
            "n_train": len(data[0]),
            "seeds": [],
        }
        per_task[task.name] = entry
        for s in seeds:
            rec = run_seed(task, data, s, epochs)
            entry["seeds"].append(rec)
            entry["summary"] = summarize_task(entry["seeds"])
            finals = ", ".join(
                f"{k} {_fmt_ratio(rec['runs'][k]['ratio'])}" for k in RUNS if k != REFERENCE
            )
            log(
                f"{task.name} seed {s}: pick {rec['probe']['lr']:.3g} "
                f"(probe {rec['probe']['seconds']:.1f}s); constant final "
                f"{rec['runs'][REFERENCE]['final']:.4g}; ratios {finals}"
            )
            payload["partial"] = True
            payload["timings"] = {
                "total_s": time.perf_counter() - start,
                "load_before": load,
                "json": out_path.name,
                "plot": f"schedules{suffix}.png",
            }
            save_json(out_path, payload)
    payload["partial"] = False
    payload["timings"]["total_s"] = time.perf_counter() - start
    payload["timings"]["load_after"] = os.getloadavg()[0]
    payload["summary"] = summarize(per_task)
    save_json(out_path, payload)
    render(load_json(out_path))
    log(f"done in {payload['timings']['total_s'] / 60:.1f} min -> {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
