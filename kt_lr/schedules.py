"""Learning-rate schedules sized from an :class:`~kt_lr.results.LRFinding`.

* :class:`OneCycle` (Smith & Topin 2017; Smith 2018) and :class:`Cyclical`
  (Smith 2017): our own ``LearningRateSchedule`` classes, written with
  ``keras.ops`` so they run inside ``model.fit`` on any backend, serializable
  (registered under the ``kt_lr`` package: ``import kt_lr`` before
  ``keras.saving.load_model``).
* :class:`OneCycleMomentum`: a callback that cycles the optimizer's momentum
  (SGD / RMSprop ``momentum``, Adam-family ``beta_1``) inversely to the LR.
* :func:`cosine`, :func:`sgdr`, :func:`exponential`, :func:`step_decay`: thin
  constructors of Keras's own schedules.
* :func:`schedule_from`: a finding + a kind -> a :class:`ScheduledLR` whose
  ``reasons`` say why each bound is where it is.
* :func:`hp_schedule`: the schedule as a Keras Tuner choice whose peak is the
  ``learning_rate`` hyperparameter that the kt_lr oracle narrows.
* :func:`plot_schedule`, :func:`schedule_values`: look at a schedule.

Steps are optimizer steps (``optimizer.iterations``), numbered from 0: a run
of ``total_steps`` steps trains at ``schedule(0) ... schedule(total_steps - 1)``.

kt_lr probes a model with a *constant* learning rate: probing a model whose
optimizer already holds a schedule is refused with a clear message. Probe with
a constant rate, then build the schedule here from the finding.
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from kt_lr.results import LRFinding

__all__ = [
    "KINDS",
    "Cyclical",
    "OneCycle",
    "OneCycleMomentum",
    "ScheduledLR",
    "cosine",
    "exponential",
    "hp_schedule",
    "plot_schedule",
    "schedule_from",
    "schedule_values",
    "sgdr",
    "step_decay",
]

KINDS = ("constant", "one_cycle", "cyclical", "cosine", "sgdr", "exponential", "step")

_Schedule = keras.optimizers.schedules.LearningRateSchedule
_MISSING_PLOT = "plotting needs matplotlib: pip install 'kt-lr[plot]'"


# --------------------------------------------------------------------------- validation


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number, got {value!r}.") from None
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {need}, got {value!r}.")
    return out


def _count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    try:
        out = operator.index(value)
    except TypeError:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.") from None
    if out < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(out)


def _as_lr(finding_or_lr: Any, name: str = "finding_or_lr") -> float:
    """The pick of a finding (``.lr``) or a plain positive number."""
    value = getattr(finding_or_lr, "lr", finding_or_lr)
    return _positive(name, value)


# --------------------------------------------------------------------------- our schedules


@keras.saving.register_keras_serializable(package="kt_lr")
class OneCycle(_Schedule):
    """The one-cycle policy: warm up to ``max_lr``, then anneal far below the start.

    For ``total_steps`` optimizer steps ``0 .. T-1`` (``T = total_steps``), with
    ``peak = pct_start * (T - 1)``:

    * step 0 trains at ``max_lr / div_factor``; the rate rises to ``max_lr`` at
      ``peak``;
    * it then falls to ``max_lr / final_div`` at the last step ``T - 1``
      (``final_div`` is relative to ``max_lr``, *not* to the starting rate);
      later steps keep that final rate.

    Both phases follow ``anneal``: ``"cos"`` (half a cosine between the two
    ends: ``end + (start - end) * (1 + cos(pi * f)) / 2`` with ``f`` the fraction
    of the phase done) or ``"linear"``. :meth:`momentum` gives the inverse
    cycle ``max_momentum -> base_momentum -> max_momentum`` with the same shape,
    used by :class:`OneCycleMomentum`.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div: float = 1e4,
        anneal: str = "cos",
        max_momentum: float = 0.95,
        base_momentum: float = 0.85,
    ) -> None:
        super().__init__()
        self.max_lr = _positive("max_lr", max_lr)
        self.total_steps = _count("total_steps", total_steps, minimum=2)
        self.pct_start = float(pct_start)
        if not 0.0 < self.pct_start < 1.0:
            raise ValueError(f"`pct_start` must be in (0, 1), got {pct_start!r} (e.g. 0.3).")
        self.div_factor = _positive("div_factor", div_factor)
        self.final_div = _positive("final_div", final_div)
        if self.div_factor < 1 or self.final_div < 1:
            raise ValueError(
                "`div_factor` and `final_div` must be >= 1 (the start and the end are "
                f"max_lr divided by them), got {div_factor!r} and {final_div!r}."
            )
        if anneal not in ("cos", "linear"):
            raise ValueError(f"`anneal` must be 'cos' or 'linear', got {anneal!r}.")
        self.anneal = anneal
        self.max_momentum = float(max_momentum)
        self.base_momentum = float(base_momentum)
        if not 0.0 <= self.base_momentum <= self.max_momentum < 1.0:
            raise ValueError(
                "Momenta must satisfy 0 <= base_momentum <= max_momentum < 1, got "
                f"base_momentum={base_momentum!r}, max_momentum={max_momentum!r}."
            )

    @property
    def initial_lr(self) -> float:
        """The rate of step 0: ``max_lr / div_factor``."""
        return self.max_lr / self.div_factor

    @property
    def final_lr(self) -> float:
        """The rate of the last step: ``max_lr / final_div``."""
        return self.max_lr / self.final_div

    @property
    def peak_step(self) -> float:
        """The (fractional) step at which the rate is ``max_lr``."""
        return self.pct_start * (self.total_steps - 1)

    def _cycle(self, step: Any, start: float, peak: float, end: float) -> Any:
        last = float(self.total_steps - 1)
        top = self.peak_step
        t = ops.clip(ops.cast(step, "float32"), 0.0, last)
        rising = ops.less_equal(t, top)
        frac = ops.where(rising, t / top, (t - top) / (last - top))
        a = ops.where(rising, start, peak)
        b = ops.where(rising, peak, end)
        if self.anneal == "cos":
            w = 0.5 * (1.0 + ops.cos(math.pi * frac))  # weight of the phase's start
        else:
            w = 1.0 - frac
        return ops.cast(a * w + b * (1.0 - w), "float32")  # exact at both ends

    def __call__(self, step: Any) -> Any:
        return self._cycle(step, self.initial_lr, self.max_lr, self.final_lr)

    def momentum(self, step: Any) -> Any:
        """Momentum at ``step``: ``max_momentum`` at both ends, ``base_momentum`` at the peak."""
        return self._cycle(step, self.max_momentum, self.base_momentum, self.max_momentum)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div": self.final_div,
            "anneal": self.anneal,
            "max_momentum": self.max_momentum,
            "base_momentum": self.base_momentum,
        }


