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
the result says so. This module draws the batches, groups same-shaped subsamples
into stacks for the engine, and turns the differentials into statistics.
"""

from __future__ import annotations

import keras
import numpy as np

from kt_lr import state, stats
from kt_lr.data import BatchStream, leaves, map_arrays
from kt_lr.engines import DEFAULT_GRID, get_engine
from kt_lr.range_test import first_forward
from kt_lr.results import LossDifferentialResult
from kt_lr.validation import (
    check_choice,
    check_confidence,
    check_count,
    check_lr_grid,
    check_measurable_step,
    check_model,
)

AFFINE_RTOL = 1e-3
CHUNK = 20


def default_lrs(low: float = DEFAULT_GRID[0], high: float = DEFAULT_GRID[1], num=DEFAULT_GRID[2]):
    """The default log-spaced grid of learning rates.

    Args:
        low: the smallest learning rate.
        high: the largest learning rate.
        num: how many learning rates.
    """
    return np.geomspace(low, high, num)


def _shape_key(tree) -> tuple:
    return tuple(np.shape(leaf) for leaf in leaves(tree))


def _same_shape_groups(pairs):
    """Split (train, eval) batch pairs into runs whose arrays all share shapes."""
    groups: list[list] = []
    last = None
    for pair in pairs:
        key = (_shape_key(pair[0]), _shape_key(pair[1]))
        if groups and key == last:
            groups[-1].append(pair)
        else:
            groups.append([pair])
            last = key
    return groups


def _stack(group):
    """Six stacked trees (x, y, sw, x_eval, y_eval, sw_eval) with a leading subsample axis."""
    parts = zip(*(train + held for train, held in group), strict=True)
    return [map_arrays(lambda *ts: np.stack([np.asarray(t) for t in ts]), *p) for p in parts]


def loss_differential(
    model,
    x,
    y=None,
    *,
    lrs=None,
    num_subsamples: int = 100,
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

    Args:
        model: a compiled ``keras.Model`` with a constant learning rate; the step is
            its own optimizer's update, the loss its compiled loss.
        x: the training inputs, as ``fit`` takes them: arrays (or dicts / lists of
            them), a ``tf.data.Dataset``, a ``keras.utils.PyDataset`` or any other
            re-iterable of batches (e.g. a torch ``DataLoader``).
        y: the targets when ``x`` holds arrays; ``None`` for datasets.
        lrs: the learning rates to measure (default: 50 points log-spaced over
            1e-7…10, :func:`default_lrs`).
        num_subsamples: how many batches (at least 2).
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
    num_subsamples = check_count("num_subsamples", num_subsamples, 2)
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
    reasons: list[str] = []
    deltas = np.full((num_subsamples, grid.size), np.nan)
    base_losses = np.full(num_subsamples, np.nan)
    bar = keras.utils.Progbar(num_subsamples, verbose=verbose, unit_name="subsample")
    used = "brute_force" if method == "brute_force" else "affine"
    # the middle of the grid and its top: kinks (e.g. Adafactor's min(lr, 1/sqrt(t)))
    # show at large rates
    check_lrs = np.array([np.sqrt(grid[0] * grid[-1]), grid[-1]], dtype=np.float32)
    with state.preserved(model):
        lrs32 = grid.astype(np.float32)
        batch = first
        m = 0
        while m < num_subsamples:
            pairs = []
            for _ in range(min(CHUNK if used == "affine" else 1, num_subsamples - m)):
                pairs.append((batch, stream.random_batch() if holdout else batch))
                batch = stream.random_batch()
            if used == "affine":
                results = [
                    (group, engine.affine(*_stack(group), lrs32, check_lrs))
                    for group in _same_shape_groups(pairs)
                ]
                dev = max(float(np.max(r[2])) for _, r in results)
                if dev > AFFINE_RTOL:
                    name = type(model.optimizer).__name__
                    if method == "affine":
                        raise RuntimeError(
                            f"{name}'s update is not affine in the learning rate here "
                            f"(relative deviation {dev:.2g}); use method='brute_force' or "
                            "method='auto'."
                        )
                    used = "brute_force"
                    reasons.append(
                        f"{name}'s update is not affine in the LR (deviation {dev:.2g}): "
                        "one real step per LR used"
                    )
                    batch = pairs[0][0]  # start again from this chunk, the slow way
                    continue
                for _, (bases, after, _) in results:
                    for base, row in zip(np.asarray(bases), np.asarray(after), strict=True):
                        base_losses[m] = float(base)
                        row = row.astype(np.float64)
                        deltas[m] = np.where(np.isfinite(row), row - base, np.nan)
                        m += 1
            else:
                ((train_b, eval_b),) = pairs
                after = np.empty(grid.size)
                for k, lr in enumerate(lrs32):
                    base, loss_k = engine.step(*train_b, *eval_b, lr)
                    after[k] = float(loss_k)
                base_losses[m] = float(base)
                deltas[m] = np.where(np.isfinite(after), after - float(base), np.nan)
                m += 1
            if verbose:
                bar.update(m)
    if not np.isfinite(base_losses).any():
        raise RuntimeError(
            "The loss before any step was NaN/inf on every subsample: check your data and "
            "labels for NaN/inf and that the loss suits your targets."
        )
    summary = stats.summarize(deltas, confidence=confidence, rng=seed)
    best = stats.best_lr_rules(grid, summary)
    for rule, lr in best.items():
        if lr is not None:
            reasons.append(f"{rule.replace('_', ' ')} of ΔL at {lr:.3g}")
    return LossDifferentialResult(
        lrs=grid,
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
        method=used,
        holdout=bool(holdout),
        reasons=reasons,
        settings={
            "num_subsamples": num_subsamples,
            "batch_size": stream.batch_size,
            "seed": seed,
            "optimizer": type(model.optimizer).__name__,
        },
    )
