"""Pure statistics of one-step loss differentials: intervals and best-LR rules.

``deltas`` is an array of shape ``(M subsamples, K learning rates)`` of
ΔL = L(after one step) − L(before). A non-finite entry means that step diverged:
such a column is "bad". Its mean, median and std are taken over its finite
entries (``nan`` if none), but its interval bounds are ``nan`` (undefined: at
least one subsample blew up) and it can never be chosen by a best-LR rule.

``measured`` (optional, boolean like ``deltas``) says which entries were measured at
all: the adaptive probe measures each subsample at a few LRs only. Unmeasured entries
are ignored (whatever they hold); each column's statistics are over its own measured
subsamples (``count``), and a column measured fewer than twice has no interval.
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
    check_measured,
    check_summary,
    check_whole,
)

__all__ = [
    "best_lr_rules",
    "bootstrap_interval",
    "project_interval",
    "summarize",
    "t_interval",
    "t_summary",
    "validate_confidence",
]


validate_confidence = check_confidence
"""``confidence`` as a float; ValueError unless ``0 < confidence < 1``
(:func:`kt_lr.validation.check_confidence`)."""


def _deltas_and_mask(deltas, measured) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(deltas as float 2-D, measured mask, finite column mask)``; at least two rows.

    A column is finite when every measured entry is finite and at least one is measured.
    """
    arr = check_deltas(deltas)
    mask = np.ones(arr.shape, dtype=bool) if measured is None else check_measured(measured, arr)
    finite = np.all(np.isfinite(arr) | ~mask, axis=0) & mask.any(axis=0)
    return arr, mask, finite


def _moments(arr, mask, finite):
    """``(count, mean, std ddof=1)`` per column over the measured entries of finite
    columns (numpy's mean and std when every entry is measured)."""
    n = mask.sum(axis=0)
    safe = np.where(mask & finite, arr, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=0) / np.maximum(n, 1)
        dev = np.where(mask, safe - mean, 0.0)
        std = np.sqrt((dev**2).sum(axis=0) / np.maximum(n - 1, 1))
    return n, mean, std


def _half_width(std, n, confidence):
    """The t-interval's half width ``t_{(1+c)/2, n-1} * std / sqrt(n)`` (``nan`` for n < 2)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = _st.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
        return np.where(n >= 2, t * std / np.sqrt(np.maximum(n, 1)), np.nan)


def t_interval(deltas, confidence: float = 0.95, measured=None) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean ΔL per column (``count - 1`` degrees of freedom).

    ``mean ± t_{(1+confidence)/2, n-1} * std(ddof=1) / sqrt(n)`` over each column's ``n``
    measured entries; columns with a non-finite entry (or fewer than two) get ``nan`` bounds.

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
        measured: which entries were measured (boolean, the shape of ``deltas``);
            ``None``: all of them.
    """
    confidence = check_confidence(confidence)
    arr, mask, finite = _deltas_and_mask(deltas, measured)
    n, mean, std = _moments(arr, mask, finite)
    half = _half_width(std, n, confidence)
    ok = finite & (n >= 2)
    return np.where(ok, mean - half, np.nan), np.where(ok, mean + half, np.nan)


def project_interval(summary: dict, count: int, confidence: float = 0.95, shift: float = 0.0):
    """The t-interval each column would have with ``count`` subsamples: ``(t_low, t_high)``.

    The spread is the column's ``std``; the centre its ``mean`` moved by ``shift`` times
    the standard deviation of the mean of ``count`` subsamples given the column's
    ``count`` (``summary["count"]``) measured ones, ``std * sqrt(count - n) / count``
    (0 when ``n >= count``): with ``shift`` = -z / +z the intervals are the most hopeful /
    most pessimistic ones at about z standard deviations. Where no such interval can move
    a rule's answer, the answer is settled.

    Args:
        summary: :func:`t_summary`'s statistics (``mean``, ``std``, ``t_low``; ``count``).
        count: the number of subsamples to project to (>= 2).
        confidence: the interval's level, strictly between 0 and 1.
        shift: how many standard deviations of the future mean to move the centre by.
    """
    confidence = check_confidence(confidence)
    count = max(int(count), 2)
    std = np.asarray(summary["std"], dtype=float)
    n = np.asarray(summary.get("count", np.full(std.shape, count)), dtype=float)
    centre = np.asarray(summary["mean"], dtype=float)
    centre = centre + float(shift) * std * np.sqrt(np.maximum(count - n, 0.0)) / count
    half = _half_width(std, count, confidence)
    ok = np.isfinite(np.asarray(summary["t_low"], dtype=float))
    return np.where(ok, centre - half, np.nan), np.where(ok, centre + half, np.nan)