@keras.saving.register_keras_serializable(package="kt_lr")
class Cyclical(_Schedule):
    """Cyclical learning rates (Smith 2017, "Cyclical Learning Rates for Training NNs").

    ``cycle = floor(1 + step / (2 * step_size))``,
    ``x = |step / step_size - 2 * cycle + 1|``,
    ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x) * scale``, where ``scale``
    is 1 (``"triangular"``), ``1 / 2 ** (cycle - 1)`` (``"triangular2"``: each
    cycle's amplitude halves) or ``gamma ** step`` (``"exp_range"``). Step 0 is
    at ``base_lr``, step ``step_size`` at the (scaled) top; ``step_size`` (half
    a cycle, in steps) may be fractional.
    """

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size: float,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        super().__init__()
        self.base_lr = _positive("base_lr", base_lr, allow_zero=True)
        self.max_lr = _positive("max_lr", max_lr)
        if self.max_lr <= self.base_lr:
            raise ValueError(f"`max_lr` ({max_lr!r}) must be larger than `base_lr` ({base_lr!r}).")
        self.step_size = _positive("step_size", step_size)
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                f"`mode` must be 'triangular', 'triangular2' or 'exp_range', got {mode!r}."
            )
        self.mode = mode
        self.gamma = float(gamma)
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"`gamma` must be in (0, 1], got {gamma!r} (e.g. 0.99994).")

    def __call__(self, step: Any) -> Any:
        t = ops.cast(step, "float32")
        cycle = ops.floor(1.0 + t / (2.0 * self.step_size))
        x = ops.abs(t / self.step_size - 2.0 * cycle + 1.0)
        height = (self.max_lr - self.base_lr) * ops.maximum(0.0, 1.0 - x)
        if self.mode == "triangular2":
            height = height / ops.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            height = height * ops.power(self.gamma, t)
        return ops.cast(self.base_lr + height, "float32")

    def get_config(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
        }


# --------------------------------------------------------------------------- momentum


