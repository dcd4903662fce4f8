"""The one-cycle momentum callback and the Keras workarounds it needs.

Keras keeps ``momentum`` / ``beta_1`` as Python floats that the traced train step
bakes in as constants, and SGD / RMSprop branch in Python on them. Cycling them
per batch therefore takes a variable that answers those branches
(:class:`_RangedVariable`), installed outside the optimizer's tracked variables
and removed again at train end (:class:`OneCycleMomentum`).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import keras
from keras import ops


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

    Args:
        schedule: an object with a ``momentum(step)`` method, e.g. a :class:`OneCycle`
            (its ``base_momentum`` and ``max_momentum`` bound the values).
        strict: raise (``True``) or warn and cycle only the LR (``False``) where the
            momentum cannot be cycled.
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
