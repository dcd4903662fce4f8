"""Batch sizes and the learning rate: the scaling rules, their limit, per-value probes.

Pure logic (no Keras Tuner import; hyperparameters are read duck-typed).

- :func:`batch_scaling_rule` / :func:`scale_lr_for_batch_size` / :func:`batch_factor`:
  linear scaling for SGD-like optimizers, square root for adaptive ones.
- The limit: a rate scaled to a *larger* batch never rises above the top of the
  probe's own interval (:func:`scaled_top`). A larger batch lowers the gradient
  noise, not the curvature of the loss that sets the edge of stability, so the edge
  the probe measured stays the most a larger batch may use (McCandlish et al. 2018:
  the best rate grows with the batch size but saturates below that edge).
- A batch-size hyperparameter with a few values (a ``Choice`` of at most
  :data:`MAX_PROBED_BATCH_SIZES`) is probed per value instead: it becomes part of the
  probe key (:func:`probed_batch_size_name`), and nothing is extrapolated.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kt_lr.space import discrete_values, hp_kind, is_number
from kt_lr.validation import check_choice, check_positive_float

if TYPE_CHECKING:  # pragma: no cover
    from kt_lr.config import LRConfig
    from kt_lr.ledger import Finding

#: The rules that scale a learning rate from one batch size to another.
BATCH_SCALING_RULES = ("auto", "linear", "sqrt", "none")
#: A batch-size ``Choice`` with at most this many values is probed once per value.
MAX_PROBED_BATCH_SIZES = 4

_SGD_LIKE = {"sgd", "momentum", "nesterov", "heavyball"}


def _optimizer_name(optimizer: Any) -> str:
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        optimizer = inner
    name = optimizer if isinstance(optimizer, str) else type(optimizer).__name__
    return name.lower().replace("_", "").replace("-", "")


def batch_scaling_rule(optimizer: Any) -> str:
    """``"linear"`` for SGD-like optimizers, ``"sqrt"`` for adaptive ones (and unknown ones).

    ``optimizer`` is a name (``"sgd"``, ``"Adam"``) or an optimizer instance.
    """
    name = _optimizer_name(optimizer)
    if name in _SGD_LIKE or name.startswith("sgd"):
        return "linear"
    return "sqrt"


def scale_lr_for_batch_size(
    lr: float,
    from_batch_size: int,
    to_batch_size: int,
    *,
    rule: str = "auto",
    optimizer: Any = None,
) -> float:
    """The LR for ``to_batch_size`` given a good ``lr`` at ``from_batch_size``.

    ``rule``: ``"linear"`` (lr x ratio, SGD), ``"sqrt"`` (lr x sqrt(ratio), adaptive
    optimizers), ``"none"``, or ``"auto"`` (:func:`batch_scaling_rule` of ``optimizer``;
    ``"sqrt"`` when the optimizer is unknown).
    """
    lr = check_positive_float("lr", lr)
    a, b = (
        check_positive_float("from_batch_size", from_batch_size),
        check_positive_float("to_batch_size", to_batch_size),
    )
    check_choice("batch_scaling", rule, BATCH_SCALING_RULES)
    if rule == "auto":
        rule = batch_scaling_rule(optimizer) if optimizer is not None else "sqrt"
    ratio = b / a
    if rule == "linear":
        return lr * ratio
    if rule == "sqrt":
        return lr * math.sqrt(ratio)
    return lr


def batch_factor(
    from_batch_size: float, to_batch_size: float, *, rule: str = "auto", optimizer: Any = None
) -> float:
    """The factor :func:`scale_lr_for_batch_size` multiplies an LR by (1.0 for ``"none"``)."""
    return scale_lr_for_batch_size(
        1.0, from_batch_size, to_batch_size, rule=rule, optimizer=optimizer
    )


def batch_size_values(hp: Any) -> list[float]:
    """The batch sizes a ``batch_size`` hyperparameter can take, for interval hulls.

    A ``Choice`` or ``Fixed`` gives its values; an ``Int``/``Float`` its two bounds (every
    scaling rule is monotonic, so the bounds give the extremes); anything else none.
    """
    kind = hp_kind(hp)
    if kind in ("Choice", "Fixed"):
        values = discrete_values(hp)
    elif kind in ("Int", "Float"):
        values = [hp.min_value, hp.max_value]
    else:
        values = []
    return sorted({float(v) for v in values if is_number(v) and v > 0})


def probed_batch_size_name(space: Any, config: LRConfig) -> str | None:
    """The batch-size hyperparameter probed once per value, or ``None``.

    That is ``config.batch_size_hp_name`` when it is an ``hp.Choice`` of 2 to
    :data:`MAX_PROBED_BATCH_SIZES` positive numbers and ``batch_scaling`` is not
    ``"none"`` (with ``"none"`` every batch size shares one interval).
    """
    name = config.batch_size_hp_name
    if not name or config.batch_scaling == "none":
        return None
    hp = next((h for h in space.space if h.name == name), None)
    if hp is None or hp_kind(hp) != "Choice":
        return None
    values = [v for v in discrete_values(hp) if is_number(v) and v > 0]
    if len(values) != len(hp.values) or not 2 <= len(values) <= MAX_PROBED_BATCH_SIZES:
        return None
    return name


def batch_sizes(space: Any, config: LRConfig) -> list[float | None]:
    """The batch sizes the space allows (``[None]`` without a batch-size hp or scaling)."""
    name = config.batch_size_hp_name
    if not name or config.batch_scaling == "none":
        return [None]
    hp = next((h for h in space.space if h.name == name), None)
    values = batch_size_values(hp) if hp is not None else []
    return list(values) or [None]


def finding_factor(finding: Finding | None, batch_size: Any, config: LRConfig) -> float:
    """The factor a probe's rates are scaled by for a trial at ``batch_size``.

    1.0 when the trial runs at the probe's batch size, either is unknown, or
    ``batch_scaling="none"``.
    """
    probe_bs = _positive_number(finding.batch_size if finding is not None else None)
    trial_bs = _positive_number(batch_size)
    if config.batch_scaling == "none" or probe_bs is None or trial_bs is None:
        return 1.0
    if trial_bs == probe_bs:
        return 1.0
    return batch_factor(probe_bs, trial_bs, rule=config.batch_scaling, optimizer=finding.optimizer)


def scaled_top(finding: Finding, key_high: float, factor: float, bound_high: float) -> float:
    """The highest rate a key's interval scaled by ``factor`` may reach.

    Scaled down (``factor <= 1``): the original range's top. Scaled up: also no higher
    than the top of the key's interval at the probe's batch size (``key_high``) or the
    probe's edge ``finding.high``, whichever is higher (see the module docstring).
    """
    if factor <= 1:
        return bound_high
    return min(bound_high, max(float(finding.high), float(key_high)))


def cap_note(finding: Finding, batch_size: Any, factor: float, top: float) -> str:
    """Why a scaled interval stops at ``top``, in words (for notes and warnings)."""
    return (
        f"scaled x{factor:.3g} from batch size {finding.batch_size} to {batch_size:g}, the "
        f"interval would reach {float(finding.high) * factor:.3g}; capped at {top:.3g}, the "
        "top of the probed interval: a larger batch lowers the gradient noise, not the "
        "curvature that makes a rate unstable"
    )


def _positive_number(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
        return float(v)
    return None
