"""The JAX engine: the affine probe and the brute-force step as ``jax.jit`` functions.

No variable is ever written (``optimizer.stateless_apply``, see
:class:`~kt_lr.engines._base.StatelessEngine`). One subsample is one compiled call, the
subsamples a Python loop: inside a ``jax.lax.map`` over subsamples XLA on the CPU ran a
BatchNorm CNN's gradient and forward passes 5-6x slower than the same call outside it
(5.1 s against 0.9 s a subsample, 12 LRs, batch 128), and a call costs well under a
millisecond on a small model. The LR grid goes through ``jax.vmap`` while one copy of the
weights and of the activations per LR fits the memory caps (``jax.lax.map`` beyond them).

Every new number of LRs compiles again. The refined chunks' LRs (12-32) are padded to a
larger grid compiled before (the pilot's 50) only when the padding is estimated to cost
less than compiling over :data:`FUTURE_CALLS` more calls (both timed on the calls so far):
on a small model a few repeated LRs cost far less than compiling, on a large one padding
made every subsample 2-4x slower.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from kt_lr.data import leaves, map_arrays
from kt_lr.engines._base import StatelessEngine

FUTURE_CALLS = 20
"""Calls a new grid size is expected to serve (the sampler's usual subsamples after its
pilot): padding is weighed against compiling over this many calls."""


class JaxEngine(StatelessEngine):
    """The affine probe and the brute-force step as ``jax.jit`` functions."""

    def __init__(self, model):
        super().__init__(model)
        self._grids: set[int] = set()  # grid sizes compiled so far
        self._per_lr: float | None = None  # seconds per LR of a compiled call
        self._compile: float | None = None  # seconds the last new grid size took to compile
        self._first: tuple[float, int] | None = None  # (seconds, LRs) of that first call
        self._affine = jax.jit(self._affine_one)
        self._step = jax.jit(self._step_one)

    # -- traced ---------------------------------------------------------------------------
    def _grads(self, w0, nt0, o0, mv0, x, y, sw):
        def objective(w):
            loss = self._loss(w, nt0, mv0, x, y, sw)
            return self._scaled(loss, o0), loss

        grads, loss = jax.grad(objective, has_aux=True)(w0)
        return grads, loss

    def _updates(self, lrs, grads, w0, o0):
        stacked = jax.lax.map(lambda lr: self._update(lr, grads, w0, o0), lrs)
        return [[s[j] for s in stacked] for j in range(int(lrs.shape[0]))]

    def _grid(self, loss_at, lrs):
        if self.vectorize:
            return jax.vmap(loss_at)(lrs)
        return jax.lax.map(loss_at, lrs)

    def padded_grid(self, k: int) -> int:
        """The grid size a call at ``k`` LRs runs at: the smallest one compiled before that
        holds it, when padding to it over :data:`FUTURE_CALLS` calls is estimated to cost
        less than compiling (before both are timed: when it at most doubles the work), else
        ``k``."""
        fits = [g for g in self._grids if g >= k]
        if not fits:
            return k
        g = min(fits)
        if self._per_lr is None or self._compile is None:
            return g if g <= 2 * k else k
        return g if (g - k) * self._per_lr * FUTURE_CALLS <= self._compile else k

    def _timed(self, grid: int, seconds: float) -> None:
        """Learn the cost of an LR and of compiling from a call's duration."""
        if grid in self._grids:
            self._per_lr = seconds / grid
        else:
            self._grids.add(grid)
            self._first = (seconds, grid)
        if self._per_lr is not None and self._first is not None:
            self._compile = max(self._first[0] - self._per_lr * self._first[1], 0.0)

    # -- entry points -----------------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        stacks = (xs, ys, sws, xes, yes, swes)
        k = len(lrs)
        grid = self.padded_grid(k)
        # padding: the last LR repeated, dropped again below
        lrs = np.asarray(np.concatenate([lrs, np.repeat(np.asarray(lrs)[-1:], grid - k)]))
        lrs, check_lrs = lrs.astype(np.float32), np.asarray(check_lrs, np.float32)
        values = self._values()
        bases, losses, devs = [], [], []
        for i in range(len(leaves(xs)[0])):
            batch = map_arrays(lambda t, i=i: np.asarray(t)[i], stacks)
            start = time.perf_counter()
            base, loss, dev = self._affine(values, batch, lrs, check_lrs)
            bases.append(float(base))
            losses.append(np.asarray(loss)[:k])
            devs.append(float(dev))
            self._timed(grid, time.perf_counter() - start)
        return np.array(bases), np.stack(losses), np.array(devs)

    def step(self, x, y, sw, xe, ye, swe, lr):
        base, after = self._step(self._values(), (x, y, sw, xe, ye, swe), np.float32(lr))
        return np.asarray(base), np.asarray(after)
