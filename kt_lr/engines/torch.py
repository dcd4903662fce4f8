"""The PyTorch engine: the affine probe and the brute-force step in eager PyTorch.

No variable is ever written (``optimizer.stateless_apply``, see
:class:`~kt_lr.engines._base.StatelessEngine`). The gradient comes from
``torch.autograd.grad`` on the stateless forward pass (the same loss Keras's torch
trainer differentiates); the updates and the grid run under ``torch.no_grad``, the grid
batched by ``torch.func.vmap`` where the model allows it (a Python loop otherwise).
Keras's torch optimizers update the tensors they are given in place, so every update
gets fresh copies.
"""

from __future__ import annotations

import numpy as np
import torch
from keras import ops

from kt_lr.data import leaves, map_arrays
from kt_lr.engines._base import StatelessEngine

# torch's global generator is reseeded with this before every forward pass of a probe
_TORCH_SEED = 0


def _tensors(tree):
    return map_arrays(ops.convert_to_tensor, tree)


class TorchEngine(StatelessEngine):
    """The affine probe and the brute-force step in eager PyTorch."""

    def __init__(self, model):
        super().__init__(model)
        # None until the first grid: can torch.func.vmap batch this model's forward pass?
        self._vmap_ok = None

    def _no_grad(self):
        return torch.no_grad()

    def _loss(self, w, nt, mv, x, y, sw):
        # Keras's unseeded torch dropout draws from torch's global generator rather than
        # the layer's seed state: reseed it so that every evaluation sees the same mask
        # (the entry points fork the generator, so the caller's stream is untouched)
        torch.default_generator.manual_seed(_TORCH_SEED)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.manual_seed(_TORCH_SEED)
        return super()._loss(w, nt, mv, x, y, sw)

    def _grads(self, w0, nt0, o0, mv0, x, y, sw):
        # leaves that share the weights' storage; autograd never writes to them
        w = [t.detach().requires_grad_(True) for t in w0]
        with torch.enable_grad():
            loss = self._loss(w, nt0, mv0, x, y, sw)
            grads = torch.autograd.grad(self._scaled(loss, o0), w, allow_unused=True)
        grads = [
            torch.zeros_like(wi) if g is None else g.detach()
            for g, wi in zip(grads, w, strict=True)
        ]
        return grads, loss.detach()

    def _update(self, lr, grads, w0, o0):
        # Keras's torch optimizers update the given tensors in place: hand them copies
        return super()._update(
            lr,
            [g.clone() for g in grads],
            [t.detach().clone() for t in w0],
            [t.detach().clone() for t in o0],
        )

    def _grid(self, loss_at, lrs):
        if self.vectorize and self._vmap_ok is not False:
            # the whole grid in one batched forward pass; the same dropout mask for every
            # LR, as the loop gives (one seed state for all evaluations)
            try:
                out = torch.func.vmap(loss_at, randomness="same")(lrs)
                self._vmap_ok = True
                return out
            except Exception:  # noqa: BLE001 - a layer torch.func cannot batch
                if self._vmap_ok:
                    raise
                self._vmap_ok = False
        return torch.stack([loss_at(lr) for lr in lrs])

    # -- entry points -----------------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        with torch.random.fork_rng():
            values = self._values()
            stacks = (xs, ys, sws, xes, yes, swes)
            lrs = _tensors(np.asarray(lrs, np.float32))
            check_lrs = _tensors(np.asarray(check_lrs, np.float32))
            rows = [
                self._affine_one(
                    values, _tensors(map_arrays(lambda t, i=i: t[i], stacks)), lrs, check_lrs
                )
                for i in range(len(leaves(xs)[0]))
            ]
        bases, losses, devs = zip(*rows, strict=True)
        return (
            np.asarray([float(b) for b in bases], np.float32),
            np.stack([ops.convert_to_numpy(row) for row in losses]).astype(np.float32),
            np.asarray([float(d) for d in devs], np.float32),
        )

    def step(self, x, y, sw, xe, ye, swe, lr):
        with torch.random.fork_rng():
            batch = _tensors((x, y, sw, xe, ye, swe))
            base, after = self._step_one(self._values(), batch, _tensors(np.float32(lr)))
        return np.float32(float(base)), np.float32(float(after))
