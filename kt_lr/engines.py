"""Affine-step engines for the JAX and PyTorch backends of Keras 3.

Each engine answers the same two questions as the TensorFlow engine in
:mod:`kt_lr.differential`:

``affine(xs, ys, sws, xes, yes, swes, lrs, check_lrs) -> (bases[M], losses[M, K], devs[M])``
    for a stack of ``M`` subsamples (leading axis; ``ys``/``sws`` may be ``None``):
    the gradient once at the current weights, the optimizer's own update at LR 0
    and LR 1 from the unchanged optimizer state (``w'(lr) = a + lr·d``), the loss
    at ``a + lr·d`` for every LR of the grid, and the largest relative deviation
    of real updates at the two ``check_lrs`` from that line (``inf`` when ``a``
    or ``d`` is not finite; a check update that overflows is ignored).

``step(x, y, sw, xe, ye, swe, lr) -> (base, after)``
    the brute-force reference: one real update at ``lr``, the loss before and after.

Both backends have a working ``optimizer.stateless_apply``, so no variable is
ever written: the learning rate is swapped in the list of optimizer values that
goes into ``stateless_apply`` and the model's forward passes use
``model.stateless_call`` with explicit weights. Every evaluation of one
subsample uses the same non-trainable values (BatchNorm statistics, dropout
seeds), those the model had before the probe.

JAX: one ``jax.jit`` function per engine; subsamples go through
``jax.lax.map`` and the LR grid through ``jax.vmap`` while one copy of the
weights per LR fits the memory cap (``jax.lax.map`` beyond it).

PyTorch: the gradient comes from ``torch.autograd.grad`` on the stateless
forward pass (the same loss Keras's torch trainer differentiates); the updates
and the grid run under ``torch.no_grad``, the grid batched by
``torch.func.vmap`` where the model allows it (a Python loop otherwise).
Keras's torch optimizers update the tensors they are given in place, so every
update gets fresh copies.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kt_lr.differential import DEFAULT_GRID, VECTORIZE_MAX_FLOATS, training_loss

# torch's global generator is reseeded with this before every forward pass of a probe
_TORCH_SEED = 0


def _tree_map(fn, tree):
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_tree_map(fn, v) for v in tree)
    return fn(tree)


def _lr_index(optimizer) -> int:
    """Position of the learning-rate variable among ``optimizer.variables``."""
    lr_var = optimizer.learning_rate
    for i, v in enumerate(optimizer.variables):
        if v is lr_var:
            return i
    raise ValueError(
        f"{type(optimizer).__name__}'s learning rate is not one of its variables, so kt_lr "
        "cannot set it for a stateless update on this backend. Compile the model with a "
        "plain float learning rate, e.g. keras.optimizers.Adam(learning_rate=1e-3)."
    )


class _StatelessEngine:
    """Backend-neutral pieces: the loss, one stateless update, the affinity check."""

    def __init__(self, model):
        self.model = model
        self.opt = model.optimizer
        self.tvars = list(model.trainable_variables)
        self.ntvars = list(model.non_trainable_variables)
        self.ovars = list(self.opt.variables)
        self.mvars = list(model.metrics_variables)
        self.lr_index = _lr_index(self.opt)
        self.lr_dtype = self.ovars[self.lr_index].dtype
        self._kwargs = {"training": True} if getattr(model, "_call_has_training_arg", True) else {}
        self.num_params = sum(int(np.prod(v.shape)) for v in self.tvars)
        # one copy of the weights per LR when the grid is vectorised: cap that memory
        self.vectorize = self.num_params * DEFAULT_GRID[2] <= VECTORIZE_MAX_FLOATS

    # -- values of the real variables ------------------------------------------------
    def _values(self):
        return (
            [v.value for v in self.tvars],
            [v.value for v in self.ntvars],
            [v.value for v in self.ovars],
            [v.value for v in self.mvars],
        )

    # -- the loss at given weights ---------------------------------------------------
    def _loss(self, w, nt, mv, x, y, sw):
        """Training loss (as ``fit`` computes it, regularisers included) at weights ``w``."""
        loss = training_loss(self.model, w, nt, mv, x, y, sw, self._kwargs)
        return ops.cast(loss, "float32")

    def _scaled(self, loss, o):
        """The loss the optimizer's gradients are taken of (loss scaling, as in fit)."""
        if getattr(self.opt, "loss_scale_factor", None) is None:
            return loss
        with keras.StatelessScope(state_mapping=list(zip(self.ovars, o, strict=True))):
            return self.opt.scale_loss(loss)

    # -- one optimizer update from the unchanged state ---------------------------------
    def _opt_values(self, o0, lr):
        o = list(o0)
        o[self.lr_index] = ops.cast(lr, self.lr_dtype)
        return o

    def _update(self, lr, grads, w0, o0):
        new_w, _ = self.opt.stateless_apply(self._opt_values(o0, lr), grads, w0)
        return list(new_w)

    # -- run-time affinity check (array code: jax.numpy or torch, as ``self.xp``) --------
    def _all_finite(self, tensors):
        xp = self.xp
        return xp.all(xp.stack([xp.all(xp.isfinite(t)) for t in tensors]))

    def _deviation(self, a, d, checks):
        """Largest relative distance of the check updates from the line ``a + lr·d``.

        ``checks`` is a list of ``(lr, weights after a real update at lr)``; ``inf`` when
        ``a`` or ``d`` is not finite.
        """
        xp = self.xp
        zero = ops.convert_to_tensor(0.0, "float32")  # on the backend's device
        dev = zero
        for lr_c, c in checks:
            worst = zero
            for ai, di, ci in zip(a, d, c, strict=True):
                miss = xp.max(xp.abs(ci - (ai + lr_c * di)))
                scale = xp.max(xp.abs(ci - ai)) + xp.max(xp.abs(ai)) * 1e-6 + 1e-12
                worst = xp.maximum(worst, miss / scale)
            # an update that overflows at a huge check LR says nothing against affinity
            dev = xp.maximum(dev, xp.where(self._all_finite(c), worst, zero))
        ok = self._all_finite(a) & self._all_finite(d) & xp.isfinite(dev)
        return xp.where(ok, dev, ops.convert_to_tensor(np.inf, "float32"))


