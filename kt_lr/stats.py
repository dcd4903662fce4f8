"""Pure statistics of one-step loss differentials: intervals and best-LR rules.

``deltas`` is an array of shape ``(M subsamples, K learning rates)`` of
ΔL = L(after one step) − L(before). A non-finite entry means that step diverged:
such a column is "bad". Its mean, median and std are taken over its finite
entries (``nan`` if none), but its interval bounds are ``nan`` (undefined: at
least one subsample blew up) and it can never be chosen by a best-LR rule.
No Keras, no global random state.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _st

__all__ = [
    "best_lr_rules",
    "bootstrap_interval",
    "summarize",
    "t_interval",
    "validate_confidence",
]


def validate_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float; ValueError unless ``0 < confidence < 1``."""
    if isinstance(confidence, bool) or not isinstance(confidence, int | float | np.number):
        raise ValueError(
            f"confidence must be a number strictly between 0 and 1, got {confidence!r}; "
            "e.g. confidence=0.95."
        )
    if not 0 < confidence < 1:
        raise ValueError(
            f"confidence must be strictly between 0 and 1, got {confidence!r}; "
            "e.g. confidence=0.95 for a 95% interval."
        )
    return float(confidence)


def _check_deltas(deltas) -> tuple[np.ndarray, np.ndarray]:
    """``(deltas as float 2-D, finite column mask)``; needs at least two rows."""
    arr = np.asarray(deltas, dtype=float)
    if arr.ndim != 2:
        raise ValueError(
            f"deltas must be 2-D (num_subsamples, num_lrs), got shape {arr.shape}; "
            "for a single LR pass deltas[:, None]."
        )
    if arr.shape[0] < 2:
        raise ValueError(
            f"deltas needs at least 2 subsamples (rows) for an interval, got {arr.shape[0]}; "
            "use num_subsamples >= 2."
        )
    return arr, np.all(np.isfinite(arr), axis=0)


