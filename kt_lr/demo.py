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


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns a process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import kt_lr

    x, y, xv, yv = timeseries_data()
    model = build_timeseries_model()
    finding = kt_lr.find_lr(model, x, y, seed=0, verbose=1)
    print(finding.summary())
    return 0