def bootstrap_interval(
    deltas,
    confidence: float = 0.95,
    n_boot: int = 1000,
    rng: None | int | np.random.Generator = None,
    measured=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean ΔL per column.

    Each of the ``n_boot`` resamples draws ``M`` row indices with replacement
    (``rng.integers(0, M, size=(n_boot, M))``, one draw shared by all columns, so
    the columns of one resample stay paired); the bounds are the
    ``(1 ± confidence) / 2`` percentiles of the resampled means. ``rng`` is a seed
    or a ``np.random.Generator``; numpy's global state is never used. Columns with
    a non-finite entry get ``nan`` bounds. With ``measured``, the columns measured on
    the same subsamples are resampled together over those rows (one draw per group,
    groups in the order of their first column).

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
        n_boot: how many resamples (an integer >= 1).
        rng: a seed or a ``np.random.Generator`` (``None``: fresh entropy).
        measured: which entries were measured (boolean, the shape of ``deltas``);
            ``None``: all of them.
    """
    confidence = check_confidence(confidence)
    arr, mask, finite = _deltas_and_mask(deltas, measured)
    n_boot = check_whole("n_boot", n_boot, 1)
    gen = np.random.default_rng(rng)
    low = np.full(arr.shape[1], np.nan)
    high = np.full(arr.shape[1], np.nan)
    alpha = (1 - confidence) / 2
    patterns, group = np.unique(mask.T, axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    for g in sorted(range(len(patterns)), key=lambda g: int(np.argmax(group == g))):
        rows = np.flatnonzero(patterns[g])
        cols = np.flatnonzero(group == g)
        m = rows.size
        if m < 2:
            continue
        sub = np.where(finite[cols], arr[np.ix_(rows, cols)], 0.0)
        idx = gen.integers(0, m, size=(n_boot, m))
        # counts[b, i]: how often row i is in resample b; the resampled means are counts @ X / M
        counts = np.bincount((idx + m * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * m)
        means = counts.reshape(n_boot, m) @ sub / m
        low[cols], high[cols] = np.percentile(means, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return np.where(finite, low, np.nan), np.where(finite, high, np.nan)


def t_summary(deltas, confidence: float = 0.95, measured=None) -> dict[str, np.ndarray]:
    """:func:`summarize` without the bootstrap: ``mean``, ``median``, ``std``, ``t_low``,
    ``t_high``, ``finite`` and ``count`` (cheap enough to recompute after every chunk of
    subsamples).

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
        measured: which entries were measured (boolean, the shape of ``deltas``);
            ``None``: all of them.
    """
    arr, mask, finite = _deltas_and_mask(deltas, measured)
    ok = mask & np.isfinite(arr)
    clean = np.where(ok, arr, np.nan)
    n_ok = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(clean, axis=0)
        mean = np.where(n_ok > 0, total / np.maximum(n_ok, 1), np.nan)
        sq = np.nansum((clean - mean) ** 2, axis=0)
        std = np.where(n_ok > 1, np.sqrt(sq / np.maximum(n_ok - 1, 1)), np.nan)
    median = np.full(arr.shape[1], np.nan)
    for k in np.flatnonzero(n_ok):
        median[k] = np.median(arr[ok[:, k], k])
    t_low, t_high = t_interval(arr, confidence, measured=mask)
    return {
        "mean": mean,
        "median": median,
        "std": std,
        "t_low": t_low,
        "t_high": t_high,
        "finite": finite,
        "count": mask.sum(axis=0),
    }


def summarize(
    deltas,
    confidence: float = 0.95,
    n_boot: int = 1000,
    rng: None | int | np.random.Generator = None,
    measured=None,
) -> dict[str, np.ndarray]:
    """Per-column statistics of ΔL.

    Keys: ``mean``, ``median``, ``std`` (ddof=1) over each column's finite measured
    entries; ``t_low``/``t_high`` (:func:`t_interval`); ``boot_low``/``boot_high``
    (:func:`bootstrap_interval`); ``finite`` (True where every measured entry is
    finite); ``count`` (how many subsamples measured the column).

    Args:
        deltas: ΔL, shape ``(subsamples >= 2, learning rates)``.
        confidence: the interval's level, strictly between 0 and 1.
        n_boot: how many bootstrap resamples (an integer >= 1).
        rng: a seed or a ``np.random.Generator`` for the bootstrap.
        measured: which entries were measured (boolean, the shape of ``deltas``);
            ``None``: all of them.
    """
    out = t_summary(deltas, confidence, measured)
    boot_low, boot_high = bootstrap_interval(
        deltas, confidence, n_boot=n_boot, rng=rng, measured=measured
    )
    out.update(boot_low=boot_low, boot_high=boot_high)
    return out


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
