"""Keras glue of the loss differentials: the sampler's chunks measured on an engine.

:class:`kt_lr.refine.Sampler` says which LRs and how many subsamples each chunk has;
:func:`measure` draws the batches, groups same-shaped subsamples into stacks for the
engine's affine path (falling back to one real step per LR where the update is not
affine in the LR), hands the ΔL back to the sampler, stops it when the time budget would
be overrun, and shows the progress.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np

from kt_lr.data import leaves, map_arrays
from kt_lr.refine import Sampler

AFFINE_RTOL = 1e-3
"""Largest relative deviation of a check update from the affine line."""


@dataclass
class Measured:
    """What :func:`measure` saw besides the ΔL (which the sampler keeps)."""

    base_losses: list[float] = field(default_factory=list)
    method: str = "affine"
    reasons: list[str] = field(default_factory=list)
    chunk_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


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
    """Six stacked trees (x, y, sw, x_eval, y_eval, sw_eval) with a leading subsample axis;
    the last three ``None`` when every subsample is measured on its gradient's batch."""
    same = all(held is train for train, held in group)
    parts = list(zip(*(train + held for train, held in group), strict=True))
    stacked = [map_arrays(lambda *ts: np.stack([np.asarray(t) for t in ts]), *p) for p in parts]
    return stacked[:3] + [None] * 3 if same else stacked


def _affine(engine, pairs, lrs32, check_lrs):
    """``(bases, after rows, largest deviation)`` of a chunk on the affine path."""
    results = [engine.affine(*_stack(g), lrs32, check_lrs) for g in _same_shape_groups(pairs)]
    bases = np.concatenate([np.asarray(r[0], dtype=np.float64) for r in results])
    after = np.concatenate([np.asarray(r[1], dtype=np.float64) for r in results])
    return bases, after, max(float(np.max(r[2])) for r in results)


def _brute_force(engine, pairs, lrs32):
    """``(bases, after rows)`` of a chunk, one real optimizer step per subsample and LR."""
    bases, rows = [], []
    for train_b, eval_b in pairs:
        after = np.empty(lrs32.size)
        held = (None, None, None) if eval_b is train_b else eval_b
        for k, lr in enumerate(lrs32):
            base, loss_k = engine.step(*train_b, *held, lr)
            after[k] = float(loss_k)
        bases.append(float(base))
        rows.append(after)
    return np.asarray(bases), np.asarray(rows)


def measure(
    engine,
    stream,
    sampler: Sampler,
    first,
    *,
    holdout: bool,
    method: str,
    optimizer: str,
    time_budget: float | None = None,
    verbose: int = 1,
) -> Measured:
    """Measure the sampler's chunks until it is done (module doc); the model's state is the
    caller's to keep.

    Args:
        engine: the backend's engine for the model.
        stream: the :class:`~kt_lr.data.BatchStream` of the user's data.
        sampler: decides the LRs and the subsamples; it keeps the ΔL.
        first: the first batch (already drawn).
        holdout: the loss after the step on another batch than the gradient's.
        method: ``"auto"``, ``"affine"`` or ``"brute_force"``.
        optimizer: the optimizer's name, for messages.
        time_budget: seconds the measuring may take (``None``: no limit); past the
            sampler's minimum, no chunk starts that would overrun it.
        verbose: 0 for silence, 1 for a progress bar.
    """
    lattice = sampler.lattice
    # the middle of the grid and its top: kinks (e.g. Adafactor's min(lr, 1/sqrt(t)))
    # show at large rates
    check_lrs = np.array([np.sqrt(lattice[0] * lattice[-1]), lattice[-1]], dtype=np.float32)
    engine.size_grid(len(leaves(first[0])[0]))
    out = Measured(method="brute_force" if method == "brute_force" else "affine")
    bar = keras.utils.Progbar(sampler.cap, verbose=verbose, unit_name="subsample")
    start = time.perf_counter()
    batch = first
    while not sampler.done:
        elapsed = time.perf_counter() - start
        if (
            time_budget is not None
            and sampler.count >= sampler.floor
            and out.chunk_seconds
            and elapsed + out.chunk_seconds[-1] > time_budget
        ):
            sampler.stop("time budget")
            break
        indices, count = sampler.request()
        lrs32 = lattice[indices].astype(np.float32)
        pairs = []
        for _ in range(count):
            pairs.append((batch, stream.random_batch() if holdout else batch))
            batch = stream.random_batch()
        t0 = time.perf_counter()
        if out.method == "affine":
            bases, after, dev = _affine(engine, pairs, lrs32, check_lrs)
            if dev > AFFINE_RTOL:
                if method == "affine":
                    raise RuntimeError(
                        f"{optimizer}'s update is not affine in the learning rate here "
                        f"(relative deviation {dev:.2g}); use method='brute_force' or "
                        "method='auto'."
                    )
                out.method = "brute_force"
                out.reasons.append(
                    f"{optimizer}'s update is not affine in the LR (deviation {dev:.2g}): "
                    "one real step per LR used"
                )
        if out.method == "brute_force":
            bases, after = _brute_force(engine, pairs, lrs32)
        deltas = np.where(np.isfinite(after), after - bases[:, None], np.nan)
        out.base_losses.extend(float(b) for b in bases)
        sampler.add(indices, deltas)
        out.chunk_seconds.append(time.perf_counter() - t0)
        bar.update(sampler.count, [("LRs", len(indices))], finalize=False)
    bar.update(sampler.count, finalize=True)
    out.seconds = time.perf_counter() - start
    return out
