"""kt_lr's own ``LearningRateSchedule`` classes: :class:`OneCycle` and :class:`Cyclical`.

Written with ``keras.ops`` so they run inside ``model.fit`` on any backend, and
serializable: registered under the ``kt_lr`` package (``import kt_lr`` before
``keras.saving.load_model``).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from kt_lr.validation import (
    check_choice,
    check_count,
    check_nonnegative_float,
    check_positive_float,
)

Schedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="kt_lr")
class OneCycle(Schedule):
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
    used by :class:`OneCycleMomentum` (Smith & Topin 2017; Smith 2018).

    Args:
        max_lr: the peak rate, > 0.
        total_steps: the optimizer steps of the run, >= 2.
        pct_start: the fraction of the run spent rising, in (0, 1).
        div_factor: step 0 trains at ``max_lr / div_factor`` (>= 1).
        final_div: the last step trains at ``max_lr / final_div`` (>= 1).
        anneal: ``"cos"`` or ``"linear"``.
        max_momentum: the momentum at both ends of the cycle, below 1.
        base_momentum: the momentum at the peak rate, in ``[0, max_momentum]``.
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
        self.max_lr = check_positive_float("max_lr", max_lr)
        self.total_steps = check_count("total_steps", total_steps, minimum=2)
        self.pct_start = float(pct_start)
        if not 0.0 < self.pct_start < 1.0:
            raise ValueError(f"`pct_start` must be in (0, 1), got {pct_start!r} (e.g. 0.3).")
        self.div_factor = check_positive_float("div_factor", div_factor)
        self.final_div = check_positive_float("final_div", final_div)
        if self.div_factor < 1 or self.final_div < 1:
            raise ValueError(
                "`div_factor` and `final_div` must be >= 1 (the start and the end are "
                f"max_lr divided by them), got {div_factor!r} and {final_div!r}."
            )
        self.anneal = check_choice("anneal", anneal, ("cos", "linear"))
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
        """Momentum at ``step``: ``max_momentum`` at both ends, ``base_momentum`` at the peak.

        Args:
            step: an optimizer step (a number or a tensor of them).
        """
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
class Cyclical(Schedule):
    """Cyclical learning rates (Smith 2017, "Cyclical Learning Rates for Training NNs").

    ``cycle = floor(1 + step / (2 * step_size))``,
    ``x = |step / step_size - 2 * cycle + 1|``,
    ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x) * scale``, where ``scale``
    is 1 (``"triangular"``), ``1 / 2 ** (cycle - 1)`` (``"triangular2"``: each
    cycle's amplitude halves) or ``gamma ** step`` (``"exp_range"``). Step 0 is
    at ``base_lr``, step ``step_size`` at the (scaled) top.

    Args:
        base_lr: the bottom of every cycle, >= 0.
        max_lr: the top of the first cycle, above ``base_lr``.
        step_size: half a cycle, in steps (> 0; may be fractional).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: the per-step amplitude factor of ``"exp_range"``, in (0, 1].
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
        self.base_lr = check_nonnegative_float("base_lr", base_lr)
        self.max_lr = check_positive_float("max_lr", max_lr)
        if self.max_lr <= self.base_lr:
            raise ValueError(f"`max_lr` ({max_lr!r}) must be larger than `base_lr` ({base_lr!r}).")
        self.step_size = check_positive_float("step_size", step_size)
        self.mode = check_choice("mode", mode, ("triangular", "triangular2", "exp_range"))
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
