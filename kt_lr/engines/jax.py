"""The JAX engine: the affine probe and the brute-force step as ``jax.jit`` functions.

No variable is ever written (``optimizer.stateless_apply``, see
:class:`~kt_lr.engines._base.StatelessEngine`). One subsample is one compiled call, the
subsamples a Python loop: inside a ``jax.lax.map`` over subsamples XLA on the CPU ran a
BatchNorm CNN's gradient and forward passes 5-6x slower than the same call outside it
(5.1 s against 0.9 s a subsample, 12 LRs, batch 128), and a call costs well under a
millisecond on a small model. The LR grid goes through ``jax.vmap`` while one copy of the
weights and of the activations per LR fits the memory caps (``jax.lax.map`` beyond them).

Every new number of LRs compiles again. The refined chunks' LRs (12-32) are padded to a
larger grid compiled before (the pilot's 50) only when :class:`~kt_lr.engines._base.GridPadding`
estimates the padding to cost less than compiling: on a small model a few repeated LRs cost
far less than compiling, on a large one padding made every subsample 2-4x slower.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from kt_lr.data import leaves, map_arrays
from kt_lr.engines._base import GridPadding, StatelessEngine


class JaxEngine(StatelessEngine):
    """The affine probe and the brute-force step as ``jax.jit`` functions."""

    def __init__(self, model):
        super().__init__(model)
        self.padding = GridPadding()
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

    # -- entry points -----------------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        stacks = (xs, ys, sws, xes, yes, swes)
        k = len(lrs)
        grid = self.padding.grid(k)
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
            self.padding.timed(grid, time.perf_counter() - start)
        return np.array(bases), np.stack(losses), np.array(devs)

    def step(self, x, y, sw, xe, ye, swe, lr):
        base, after = self._step(self._values(), (x, y, sw, xe, ye, swe), np.float32(lr))
        return np.asarray(base), np.asarray(after)