class JaxEngine(_StatelessEngine):
    """The affine probe and the brute-force step as ``jax.jit`` functions."""

    def __init__(self, model):
        super().__init__(model)
        import jax

        self.jax = jax
        self.xp = jax.numpy
        self._stack_len = 0
        self._affine = jax.jit(self._affine_many)
        self._step = jax.jit(self._step_values)

    # -- traced ---------------------------------------------------------------------
    def _grads(self, w0, nt0, o0, mv0, x, y, sw):
        def objective(w):
            return self._scaled(self._loss(w, nt0, mv0, x, y, sw), o0)

        return self.jax.grad(objective)(w0)

    def _affine_one(self, values, batch, lrs, check_lrs):
        w0, nt0, o0, mv0 = values
        x, y, sw, xe, ye, swe = batch
        grads = self._grads(w0, nt0, o0, mv0, x, y, sw)
        a = self._update(0.0, grads, w0, o0)
        b = self._update(1.0, grads, w0, o0)
        d = [bi - ai for ai, bi in zip(a, b, strict=True)]
        checks = [(check_lrs[j], self._update(check_lrs[j], grads, w0, o0)) for j in range(2)]
        dev = self._deviation(a, d, checks)
        base = self._loss(w0, nt0, mv0, xe, ye, swe)

        def loss_at(lr):
            w = [ai + ops.cast(lr, ai.dtype) * di for ai, di in zip(a, d, strict=True)]
            return self._loss(w, nt0, mv0, xe, ye, swe)

        if self.vectorize:
            losses = self.jax.vmap(loss_at)(lrs)
        else:
            losses = self.jax.lax.map(loss_at, lrs)
        return base, losses, dev

    def _affine_many(self, values, batches, lrs, check_lrs):
        def one(batch):
            return self._affine_one(values, batch, lrs, check_lrs)

        # one subsample after another (vectorising them too measured no faster on CPU)
        return self.jax.lax.map(one, batches)

    def _step_values(self, values, batch, lr):
        w0, nt0, o0, mv0 = values
        x, y, sw, xe, ye, swe = batch
        grads = self._grads(w0, nt0, o0, mv0, x, y, sw)
        base = self._loss(w0, nt0, mv0, xe, ye, swe)
        after = self._loss(self._update(lr, grads, w0, o0), nt0, mv0, xe, ye, swe)
        return base, after

    # -- entry points -----------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        stacks = (xs, ys, sws, xes, yes, swes)
        m = len(_leaves(xs)[0])
        # a shorter stack (the last chunk) is padded to the longest one compiled so far:
        # a few repeated subsamples cost far less than compiling again
        self._stack_len = max(m, self._stack_len)
        if m < self._stack_len:
            pad = np.zeros(self._stack_len, dtype=int)
            pad[:m] = np.arange(m)
            stacks = _tree_map(lambda t: np.asarray(t)[pad], stacks)
        bases, losses, devs = self._affine(
            self._values(),
            stacks,
            np.asarray(lrs, np.float32),
            np.asarray(check_lrs, np.float32),
        )
        return np.asarray(bases)[:m], np.asarray(losses)[:m], np.asarray(devs)[:m]

    def step(self, x, y, sw, xe, ye, swe, lr):
        base, after = self._step(self._values(), (x, y, sw, xe, ye, swe), np.float32(lr))
        return np.asarray(base), np.asarray(after)


