"""Checks of the model a probe trial built, before the probe trains it.

- :func:`check_constant_rate`: a range test sets the learning rate itself, so the
  probe's model must be compiled with a constant rate; in a search the fix is
  :func:`kt_lr.hp_schedule` (its probe trial trains at the constant kind).
- :func:`unused_lr_note`: the learning-rate hyperparameter kt_lr narrows must be the
  rate the optimizer trains with; the probe trial's model tells (its optimizer's
  ``learning_rate`` against the trial's value of the hyperparameter).
"""

from __future__ import annotations

import math
from typing import Any


def _optimizer(model: Any) -> Any | None:
    return getattr(model, "optimizer", None)


def check_constant_rate(model: Any, hp_name: str, trial_id: str) -> None:
    """Refuse a probe model whose optimizer follows a learning-rate schedule.

    Raises:
        ValueError: naming :func:`kt_lr.hp_schedule` as the way to tune a schedule.
    """
    import keras

    optimizer = _optimizer(model)
    rate = getattr(optimizer, "_learning_rate", None)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) or callable(rate):
        raise ValueError(
            f"the model built for learning-rate probe {trial_id} compiles its optimizer "
            f"with a learning-rate schedule ({type(rate).__name__}), and a range test sets "
            "the rate itself. In a search, build the schedule with kt_lr.hp_schedule(hp, "
            "kinds, steps_per_epoch=..., epochs=...) and pass what it returns as the "
            f"optimizer's learning_rate: it declares {hp_name!r} (narrowed by the probe) "
            "and a schedule kind, and the probe trial trains at the constant kind"
        )


def unused_lr_note(model: Any, values: dict[str, Any], hp_name: str) -> str | None:
    """Why the optimizer does not train at the LR hyperparameter's value (``None``: it does).

    Compares the built model's ``optimizer.learning_rate`` with the trial's value of
    ``hp_name``; an uncompiled model, or a value that is not a number, says nothing.
    """
    import keras

    value = values.get(hp_name)
    optimizer = _optimizer(model)
    if optimizer is None or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:  # a rate we cannot read: nothing to compare
        return None
    if math.isclose(rate, float(value), rel_tol=1e-5, abs_tol=1e-12):
        return None
    return (
        f"the model's optimizer ({type(optimizer).__name__}) trains at learning_rate="
        f"{rate:.3g}, not at the value of the hyperparameter {hp_name!r} ({float(value):.3g}), "
        f"so narrowing {hp_name!r} changes nothing the search trains. Pass it to the "
        f"optimizer, e.g. keras.optimizers.Adam(learning_rate=hp.Float({hp_name!r}, 1e-5, "
        "1e-1, sampling='log')), or pass lr_hp_name='<the name of the rate you tune>'"
    )
