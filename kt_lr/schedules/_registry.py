"""The registry of schedule kinds, shaped like ``keras.optimizers.get``.

A kind is a small builder: it takes a :class:`Plan` (the rates, the run, the caller's
options) and returns a :class:`~kt_lr.schedules.ScheduledLR`.
:func:`~kt_lr.schedules.schedule_from` fills the plan from a finding;
:func:`~kt_lr.schedules.hp_schedule` from a hyperparameter's value and the kind's
``at_peak`` options. Both reach a kind through :func:`get`, so each kind is written once
(the built-in ones are in ``_kinds.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import keras

from kt_lr.schedules._result import ScheduledLR
from kt_lr.validation import check_count, check_nonnegative_float, check_positive_float


@dataclass(frozen=True)
class Plan:
    """What a builder sizes its schedule from: the rates, the run and the options.

    :func:`~kt_lr.schedules.schedule_from` fills it from a finding;
    :func:`~kt_lr.schedules.hp_schedule` from the learning-rate hyperparameter's value
    ``v`` (``lr = low = high = top = v``) with the kind's ``at_peak(v)`` as options.

    Args:
        kind: the kind's name.
        lr: the finding's pick.
        low: the bottom of the finding's interval.
        high: the top of the finding's interval.
        top: the highest rate a schedule may reach: ``high``, or the finding's edge of
            stability where that is lower.
        top_words: ``top`` in words, for the reasons.
        steps_per_epoch: optimizer steps per epoch.
        epochs: epochs of the run.
        options: the options that override the kind's rules, by name.
    """

    kind: str
    lr: float
    low: float
    high: float
    top: float
    top_words: str
    steps_per_epoch: int
    epochs: int
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_finding(
        cls, kind: str, finding: Any, steps_per_epoch: int, epochs: int, options: Mapping
    ) -> Plan:
        """The plan of ``schedule_from``: the finding's ``lr``, ``low``, ``high``, edge.

        Args:
            kind: the kind's name.
            finding: an :class:`~kt_lr.results.LRFinding` (``low <= lr <= high``).
            steps_per_epoch: optimizer steps per epoch (checked by the caller).
            epochs: epochs of the run (checked by the caller).
            options: the caller's options.
        """
        lr = check_positive_float("finding.lr", getattr(finding, "lr", None))
        low = check_positive_float("finding.low", getattr(finding, "low", None))
        high = check_positive_float("finding.high", getattr(finding, "high", None))
        if not low <= lr <= high:
            raise ValueError(f"The finding must have low <= lr <= high, got {low}, {lr}, {high}.")
        top, words = _top(finding, lr, high)
        options = MappingProxyType(dict(options))
        return cls(kind, lr, low, high, top, words, steps_per_epoch, epochs, options)

    @classmethod
    def at_peak(
        cls, kind: str, lr: float, steps_per_epoch: int, epochs: int, options: Mapping
    ) -> Plan:
        """The plan of ``hp_schedule``: every rate is the hyperparameter's value ``lr``.

        Args:
            kind: the kind's name.
            lr: the hyperparameter's value, > 0.
            steps_per_epoch: optimizer steps per epoch (checked by the caller).
            epochs: epochs of the run (checked by the caller).
            options: the kind's ``at_peak(lr)``.
        """
        v = check_positive_float("lr", lr)
        options = MappingProxyType(dict(options))
        return cls(kind, v, v, v, v, f"the rate {v:.3g}", steps_per_epoch, epochs, options)

    @property
    def total(self) -> int:
        """Optimizer steps of the run: ``steps_per_epoch * epochs``."""
        return self.steps_per_epoch * self.epochs

    @property
    def floor(self) -> float:
        """The decaying kinds' default lowest rate: ``low / 100``."""
        return self.low / 100

    @property
    def cap(self) -> float:
        """``sqrt(lr * top)``: one-cycle's peak; the other decaying kinds' cap."""
        return math.sqrt(self.lr * self.top)

    @property
    def run(self) -> str:
        """The run in words."""
        return f"{self.total} steps ({self.epochs} epochs x {self.steps_per_epoch})"

    def given(self, name: str) -> bool:
        """Whether option ``name`` was passed."""
        return name in self.options

    def option(self, name: str, default: Any) -> Any:
        """Option ``name``, unchecked, or ``default``.

        Args:
            name: the option's name.
            default: the value when the option was not passed.
        """
        return self.options.get(name, default)

    def rate(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        """Option ``name`` (or ``default``) as a finite rate > 0 (>= 0 with ``allow_zero``).

        Args:
            name: the option's name, also the name a ValueError gives.
            default: the rate when the option was not passed.
            allow_zero: accept 0 (e.g. a floor).
        """
        check = check_nonnegative_float if allow_zero else check_positive_float
        return check(name, self.options.get(name, default))

    def steps(self, name: str, default: int, minimum: int = 1) -> int:
        """Option ``name`` (or ``default``) as a step count >= ``minimum``.

        Args:
            name: the option's name, also the name a ValueError gives.
            default: the count when the option was not passed.
            minimum: the smallest count allowed.
        """
        return check_count(name, self.options.get(name, default), minimum)

    def peak(self) -> float:
        """The decaying kinds' peak: ``peak_lr``, else ``min(2 * lr, cap)``."""
        return self.rate("peak_lr", min(2 * self.lr, self.cap))

    def peak_reason(self, name: str, peak: float) -> str:
        """Why the decaying kind ``name`` peaks at ``peak``, in words.

        Args:
            name: the schedule's name in the sentence, e.g. ``"cosine"``.
            peak: its peak rate (usually :meth:`peak`).
        """
        lr, top, cap = self.lr, self.top, self.cap
        if self.given("peak_lr"):
            return f"{name} peak {peak:.3g}: set by you (pick {lr:.3g}, {self.top_words})"
        why = (
            f"twice the pick {lr:.3g}, so the run's mean rate stays near the pick"
            if 2 * lr <= cap
            else f"capped at sqrt(pick {lr:.3g} x top {top:.3g}) = {cap:.3g}, below the edge"
        )
        return f"{name} peak {peak:.3g}: {why}; the top is {self.top_words}"

    def result(
        self,
        schedule: Any,
        reasons: list[str],
        callbacks: Iterable[keras.callbacks.Callback] = (),
    ) -> ScheduledLR:
        """A builder's answer: ``schedule`` with its ``reasons`` and ``callbacks``.

        Args:
            schedule: a ``LearningRateSchedule``, or a float for a constant rate.
            reasons: why each bound is where it is, in words.
            callbacks: what ``model.fit`` needs besides the schedule.
        """
        return ScheduledLR(
            schedule=schedule,
            kind=self.kind,
            reasons=list(reasons),
            callbacks=list(callbacks),
            total_steps=self.total,
        )


def _top(finding: Any, lr: float, high: float) -> tuple[float, str]:
    """The highest rate a schedule may reach: the interval's top, or the edge if lower."""
    edge = (getattr(finding, "candidates", None) or {}).get("edge")
    if edge is not None and math.isfinite(edge) and lr <= edge:
        if edge < high * (1 - 1e-9):
            return float(edge), f"the edge of stability {edge:.3g} (below the interval's top)"
        if edge <= high * (1 + 1e-9):
            return high, f"the interval's top {high:.3g} (the edge of stability)"
    return high, f"the interval's top {high:.3g}"


# --------------------------------------------------------------------------- the registry

Builder = Callable[[Plan], ScheduledLR]


def _no_options(lr: float) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Kind:
    """A schedule kind: its name, its builder and the options the builder reads.

    Calling it is :func:`~kt_lr.schedules.schedule_from` for this kind:
    ``get("cosine")(finding, steps_per_epoch, epochs, **options)``.

    Args:
        name: the kind's name, e.g. ``"one_cycle"``.
        build: ``build(plan) -> ScheduledLR``, usually ending with ``plan.result(...)``.
        options: the option names ``schedule_from`` accepts for this kind.
        at_peak: ``at_peak(v) -> options`` with which ``build`` peaks at ``v`` (the
            learning-rate hyperparameter of :func:`~kt_lr.schedules.hp_schedule`). They
            are not checked against ``options``, so they may fix internal rules.
        min_steps: the fewest optimizer steps of a run.
    """

    name: str
    build: Builder
    options: tuple[str, ...] = ()
    at_peak: Callable[[float], Mapping[str, Any]] = _no_options
    min_steps: int = 2

    def __call__(
        self, finding: Any, steps_per_epoch: int, epochs: int, **options: Any
    ) -> ScheduledLR:
        """This kind sized from ``finding``'s pick and interval (see ``schedule_from``).

        Args:
            finding: an :class:`~kt_lr.results.LRFinding` (``lr``, ``low``, ``high``, and
                ``candidates["edge"]`` when known).
            steps_per_epoch: optimizer steps per epoch, >= 1.
            epochs: epochs of the run, >= 1.
            **options: overrides of the kind's rules, among ``self.options``.
        """
        spe = check_count("steps_per_epoch", steps_per_epoch)
        epochs = check_count("epochs", epochs)
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(self.options) or "none"
            raise ValueError(
                f"Unknown option(s) {unknown} for kind {self.name!r}; allowed: {allowed}."
            )
        return self._build(Plan.from_finding(self.name, finding, spe, epochs, options))

    def from_peak(self, lr: float, steps_per_epoch: int, epochs: int) -> Any:
        """The schedule whose peak (or constant) rate is ``lr``: ``hp_schedule``'s rule.

        Args:
            lr: the peak rate, > 0.
            steps_per_epoch: optimizer steps per epoch, >= 1.
            epochs: epochs of the run, >= 1.
        """
        spe = check_count("steps_per_epoch", steps_per_epoch)
        epochs = check_count("epochs", epochs)
        return self._build(Plan.at_peak(self.name, lr, spe, epochs, self.at_peak(lr))).schedule

    def _build(self, plan: Plan) -> ScheduledLR:
        if plan.total < self.min_steps:
            raise ValueError(
                f"A {self.name} schedule needs at least {self.min_steps} steps; "
                f"steps_per_epoch * epochs = {plan.total}."
            )
        return self.build(plan)


_REGISTRY: dict[str, Kind] = {}


def register(
    name: str,
    *,
    options: Iterable[str] = (),
    at_peak: Callable[[float], Mapping[str, Any]] | None = None,
    min_steps: int = 2,
    overwrite: bool = False,
) -> Callable[[Builder], Builder]:
    """Register a schedule kind: a decorator over its builder, returned unchanged.

    Example::

        @kt_lr.schedules.register("linear", options=("peak_lr",))
        def linear(plan):
            peak = plan.peak()
            decay = keras.optimizers.schedules.PolynomialDecay(peak, plan.total - 1, plan.floor)
            return plan.result(decay, [plan.peak_reason("linear", peak)])

        kt_lr.schedule_from(finding, "linear", steps_per_epoch, epochs)

    Args:
        name: the kind's name, as ``schedule_from`` and ``hp_schedule`` take it.
        options: the option names ``schedule_from`` accepts for the kind.
        at_peak: ``at_peak(v) -> options`` making the builder peak at ``v`` in
            ``hp_schedule`` (whose plan has every rate at ``v``); by default none.
        min_steps: the fewest optimizer steps of a run, >= 1.
        overwrite: replace a kind already registered under ``name``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"A schedule kind {name!r} is already registered; pick another name or pass "
            "overwrite=True to replace it."
        )
    at_peak = at_peak or _no_options
    options, min_steps = tuple(options), check_count("min_steps", min_steps)

    def add(build: Builder) -> Builder:
        _REGISTRY[name] = Kind(name, build, options, at_peak, min_steps)
        return build

    return add


def names() -> tuple[str, ...]:
    """The registered kinds' names, built-in ones first."""
    return tuple(_REGISTRY)


def get(kind: str | Kind) -> Kind:
    """The schedule kind called ``kind``, like ``keras.optimizers.get``.

    Args:
        kind: a registered name (see :func:`names`), or a :class:`Kind`, returned as is.

    Returns:
        The :class:`Kind`; call it as ``get(kind)(finding, steps_per_epoch, epochs)``.

    Raises:
        ValueError: ``kind`` is not registered; the message lists the kinds that are.
    """
    if isinstance(kind, Kind):
        return kind
    if isinstance(kind, str) and kind in _REGISTRY:
        return _REGISTRY[kind]
    raise ValueError(
        f"`kind` must be one of {', '.join(_REGISTRY)}; got {kind!r}. Pass one of these "
        "names, or register your own with kt_lr.schedules.register(name)."
    )
