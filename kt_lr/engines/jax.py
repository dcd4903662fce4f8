"""The JAX engine: the affine probe and the brute-force step as ``jax.jit`` functions.

No variable is ever written (``optimizer.stateless_apply``, see
:class:`~kt_lr.engines._base.StatelessEngine`). Subsamples go through ``jax.lax.map``
and the LR grid through ``jax.vmap`` while one copy of the weights and of the activations
per LR fits the memory caps (``jax.lax.map`` beyond them). A call with fewer subsamples or
LRs than compiled so far is padded to those shapes: repeating a few costs far less than
compiling again.
"""

from __future__ import annotations

import jax
import numpy as np

from kt_lr.data import leaves, map_arrays
from kt_lr.engines._base import StatelessEngine


class JaxEngine(StatelessEngine):
    """The affine probe and the brute-force step as ``jax.jit`` functions."""

    def __init__(self, model):
        super().__init__(model)
        self._stack_len = 0
        self._grid_len = 0
        self._affine = jax.jit(self._affine_many)
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

    def _affine_many(self, values, batches, lrs, check_lrs):
        def one(batch):
            return self._affine_one(values, batch, lrs, check_lrs)

        # one subsample after another (vectorising them too measured no faster on CPU)
        return jax.lax.map(one, batches)

    # -- entry points -----------------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        stacks = (xs, ys, sws, xes, yes, swes)
        m = len(leaves(xs)[0])
        # fewer LRs than compiled so far: the last one repeated, dropped again below
        k = len(lrs)
        self._grid_len = max(k, self._grid_len)
        lrs = np.concatenate([lrs, np.repeat(np.asarray(lrs)[-1:], self._grid_len - k)])
        # a shorter stack (the last chunk) is padded to the longest one compiled so far:
        # a few repeated subsamples cost far less than compiling again
        self._stack_len = max(m, self._stack_len)
        if m < self._stack_len:
            pad = np.zeros(self._stack_len, dtype=int)
            pad[:m] = np.arange(m)
            stacks = map_arrays(lambda t: np.asarray(t)[pad], stacks)
        bases, losses, devs = self._affine(
            self._values(),
            stacks,
            np.asarray(lrs, np.float32),
            np.asarray(check_lrs, np.float32),
        )
        return np.asarray(bases)[:m], np.asarray(losses)[:m, :k], np.asarray(devs)[:m]

    def step(self, x, y, sw, xe, ye, swe, lr):
        base, after = self._step(self._values(), (x, y, sw, xe, ye, swe), np.float32(lr))
        return np.asarray(base), np.asarray(after)
