"""Thin constructors of Keras's own schedules, peaking at a finding's pick or a number."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from kt_lr.validation import check_count, check_nonnegative_float, check_positive_float

if TYPE_CHECKING:  # pragma: no cover
    from kt_lr.results import LRFinding

_schedules = keras.optimizers.schedules


def _as_lr(finding_or_lr: Any, name: str = "finding_or_lr") -> float:
    """The pick of a finding (``.lr``) or a plain positive number."""
    return check_positive_float(name, getattr(finding_or_lr, "lr", finding_or_lr))


def cosine(
    finding_or_lr: LRFinding | float,
    decay_steps: int,
    warmup_steps: int = 0,
    alpha: float = 0.0,
) -> keras.optimizers.schedules.CosineDecay:
    """Keras ``CosineDecay`` peaking at ``finding_or_lr`` (a number or a finding's ``.lr``).

    With ``warmup_steps > 0`` the rate rises linearly from ``alpha * lr`` to ``lr``
    over ``warmup_steps`` steps (Keras's ``warmup_target``), then decays over
    ``decay_steps`` more steps to ``alpha * lr``.

    Args:
        finding_or_lr: the peak: an :class:`~kt_lr.results.LRFinding` (its ``lr``) or a
            number > 0.
        decay_steps: steps of the cosine decay, >= 1.
        warmup_steps: steps of the linear warm-up before it, >= 0.
        alpha: the floor as a fraction of the peak, >= 0.
    """
    lr = _as_lr(finding_or_lr)
    decay_steps = check_count("decay_steps", decay_steps)
    warmup_steps = check_count("warmup_steps", warmup_steps, minimum=0)
    alpha = check_nonnegative_float("alpha", alpha)
    if warmup_steps:
        return _schedules.CosineDecay(
            alpha * lr, decay_steps, alpha=alpha, warmup_target=lr, warmup_steps=warmup_steps
        )
    return _schedules.CosineDecay(lr, decay_steps, alpha=alpha)


def sgdr(
    finding_or_lr: LRFinding | float,
    first_decay_steps: int,
    t_mul: float = 2.0,
    m_mul: float = 1.0,
    alpha: float = 0.0,
) -> keras.optimizers.schedules.CosineDecayRestarts:
    """Keras ``CosineDecayRestarts`` (SGDR, Loshchilov & Hutter 2017) from ``finding_or_lr``.

    Args:
        finding_or_lr: the first peak: a finding (its ``lr``) or a number > 0.
        first_decay_steps: steps of the first cosine, >= 1.
        t_mul: each period is ``t_mul`` times the previous one.
        m_mul: each restart's peak is ``m_mul`` times the previous one.
        alpha: the floor as a fraction of the peak.
    """
    lr = _as_lr(finding_or_lr)
    return _schedules.CosineDecayRestarts(
        lr,
        check_count("first_decay_steps", first_decay_steps),
        t_mul=t_mul,
        m_mul=m_mul,
        alpha=alpha,
    )


def exponential(
    finding_or_lr: LRFinding | float,
    decay_steps: int,
    decay_rate: float,
    staircase: bool = False,
) -> keras.optimizers.schedules.ExponentialDecay:
    """Keras ``ExponentialDecay``: ``lr * decay_rate ** (step / decay_steps)``.

    Args:
        finding_or_lr: the rate of step 0: a finding (its ``lr``) or a number > 0.
        decay_steps: the steps over which the rate is multiplied by ``decay_rate``, >= 1.
        decay_rate: the factor per ``decay_steps`` steps, > 0.
        staircase: decay in whole periods (steps) rather than continuously.
    """
    lr = _as_lr(finding_or_lr)
    return _schedules.ExponentialDecay(
        lr,
        check_count("decay_steps", decay_steps),
        check_positive_float("decay_rate", decay_rate),
        staircase,
    )


def step_decay(
    boundaries: list[int], values: list[float]
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """Keras ``PiecewiseConstantDecay``: ``values[i]`` up to step ``boundaries[i]``.

    Args:
        boundaries: strictly increasing steps at which the rate changes.
        values: the rates (> 0), one more than ``boundaries``.
    """
    boundaries = [int(b) for b in boundaries]
    values = [check_positive_float("values", v) for v in values]
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"`values` needs one more entry than `boundaries`: got {len(values)} values for "
            f"{len(boundaries)} boundaries."
        )
    if any(b <= a for a, b in zip(boundaries, boundaries[1:], strict=False)):
        raise ValueError(f"`boundaries` must increase strictly, got {boundaries}.")
    return _schedules.PiecewiseConstantDecay(boundaries, values)
