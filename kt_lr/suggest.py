"""Pure range-test curve logic: smoothing, divergence and LR heuristics.

Everything here takes plain arrays: ``lrs`` (1-D, finite, positive, strictly
increasing) and ``losses`` (same length; the tail may be ``nan``/``inf`` where the
sweep diverged). No Keras, no global state.

How the heuristics read a curve (one shared pipeline, :func:`prepare_curve`):

1. cut at the first non-finite loss;
2. :func:`despike` the raw losses (a Hampel filter: a point far from the median of
   its neighbours, in units of their median absolute deviation, is replaced by
   that median), so one freak mini-batch cannot move an answer;
3. cut at the divergence point: :func:`divergence_index` of a 5-point running
   median of the despiked losses;
4. smooth what is left with :func:`savgol_smooth` (zero lag). The bias-corrected
   EMA (:func:`ema_smooth`) is what a range test shows and can stop on, but it
   lags by about ``1 / (1 - beta)`` steps, which would drag every minimum-based
   answer towards larger LRs, so the heuristics do not use it.

A curve "has no descent" when its smoothed loss never falls more than
``MIN_RELATIVE_DROP`` (1%) of its largest absolute value, or more than
``NOISE_SIGMAS`` (4) times the per-step noise, below its first value; then every
heuristic returns ``None``. The noise is the robust standard deviation (1.4826 x
median absolute deviation) of the despiked losses around the smoothed curve; the
4-sigma bar keeps a flat but noisy plateau from producing answers (a pure-noise
plateau of 100 steps falls about 1.6 sigma below its start, rarely more than 4).
Curves with fewer than ``MIN_POINTS`` usable points also give ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

from kt_lr import validation

__all__ = [
    "HEURISTICS",
    "MIN_POINTS",
    "MIN_RELATIVE_DROP",
    "NOISE_SIGMAS",
    "Suggestion",
    "despike",
    "divergence_index",
    "ema_smooth",
    "interval_from_curve",
    "minimum_div10",
    "prepare_curve",
    "savgol_smooth",
    "slide",
    "steepest",
    "suggest_all",
    "valley",
]

MIN_POINTS = 5
"""Fewest usable (finite, pre-divergence) points a heuristic needs."""

MIN_RELATIVE_DROP = 0.01
"""A smoothed curve must fall this fraction of its largest |value| below its start."""

NOISE_SIGMAS = 4.0
"""...and this many standard deviations of the per-step loss noise below its start."""


@dataclass(frozen=True)
class Suggestion:
    """One heuristic's answer: its ``name``, the ``lr``, the ``index`` of the grid
    point nearest to ``lr`` (in log space) and a plain-English ``reason``."""

    name: str
    lr: float
    index: int
    reason: str


def _first_nonfinite(values: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else int(values.size)


def _nearest_index(lrs: np.ndarray, lr: float) -> int:
    return int(np.argmin(np.abs(np.log(lrs) - np.log(lr))))


def _has_descent(curve: np.ndarray, raw: np.ndarray | None = None) -> bool:
    """Whether ``curve`` falls clearly below its start (see the module docstring)."""
    if curve.size < MIN_POINTS:
        return False
    drop = float(curve[0] - np.min(curve))
    scale = float(np.max(np.abs(curve)))
    if not (scale > 0 and drop > MIN_RELATIVE_DROP * scale):
        return False
    if raw is None:
        return True
    resid = raw - curve
    sigma = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return drop > NOISE_SIGMAS * sigma


# ------------------------------------------------------------------------ smoothing


def ema_smooth(losses, beta: float = 0.98) -> np.ndarray:
    """Bias-corrected exponential moving average of ``losses``.

    ``avg_i = beta * avg_{i-1} + (1 - beta) * x_i`` (``avg_{-1} = 0``) and
    ``out_i = avg_i / (1 - beta ** (i + 1))``. Once an input is non-finite the
    average is meaningless, so that output and every later one is ``nan``.

    Args:
        losses: the losses, 1-D.
        beta: the averaging factor, in ``[0, 1)``.
    """
    x = validation.check_1d(losses, "losses")
    beta = validation.check_smoothing("beta", beta)
    out = np.full(x.shape, np.nan)
    avg = 0.0
    for i in range(_first_nonfinite(x)):
        avg = beta * avg + (1.0 - beta) * x[i]
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def _auto_window(n: int, polyorder: int, divisor: int) -> int:
    """Odd window of about ``n / divisor``, at least ``polyorder + 2``, at most ``n``."""
    window = max(polyorder + 2, int(round(n / divisor)))
    window += 1 - window % 2
    if window > n:
        window = n if n % 2 else n - 1
    return window


def savgol_smooth(values, window: int | None = None, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing (``scipy.signal.savgol_filter``, ``mode="interp"``).

    ``window=None`` picks an odd window of about ``len / 10`` points, at least
    ``polyorder + 2`` and at most ``len``; a curve too short for any window
    (``len <= polyorder``) is returned as a copy. ``values`` must be finite.
    A polynomial of degree ``<= polyorder`` comes back unchanged.

    Args:
        values: the curve, 1-D and finite.
        window: an odd window length with ``polyorder < window <= len(values)``, or
            ``None`` to choose it from the length.
        polyorder: the degree of the local polynomials (an integer >= 0).
    """
    x = validation.check_1d(values, "values")
    validation.check_finite(x)
    polyorder = validation.check_whole("polyorder", polyorder, 0)
    n = x.size
    if window is None:
        window = _auto_window(n, polyorder, 10)
        if window <= polyorder:
            return x.copy()
    else:
        window = validation.check_savgol_window(window, polyorder, n)
    return savgol_filter(x, window, polyorder, mode="interp")