class TorchEngine(_StatelessEngine):
    """The affine probe and the brute-force step in eager PyTorch."""

    def __init__(self, model):
        super().__init__(model)
        import torch

        self.torch = self.xp = torch
        # None until the first grid: can torch.func.vmap batch this model's forward pass?
        self._vmap_ok = None

    def _tensors(self, tree):
        return _tree_map(ops.convert_to_tensor, tree)

    def _loss(self, w, nt, mv, x, y, sw):
        # Keras's unseeded torch dropout draws from torch's global generator rather than
        # the layer's seed state: reseed it so that every evaluation sees the same mask
        # (the entry points fork the generator, so the caller's stream is untouched)
        self.torch.default_generator.manual_seed(_TORCH_SEED)
        if self.torch.cuda.is_available() and self.torch.cuda.is_initialized():
            self.torch.cuda.manual_seed(_TORCH_SEED)
        return super()._loss(w, nt, mv, x, y, sw)

    def _grads(self, w0, nt0, o0, mv0, x, y, sw):
        torch = self.torch
        # leaves that share the weights' storage; autograd never writes to them
        w = [t.detach().requires_grad_(True) for t in w0]
        with torch.enable_grad():
            loss = self._scaled(self._loss(w, nt0, mv0, x, y, sw), o0)
            grads = torch.autograd.grad(loss, w, allow_unused=True)
        return [
            torch.zeros_like(wi) if g is None else g.detach()
            for g, wi in zip(grads, w, strict=True)
        ]

    def _update(self, lr, grads, w0, o0):
        # Keras's torch optimizers update the given tensors in place: hand them copies
        return super()._update(
            lr,
            [g.clone() for g in grads],
            [t.detach().clone() for t in w0],
            [t.detach().clone() for t in o0],
        )

    def _grid(self, a, d, nt0, mv0, xe, ye, swe, lrs):
        def loss_at(lr):
            w = [ai + ops.cast(lr, ai.dtype) * di for ai, di in zip(a, d, strict=True)]
            return self._loss(w, nt0, mv0, xe, ye, swe)

        if self.vectorize and self._vmap_ok is not False:
            # the whole grid in one batched forward pass; the same dropout mask for every
            # LR, as the loop gives (one seed state for all evaluations)
            try:
                out = self.torch.func.vmap(loss_at, randomness="same")(lrs)
                self._vmap_ok = True
                return out
            except Exception:  # noqa: BLE001 - a layer torch.func cannot batch
                if self._vmap_ok:
                    raise
                self._vmap_ok = False
        return self.torch.stack([loss_at(lr) for lr in lrs])

    def _affine_one(self, values, batch, lrs, check_lrs):
        w0, nt0, o0, mv0 = values
        x, y, sw, xe, ye, swe = batch
        grads = self._grads(w0, nt0, o0, mv0, x, y, sw)
        with self.torch.no_grad():
            a = self._update(0.0, grads, w0, o0)
            b = self._update(1.0, grads, w0, o0)
            d = [bi - ai for ai, bi in zip(a, b, strict=True)]
            checks = [(lr_c, self._update(lr_c, grads, w0, o0)) for lr_c in check_lrs]
            dev = self._deviation(a, d, checks)
            base = self._loss(w0, nt0, mv0, xe, ye, swe)
            losses = self._grid(a, d, nt0, mv0, xe, ye, swe, lrs)
        return base, losses, dev

    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        with self.torch.random.fork_rng():
            return self._affine_stack(xs, ys, sws, xes, yes, swes, lrs, check_lrs)

    def _affine_stack(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        values = self._values()
        stacks = (xs, ys, sws, xes, yes, swes)
        n = len(_leaves(xs)[0])
        lrs = self._tensors(np.asarray(lrs, np.float32))
        check_lrs = self._tensors(np.asarray(check_lrs, np.float32))
        bases, losses, devs = [], [], []
        for i in range(n):
            batch = tuple(self._tensors(_tree_map(lambda t, i=i: t[i], s)) for s in stacks)
            base, row, dev = self._affine_one(values, batch, lrs, check_lrs)
            bases.append(float(base))
            losses.append(ops.convert_to_numpy(row))
            devs.append(float(dev))
        return (
            np.asarray(bases, np.float32),
            np.stack(losses).astype(np.float32),
            np.asarray(devs, np.float32),
        )

    def step(self, x, y, sw, xe, ye, swe, lr):
        with self.torch.random.fork_rng():
            return self._step(x, y, sw, xe, ye, swe, lr)

    def _step(self, x, y, sw, xe, ye, swe, lr):
        w0, nt0, o0, mv0 = self._values()
        x, y, sw, xe, ye, swe = (self._tensors(t) for t in (x, y, sw, xe, ye, swe))
        grads = self._grads(w0, nt0, o0, mv0, x, y, sw)
        with self.torch.no_grad():
            base = self._loss(w0, nt0, mv0, xe, ye, swe)
            new_w = self._update(self._tensors(np.float32(lr)), grads, w0, o0)
            after = self._loss(new_w, nt0, mv0, xe, ye, swe)
        return np.float32(float(base)), np.float32(float(after))


def _leaves(tree) -> list:
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _leaves(v)]
    if isinstance(tree, list | tuple):
        return [leaf for v in tree for leaf in _leaves(v)]
    return [tree]


ENGINES = {"jax": JaxEngine, "torch": TorchEngine}
