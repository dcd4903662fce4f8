"""Keras glue for subsampled one-step loss differentials (autolrtuner's idea, engineered).

For each of ``num_subsamples`` mini-batches and every learning rate of a log
grid: ΔL = L(weights after one optimizer step at that LR) − L(weights before),
always from the optimizer state the model had before the probe.

Fast path: one optimizer update is affine in the learning rate,
``w'(lr) = a + lr·d``. Per subsample the backend's engine (:mod:`kt_lr.engines`)
computes the gradient once, runs the optimizer's own update at LR 0 and LR 1 from
the unchanged state, and evaluates the loss at ``a + lr·d`` for the whole grid with
forward passes only, all in one compiled function. Affinity is checked at run time
on two more LRs; where it fails (custom optimizers, EMA overwrites, Adafactor's
clipping, ...) the brute-force path takes a real optimizer step per LR instead, and
the result says so.

Where the forward passes go (:mod:`kt_lr.refine`): with ``lr_points`` each subsample is
measured at that many LRs of the grid, coarse first, then around the edge and the
minimum; with ``num_subsamples=None`` subsamples come in chunks until the edge is settled
(or ``max_subsamples``, or ``time_budget``). :mod:`kt_lr.measure` runs the chunks on the
engine; this module checks the arguments and turns the differentials into statistics.
"""

from __future__ import annotations

import numpy as np

from kt_lr import refine, state, stats
from kt_lr.data import BatchStream
from kt_lr.engines import DEFAULT_GRID, get_engine
from kt_lr.measure import measure
from kt_lr.range_test import first_forward
from kt_lr.results import LossDifferentialResult
from kt_lr.validation import (
    check_choice,
    check_confidence,
    check_count,
    check_lr_grid,
    check_measurable_step,
    check_model,
    check_seconds,
)


def default_lrs(low: float = DEFAULT_GRID[0], high: float = DEFAULT_GRID[1], num=DEFAULT_GRID[2]):
    """The default log-spaced grid of learning rates.

    Args:
        low: the smallest learning rate.
        high: the largest learning rate.
        num: how many learning rates.
    """
    return np.geomspace(low, high, num)


