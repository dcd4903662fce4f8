"""How much the probes may cost, and how big they can be for that (pure numpy).

``find_lr`` measures a few costs on the user's model before it probes
(:class:`CostEstimate`: a training step with and without tracing, a forward pass, the
steps of one epoch; :mod:`kt_lr.calibrate` measures them) and :func:`plan_probes` sizes
both probes to a budget, by default one epoch of the user's data as ``fit`` would run it
from cold (the first, traced step plus the rest):

- the range test keeps its 100 steps unless they would take more than
  :data:`RANGE_SHARE` of the budget (never fewer than :data:`MIN_RANGE_STEPS`);
- the loss differentials get the rest: each subsample costs about one training step (its
  gradient) plus one forward pass per LR it is measured at, so the LRs per subsample
  (``lr_points``, one of :data:`LR_POINTS`) are chosen for :data:`TARGET_SUBSAMPLES`
  subsamples to fit; the subsamples then come in chunks until the answer is settled
  (:mod:`kt_lr.refine`), the cap is reached or the budget is spent.

The sizes are planned on the traced costs (an epoch of traced steps), so that a second call
on the same model plans the same sizes and reuses what the first one traced; the time
budget that stops the subsamples is the cold one (tracing included). A budget is never below
:data:`MIN_SECONDS`: on small models tracing alone takes longer than an epoch, and a chunk
of subsamples costs milliseconds. An explicit ``num_steps``, ``lr_points`` or
``num_subsamples`` always wins. The oracle's probe gets a share of one trial
(:func:`budget_for_trial`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kt_lr.refine import MAX_SUBSAMPLES

RANGE_STEPS = 100
"""The range test's steps when the budget allows them."""

MIN_RANGE_STEPS = 50
"""The range test never takes fewer steps when sized by the budget."""

RANGE_SHARE = 0.35
"""The range test takes at most this share of the budget when sized by it."""

LR_POINTS = (12, 16, 24, 32)
"""The LRs per subsample the budget chooses from (the largest that fits, else the first;
the whole grid when it fits too): a few sizes, so that the compiled probe is reused."""

TARGET_SUBSAMPLES = 40
"""``lr_points`` is chosen so that about this many subsamples fit in the budget."""

MIN_SECONDS = 3.0
"""The smallest budget in seconds (small models: tracing dominates, subsamples are cheap)."""

UNKNOWN_EPOCH_STEPS = 1000
"""Steps of one epoch assumed when the data does not say (a repeating dataset)."""

TRIAL_SHARE = 0.1
"""The oracle's probe may cost this share of one trial's epochs (at least one epoch)."""


@dataclass
class CostEstimate:
    """What one unit of work costs on the user's model, in seconds.

    Attributes:
        step_seconds: one training step, traced already.
        first_step_seconds: the first training step, tracing included.
        forward_seconds: one forward pass of a batch (an upper bound is fine).
        steps_per_epoch: training steps of one epoch (``None``: unknown).
        batch_size: the batch size the costs were measured at.
    """

    step_seconds: float
    first_step_seconds: float
    forward_seconds: float
    steps_per_epoch: int | None
    batch_size: int

    @property
    def epoch_steps(self) -> int:
        """Steps of one epoch (:data:`UNKNOWN_EPOCH_STEPS` when unknown)."""
        return UNKNOWN_EPOCH_STEPS if self.steps_per_epoch is None else int(self.steps_per_epoch)

    def epoch_seconds(self, cold: bool = True) -> float:
        """One epoch of ``fit``: from cold, the first (traced) step and the others."""
        if not cold:
            return self.epoch_steps * self.step_seconds
        return self.first_step_seconds + max(self.epoch_steps - 1, 0) * self.step_seconds

    def subsample_seconds(self, lr_points: int) -> float:
        """One subsample of the loss differentials: its gradient (about a training step),
        the loss before the step and one forward pass per LR."""
        return self.step_seconds + (lr_points + 1) * self.forward_seconds


