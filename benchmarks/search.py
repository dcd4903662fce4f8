"""Search efficiency: stock Keras Tuner vs the kt_lr drop-ins, same space, same budget.

``python -m benchmarks.search [--quick] [--tasks a,b] [--seeds 5] [--tuners ...]``

For each task, seed and strategy (``random``, ``bayesian``, ``hyperband``) the same
hypermodel (units, layers, dropout and ``learning_rate`` over 1e-6...1, log) is searched
by the stock tuner and by its kt_lr drop-in with the same seed and trial budget. Every
trial's score (best ``val_loss`` over its epochs, as Keras Tuner records it) and the
wall time since ``search()`` began (kt_lr's probe included) are recorded; from them:

* the anytime curve: best val loss after each trial, median over seeds;
* trials-to-match: the first trial at which kt_lr's running best is <= stock's final
  best with the same seed (``None`` if it never is), median over seeds; the target is
  <= 10 for a 30-trial stock search;
* the probe's share of kt_lr's search time.

Results: ``benchmarks/results/search{_quick}.json`` and ``.png``, and the ``Search
efficiency`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import fcntl
import math
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.common import RESULTS, load_json, save_json  # noqa: E402

# Chosen before any search ran: the three cheapest MLP tasks of the regret benchmark
# (smallest training sets), each with a different optimizer and loss scale.
FULL_TASKS = "digits_mlp,cancer_rmsprop,diabetes_adamw"
QUICK_TASKS = "cancer_rmsprop"
STRATEGIES = ("random", "bayesian", "hyperband")
FULL = {"seeds": 5, "trials": 30, "epochs": 5, "hyperband_max_epochs": 9, "suffix": ""}
QUICK = {"seeds": 1, "trials": 6, "epochs": 4, "hyperband_max_epochs": 3, "suffix": "_quick"}
TARGET_TRIALS = 10


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_hypermodel(task, d_in: int):
    """The searched space on ``task``: its optimizer and loss, its output layer."""
    import keras

    last = task.build().layers[-1]
    d_out, out_activation = last.units, keras.activations.serialize(last.activation)
    optimizer_cls = getattr(keras.optimizers, task.optimizer)
    optimizer_kwargs = dict(task.optimizer_kwargs)

    def build(hp):
        units = hp.Choice("units", [16, 32, 64, 128])
        layers = hp.Int("layers", 1, 3)
        dropout = hp.Float("dropout", 0.0, 0.5, step=0.1)
        lr = hp.Float("learning_rate", 1e-6, 1.0, sampling="log")
        model = keras.Sequential([keras.Input((d_in,))])
        for _ in range(layers):
            model.add(keras.layers.Dense(units, activation="relu"))
            if dropout > 0:
                model.add(keras.layers.Dropout(dropout))
        model.add(keras.layers.Dense(d_out, activation=out_activation))
        model.compile(
            optimizer=optimizer_cls(learning_rate=lr, **optimizer_kwargs), loss=task.loss()
        )
        return model

    return build


def _tuner_class(strategy: str, variant: str):
    """The tuner class, with ``on_trial_end`` recording (seconds, score, is_probe)."""
    import keras_tuner

    import kt_lr
    from kt_lr.oracle import is_probe_trial

    names = {"random": "RandomSearch", "bayesian": "BayesianOptimization", "hyperband": "Hyperband"}
    base = getattr(kt_lr if variant == "kt_lr" else keras_tuner, names[strategy])

    class Recorded(base):
        def on_search_begin(self):
            self.bench_start = time.perf_counter()
            self.bench_log = []
            super().on_search_begin()

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            stored = self.oracle.trials.get(trial.trial_id)
            score = getattr(stored, "score", None)
            probe = is_probe_trial(trial)
            self.bench_log.append(
                {
                    "t": time.perf_counter() - self.bench_start,
                    "score": None if probe else score,
                    "probe": probe,
                    "lr": trial.hyperparameters.values.get("learning_rate"),
                    "status": getattr(stored, "status", None),
                }
            )

    Recorded.__name__ = f"Recorded{base.__name__}"
    return Recorded


def run_search(task, data, strategy: str, variant: str, seed: int, cfg: dict) -> dict:
    """One search; the per-trial log and what kt_lr's probe narrowed to."""
    import keras

    x_tr, y_tr, x_va, y_va = data
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    directory = tempfile.mkdtemp(prefix="kt_lr_bench_")
    kwargs = {
        "objective": "val_loss",
        "seed": seed,
        "directory": directory,
        "project_name": "p",
        "overwrite": True,
    }
    if strategy == "hyperband":
        kwargs.update(max_epochs=cfg["hyperband_max_epochs"], factor=3)
    else:
        kwargs["max_trials"] = cfg["trials"]
    cls = _tuner_class(strategy, variant)
    hypermodel = make_hypermodel(task, x_tr.shape[1])
    try:
        tuner = cls(hypermodel, **kwargs)
        fit = {} if strategy == "hyperband" else {"epochs": cfg["epochs"]}
        tuner.search(
            x_tr,
            y_tr,
            batch_size=task.batch_size,
            validation_data=(x_va, y_va),
            verbose=0,
            **fit,
        )
        total = time.perf_counter() - tuner.bench_start
        out = {"seconds": total, "log": tuner.bench_log}
        if variant == "kt_lr":
            report = tuner.lr_report()
            out["interval"] = list(report.interval) if report.interval else None
            out["probe_lrs"] = [p.lr for p in report.probes.values()]
            out["seed_lrs"] = [s.get("lr") for s in report.seeds]
            # a probe trial's time = from the previous trial's end to its own end
            previous, probe_s = 0.0, 0.0
            for row in tuner.bench_log:
                if row["probe"]:
                    probe_s += row["t"] - previous
                previous = row["t"]
            out["probe_seconds"] = probe_s
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return out