def loss_differential(
    model,
    x,
    y=None,
    *,
    lrs=None,
    num_subsamples: int | None = 100,
    lr_points: int | None = None,
    max_subsamples: int = refine.MAX_SUBSAMPLES,
    time_budget: float | None = None,
    batch_size: int = 32,
    confidence: float = 0.95,
    holdout: bool = False,
    method: str = "auto",
    sample_weight=None,
    class_weight=None,
    seed: int | None = None,
    verbose: int = 1,
) -> LossDifferentialResult:
    """One-step loss differentials over a log grid of LRs with confidence intervals.

    For each of ``num_subsamples`` batches, ΔL = L(after one step at lr) − L(before)
    for every LR in ``lrs``, each step taken from the optimizer state the model had
    before the probe. The model is left exactly as it was, even when the probe raises.
    With ``lr_points`` and/or ``num_subsamples=None`` the probe spends its forward
    passes where the rules' answers are (module doc): ``lrs`` is then the grid of
    candidate LRs, and the result holds the LRs measured, with a ``measured`` mask.

    Args:
        model: a compiled ``keras.Model`` with a constant learning rate; the step is
            its own optimizer's update, the loss its compiled loss.
        x: the training inputs, as ``fit`` takes them: arrays (or dicts / lists of
            them), a ``tf.data.Dataset``, a ``keras.utils.PyDataset`` or any other
            re-iterable of batches (e.g. a torch ``DataLoader``).
        y: the targets when ``x`` holds arrays; ``None`` for datasets.
        lrs: the learning rates to measure (default: 50 points log-spaced over
            1e-7…10, :func:`default_lrs`).
        num_subsamples: how many batches (at least 2); ``None``: chunks of
            subsamples until the edge is settled (:mod:`kt_lr.refine`), at least 20
            and at most ``max_subsamples``.
        lr_points: measure each subsample at this many LRs of ``lrs`` (coarse, then
            refined around the edge and the minimum); ``None``: at every LR.
        max_subsamples: the cap when ``num_subsamples`` is ``None``.
        time_budget: seconds the subsamples may take; when ``num_subsamples`` is
            ``None``, no chunk starts past the first 20 subsamples that would overrun it.
        batch_size: the batch size for array data.
        confidence: the level of the t and bootstrap intervals, in ``(0, 1)``.
        holdout: measure L on another batch than the gradient's (a generalising
            rather than a memorising decrease).
        method: ``"auto"`` (the affine fast path, brute force where the optimizer's
            update is not affine in the LR), ``"affine"`` (raise where it is not) or
            ``"brute_force"`` (one real step per LR).
        sample_weight: per-sample weights for array data.
        class_weight: ``{class id: weight}``, per-sample weights from the targets as
            ``fit`` makes them (not with ``sample_weight``).
        seed: seeds the local generators that draw batches and bootstrap resamples.
        verbose: 0 for silence, 1 for a progress bar.

    Returns:
        A :class:`~kt_lr.results.LossDifferentialResult`: ΔL per subsample and LR, its
        statistics and intervals, the best LR by each rule, the method used and why.
    """
    grid = check_lr_grid(default_lrs() if lrs is None else lrs)
    if num_subsamples is not None:
        num_subsamples = check_count("num_subsamples", num_subsamples, 2)
    if lr_points is not None:
        lr_points = check_count("lr_points", lr_points, 2)
    max_subsamples = check_count("max_subsamples", max_subsamples, 2)
    time_budget = check_seconds("time_budget", time_budget, example=60, none_ok=True)
    check_confidence(confidence)
    check_choice("method", method, ("auto", "affine", "brute_force"))
    check_model(model)
    check_measurable_step(model)  # a model's own train_step: what it optimises is unknown
    stream = BatchStream(
        x,
        y,
        batch_size=batch_size,
        sample_weight=sample_weight,
        class_weight=class_weight,
        seed=seed,
    )
    first = stream.random_batch()
    first_forward(model, first)
    engine = get_engine(model)
    sampler = refine.Sampler(
        grid,
        lr_points=lr_points,
        num_subsamples=num_subsamples,
        max_subsamples=max_subsamples,
        confidence=confidence,
    )
    with state.preserved(model):
        run = measure(
            engine,
            stream,
            sampler,
            first,
            holdout=holdout,
            method=method,
            optimizer=type(model.optimizer).__name__,
            time_budget=time_budget if num_subsamples is None else None,
            verbose=verbose,
        )
    reasons = run.reasons
    base_losses = np.asarray(run.base_losses)
    lrs_measured, deltas, measured = sampler.arrays()
    if not np.isfinite(base_losses).any():
        raise RuntimeError(
            "The loss before any step was NaN/inf on every subsample: check your data and "
            "labels for NaN/inf and that the loss suits your targets."
        )
    summary = stats.summarize(deltas, confidence=confidence, rng=seed, measured=measured)
    best = refine.best_rules(lrs_measured, summary, sampler.count)
    if sampler.k < grid.size or num_subsamples is None:
        reasons.append(_sampling_note(sampler, grid.size))
    for rule, lr in best.items():
        if lr is not None:
            reasons.append(f"{rule.replace('_', ' ')} of ΔL at {lr:.3g}")
    return LossDifferentialResult(
        lrs=lrs_measured,
        deltas=deltas,
        base_losses=base_losses,
        mean=summary["mean"],
        median=summary["median"],
        std=summary["std"],
        t_low=summary["t_low"],
        t_high=summary["t_high"],
        boot_low=summary["boot_low"],
        boot_high=summary["boot_high"],
        confidence=float(confidence),
        best=best,
        method=run.method,
        holdout=bool(holdout),
        reasons=reasons,
        settings={
            "num_subsamples": sampler.count,
            "batch_size": stream.batch_size,
            "seed": seed,
            "optimizer": type(model.optimizer).__name__,
            "lr_points": sampler.k,
            "lattice": grid.tolist(),
            "max_subsamples": sampler.cap,
            "stop_reason": sampler.stop_reason,
            "chunks": sampler.history,
            "seconds": run.seconds,
            "chunk_seconds": run.chunk_seconds,
            "vectorized": bool(getattr(engine, "vectorize", False)),
        },
        measured=measured,
        count=summary["count"],
    )


def _sampling_note(sampler: refine.Sampler, size: int) -> str:
    """How many subsamples and LRs were measured and why sampling stopped, in words."""
    why = {
        "fixed": "as asked",
        "settled": "the edge was settled",
        "max_subsamples": f"the cap of {sampler.cap}",
        "time budget": "the time budget was spent",
    }.get(sampler.stop_reason or "", sampler.stop_reason)
    lrs = (
        f"{sampler.k} of the {size} LRs each (coarse, then around the edge and the minimum)"
        if sampler.k < size
        else f"all {size} LRs each"
    )
    return f"{sampler.count} subsamples ({why}), {lrs}"
