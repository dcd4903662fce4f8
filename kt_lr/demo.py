"""The main job: a search on the seed-001 synthetic time series, before and after kt_lr.

``kt-lr demo`` (or ``python -m kt_lr demo``) generates the series (trend +
seasonality + noise, window 20), runs the probes, and prints what they found.
"""

from __future__ import annotations

import os

import numpy as np

WINDOW = 20
SPLIT = 1000


def timeseries(seed: int = 42) -> np.ndarray:
    """Four years of daily values: baseline 10, trend 0.09/day, yearly season, noise 5."""
    time = np.arange(4 * 365 + 1, dtype="float32")
    season_time = (time % 365) / 365
    pattern = np.where(
        season_time < 0.4, np.cos(season_time * 2 * np.pi), 1 / np.exp(3 * season_time)
    )
    noise = np.random.RandomState(seed).randn(len(time)) * 5
    return (10 + 0.09 * time + 20 * pattern + noise).astype("float32")


def windows(series: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows: ``window`` past values -> the next value."""
    idx = np.arange(window)[None, :] + np.arange(len(series) - window)[:, None]
    return series[idx], series[window:, None]


def timeseries_data(seed: int = 42):
    """``(x_train, y_train, x_val, y_val)`` split at day 1000 as in the seed tutorial."""
    series = timeseries(seed)
    x_tr, y_tr = windows(series[:SPLIT])
    x_va, y_va = windows(series[SPLIT - WINDOW :])
    return x_tr, y_tr, x_va, y_va


def build_timeseries_model(learning_rate: float = 1e-3, units: int = 32, layers: int = 2, seed=0):
    """Dense net over a window, Adam, MSE loss and MAE metric."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((WINDOW,))])
    for i in range(layers):
        model.add(keras.layers.Dense(max(4, units // (2**i)), activation="relu"))
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    return model


def build_search_model(hp):
    """The demo's hypermodel: width, depth and a learning rate over 1e-6..1 (log)."""
    import keras

    units = hp.Choice("units", [16, 32, 64])
    layers = hp.Int("layers", 1, 3)
    lr = hp.Float("learning_rate", 1e-6, 1.0, sampling="log")
    model = keras.Sequential([keras.Input((WINDOW,))])
    for i in range(layers):
        model.add(keras.layers.Dense(max(4, units // (2**i)), activation="relu"))
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def _train(units, layers, lr, data, epochs, seed):
    """Train the demo model; ``lr`` is a float or a :class:`kt_lr.ScheduledLR`."""
    import time

    x, y, xv, yv = data
    schedule = getattr(lr, "schedule", lr)
    model = build_timeseries_model(schedule, units=units, layers=layers, seed=seed)
    callbacks = list(getattr(lr, "callbacks", []))
    t0 = time.perf_counter()
    hist = model.fit(
        x,
        y,
        validation_data=(xv, yv),
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=callbacks,
    )
    return hist.history, time.perf_counter() - t0


def _epochs_to(curve, target):
    hits = [i + 1 for i, v in enumerate(curve) if v <= target]
    return hits[0] if hits else None


def before_after(units, layers, rows, data, epochs, seeds=(0, 1)):
    """Train each ``(name, lr)`` in ``rows`` with ``seeds``; a DataFrame of medians."""
    import numpy as np
    import pandas as pd

    runs = {name: [_train(units, layers, lr, data, epochs, s) for s in seeds] for name, lr in rows}
    # target: the validation MSE the Keras default reaches at its last epoch
    base_name = rows[0][0]
    target = float(np.median([h["val_loss"][-1] for h, _ in runs[base_name]]))
    table = []
    for name, lr in rows:
        hs = runs[name]
        hit = [_epochs_to(h["val_loss"], target) for h, _ in hs]
        shown = getattr(lr, "kind", None)
        table.append(
            {
                "run": name,
                "learning_rate": f"{lr:.3g}"
                if shown is None
                else f"{shown}, peak {float(getattr(lr.schedule, 'max_lr', np.nan)):.3g}",
                "final_val_mse": float(np.median([h["val_loss"][-1] for h, _ in hs])),
                "final_val_mae": float(np.median([h["val_mae"][-1] for h, _ in hs])),
                "best_val_mse": float(np.median([min(h["val_loss"]) for h, _ in hs])),
                "epochs_to_target": None if None in hit else float(np.median(hit)),
                "wall_time_s": float(np.median([t for _, t in hs])),
            }
        )
    curves = {name: runs[name][0][0]["val_loss"] for name, _ in rows}
    return pd.DataFrame(table), target, curves


def plot_flow(finding, trials, report, path):
    """The README picture, one story: what the search's probe saw, the interval it
    narrowed the search to, and where the search's trials went (its best one marked).

    Args:
        finding: the search's own probe finding (an :class:`kt_lr.LRFinding`).
        trials: ``(lr, val MSE, seeded?)`` of every finished trial.
        report: the search's :class:`kt_lr.LRReport`.
        path: where to save the PNG.

    Returns:
        The matplotlib ``Figure``.
    """
    import numpy as np
    from matplotlib.figure import Figure

    from kt_lr.plot import log_y_if_spread, place_legend, plot_finding

    lo0, hi0 = report.original_interval
    lo, hi = report.interval
    lrs = np.array([t[0] for t in trials], dtype=float)
    scores = np.array([t[1] for t in trials], dtype=float)
    seeded = np.array([t[2] for t in trials], dtype=bool)
    best = int(np.nanargmin(scores))
    fig = Figure(figsize=(21, 5.2), layout="constrained")
    axes = fig.subplots(1, 3)
    plot_finding(finding, axes=axes[:2], interval=(lo, hi), interval_label="searched")
    ax = axes[2]
    ax.axvspan(lo0, hi0, color="0.92", label=f"your range [{lo0:.0e}, {hi0:.0g}]")
    ax.axvspan(lo, hi, color="C1", alpha=0.15, label=f"searched [{lo:.2g}, {hi:.2g}]")
    ax.axvline(finding.lr, color="k", lw=2, label=f"kt_lr's pick {finding.lr:.2g}")
    ax.scatter(lrs[seeded], scores[seeded], marker="*", s=140, label="seeded trials", zorder=3)
    ax.scatter(lrs[~seeded], scores[~seeded], marker="o", label="other trials", zorder=3)
    ax.scatter(
        [lrs[best]],
        [scores[best]],
        s=420,
        facecolors="none",
        edgecolors="C3",
        linewidths=2,
        label=f"the search's pick: lr {lrs[best]:.2g}, val MSE {scores[best]:.3g}",
        zorder=4,
    )
    for other in axes[:2]:  # the search's pick on the probes' curves too
        other.axvline(
            lrs[best], color="C3", lw=1.5, ls="--", label=f"search's pick {lrs[best]:.2g}"
        )
        place_legend(other)
    ax.set_xscale("log")
    ax.set_xlim(lo0, hi0)
    log_y_if_spread(ax, scores)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("trial val MSE")
    ax.set_title("The search: its trials inside the narrowed interval")
    place_legend(ax)
    fig.suptitle(
        f"kt_lr demo: the probe picks {finding.lr:.2g} and narrows the search to "
        f"[{lo:.2g}, {hi:.2g}]; the search's best trial trains at {lrs[best]:.2g}"
    )
    fig.savefig(path, dpi=90)
    return fig


def _plot_curves(curves, target, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for name, c in curves.items():
        ax.plot(range(1, len(c) + 1), c, label=name)
    ax.axhline(target, color="grey", ls=":", label=f"target {target:.1f}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation MSE")
    ax.set_title("Time series: validation MSE, before and after kt_lr")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def add_arguments(parser) -> None:
    """The demo's options, on an ``argparse`` parser (``kt-lr demo --help``)."""
    parser.add_argument(
        "--output", default="kt_lr_demo_output", help="folder for the plots and tables"
    )
    parser.add_argument(
        "--trials", type=int, default=6, help="search trials, the probe not counted (default 6)"
    )
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")


def _probe_finding(report):
    """The finding of the search's probe, read back from its ``finding.json``."""
    import json

    from kt_lr.results import LRFinding

    probe = next(iter(report.probes.values()))
    with open(os.path.join(probe.artifacts, "finding.json")) as fh:
        return LRFinding.from_dict(json.load(fh)["finding"])


def main(argv: list[str] | None = None) -> int:
    """Run the demo with command-line ``argv``; returns a process exit code."""
    import argparse

    parser = argparse.ArgumentParser(prog="kt-lr demo", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args) -> int:
    """Run the demo search with parsed ``args`` (see :func:`add_arguments`); the exit code."""
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import kt_lr

    t_start = time.perf_counter()
    os.makedirs(args.output, exist_ok=True)
    data = x, y, xv, yv = timeseries_data()
    print(f"kt_lr demo: synthetic time series, {len(x)} training windows of {WINDOW} days")
    print(f"search: units x layers x learning_rate (1e-6..1, log), {args.trials} trials, ")
    print(f"        {args.epochs} epochs each; the first trial is kt_lr's probe\n")

    class Progress(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            print(
                f"  trial done: lr={lr:.3g}  val_loss={(logs or {}).get('val_loss', float('nan')):.2f}"
            )

    tuner = kt_lr.RandomSearch(
        build_search_model,
        objective="val_loss",
        max_trials=args.trials,
        seed=args.seed,
        directory=args.output,
        project_name="search",
        overwrite=True,
        probe_options={"verbose": 0},
    )
    t0 = time.perf_counter()
    tuner.search(
        x,
        y,
        validation_data=(xv, yv),
        epochs=args.epochs,
        batch_size=32,
        verbose=0,
        callbacks=[Progress()],
    )
    search_time = time.perf_counter() - t0
    report = tuner.lr_report()
    print("\n" + report.summary())
    best = tuner.get_best_hyperparameters(1)[0].values
    print(f"\nbest trial: {best}  ({search_time:.0f} s of search, probe included)")
    seeded_ids = {s.get("trial_id") for s in report.seeds}
    trials = [
        (t.hyperparameters.values["learning_rate"], t.score, t.trial_id in seeded_ids)
        for t in tuner.oracle.trials.values()
        if t.score is not None
    ]
    # the pick alone (no search), on the best architecture, and a one-cycle schedule from it
    arch = build_timeseries_model(1e-3, units=best["units"], layers=best["layers"])
    finding = kt_lr.find_lr(arch, x, y, seed=args.seed, verbose=0, epochs=args.epochs)
    one_cycle = kt_lr.schedule_from(
        finding, "one_cycle", steps_per_epoch=-(-len(x) // 32), epochs=args.epochs
    )
    try:  # the flow picture tells the search's own story: its probe, its interval, its trials
        plot_flow(_probe_finding(report), trials, report, os.path.join(args.output, "flow.png"))
        report.plot().savefig(os.path.join(args.output, "probe.png"), dpi=100)
    except ImportError as err:
        print(err)
    rows = [
        ("Keras default (Adam 1e-3)", 1e-3),
        ("kt_lr.find_lr pick (no search)", finding.lr),
        ("kt_lr search best", float(best["learning_rate"])),
        ("kt_lr one-cycle (schedule_from)", one_cycle),
    ]
    table, target, curves = before_after(best["units"], best["layers"], rows, data, args.epochs)
    table.to_csv(os.path.join(args.output, "before_after.csv"), index=False)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.precision", 3):
        print(
            f"\nbefore/after on the best architecture ({best['units']} units, {best['layers']} "
            f"layers), median of 2 seeds, {args.epochs} epochs; target = the default's final "
            "val MSE:"
        )
        print(table.to_string(index=False))
    try:
        _plot_curves(curves, target, os.path.join(args.output, "before_after.png"))
    except ImportError as err:
        print(err)
    print(
        f"\noutputs in {os.path.abspath(args.output)} (flow.png, probe.png, before_after.png/.csv)"
    )
    print(f"demo wall time: {time.perf_counter() - t_start:.0f} s")
    return 0
