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

from kt_lr.validation import (
    check_1d,
    check_confidence,
    check_deltas,
    check_increasing,
    check_summary,
    check_whole,
)

__all__ = [
    "best_lr_rules",
    "bootstrap_interval",
    "summarize",
    "t_interval",
    "validate_confidence",
]


validate_confidence = check_confidence
"""``confidence`` as a float; ValueError unless ``0 < confidence < 1``
(:func:`kt_lr.validation.check_confidence`)."""


def _deltas_and_finite(deltas) -> tuple[np.ndarray, np.ndarray]:
    """``(deltas as float 2-D, finite column mask)``; needs at least two rows."""
    arr = check_deltas(deltas)
    return arr, np.all(np.isfinite(arr), axis=0)


def t_interval(deltas, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean ΔL per column (``M - 1`` degrees of freedom).

    ``mean ± t_{(1+confidence)/2, M-1} * std(ddof=1) / sqrt(M)``; columns with a
    non-finite entry get ``nan`` bounds.

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
    """
    confidence = check_confidence(confidence)
    arr, finite = _deltas_and_finite(deltas)
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

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
        n_boot: how many resamples (an integer >= 1).
        rng: a seed or a ``np.random.Generator`` (``None``: fresh entropy).
    """
    confidence = check_confidence(confidence)
    arr, finite = _deltas_and_finite(deltas)
    n_boot = check_whole("n_boot", n_boot, 1)
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

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
        n_boot: how many bootstrap resamples (an integer >= 1).
        rng: a seed or a ``np.random.Generator`` for the bootstrap.
    """
    arr, finite = _deltas_and_finite(deltas)
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

    Args:
        lrs: the learning rates of the columns (1-D, strictly increasing).
        summary: the statistics of :func:`summarize` (at least ``mean``, ``median``,
            ``t_low`` and ``t_high``, one value per LR).
    """
    grid = check_1d(lrs, "lrs")
    check_increasing(
        grid,
        "the rules walk the grid from small to large: sort the LRs and the summary "
        "columns together",
    )
    cols = check_summary(summary, grid, ("mean", "median", "t_low", "t_high"))
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