def despike(values, half_window: int = 3, n_sigmas: float = 3.0) -> np.ndarray:
    """Replace isolated outliers with the median of their neighbourhood (Hampel filter).

    Point ``i`` is compared with the median ``m`` and the median absolute deviation
    ``mad`` of ``values[i - half_window : i + half_window + 1]`` (cut at the left
    edge); it is replaced by ``m`` when ``|x_i - m| > n_sigmas * 1.4826 * mad``.
    The last ``half_window`` points are left alone: without points to their right
    a jump there cannot be told from the start of a divergence. ``values`` must
    be finite; arrays shorter than ``2 * half_window + 1`` come back as a copy.

    Args:
        values: the curve, 1-D and finite.
        half_window: neighbours on each side that a point is compared with (>= 1).
        n_sigmas: how many robust standard deviations make a spike (> 0).
    """
    x = validation.check_1d(values, "values")
    validation.check_finite(x)
    h = validation.check_whole("half_window", half_window, 1)
    n_sigmas = validation.check_positive_float("n_sigmas", n_sigmas)
    if x.size < 2 * h + 1:
        return x.copy()
    padded = np.concatenate([np.full(h, np.nan), x, np.full(h, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1)
    med = np.nanmedian(windows, axis=1)
    mad = np.nanmedian(np.abs(windows - med[:, None]), axis=1)
    scale = np.maximum(1.4826 * mad, 1e-12 * np.maximum(np.abs(med), 1.0))
    spike = np.abs(x - med) > n_sigmas * scale
    spike[x.size - h :] = False
    return np.where(spike, med, x)


def divergence_index(smoothed, diverge_factor: float = 4.0) -> int | None:
    """First index where the curve is non-finite or exceeds ``diverge_factor`` times
    its running minimum (the lowest value from index 0 up to that point).

    A curve that starts at its minimum and only rises still diverges once it passes
    ``diverge_factor * smoothed[0]``. The ratio test assumes positive losses: while
    the running minimum is ``<= 0`` only non-finite values count. ``None`` if the
    curve never diverges.

    Args:
        smoothed: the (smoothed) loss curve, 1-D.
        diverge_factor: how many times its running minimum counts as divergence (a
            finite number > 1).
    """
    x = validation.check_1d(smoothed, "smoothed")
    factor = validation.check_diverge_factor(diverge_factor)
    n_fin = _first_nonfinite(x)
    if n_fin:
        run_min = np.minimum.accumulate(x[:n_fin])
        over = np.flatnonzero((run_min > 0) & (x[:n_fin] > factor * run_min))
        if over.size:
            return int(over[0])
    return n_fin if n_fin < x.size else None


def prepare_curve(
    lrs, losses, diverge_factor: float = 4.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heuristics' view of a curve: ``(lrs, despiked losses, smoothed)``, all cut
    before the first non-finite loss and before the divergence point (see the
    module docstring). The arrays may be shorter than ``MIN_POINTS``.

    Args:
        lrs: the learning rates of the sweep (1-D, finite, positive, increasing).
        losses: the loss at every LR (same length; the tail may be nan/inf).
        diverge_factor: the curve is cut where its running median exceeds this many
            times its running minimum (a finite number > 1).
    """
    lrs, losses = validation.check_curve(lrs, losses)
    factor = validation.check_diverge_factor(diverge_factor)
    n = _first_nonfinite(losses)
    clean = despike(losses[:n])
    if n:
        cut = divergence_index(median_filter(clean, size=5, mode="nearest"), factor)
        n = n if cut is None else cut
    clean = clean[:n]
    return lrs[:n], clean, savgol_smooth(clean) if n else clean


# ----------------------------------------------------------------------- heuristics


def _make(name: str, lrs: np.ndarray, lr: float, reason: str) -> Suggestion:
    lr = float(np.clip(lr, lrs[0], lrs[-1]))
    return Suggestion(name=name, lr=lr, index=_nearest_index(lrs, lr), reason=reason)


def steepest(lrs, losses, *, diverge_factor: float = 4.0) -> Suggestion | None:
    """LR of the steepest descent: argmin of d(smoothed loss)/d(log lr).

    A derivative amplifies noise, so it is taken of a wider Savitzky-Golay fit than
    the other heuristics use: a window of about a quarter of the usable points
    instead of a tenth (less run-to-run spread of the answer on noisy curves). The
    first and last ~5% of the usable points (at least one each) are ignored because
    the smoothing is least reliable at the edges.
    ``None`` when the curve has no descent or fewer than ``MIN_POINTS`` usable points.

    Args:
        lrs, losses, diverge_factor: the curve and where it is cut, as for
            :func:`prepare_curve`.
    """
    return _steepest(*prepare_curve(lrs, losses, diverge_factor))


def _steepest(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> Suggestion | None:
    if not _has_descent(c, y):
        return None
    wide = savgol_smooth(y, window=_auto_window(y.size, 2, 4))
    grad = np.gradient(wide, np.log(x))
    skip = max(1, int(round(0.05 * c.size)))
    inner = grad[skip : c.size - skip]
    if inner.size == 0 or inner.min() >= 0:
        return None
    i = skip + int(np.argmin(inner))
    return _make(
        "steepest",
        x,
        x[i],
        f"steepest descent of the Savitzky-Golay-smoothed loss at {x[i]:.1e}",
    )


def _longest_decreasing(c: np.ndarray) -> tuple[int, int]:
    """Start and end index of a longest strictly decreasing subsequence of ``c``.

    Among equally long ones: the one ending lowest, then the one starting first.
    """
    length = np.ones(c.size, dtype=int)
    start = np.arange(c.size)
    for i in range(1, c.size):
        before = np.flatnonzero(c[:i] > c[i])
        if before.size:
            j = before[np.argmax(length[before])]
            length[i] = length[j] + 1
            start[i] = start[j]
    longest = np.flatnonzero(length == length.max())
    end = int(longest[np.argmin(c[longest])])
    return int(start[end]), end


def valley(lrs, losses, *, diverge_factor: float = 4.0) -> Suggestion | None:
    """The "valley": two thirds of the way down the longest descent of the smoothed loss.

    The descent is a longest strictly decreasing *subsequence* of the smoothed curve
    (small wiggles left by noise skip points instead of breaking the run); the
    answer is the first point of that span whose loss has covered 2/3 of the
    span's drop, measured in loss, so it does not depend on where the sweep began.
    ``None`` when the curve has no descent.

    Args:
        lrs, losses, diverge_factor: the curve and where it is cut, as for
            :func:`prepare_curve`.
    """
    return _valley(*prepare_curve(lrs, losses, diverge_factor))


def _valley(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> Suggestion | None:
    if not _has_descent(c, y):
        return None
    start, end = _longest_decreasing(c)
    if end <= start:
        return None
    level = c[start] - (2.0 / 3.0) * (c[start] - c[end])
    i = start + int(np.argmax(c[start : end + 1] <= level))
    return _make(
        "valley",
        x,
        x[i],
        f"two thirds of the way down the longest descent of the smoothed loss "
        f"({x[start]:.1e} to {x[end]:.1e}) at {x[i]:.1e}",
    )


def minimum_div10(lrs, losses, *, diverge_factor: float = 4.0) -> Suggestion | None:
    """The "min/10" rule: the LR at the minimum of the smoothed loss divided by 10.

    Clipped to ``lrs[0]``. ``None`` when the minimum is the first point (no descent).

    Args:
        lrs, losses, diverge_factor: the curve and where it is cut, as for
            :func:`prepare_curve`.
    """
    return _minimum_div10(*prepare_curve(lrs, losses, diverge_factor))


def _minimum_div10(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> Suggestion | None:
    if not _has_descent(c, y):
        return None
    i = int(np.argmin(c))
    if i == 0:
        return None
    return _make(
        "min/10",
        x,
        x[i] / 10.0,
        f"a tenth of {x[i]:.1e}, where the smoothed loss is lowest",
    )


def slide(
    lrs,
    losses,
    lr_diff: int = 15,
    thresh: float = 0.005,
    adjust_value: float = 1.0,
    *,
    diverge_factor: float = 4.0,
) -> Suggestion | None:
    """The largest LR at which the loss is still clearly falling, found walking back
    from the divergence point.

    With ``c`` the smoothed usable curve, ``scale = max(c) - min(c)`` its range and
    ``d = min(lr_diff, len(c) - 1)``, step ``i`` is "still falling" when the window
    of ``d`` steps ending there falls by at least ``thresh`` of ``scale`` per step,
    ``c[i - d] - c[i] >= thresh * scale * d``, and has not turned up yet,
    ``c[i] <= min(c[i - d : i + 1]) + thresh * scale``. Starting at the last usable
    point, step left until a step is still falling; that LR, times ``adjust_value``
    and clipped to the usable LR range, is the answer. ``None`` when no step
    qualifies. (Our own rule; with ``thresh=0.005`` over 15 steps the window must
    fall by 7.5% of the loss range.)

    Args:
        lrs, losses, diverge_factor: the curve and where it is cut, as for
            :func:`prepare_curve`.
        lr_diff: the window, in steps (an integer >= 1).
        thresh: the fall per step, as a fraction of the loss range (>= 0).
        adjust_value: the answer is multiplied by this (> 0).
    """
    lr_diff = validation.check_whole("lr_diff", lr_diff, 1)
    thresh = validation.check_nonnegative_float("thresh", thresh)
    adjust_value = validation.check_positive_float("adjust_value", adjust_value)
    return _slide(*prepare_curve(lrs, losses, diverge_factor), lr_diff, thresh, adjust_value)


def _slide(
    x: np.ndarray, y: np.ndarray, c: np.ndarray, lr_diff: int, thresh: float, adjust_value: float
) -> Suggestion | None:
    if not _has_descent(c, y):
        return None
    d = min(int(lr_diff), c.size - 1)
    scale = float(c.max() - c.min())
    windows = np.lib.stride_tricks.sliding_window_view(c, d + 1)  # row j ends at j + d
    falling = (windows[:, 0] - windows[:, -1] >= thresh * scale * d) & (
        windows[:, -1] <= windows.min(axis=1) + thresh * scale
    )
    ok = np.flatnonzero(falling)
    if ok.size == 0:
        return None
    i = int(ok[-1]) + d
    return _make(
        "slide",
        x,
        x[i] * adjust_value,
        f"walking back from the divergence, the last LR where the smoothed loss still "
        f"fell by {thresh:g} of its range per step over {d} steps: {x[i]:.1e}"
        + (f" (times {adjust_value:g})" if adjust_value != 1 else ""),
    )


HEURISTICS: dict[str, Callable[..., Suggestion | None]] = {
    "steepest": steepest,
    "valley": valley,
    "min/10": minimum_div10,
    "slide": slide,
}
"""Every heuristic by its result key, each ``fn(lrs, losses, *, diverge_factor=4.0)``."""


def suggest_all(
    lrs, losses, smoothed=None, *, diverge_factor: float = 4.0
) -> dict[str, Suggestion | None]:
    """Run every heuristic; keys ``"steepest"``, ``"valley"``, ``"min/10"``, ``"slide"``.

    ``smoothed`` (optional, same length, e.g. the range test's EMA) only cuts the
    curve at its first non-finite value. Its ratio test is deliberately not used:
    an EMA lags a real divergence (so it never cuts earlier than the heuristics'
    own cut) and holds one early spike for dozens of steps (so it would cut at the
    spike and lose the whole curve).

    Args:
        lrs, losses, diverge_factor: the curve and where it is cut, as for
            :func:`prepare_curve`.
        smoothed: a smoothed curve of the same length, or ``None``.
    """
    lrs, losses = validation.check_curve(lrs, losses)
    if smoothed is not None:
        smoothed = validation.check_1d(smoothed, "smoothed")
        validation.check_same_length(
            "smoothed", smoothed, losses, "pass the curve smoothed from these losses or None"
        )
        cut = _first_nonfinite(smoothed)
        lrs, losses = lrs[:cut], losses[:cut]
    curve = prepare_curve(lrs, losses, diverge_factor)  # shared: the same as each one's own
    return {
        "steepest": _steepest(*curve),
        "valley": _valley(*curve),
        "min/10": _minimum_div10(*curve),
        "slide": _slide(*curve, 15, 0.005, 1.0),
    }


def interval_from_curve(
    lrs, smoothed, *, diverge_factor: float = 4.0
) -> tuple[float, float] | None:
    """The LR band where the smoothed loss is well below its start.

    On the curve cut at its first non-finite value and at its divergence point, with
    ``start`` the median of its first ``MIN_POINTS`` values and ``drop = start -
    min``: ``high`` is the LR at the minimum (the edge before the loss rises) and
    ``low`` the first LR of the stretch leading to the minimum over which the loss
    stays at least 10% of ``drop`` below ``start`` (an early noisy dip that comes
    back up does not count). ``None`` when there is no descent.
    A lagging curve (an EMA) shifts the band to larger LRs; the heuristics' own
    zero-lag curve is ``prepare_curve(lrs, losses)[2]`` on ``prepare_curve(...)[0]``.

    Args:
        lrs: the learning rates (1-D, finite, positive, increasing).
        smoothed: the smoothed loss at every LR (same length).
        diverge_factor: the curve is cut where it exceeds this many times its running
            minimum (a finite number > 1).
    """
    lrs, c = validation.check_curve(lrs, smoothed)
    cut = divergence_index(c, diverge_factor)
    if cut is not None:
        lrs, c = lrs[:cut], c[:cut]
    if c.size < MIN_POINTS:
        return None
    start = float(np.median(c[:MIN_POINTS]))
    i_min = int(np.argmin(c))
    drop = start - float(c[i_min])
    if i_min == 0 or not drop > MIN_RELATIVE_DROP * float(np.max(np.abs(c))):
        return None
    above = np.flatnonzero(c[: i_min + 1] > start - 0.1 * drop)
    i_low = int(above[-1]) + 1 if above.size else 0
    return float(lrs[i_low]), float(lrs[i_min])