@dataclass
class ProbePlan:
    """The probes' sizes for a budget (see the module).

    Attributes:
        budget_seconds: what both probes may spend together, calibration included.
        budget_epochs: the budget in epochs of the user's data.
        range_steps: the range test's steps.
        lr_points: LRs measured per subsample (``None``: every LR of the grid).
        num_subsamples: a fixed number of subsamples (``None``: sequential).
        max_subsamples: the cap of sequential subsamples.
        estimate: the costs the plan was made from.
        notes: which sizes were given rather than planned, and the like.
    """

    budget_seconds: float
    budget_epochs: float
    range_steps: int
    lr_points: int | None
    num_subsamples: int | None
    max_subsamples: int
    estimate: CostEstimate
    notes: list[str] = field(default_factory=list)

    def range_seconds(self) -> float:
        """The range test's expected cost (its steps; tracing was paid by calibration)."""
        return self.range_steps * self.estimate.step_seconds

    def describe(self, lattice_size: int) -> str:
        """The estimate and the plan in words (what ``verbose`` prints).

        Args:
            lattice_size: LRs of the differentials' grid.
        """
        e = self.estimate
        points = lattice_size if self.lr_points is None else self.lr_points
        subs = (
            f"{self.num_subsamples} subsamples"
            if self.num_subsamples is not None
            else f"subsamples in chunks until settled (at most {self.max_subsamples})"
        )
        epoch = "" if e.steps_per_epoch is not None else " (epoch length unknown: assumed)"
        lines = [
            f"find_lr cost estimate: training step {_secs(e.step_seconds)} (first, with "
            f"tracing: {_secs(e.first_step_seconds)}), forward pass {_secs(e.forward_seconds)}"
            f"; one epoch = {e.epoch_steps} steps of {e.batch_size}{epoch} "
            f"~ {_secs(e.epoch_seconds())}",
            f"budget {self.budget_epochs:g} epoch(s) ~ {_secs(self.budget_seconds)}: range test "
            f"{self.range_steps} steps (~{_secs(self.range_seconds())}); loss differentials "
            f"{points} of {lattice_size} LRs per subsample "
            f"(~{_secs(e.subsample_seconds(points))} each), {subs}",
        ]
        return "\n".join(lines + [f"  {n}" for n in self.notes])


def _secs(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _lr_points(estimate: CostEstimate, per_subsample: float, lattice_size: int) -> int | None:
    """The most LRs per subsample (of :data:`LR_POINTS`, or the whole grid: ``None``) whose
    cost fits ``per_subsample`` seconds; the fewest when none fits."""
    if estimate.subsample_seconds(lattice_size) <= per_subsample:
        return None
    fits = [
        k for k in LR_POINTS if k < lattice_size and estimate.subsample_seconds(k) <= per_subsample
    ]
    return max(fits) if fits else min(LR_POINTS[0], lattice_size)


def budget_for_trial(epochs, share: float = TRIAL_SHARE) -> float:
    """The oracle's probe budget in epochs: ``share`` of one trial's epochs, at least one.

    Args:
        epochs: the epochs given to ``search()`` (``None``: one).
        share: the share of a trial the probe may cost.
    """
    epochs = 1.0 if epochs is None else float(epochs)
    return max(1.0, share * epochs)


def plan_probes(
    estimate: CostEstimate,
    *,
    budget_epochs: float = 1.0,
    lattice_size: int = 50,
    range_test: bool = True,
    differential: bool = True,
    range_steps: int | None = None,
    lr_points: int | None = None,
    num_subsamples: int | None = None,
) -> ProbePlan:
    """Size the probes to a budget (see the module); explicit sizes win.

    Args:
        estimate: the measured costs.
        budget_epochs: the budget in epochs of the user's data (> 0).
        lattice_size: LRs of the differentials' grid.
        range_test: whether the range test runs.
        differential: whether the loss differentials run.
        range_steps: the range test's steps, given (``None``: planned).
        lr_points: LRs per subsample, given (``None``: planned).
        num_subsamples: a fixed number of subsamples, given (``None``: sequential).
    """
    budget = max(budget_epochs * estimate.epoch_seconds(), MIN_SECONDS)
    traced = max(budget_epochs * estimate.epoch_seconds(cold=False), MIN_SECONDS)
    notes = []
    if range_steps is not None:
        notes.append(f"range test: num_steps={range_steps} as given")
    elif range_test:
        affordable = RANGE_SHARE * traced / max(estimate.step_seconds, 1e-9)
        range_steps = int(min(RANGE_STEPS, max(MIN_RANGE_STEPS, math.floor(affordable))))
    else:
        range_steps = RANGE_STEPS
    left = traced - (range_steps * estimate.step_seconds if range_test else 0.0)
    if lr_points is not None:
        notes.append(f"loss differentials: {lr_points} LRs per subsample as given")
    elif differential:
        lr_points = _lr_points(estimate, left / TARGET_SUBSAMPLES, lattice_size)
    if num_subsamples is not None:
        notes.append(f"loss differentials: num_subsamples={num_subsamples} as given")
    return ProbePlan(
        budget_seconds=float(budget),
        budget_epochs=float(budget_epochs),
        range_steps=int(range_steps),
        lr_points=lr_points,
        num_subsamples=num_subsamples,
        max_subsamples=MAX_SUBSAMPLES,
        estimate=estimate,
        notes=notes,
    )