class _RangedVariable(keras.Variable):
    """A scalar variable that answers comparisons with numbers from its known range.

    SGD and RMSprop branch in Python on ``momentum != 0`` / ``momentum > 0``
    inside the traced train step, where a tensor has no truth value. This
    variable holds values in ``[low, high]`` only, so such a comparison is
    decided by the range (``0.85 .. 0.95`` is always ``> 0``); an undecidable
    comparison falls back to the ordinary tensor comparison.
    """

    def __init__(self, value: float, low: float, high: float, name: str) -> None:
        super().__init__(float(value), dtype="float32", trainable=False, name=name)
        self._low, self._high = float(low), float(high)

    def _outside(self, other: Any) -> bool:
        return isinstance(other, numbers.Real) and not self._low <= other <= self._high

    def __ne__(self, other: Any) -> Any:
        return True if self._outside(other) else super().__ne__(other)

    def __gt__(self, other: Any) -> Any:
        if isinstance(other, numbers.Real) and (self._low > other or self._high <= other):
            return self._low > other
        return super().__gt__(other)

    def __ge__(self, other: Any) -> Any:
        if isinstance(other, numbers.Real) and (self._low >= other or self._high < other):
            return self._low >= other
        return super().__ge__(other)

    def __lt__(self, other: Any) -> Any:
        if isinstance(other, numbers.Real) and (self._high < other or self._low >= other):
            return self._high < other
        return super().__lt__(other)

    def __le__(self, other: Any) -> Any:
        if isinstance(other, numbers.Real) and (self._high <= other or self._low > other):
            return self._high <= other
        return super().__le__(other)


class OneCycleMomentum(keras.callbacks.Callback):
    """Cycle the optimizer's momentum inversely to the LR, per batch, in ``model.fit``.

    Sets ``momentum`` (SGD, RMSprop; compile them with ``momentum > 0``) or
    ``beta_1`` (Adam, AdamW, Adamax, Nadam, Lion, Lamb) to
    ``schedule.momentum(optimizer.iterations)`` before every batch: the same
    clock as the LR schedule.

    Keras keeps these as Python floats and the traced train step bakes the float
    in as a constant, so assigning a new float after the first batch has no
    effect. At train start this callback therefore puts a float32 variable in
    the attribute (outside the optimizer's tracked variables, so checkpoints
    are unchanged; ``get_config`` reports its current value, so a model saved
    mid-training reloads) and retraces the train step; at train end it puts the
    original float back and drops the traced step, so the next ``fit`` is plain.
    Checked on TensorFlow; refused on JAX (the jitted step would freeze the
    value) and with ``steps_per_execution > 1`` (only every N-th batch reaches
    the callback). With Adam, Keras's bias correction ``1 - beta_1 ** t`` uses the
    current ``beta_1``: approximate under a cycle, negligible after a few steps.

    Where there is no momentum to cycle (SGD or RMSprop with ``momentum=0``,
    Adagrad, ...) or the setup is refused as above, ``strict=True`` raises with the
    fix; ``strict=False`` (what :func:`schedule_from` uses) warns and leaves the
    optimizer alone, so the run still follows the LR cycle.
    """

    def __init__(self, schedule: Any, *, strict: bool = True) -> None:
        super().__init__()
        if not callable(getattr(schedule, "momentum", None)):
            raise TypeError(
                f"`schedule` must have a momentum(step) method (e.g. kt_lr.OneCycle), got "
                f"{type(schedule).__name__}."
            )
        self.schedule = schedule
        self.strict = bool(strict)
        self._installed: tuple[Any, str, Any] | None = None
        self._variable: _RangedVariable | None = None

    @staticmethod
    def _target(optimizer: Any) -> tuple[Any, str]:
        inner = getattr(optimizer, "inner_optimizer", None)  # LossScaleOptimizer
        opt = inner if inner is not None else optimizer
        for attr in ("beta_1", "momentum"):
            value = getattr(opt, attr, None)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                if value == 0:
                    raise ValueError(
                        f"{type(opt).__name__} was compiled with {attr}=0, so Keras keeps no "
                        f"momentum buffer to cycle. Compile it with e.g. {attr}=0.9, or "
                        "drop the OneCycleMomentum callback (schedule_from(..., "
                        "cycle_momentum=False))."
                    )
                return opt, attr
        raise TypeError(
            f"OneCycleMomentum cannot cycle the momentum of {type(opt).__name__}: it has no "
            "float `momentum` (SGD, RMSprop) or `beta_1` (Adam, AdamW, Adamax, Nadam, Lion, "
            "Lamb). Drop the callback (schedule_from(..., cycle_momentum=False))."
        )

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.strict:
            self._install()
            return
        try:
            self._install()
        except (ValueError, TypeError, RuntimeError) as exc:
            warnings.warn(
                f"One-cycle: cycling only the learning rate, not the momentum: {exc}",
                stacklevel=2,
            )

    def _install(self) -> None:
        if keras.backend.backend() == "jax":
            raise RuntimeError(
                "OneCycleMomentum does not work on the JAX backend: the jitted train step "
                "freezes the momentum. Use the TensorFlow backend or drop the callback."
            )
        if int(getattr(self.model, "steps_per_execution", 1) or 1) > 1:
            raise ValueError(
                "OneCycleMomentum needs model.compile(steps_per_execution=1): with "
                f"{self.model.steps_per_execution} steps per execution the momentum would only "
                "change every few steps."
            )
        opt, attr = self._target(self.model.optimizer)
        original = getattr(opt, attr)
        lo = min(self.schedule.base_momentum, self.schedule.max_momentum)
        hi = max(self.schedule.base_momentum, self.schedule.max_momentum)
        if lo <= 0:
            raise ValueError(
                f"The schedule's momenta must be > 0 to cycle {attr}, got base_momentum={lo}."
            )
        start = float(ops.convert_to_numpy(self.schedule.momentum(int(opt.iterations))))
        var = _RangedVariable(start, lo, hi, name=f"one_cycle_{attr}")
        base_get_config = type(opt).get_config

        def get_config() -> dict[str, Any]:
            config = base_get_config(opt)
            config[attr] = float(ops.convert_to_numpy(var.value))
            return config

        # object.__setattr__: keep the variable out of the optimizer's tracked variables.
        object.__setattr__(opt, attr, var)
        object.__setattr__(opt, "get_config", get_config)
        self._installed = (opt, attr, original)
        self._variable = var
        self.model.make_train_function(force=True)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._installed is None:
            return
        opt = self._installed[0]
        self._variable.assign(self.schedule.momentum(int(opt.iterations)))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._installed is None:
            return
        opt, attr, original = self._installed
        object.__setattr__(opt, attr, original)
        if "get_config" in vars(opt):
            object.__delattr__(opt, "get_config")
        self._installed = None
        self._variable = None
        self.model.train_function = None  # the next fit retraces with the float


