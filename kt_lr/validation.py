"""Argument checks shared by the probes: one place, errors that say what to do."""

from __future__ import annotations

import math

import numpy as np


def check_positive_float(name: str, value) -> float:
    """``value`` as a finite float > 0, or a ValueError naming ``name``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.") from None
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return out


def check_lr_bounds(start_lr, end_lr, *, start_name="start_lr", end_name="end_lr"):
    """Validated ``(start, end)`` learning-rate bounds with ``start < end``."""
    start = check_positive_float(start_name, start_lr)
    end = check_positive_float(end_name, end_lr)
    if start >= end:
        raise ValueError(
            f"`{start_name}` ({start:g}) must be smaller than `{end_name}` ({end:g}); e.g. "
            f"{start_name}=1e-7, {end_name}=10."
        )
    return start, end


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_lr_grid(lrs) -> np.ndarray:
    """A sorted float64 array of positive, finite, distinct learning rates (>= 2)."""
    arr = np.asarray(lrs, dtype=np.float64).ravel()
    if arr.size < 2:
        raise ValueError(
            "`lrs` needs at least 2 learning rates, e.g. lrs=np.geomspace(1e-6, 1, 50)."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("`lrs` must hold finite learning rates > 0.")
    arr = np.unique(arr)
    return arr


def check_seconds(name: str, value, *, example, none_ok: bool = False, zero_ok: bool = False):
    """``value`` as a finite number of seconds (> 0, or >= 0 with ``zero_ok``).

    With ``none_ok``, ``None`` (wait forever) passes through. Booleans are refused.
    """
    if value is None and none_ok:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        forever = ", or None to wait forever" if none_ok else ""
        raise ValueError(
            f"`{name}` must be a number of seconds {bound} (e.g. {example}){forever}; "
            f"got {value!r}."
        )
    return float(value)


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``: any integer (numpy's, an eager tensor's: whatever
    ``operator.index`` takes) but a bool; else a ValueError naming ``name``."""
    from operator import index

    got = None
    if not isinstance(value, bool):
        try:
            got = index(value)
        except TypeError:
            pass
    if got is None or got < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(got)


def check_nonnegative_float(name: str, value) -> float:
    """``value`` as a finite float >= 0 (``check_positive_float`` where 0 is allowed, e.g. a
    floor rate), or a ValueError naming ``name``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not (math.isfinite(out) and out >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return out


def check_width_options(min_decades: float, widen: float) -> tuple[float, float]:
    """Validated ``(min_decades, widen)``: ``min_decades >= 0``, ``widen >= 1``."""
    try:
        md, wf = float(min_decades), float(widen)
    except (TypeError, ValueError):
        raise ValueError(
            f"`min_decades` and `widen` must be numbers, got {min_decades!r} and {widen!r}."
        ) from None
    if not math.isfinite(md) or md < 0:
        raise ValueError(f"`min_decades` must be >= 0 (e.g. 0.5), got {min_decades!r}.")
    if not math.isfinite(wf) or wf < 1:
        raise ValueError(
            f"`widen` must be a factor >= 1 (1 keeps the probe's interval), got {widen!r}."
        )
    return md, wf
