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
* :func:`get`, :func:`register`, :func:`names`: the registry of kinds that both use
  (like ``keras.optimizers.get``): one small builder per kind.
* :func:`plot_schedule`, :func:`schedule_values`: look at a schedule.

Steps are optimizer steps (``optimizer.iterations``), numbered from 0: a run
of ``total_steps`` steps trains at ``schedule(0) ... schedule(total_steps - 1)``.

kt_lr probes a model with a *constant* learning rate: probing a model whose
optimizer already holds a schedule is refused with a clear message. Probe with
a constant rate, then build the schedule here from the finding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kt_lr.schedules import _kinds  # noqa: F401 - registers the built-in kinds
from kt_lr.schedules._classes import Cyclical, OneCycle, Schedule
from kt_lr.schedules._keras import cosine, exponential, sgdr, step_decay
from kt_lr.schedules._momentum import OneCycleMomentum
from kt_lr.schedules._registry import Kind, Plan, get, names, register
from kt_lr.schedules._result import ScheduledLR, plot_schedule, schedule_values
from kt_lr.validation import check_count, check_positive_float

if TYPE_CHECKING:  # pragma: no cover
    from kt_lr.results import LRFinding

__all__ = [
    "KINDS",
    "Cyclical",
    "Kind",
    "OneCycle",
    "OneCycleMomentum",
    "Plan",
    "ScheduledLR",
    "cosine",
    "exponential",
    "get",
    "hp_schedule",
    "names",
    "plot_schedule",
    "register",
    "schedule_from",
    "schedule_values",
    "sgdr",
    "step_decay",
]

KINDS = names()  # the built-in kinds; names() also lists the ones registered later

# Public under this module's name: saved models record `kt_lr.schedules`, as before.
for _cls in (Cyclical, Kind, OneCycle, OneCycleMomentum, Plan, ScheduledLR):
    _cls.__module__ = __name__
del _cls


def schedule_from(
    finding: LRFinding,
    kind: str | Kind,
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

    Same as ``get(kind)(finding, steps_per_epoch, epochs, **options)``.

    Args:
        finding: an :class:`~kt_lr.results.LRFinding` (its ``lr``, ``low``, ``high``
            and, when known, ``candidates["edge"]``).
        kind: a registered kind's name (see :func:`names`) or a :class:`Kind`.
        steps_per_epoch: optimizer steps per epoch, >= 1.
        epochs: epochs of the run, >= 1.
        **options: overrides of the rules above (``get(kind).options`` lists a kind's
            names; the ``reasons`` say which were used).

    Returns:
        A :class:`ScheduledLR`: the schedule, its reasons and the ``fit`` callbacks.

    Raises:
        ValueError: an unknown ``kind`` or option, non-positive ``steps_per_epoch`` /
            ``epochs``, or a run too short for the kind.
    """
    return get(kind)(finding, steps_per_epoch, epochs, **options)


def hp_schedule(
    hp: Any,
    kinds: tuple[str, ...] | list[str] = ("constant", "one_cycle", "cosine", "sgdr"),
    *,
    steps_per_epoch: int,
    epochs: int,
    lr_name: str = "learning_rate",
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
) -> Schedule | float:
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
    ``step`` -> ``lr``, ``/10`` at 50% and ``/100`` at 75% of the run. These are the
    kinds' builders (:func:`get`) with their ``at_peak`` options.

    The kinds declare no hyperparameters of their own (so no conditional scope is
    needed): a trial's ``lr_schedule`` and ``lr_name`` values rebuild the exact
    schedule, e.g. from ``tuner.get_best_hyperparameters()[0]``.

    Args:
        hp: the trial's ``keras_tuner.HyperParameters``.
        kinds: the distinct registered kinds to choose among.
        steps_per_epoch: optimizer steps per epoch, >= 1.
        epochs: epochs of the run, >= 1.
        lr_name: the name of the learning-rate hyperparameter.
        min_lr: its lowest value, > 0.
        max_lr: its highest value, above ``min_lr``.

    Returns:
        A ``LearningRateSchedule``, or a float for ``constant``.
    """
    kinds = tuple(kinds)
    known = names()
    bad = [k for k in kinds if k not in known]
    if not kinds or bad or len(set(kinds)) != len(kinds):
        raise ValueError(
            f"`kinds` must be distinct kinds among {', '.join(known)}; got {list(kinds)}."
        )
    spe = check_count("steps_per_epoch", steps_per_epoch)
    epochs = check_count("epochs", epochs)
    lo = check_positive_float("min_lr", min_lr)
    hi = check_positive_float("max_lr", max_lr)
    if lo >= hi:
        raise ValueError(f"`min_lr` ({min_lr}) must be below `max_lr` ({max_lr}).")
    kind = hp.Choice("lr_schedule", list(kinds))
    lr = float(hp.Float(lr_name, min_value=lo, max_value=hi, sampling="log"))
    return get(kind).from_peak(lr, spe, epochs)