# --------------------------------------------------------------------------- Keras's own


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
    """
    lr = _as_lr(finding_or_lr)
    decay_steps = _count("decay_steps", decay_steps)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=0)
    alpha = _positive("alpha", alpha, allow_zero=True)
    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            alpha * lr, decay_steps, alpha=alpha, warmup_target=lr, warmup_steps=warmup_steps
        )
    return keras.optimizers.schedules.CosineDecay(lr, decay_steps, alpha=alpha)


def sgdr(
    finding_or_lr: LRFinding | float,
    first_decay_steps: int,
    t_mul: float = 2.0,
    m_mul: float = 1.0,
    alpha: float = 0.0,
) -> keras.optimizers.schedules.CosineDecayRestarts:
    """Keras ``CosineDecayRestarts`` (SGDR, Loshchilov & Hutter 2017) from ``finding_or_lr``."""
    lr = _as_lr(finding_or_lr)
    return keras.optimizers.schedules.CosineDecayRestarts(
        lr, _count("first_decay_steps", first_decay_steps), t_mul=t_mul, m_mul=m_mul, alpha=alpha
    )


def exponential(
    finding_or_lr: LRFinding | float,
    decay_steps: int,
    decay_rate: float,
    staircase: bool = False,
) -> keras.optimizers.schedules.ExponentialDecay:
    """Keras ``ExponentialDecay``: ``lr * decay_rate ** (step / decay_steps)``."""
    lr = _as_lr(finding_or_lr)
    return keras.optimizers.schedules.ExponentialDecay(
        lr, _count("decay_steps", decay_steps), _positive("decay_rate", decay_rate), staircase
    )


def step_decay(
    boundaries: list[int], values: list[float]
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """Keras ``PiecewiseConstantDecay``: ``values[i]`` up to step ``boundaries[i]``."""
    boundaries = [int(b) for b in boundaries]
    values = [_positive("values", v) for v in values]
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"`values` needs one more entry than `boundaries`: got {len(values)} values for "
            f"{len(boundaries)} boundaries."
        )
    if any(b <= a for a, b in zip(boundaries, boundaries[1:], strict=False)):
        raise ValueError(f"`boundaries` must increase strictly, got {boundaries}.")
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


# --------------------------------------------------------------------------- shared rules


def _warmup_steps(total: int) -> int:
    """Linear warm-up over 5% of the run (at least one step once there is room)."""
    return max(1, round(0.05 * total)) if total >= 3 else 0


def _half_cycle(total: int, epochs: int, cycles: int | None = None) -> tuple[int, float]:
    """Cycles of about 4 epochs (half-cycle 2 epochs, Smith's lower end), ending the run."""
    n = max(1, epochs // 4) if cycles is None else _count("cycles", cycles)
    return n, total / (2 * n)


def _sgdr_period(steps_per_epoch: int, epochs: int) -> int:
    """Restart every ``max(1, epochs // 4)`` epochs (t_mul=1: the cycles end with the run)."""
    return steps_per_epoch * max(1, epochs // 4)


def _step_boundaries(total: int, milestones: tuple[float, ...]) -> list[int]:
    out: list[int] = []
    for m in milestones:
        b = round(float(m) * total)
        if 0 < b < total and (not out or b > out[-1]):
            out.append(b)
    return out


# --------------------------------------------------------------------------- schedule_from


@dataclass
class ScheduledLR:
    """A schedule built from a finding, with the reasons for its bounds.

    Pass ``schedule`` as the optimizer's ``learning_rate`` and ``callbacks`` to
    ``model.fit`` (e.g. the one-cycle momentum callback). ``total_steps`` is
    ``steps_per_epoch * epochs``.
    """

    schedule: _Schedule | float
    kind: str
    reasons: list[str]
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)
    total_steps: int = 0

    def summary(self) -> str:
        """The kind and the reasons, in words."""
        return "\n".join([f"{self.kind} schedule:", *("  - " + r for r in self.reasons)])

    def plot(self, ax: Axes | None = None) -> Figure:
        """LR (and momentum, if any) vs step over the run; returns the Figure."""
        return plot_schedule(self, self.total_steps, ax=ax)


_OPTIONS = {
    "constant": (),
    "one_cycle": (
        "max_lr",
        "pct_start",
        "div_factor",
        "final_div",
        "anneal",
        "max_momentum",
        "base_momentum",
        "cycle_momentum",
    ),
    "cyclical": ("base_lr", "max_lr", "cycles", "mode", "gamma"),
    "cosine": ("peak_lr", "warmup_steps", "floor_lr"),
    "sgdr": ("peak_lr", "first_decay_steps", "t_mul", "m_mul", "floor_lr"),
    "exponential": ("peak_lr", "final_lr"),
    "step": ("peak_lr", "milestones", "factor"),
}


def _top(finding: Any, lr: float, high: float) -> tuple[float, str]:
    """The highest rate a schedule may reach: the interval's top, or the edge if lower."""
    edge = (getattr(finding, "candidates", None) or {}).get("edge")
    if edge is not None and math.isfinite(edge) and lr <= edge:
        if edge < high * (1 - 1e-9):
            return float(edge), f"the edge of stability {edge:.3g} (below the interval's top)"
        if edge <= high * (1 + 1e-9):
            return high, f"the interval's top {high:.3g} (the edge of stability)"
    return high, f"the interval's top {high:.3g}"


def schedule_from(
    finding: LRFinding,
    kind: str,
    steps_per_epoch: int,
    epochs: int,
    **options: Any,
) -> ScheduledLR:
    """Build a ``kind`` schedule for ``epochs`` epochs from a finding's pick and interval.

    With ``lr`` the pick, ``[low, high]`` the interval and ``top`` the interval's
    top (the edge of stability when the finding records a lower one):

    * ``constant``: ``lr``.
    * ``one_cycle``: ``max_lr = sqrt(lr * top)``, the geometric mean of the pick and
      the top: the peak is brief and reached after a warm-up from ``max_lr/25``,
      so it may sit above the constant pick, but it stays below the edge. It
      ends at the floor ``low/100``. Momentum cycles 0.95 -> 0.85 -> 0.95 through
      ``callbacks`` (``cycle_momentum=False`` to skip).
    * ``cyclical``: between ``max(top/4, low)`` and ``top`` (Smith 2017: cycle up
      to where the loss stops falling, base 3-4x lower), triangular, cycles of
      about 4 epochs ending with the run.
    * ``cosine``, ``sgdr``, ``exponential``, ``step``: peak ``min(2*lr, sqrt(lr*top))``:
      twice the pick keeps the run's mean rate near the pick (a cosine averages
      half its peak), capped at the one-cycle peak. ``cosine`` warms up over 5% of
      the run from the floor ``low/100`` and decays to it at the last step;
      ``sgdr`` restarts every ``max(1, epochs//4)`` epochs (``t_mul=1``) down to
      the floor; ``exponential`` decays to ``low`` at the last step; ``step``
      divides by 10 at 50% and 75% of the run.

    ``options`` override these (see ``reasons``; unknown options raise). Raises
    ``ValueError`` for an unknown ``kind`` or non-positive ``steps_per_epoch``/``epochs``.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}; got {kind!r}.")
    spe = _count("steps_per_epoch", steps_per_epoch)
    epochs = _count("epochs", epochs)
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        allowed = ", ".join(_OPTIONS[kind]) or "none"
        raise ValueError(f"Unknown option(s) {unknown} for kind {kind!r}; allowed: {allowed}.")
    lr = _positive("finding.lr", getattr(finding, "lr", None))
    low = _positive("finding.low", getattr(finding, "low", None))
    high = _positive("finding.high", getattr(finding, "high", None))
    if not low <= lr <= high:
        raise ValueError(f"The finding must have low <= lr <= high, got {low}, {lr}, {high}.")
    total = spe * epochs
    if kind != "constant" and total < 2:
        raise ValueError(
            f"A {kind} schedule needs at least 2 steps; steps_per_epoch * epochs = {total}."
        )
    top, top_words = _top(finding, lr, high)
    floor = low / 100
    cap = math.sqrt(lr * top)
    decay_peak = min(2 * lr, cap)
    run = f"{total} steps ({epochs} epochs x {spe})"
    reasons: list[str] = []
    callbacks: list[keras.callbacks.Callback] = []

    def peak_reason(name: str, peak: float) -> str:
        if "peak_lr" in options:
            return f"{name} peak {peak:.3g}: set by you (pick {lr:.3g}, {top_words})"
        why = (
            f"twice the pick {lr:.3g}, so the run's mean rate stays near the pick"
            if 2 * lr <= cap
            else f"capped at sqrt(pick {lr:.3g} x top {top:.3g}) = {cap:.3g}, below the edge"
        )
        return f"{name} peak {peak:.3g}: {why}; the top is {top_words}"

    if kind == "constant":
        schedule: _Schedule | float = lr
        reasons.append(
            f"constant rate {lr:.3g}: the finding's pick (its interval is [{low:.3g}, {high:.3g}])"
        )
    elif kind == "one_cycle":
        max_lr = _positive("max_lr", options.get("max_lr", cap))
        final_div = options.get("final_div", max(1.0, max_lr / floor))
        schedule = OneCycle(
            max_lr,
            total,
            pct_start=options.get("pct_start", 0.3),
            div_factor=options.get("div_factor", 25.0),
            final_div=final_div,
            anneal=options.get("anneal", "cos"),
            max_momentum=options.get("max_momentum", 0.95),
            base_momentum=options.get("base_momentum", 0.85),
        )
        if "max_lr" in options:
            reasons.append(f"one-cycle max_lr {max_lr:.3g}: set by you (pick {lr:.3g})")
        else:
            reasons.append(
                f"one-cycle max_lr {max_lr:.3g}: geometric mean of the pick {lr:.3g} and "
                f"{top_words}: the peak is brief and follows a warm-up, so it can sit above "
                "the constant pick, and it stays below the edge"
            )
        reasons.append(
            f"warm-up from {schedule.initial_lr:.3g} (max_lr/{schedule.div_factor:g}) to the "
            f"peak at {schedule.pct_start:.0%} of {run}, then {schedule.anneal} anneal to "
            f"{schedule.final_lr:.3g} (max_lr/{schedule.final_div:.3g}"
            + (", the floor low/100" if "final_div" not in options else "")
            + ") at the last step"
        )
        if options.get("cycle_momentum", True):
            callbacks.append(OneCycleMomentum(schedule, strict=False))
            reasons.append(
                f"momentum cycles {schedule.max_momentum:g} -> {schedule.base_momentum:g} -> "
                f"{schedule.max_momentum:g} inversely to the rate (callbacks; an optimizer "
                "without momentum, e.g. SGD(momentum=0) or Adagrad, keeps its own with a "
                "warning; pass cycle_momentum=False to keep the optimizer's own)"
            )
    elif kind == "cyclical":
        max_lr = _positive("max_lr", options.get("max_lr", top))
        base_lr = options.get("base_lr")
        if base_lr is None:
            base_lr = max(max_lr / 4, low) if max(max_lr / 4, low) < max_lr else max_lr / 4
            base_words = (
                "max_lr/4 (Smith: 3-4x below the top)"
                if base_lr == max_lr / 4
                else f"the interval's bottom {low:.3g} (above max_lr/4)"
            )
        else:
            base_words = "set by you"
        n, half = _half_cycle(total, epochs, options.get("cycles"))
        schedule = Cyclical(
            base_lr,
            max_lr,
            half,
            mode=options.get("mode", "triangular"),
            gamma=options.get("gamma", 1.0),
        )
        top_why = "set by you" if "max_lr" in options else top_words
        reasons.append(
            f"cyclical between {schedule.base_lr:.3g} and {schedule.max_lr:.3g}: the top is "
            f"{top_why} (Smith 2017 cycles up to where the loss stops falling); the base is "
            f"{base_words}; the pick {lr:.3g} lies between"
        )
        reasons.append(
            f"{schedule.mode}, {n} cycle(s) over {run}: half-cycle {half:.4g} steps "
            f"({half / spe:.3g} epochs), ending at the base rate"
        )
    elif kind == "cosine":
        peak = _positive("peak_lr", options.get("peak_lr", decay_peak))
        bottom = _positive("floor_lr", options.get("floor_lr", floor), allow_zero=True)
        warm = _count("warmup_steps", options.get("warmup_steps", _warmup_steps(total)), 0)
        decay = max(1, total - warm - 1)
        schedule = cosine(peak, decay, warmup_steps=warm, alpha=bottom / peak)
        reasons.append(peak_reason("cosine", peak))
        reasons.append(
            f"linear warm-up from {bottom:.3g} over {warm} steps, then cosine decay over "
            f"{decay} steps to {bottom:.3g} (floor low/100) at the last of {run}"
        )
    elif kind == "sgdr":
        peak = _positive("peak_lr", options.get("peak_lr", decay_peak))
        bottom = _positive("floor_lr", options.get("floor_lr", floor), allow_zero=True)
        period = _count(
            "first_decay_steps", options.get("first_decay_steps", _sgdr_period(spe, epochs))
        )
        t_mul = float(options.get("t_mul", 1.0))
        m_mul = float(options.get("m_mul", 1.0))
        schedule = sgdr(peak, period, t_mul=t_mul, m_mul=m_mul, alpha=bottom / peak)
        reasons.append(peak_reason("SGDR", peak))
        reasons.append(
            f"cosine down to {bottom:.3g} (floor low/100) and restart every {period} steps "
            f"({period / spe:.3g} epochs, t_mul={t_mul:g}, m_mul={m_mul:g}) over {run}; "
            "restarts jump straight back to the peak, which stays below the edge"
        )
    elif kind == "exponential":
        peak = _positive("peak_lr", options.get("peak_lr", decay_peak))
        end = _positive("final_lr", options.get("final_lr", min(low, peak)))
        schedule = exponential(peak, total - 1, end / peak)
        per_epoch = (end / peak) ** (spe / (total - 1))
        reasons.append(peak_reason("exponential", peak))
        reasons.append(
            f"decays x{per_epoch:.3g} per epoch to {end:.3g} "
            + ("(set by you)" if "final_lr" in options else "(the interval's bottom)")
            + f" at the last of {run}"
        )
    else:  # step
        peak = _positive("peak_lr", options.get("peak_lr", decay_peak))
        factor = _positive("factor", options.get("factor", 0.1))
        milestones = tuple(options.get("milestones", (0.5, 0.75)))
        bounds = _step_boundaries(total, milestones)
        values = [peak * factor**i for i in range(len(bounds) + 1)]
        schedule = step_decay(bounds, values)
        reasons.append(peak_reason("step", peak))
        reasons.append(
            f"x{factor:g} at steps {bounds} ({', '.join(f'{m:.0%}' for m in milestones)} of "
            f"{run}): {' -> '.join(f'{v:.3g}' for v in values)}"
        )
    return ScheduledLR(
        schedule=schedule, kind=kind, reasons=reasons, callbacks=callbacks, total_steps=total
    )


# --------------------------------------------------------------------------- Keras Tuner


def _from_peak(kind: str, lr: float, steps_per_epoch: int, epochs: int) -> _Schedule | float:
    total = steps_per_epoch * epochs
    if kind == "constant":
        return lr
    if total < 2:
        raise ValueError(f"A {kind} schedule needs at least 2 steps; got {total}.")
    if kind == "one_cycle":
        return OneCycle(lr, total)
    if kind == "cyclical":
        return Cyclical(lr / 4, lr, _half_cycle(total, epochs)[1])
    if kind == "cosine":
        warm = _warmup_steps(total)
        return cosine(lr, max(1, total - warm - 1), warmup_steps=warm)
    if kind == "sgdr":
        return sgdr(lr, _sgdr_period(steps_per_epoch, epochs), t_mul=1.0)
    if kind == "exponential":
        return exponential(lr, total - 1, 0.05)
    bounds = _step_boundaries(total, (0.5, 0.75))
    return step_decay(bounds, [lr * 0.1**i for i in range(len(bounds) + 1)])


def hp_schedule(
    hp: Any,
    kinds: tuple[str, ...] | list[str] = ("constant", "one_cycle", "cosine", "sgdr"),
    *,
    steps_per_epoch: int,
    epochs: int,
    lr_name: str = "learning_rate",
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
) -> _Schedule | float:
    """The LR schedule of a Keras Tuner trial, to pass as the optimizer's ``learning_rate``.

    Declares ``hp.Choice("lr_schedule", kinds)`` and
    ``hp.Float(lr_name, min_lr, max_lr, sampling="log")`` (the hyperparameter the
    kt_lr oracle narrows and seeds) and returns the chosen schedule whose peak
    (or constant) rate is that value: ``constant`` -> the float; ``one_cycle`` ->
    ``OneCycle(max_lr=lr)`` (the hp *is* the peak); ``cosine`` -> 5% linear warm-up
    from 0, then ``CosineDecay`` to 0 at the last step; ``sgdr`` ->
    ``CosineDecayRestarts(lr, steps_per_epoch * max(1, epochs // 4), t_mul=1)`` so
    the restarts end with the run; ``cyclical`` -> ``Cyclical(lr/4, lr)``, cycles
    of about 4 epochs; ``exponential`` -> ``lr`` down to ``lr/20`` at the last step;
    ``step`` -> ``lr``, ``/10`` at 50% and ``/100`` at 75% of the run.

    The kinds declare no hyperparameters of their own (so no conditional scope is
    needed): a trial's ``lr_schedule`` and ``lr_name`` values rebuild the exact
    schedule, e.g. from ``tuner.get_best_hyperparameters()[0]``.
    """
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if not kinds or bad or len(set(kinds)) != len(kinds):
        raise ValueError(
            f"`kinds` must be distinct kinds among {', '.join(KINDS)}; got {list(kinds)}."
        )
    spe = _count("steps_per_epoch", steps_per_epoch)
    epochs = _count("epochs", epochs)
    lo = _positive("min_lr", min_lr)
    hi = _positive("max_lr", max_lr)
    if lo >= hi:
        raise ValueError(f"`min_lr` ({min_lr}) must be below `max_lr` ({max_lr}).")
    kind = hp.Choice("lr_schedule", list(kinds))
    lr = float(hp.Float(lr_name, min_value=lo, max_value=hi, sampling="log"))
    return _from_peak(kind, lr, spe, epochs)


# --------------------------------------------------------------------------- look at it


def schedule_values(schedule: Any, steps: Any) -> np.ndarray:
    """Evaluate a schedule (a float, a ``LearningRateSchedule``, any callable or a
    :class:`ScheduledLR`) at integer ``steps``, as a float numpy array."""
    if isinstance(schedule, ScheduledLR):
        schedule = schedule.schedule
    steps = np.asarray(steps, dtype=np.int64)
    if isinstance(schedule, numbers.Real):
        return np.full(steps.shape, float(schedule))
    if not callable(schedule):
        raise TypeError(f"`schedule` must be a number or callable, got {type(schedule).__name__}.")
    try:  # ours are elementwise; Keras's warm-up / restarts use ops.cond (scalar only)
        out = np.asarray(ops.convert_to_numpy(schedule(steps)), dtype=float)
        if out.shape == steps.shape:
            return out
    except Exception:  # noqa: BLE001 - fall back to one step at a time
        pass
    flat = [float(ops.convert_to_numpy(schedule(int(s)))) for s in steps.ravel()]
    return np.asarray(flat, dtype=float).reshape(steps.shape)


def plot_schedule(
    schedule: Any, total_steps: int, ax: Axes | None = None, *, max_points: int = 2000
) -> Figure:
    """Learning rate vs step over ``total_steps`` steps (at most ``max_points`` of them),
    with the momentum on a twin axis when the schedule has a ``momentum`` method."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(_MISSING_PLOT) from err
    total = _count("total_steps", total_steps)
    points = _count("max_points", max_points, minimum=2)
    title = schedule.kind if isinstance(schedule, ScheduledLR) else None
    if isinstance(schedule, ScheduledLR):
        schedule = schedule.schedule
    steps = np.unique(np.linspace(0, total - 1, min(total, points)).round().astype(np.int64))
    if ax is None:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    lines = ax.plot(steps, schedule_values(schedule, steps), color="C0", label="learning rate")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(title or type(schedule).__name__)
    momentum = getattr(schedule, "momentum", None)
    if callable(momentum):
        twin = ax.twinx()
        lines += twin.plot(
            steps, schedule_values(momentum, steps), color="C1", ls="--", label="momentum"
        )
        twin.set_ylabel("momentum")
    ax.legend(lines, [ln.get_label() for ln in lines], loc="best")
    return fig