@contextmanager
def _locked(path):
    """An exclusive lock next to ``path`` (processes sharing one results file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_runs(path, cfg: dict) -> dict:
    stored = load_json(path, {}) or {}
    return stored.get("runs", {}) if stored.get("config") == cfg else {}


def _stored(path, cfg: dict, task: str, strategy: str, seed: int, variant: str) -> bool:
    with _locked(path):
        runs = _load_runs(path, cfg)
    return variant in runs.get(task, {}).get(strategy, {}).get(str(seed), {})


def _store(path, cfg, mode, task, strategy, seed, variant, run) -> None:
    with _locked(path):
        runs = _load_runs(path, cfg)
        runs.setdefault(task, {}).setdefault(strategy, {}).setdefault(str(seed), {})[variant] = run
        save_json(path, {"mode": mode, "config": cfg, "runs": runs})


def _score(v) -> float:
    return math.inf if v is None or not math.isfinite(float(v)) else float(v)


def curves(run: dict) -> tuple[list[float], list[float]]:
    """(best score after each ordinary trial, seconds at that trial)."""
    best, out, times = math.inf, [], []
    for row in run["log"]:
        if row["probe"]:
            continue
        best = min(best, _score(row["score"]))
        out.append(best)
        times.append(row["t"])
    return out, times


def trials_to_match(kt: dict, stock: dict) -> int | None:
    """First trial (1-based) where kt_lr's running best <= stock's final best."""
    target = curves(stock)[0][-1] if curves(stock)[0] else math.inf
    for i, v in enumerate(curves(kt)[0], 1):
        if v <= target * (1 + 1e-9):
            return i
    return None


def seconds_to_match(kt: dict, stock: dict) -> float | None:
    target = curves(stock)[0][-1] if curves(stock)[0] else math.inf
    best, times = curves(kt)
    for v, t in zip(best, times, strict=True):
        if v <= target * (1 + 1e-9):
            return t
    return None


def _median(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def _median_ttm(values: list[int | None]) -> float | None:
    """Median trials-to-match, a miss counting as infinitely many."""
    if not values:
        return None
    return float(np.median([math.inf if v is None else v for v in values]))


def summarize(runs: dict) -> dict:
    """Per task and strategy: final bests, trials/seconds to match, probe share."""
    out = {}
    for task, by_strategy in runs.items():
        for strategy, by_seed in by_strategy.items():
            pairs = [
                (r["stock"], r["kt_lr"]) for r in by_seed.values() if "stock" in r and "kt_lr" in r
            ]
            if not pairs:
                continue
            ttm = [trials_to_match(k, s) for s, k in pairs]
            stm = [seconds_to_match(k, s) for s, k in pairs]
            stock_final = [curves(s)[0][-1] for s, _ in pairs]
            kt_final = [curves(k)[0][-1] for _, k in pairs]
            n_trials = [len(curves(s)[0]) for s, _ in pairs]
            out[f"{task}/{strategy}"] = {
                "task": task,
                "strategy": strategy,
                "seeds": len(pairs),
                "trials": int(np.median(n_trials)),
                "stock_final_median": _median(stock_final),
                "kt_lr_final_median": _median(kt_final),
                "kt_lr_better_or_equal": sum(
                    k <= s for s, k in zip(stock_final, kt_final, strict=True)
                ),
                "trials_to_match": ttm,
                "trials_to_match_median": _median_ttm(ttm),
                "seconds_to_match_median": _median(stm),
                "stock_seconds_median": _median([s["seconds"] for s, _ in pairs]),
                "kt_lr_seconds_median": _median([k["seconds"] for _, k in pairs]),
                "probe_seconds_median": _median([k.get("probe_seconds") for _, k in pairs]),
                "stock_diverged_trials": int(
                    sum(
                        sum(1 for row in s["log"] if not math.isfinite(_score(row["score"])))
                        for s, _ in pairs
                    )
                ),
                "kt_lr_diverged_trials": int(
                    sum(
                        sum(
                            1
                            for row in k["log"]
                            if not row["probe"] and not math.isfinite(_score(row["score"]))
                        )
                        for _, k in pairs
                    )
                ),
            }
    return out


def table(summary: dict) -> tuple[list[str], list[list]]:
    headers = [
        "task / strategy",
        "trials",
        "seeds",
        "stock best (median)",
        "kt_lr best (median)",
        "kt_lr <= stock",
        "trials to match (median)",
        "per seed",
        "s to match (median)",
        "stock s",
        "kt_lr s",
        "probe s",
        "diverged trials stock / kt_lr",
    ]
    rows = []
    for key, s in summary.items():
        ttm = s["trials_to_match_median"]
        rows.append(
            [
                key,
                s["trials"],
                s["seeds"],
                s["stock_final_median"],
                s["kt_lr_final_median"],
                f"{s['kt_lr_better_or_equal']}/{s['seeds']}",
                "never" if ttm is not None and math.isinf(ttm) else ttm,
                ", ".join("-" if v is None else str(v) for v in s["trials_to_match"]),
                s["seconds_to_match_median"],
                s["stock_seconds_median"],
                s["kt_lr_seconds_median"],
                s["probe_seconds_median"],
                f"{s['stock_diverged_trials']} / {s['kt_lr_diverged_trials']}",
            ]
        )
    return headers, rows


def plot(runs: dict, path) -> None:
    """Anytime curves (median over seeds) per task x strategy, vs trial and vs seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(t, s) for t, by in runs.items() for s in by]
    if not keys:
        return
    fig, axes = plt.subplots(len(keys), 2, figsize=(10, 2.6 * len(keys)), squeeze=False)
    for row, (task, strategy) in enumerate(keys):
        for variant, color in (("stock", "tab:gray"), ("kt_lr", "tab:blue")):
            series = [curves(r[variant]) for r in runs[task][strategy].values() if variant in r]
            if not series:
                continue
            n = min(len(c) for c, _ in series)
            if n == 0:
                continue
            best = np.array([c[:n] for c, _ in series], dtype=float)
            secs = np.array([t[:n] for _, t in series], dtype=float)
            best = np.where(np.isfinite(best), best, np.nan)
            med = np.nanmedian(best, axis=0)
            x = np.arange(1, n + 1)
            axes[row, 0].plot(x, med, color=color, label=variant)
            axes[row, 0].fill_between(
                x, np.nanmin(best, axis=0), np.nanmax(best, axis=0), color=color, alpha=0.15
            )
            axes[row, 1].plot(np.median(secs, axis=0), med, color=color, label=variant)
        for ax in axes[row]:
            ax.set_yscale("log")
            ax.set_ylabel(f"{task}\n{strategy}\nbest val loss", fontsize=8)
        axes[row, 0].set_xlabel("trial")
        axes[row, 1].set_xlabel("seconds since search() (kt_lr: probe included)")
        axes[row, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def results_section(mode: str, cfg: dict, summary: dict, seconds: float, plot_name: str) -> str:
    headers, rows = table(summary)
    ttms = [s["trials_to_match_median"] for s in summary.values() if s["strategy"] != "hyperband"]
    met = [t is not None and t <= TARGET_TRIALS for t in ttms]
    hb = [s["trials_to_match_median"] for s in summary.values() if s["strategy"] == "hyperband"]
    hb_met = [t is not None and t <= TARGET_TRIALS for t in hb]
    probe_share = [
        s["probe_seconds_median"] / s["kt_lr_seconds_median"]
        for s in summary.values()
        if s["probe_seconds_median"] and s["kt_lr_seconds_median"]
    ]
    # issue 5's figure: the probe against a stock 20-trial search (random/bayesian rows,
    # stock time scaled from its own trial count)
    vs_stock20 = [
        s["probe_seconds_median"] / (s["stock_seconds_median"] * 20 / s["trials"])
        for s in summary.values()
        if s["strategy"] != "hyperband" and s["probe_seconds_median"] and s["stock_seconds_median"]
    ]
    lines = [
        f"Mode: **{mode}**; `python -m benchmarks.search{' --quick' if mode == 'quick' else ''}`; "
        f"up to {cfg['seeds']} seeds (the `seeds` column: how many ran both variants); "
        f"random/bayesian: {cfg['trials']} trials of {cfg['epochs']} epochs; "
        f"hyperband: max_epochs={cfg['hyperband_max_epochs']}, factor 3 (its own trial count). "
        f"Space: units {{16,32,64,128}}, layers 1-3, dropout 0-0.5, `learning_rate` 1e-6...1 (log); "
        "the task's optimizer and loss. Score = Keras Tuner's trial score (best val loss over "
        "the trial's epochs). Stock and kt_lr get the same tuner seed. The searches took "
        f"{seconds / 60:.1f} min in all (sum over processes) on the shared 2-core machine "
        "(TensorFlow on 1 thread; 2 search processes at once, at times beside other "
        "benchmarks or CI, so seconds are noisy).",
        "",
        "| figure | value | target | verdict |",
        "|---|---|---|---|",
        f"| random/bayesian searches where kt_lr matches stock's {cfg['trials']}-trial best within "
        f"{TARGET_TRIALS} trials (median over seeds) | {sum(met)}/{len(met)} | all | "
        f"**{'met' if met and all(met) else 'missed'}** |",
        *(
            [
                f"| hyperband searches where kt_lr matches stock's final best within "
                f"{TARGET_TRIALS} of Hyperband's trials (median over seeds) | "
                f"{sum(hb_met)}/{len(hb_met)} | all | "
                f"**{'met' if all(hb_met) else 'missed'}** |"
            ]
            if hb_met
            else []
        ),
        f"| probe time / kt_lr search time (median over task x strategy) | "
        f"{(np.median(probe_share) if probe_share else float('nan')):.1%} | <= 5% | "
        f"**{'met' if probe_share and np.median(probe_share) <= 0.05 else 'missed'}** |",
        f"| probe time / a stock 20-trial search's time (random/bayesian, median; worst) | "
        f"{(np.median(vs_stock20) if vs_stock20 else float('nan')):.1%}; "
        f"{(max(vs_stock20) if vs_stock20 else float('nan')):.1%} | <= 5% | "
        f"**{'met' if vs_stock20 and np.median(vs_stock20) <= 0.05 else 'missed'}** |",
        "",
        "Trials to match = first trial at which kt_lr's running best <= stock's final best with "
        "the same seed (`-` = never within the budget; medians count a miss as infinite). "
        "Hyperband rows count Hyperband's own trials (both variants run the same brackets).",
        "",
        common.md_table(headers, rows),
        "",
        f"Plot: `benchmarks/results/{plot_name}` (median anytime curve over seeds, band = "
        "min..max; right: against wall time, probe included).",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 task, 1 seed, 6 trials")
    parser.add_argument("--tasks", default=None, help="comma-separated task names")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--tuners", default=",".join(STRATEGIES))
    parser.add_argument(
        "--render", action="store_true", help="no search: summarise what the results file holds"
    )
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds from this one")
    parser.add_argument("--last-seed", type=int, default=None, help="... to this one")
    args = parser.parse_args(argv)
    common.setup()
    from benchmarks.tasks import get_tasks

    cfg = dict(QUICK if args.quick else FULL)
    if args.seeds:
        cfg["seeds"] = args.seeds
    mode = "quick" if args.quick else "full"
    strategies = [s.strip() for s in args.tuners.split(",") if s.strip()]
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise SystemExit(f"unknown tuner(s) {unknown}; known: {', '.join(STRATEGIES)}")
    tasks = get_tasks(args.tasks or (QUICK_TASKS if args.quick else FULL_TASKS))
    out_path = RESULTS / f"search{cfg['suffix']}.json"
    plot_name = f"search{cfg['suffix']}.png"
    seeds = range(args.first_seed, cfg["seeds"] if args.last_seed is None else args.last_seed + 1)
    start = time.perf_counter()
    datas = {t.name: t.make_data(0) for t in tasks}
    # seeds outermost: a run stopped early still covers every task x strategy. Finished
    # runs are merged into the results file under a lock, so that several processes
    # (--first-seed/--last-seed) can share the work and a stopped run resumes.
    for seed in [] if args.render else seeds:
        for task in tasks:
            for strategy in strategies:
                for variant in ("stock", "kt_lr"):
                    if _stored(out_path, cfg, task.name, strategy, seed, variant):
                        continue
                    run = run_search(task, datas[task.name], strategy, variant, seed, cfg)
                    _store(out_path, cfg, mode, task.name, strategy, seed, variant, run)
                    best = curves(run)[0]
                    log(
                        f"{task.name} {strategy} seed {seed} {variant}: best "
                        f"{best[-1] if best else math.nan:.4g} after {len(best)} trials, "
                        f"{run['seconds']:.0f} s"
                    )
    with _locked(out_path):
        stored = load_json(out_path, {}) or {}
    runs = stored.get("runs", {})
    names = {t.name for t in tasks}
    runs = {
        t: {s: v for s, v in by.items() if s in strategies} for t, by in runs.items() if t in names
    }
    seconds = sum(
        r.get("seconds", 0)
        for by in runs.values()
        for by_seed in by.values()
        for slot in by_seed.values()
        for r in slot.values()
    )
    summary = summarize(runs)
    with _locked(out_path):
        stored = load_json(out_path, {}) or {}
        stored.update(summary=summary, search_seconds=seconds)
        save_json(out_path, stored)
    plot(runs, RESULTS / plot_name)
    print(common.text_table(*table(summary)))
    common.update_results_md(
        f"Search efficiency{' (quick)' if args.quick else ''}",
        results_section(mode, cfg, summary, seconds, plot_name),
    )
    print(
        f"wrote {out_path}, {RESULTS / plot_name}; searches took {seconds / 60:.1f} min in "
        f"all, this process {(time.perf_counter() - start) / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
