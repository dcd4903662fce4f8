"""Measure what the probes will cost on the user's model and plan them (Keras glue).

Before probing, ``find_lr`` times three training steps (the first one traces the model's
train function, which the range test then reuses) and one forward pass on a batch of the
user's data, reads the length of an epoch off the data, and sizes both probes to the
budget with the pure :func:`kt_lr.budget.plan_probes`. The model is restored bit for bit
afterwards, as after any probe.
"""

from __future__ import annotations

import time

from kt_lr import budget, state, training
from kt_lr.data import BatchStream
from kt_lr.range_test import first_forward
from kt_lr.validation import check_model

FORWARD_SHARE = 0.4
"""A forward pass is taken to cost at most this share of a training step: an eager
forward pass over-states the compiled one on small models (per-op overhead)."""


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def estimate_costs(model, batch, steps_per_epoch: int | None, batch_size: int):
    """A :class:`~kt_lr.budget.CostEstimate` measured on ``model`` with ``batch``.

    Args:
        model: the compiled ``keras.Model`` (built here when it is not).
        batch: one ``(x, y, sample_weight)`` batch of the user's data.
        steps_per_epoch: training steps of one epoch of the user's data (``None``: unknown).
        batch_size: the batch size of ``batch``.
    """
    x, y, sw = batch
    first_forward(model, batch)
    with state.preserved(model), training.fit_shaped_steps(model):

        def step():
            model.train_on_batch(x, y, sample_weight=sw)

        first = _seconds(step)
        steps = [_seconds(step) for _ in range(2)]
    forward = _seconds(lambda: model(x, training=False))
    step_seconds = min(steps)
    return budget.CostEstimate(
        step_seconds=step_seconds,
        first_step_seconds=first,
        forward_seconds=min(forward, FORWARD_SHARE * step_seconds),
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
    )


def plan(
    model,
    x,
    y=None,
    *,
    budget_epochs: float,
    batch_size: int,
    seed=None,
    probes=("range_test", "loss_differential"),
    lattice_size: int = 50,
    options: dict | None = None,
    weights: dict | None = None,
) -> budget.ProbePlan:
    """Measure the costs on ``model`` and size the probes to ``budget_epochs`` epochs.

    Args:
        model: the compiled ``keras.Model``.
        x: the training inputs, as ``fit`` takes them.
        y: the targets when ``x`` holds arrays.
        budget_epochs: the budget in epochs of the user's data.
        batch_size: the batch size for array data.
        seed: seeds the local generator that draws the batch.
        probes: the probes that will run.
        lattice_size: LRs of the differentials' grid.
        options: the probes' options the user gave (``num_steps``, ``lr_points``,
            ``num_subsamples``): they win over the plan.
        weights: ``sample_weight`` / ``class_weight`` as given to ``find_lr``.
    """
    options = options or {}
    check_model(model)
    stream = BatchStream(x, y, batch_size=batch_size, seed=seed, **(weights or {}))
    estimate = estimate_costs(model, stream.next_batch(), stream.num_batches, stream.batch_size)
    return budget.plan_probes(
        estimate,
        budget_epochs=budget_epochs,
        lattice_size=lattice_size,
        range_test="range_test" in probes,
        differential="loss_differential" in probes,
        range_steps=options.get("num_steps"),
        lr_points=options.get("lr_points"),
        num_subsamples=options.get("num_subsamples"),
    )
