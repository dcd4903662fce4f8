"""A built schedule with its reasons (:class:`ScheduledLR`), and how to look at one."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from kt_lr.validation import check_count

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_MISSING_PLOT = "plotting needs matplotlib: pip install 'kt-lr[plot]'"


@dataclass
class ScheduledLR:
    """A schedule built from a finding, with the reasons for its bounds.

    Pass ``schedule`` as the optimizer's ``learning_rate`` and ``callbacks`` to
    ``model.fit`` (e.g. the one-cycle momentum callback).

    Args:
        schedule: a ``LearningRateSchedule``, or a float for a constant rate.
        kind: the schedule kind's name (``"one_cycle"``, ...).
        reasons: why each bound is where it is, in words.
        callbacks: what ``model.fit`` needs besides the schedule.
        total_steps: the run's optimizer steps, ``steps_per_epoch * epochs``.
    """

    schedule: keras.optimizers.schedules.LearningRateSchedule | float
    kind: str
    reasons: list[str]
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)
    total_steps: int = 0

    def summary(self) -> str:
        """The kind and the reasons, in words."""
        return "\n".join([f"{self.kind} schedule:", *("  - " + r for r in self.reasons)])

    def to_frame(self, max_points: int = 2000):
        """The rate (and momentum, if any) per step over the run, as a DataFrame.

        Args:
            max_points: at most this many steps, evenly spread over the run (>= 2).
        """
        import pandas as pd

        total = max(int(self.total_steps), 1)
        points = check_count("max_points", max_points, minimum=2)
        steps = np.unique(np.linspace(0, total - 1, min(total, points)).round().astype(np.int64))
        frame = {"step": steps, "learning_rate": schedule_values(self.schedule, steps)}
        momentum = getattr(self.schedule, "momentum", None)
        if callable(momentum):
            frame["momentum"] = schedule_values(momentum, steps)
        return pd.DataFrame(frame)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data: the schedule as Keras serialises it, the callbacks by
        kind (:meth:`from_dict` rebuilds them around the same schedule).

        Raises:
            TypeError: a callback kt_lr did not make (it cannot be written down).
        """
        schedule = (
            float(self.schedule)
            if isinstance(self.schedule, numbers.Real)
            else keras.saving.serialize_keras_object(self.schedule)
        )
        return {
            "schedule": schedule,
            "kind": self.kind,
            "reasons": list(self.reasons),
            "callbacks": [_callback_dict(cb, self.schedule) for cb in self.callbacks],
            "total_steps": int(self.total_steps),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScheduledLR:
        """The schedule from :meth:`to_dict`'s data.

        Args:
            data: the plain data.
        """
        schedule = data["schedule"]
        if not isinstance(schedule, numbers.Real):
            schedule = keras.saving.deserialize_keras_object(schedule)
        else:
            schedule = float(schedule)
        callbacks = [_callback_from(c, schedule) for c in data.get("callbacks", [])]
        return cls(
            schedule=schedule,
            kind=str(data["kind"]),
            reasons=list(data.get("reasons", [])),
            callbacks=callbacks,
            total_steps=int(data.get("total_steps", 0)),
        )

    def plot(self, ax: Axes | None = None) -> Figure:
        """LR (and momentum, if any) vs step over the run; returns the Figure.

        Args:
            ax: a matplotlib ``Axes`` to draw on; a new Figure when ``None``.
        """
        return plot_schedule(self, self.total_steps, ax=ax)


def _callback_dict(callback: Any, schedule: Any) -> dict[str, Any]:
    from kt_lr.schedules._momentum import OneCycleMomentum

    if isinstance(callback, OneCycleMomentum) and callback.schedule is schedule:
        return {"class_name": "OneCycleMomentum", "strict": callback.strict}
    raise TypeError(
        f"ScheduledLR.to_dict cannot write down the callback {type(callback).__name__}: only "
        "the OneCycleMomentum kt_lr made for this schedule is stored. Remove it from "
        "`callbacks` before to_dict() and add it again after from_dict()."
    )


def _callback_from(data: dict[str, Any], schedule: Any) -> Any:
    from kt_lr.schedules._momentum import OneCycleMomentum

    if data.get("class_name") != "OneCycleMomentum":
        raise ValueError(
            f"Unknown callback {data.get('class_name')!r} in ScheduledLR data; expected "
            "'OneCycleMomentum' (what ScheduledLR.to_dict writes)."
        )
    return OneCycleMomentum(schedule, strict=bool(data.get("strict", True)))


def schedule_values(schedule: Any, steps: Any) -> np.ndarray:
    """Evaluate a schedule at integer ``steps``, as a float numpy array.

    Args:
        schedule: a float, a ``LearningRateSchedule``, any callable of a step or a
            :class:`ScheduledLR`.
        steps: integer steps (any array-like shape; the result has the same shape).
    """
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
    """Learning rate vs step, with the momentum on a twin axis when there is one.

    Uses matplotlib's Figure API only (no ``pyplot`` state).

    Args:
        schedule: what :func:`schedule_values` takes; a ``momentum(step)`` method (as
            :class:`OneCycle` has) adds the momentum curve.
        total_steps: the steps to draw, ``0 .. total_steps - 1`` (>= 1).
        ax: a matplotlib ``Axes`` to draw on; a new Figure when ``None``.
        max_points: at most this many steps are evaluated (>= 2).

    Returns:
        The matplotlib ``Figure``.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(_MISSING_PLOT) from err
    total = check_count("total_steps", total_steps)
    points = check_count("max_points", max_points, minimum=2)
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