def t_interval(deltas, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean ΔL per column (``M - 1`` degrees of freedom).

    ``mean ± t_{(1+confidence)/2, M-1} * std(ddof=1) / sqrt(M)``; columns with a
    non-finite entry get ``nan`` bounds.
    """
    confidence = validate_confidence(confidence)
    arr, finite = _check_deltas(deltas)
    m = arr.shape[0]
    safe = np.where(finite, arr, 0.0)
    mean = safe.mean(axis=0)
    half = _st.t.ppf(0.5 + confidence / 2, m - 1) * safe.std(axis=0, ddof=1) / np.sqrt(m)
    return np.where(finite, mean - half, np.nan), np.where(finite, mean + half, np.nan)


def bootstrap_interval(
    deltas,
    confidence: float = 0.95,
    n_boot: int = 1000,
    rng: None | int | np.random.Generator = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean ΔL per column.

    Each of the ``n_boot`` resamples draws ``M`` row indices with replacement
    (``rng.integers(0, M, size=(n_boot, M))``, one draw shared by all columns, so
    the columns of one resample stay paired); the bounds are the
    ``(1 ± confidence) / 2`` percentiles of the resampled means. ``rng`` is a seed
    or a ``np.random.Generator``; numpy's global state is never used. Columns with
    a non-finite entry get ``nan`` bounds.
    """
    confidence = validate_confidence(confidence)
    arr, finite = _check_deltas(deltas)
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}; e.g. 1000.")
    n_boot = int(n_boot)
    gen = np.random.default_rng(rng)
    m = arr.shape[0]
    idx = gen.integers(0, m, size=(n_boot, m))
    # counts[b, i]: how often row i is in resample b; the resampled means are counts @ X / M
    counts = np.bincount((idx + m * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * m)
    means = counts.reshape(n_boot, m) @ np.where(finite, arr, 0.0) / m
    alpha = (1 - confidence) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return np.where(finite, low, np.nan), np.where(finite, high, np.nan)


def summarize(
    deltas,
    confidence: float = 0.95,
    n_boot: int = 1000,
    rng: None | int | np.random.Generator = None,
) -> dict[str, np.ndarray]:
    """Per-column statistics of ΔL.

    Keys: ``mean``, ``median``, ``std`` (ddof=1) over each column's finite entries;
    ``t_low``/``t_high`` (:func:`t_interval`); ``boot_low``/``boot_high``
    (:func:`bootstrap_interval`); ``finite`` (True where every entry is finite).
    """
    arr, finite = _check_deltas(deltas)
    clean = np.where(np.isfinite(arr), arr, np.nan)
    n_ok = np.sum(np.isfinite(arr), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(clean, axis=0)
        mean = np.where(n_ok > 0, total / np.maximum(n_ok, 1), np.nan)
        sq = np.nansum((clean - mean) ** 2, axis=0)
        std = np.where(n_ok > 1, np.sqrt(sq / np.maximum(n_ok - 1, 1)), np.nan)
    median = np.full(arr.shape[1], np.nan)
    for k in np.flatnonzero(n_ok):
        median[k] = np.median(arr[np.isfinite(arr[:, k]), k])
    t_low, t_high = t_interval(arr, confidence)
    boot_low, boot_high = bootstrap_interval(arr, confidence, n_boot=n_boot, rng=rng)
    return {
        "mean": mean,
        "median": median,
        "std": std,
        "t_low": t_low,
        "t_high": t_high,
        "boot_low": boot_low,
        "boot_high": boot_high,
        "finite": finite,
    }


def best_lr_rules(lrs, summary: dict) -> dict[str, float | None]:
    """The best LR by four rules over the eligible LRs.

    Eligible: the column is all finite (``summary["finite"]`` when present) and its
    ``mean``, ``median``, ``t_low`` and ``t_high`` are finite.

    - ``lowest_mean`` / ``lowest_median``: LR of the lowest mean / median ΔL;
    - ``lowest_upper``: LR of the lowest upper t-bound (``t_high``);
    - ``largest_negative``: the largest LR whose whole t-interval is below zero
      (``t_high < 0``) within the run of consecutive eligible LRs with ``t_high < 0``
      that contains the ``lowest_upper`` LR, so an isolated noisy LR beyond a
      positive or diverging region is not picked.

    Ties go to the smaller LR. A rule with no answer gives ``None``.
    """
    grid = np.asarray(lrs, dtype=float)
    if grid.ndim != 1:
        raise ValueError(f"lrs must be a 1-D array, got shape {grid.shape}.")
    if np.any(np.diff(grid) <= 0):
        raise ValueError(
            "lrs must be strictly increasing (the rules walk the grid from small to large); "
            "sort the LRs and the summary columns together."
        )
    missing = [k for k in ("mean", "median", "t_low", "t_high") if k not in summary]
    if missing:
        raise ValueError(f"summary is missing {missing}; build it with summarize(deltas).")
    cols = {k: np.asarray(summary[k], dtype=float) for k in ("mean", "median", "t_low", "t_high")}
    for name, col in cols.items():
        if col.shape != grid.shape:
            raise ValueError(
                f"summary[{name!r}] has shape {col.shape} but lrs has {grid.shape}; "
                "pass the LR grid the deltas were measured on."
            )
    ok = np.all([np.isfinite(c) for c in cols.values()], axis=0)
    if "finite" in summary:
        ok &= np.asarray(summary["finite"], dtype=bool)

    def arg_lowest(values: np.ndarray) -> int | None:
        if not ok.any():
            return None
        return int(np.argmin(np.where(ok, values, np.inf)))

    out: dict[str, float | None] = {}
    for rule, key in (
        ("lowest_mean", "mean"),
        ("lowest_median", "median"),
        ("lowest_upper", "t_high"),
    ):
        i = arg_lowest(cols[key])
        out[rule] = None if i is None else float(grid[i])
    i = arg_lowest(cols["t_high"])
    out["largest_negative"] = None
    if i is not None and cols["t_high"][i] < 0:
        below = ok & (cols["t_high"] < 0)
        while i + 1 < grid.size and below[i + 1]:
            i += 1
        out["largest_negative"] = float(grid[i])
    return out
