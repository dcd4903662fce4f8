"""What every engine shares: the training loss at given weights, the affine line with its
run-time check, and the one-step brute force, written once over ``keras.ops``.

An engine answers two questions for one compiled model:

``affine(xs, ys, sws, xes, yes, swes, lrs, check_lrs) -> (bases[M], losses[M, K], devs[M])``
    for a stack of ``M`` subsamples (leading axis; ``ys``/``sws`` may be ``None``, and
    ``xes``/``yes``/``swes`` are ``None`` when the loss is measured on the gradient's
    batch, whose loss before the step the gradient's forward pass gives):
    the gradient once at the current weights, the optimizer's own update at LR 0 and
    LR 1 from the unchanged optimizer state (``w'(lr) = a + lr·d``), the loss at
    ``a + lr·d`` for every LR of the grid, and the largest relative deviation of real
    updates at the two ``check_lrs`` from that line (``inf`` when ``a`` or ``d`` is not
    finite; a check update that overflows is ignored).

``step(x, y, sw, xe, ye, swe, lr) -> (base, after)``
    the brute-force reference: one real update at ``lr``, the loss before and after.

Each backend module supplies the gradient (``_grads``), one optimizer update from the
unchanged state (``_update``), the LR grid's forward passes (``_grid``) and the compiled
entry points. Every evaluation of one subsample uses the same non-trainable values
(BatchNorm statistics, dropout seeds): those the model had before the probe.
"""

from __future__ import annotations

from contextlib import nullcontext

import keras
import numpy as np
from keras import ops

from kt_lr.validation import check_lr_variable

DEFAULT_GRID = (1e-7, 10.0, 50)
"""The default LR grid of the differentials: ``(low, high, number of LRs)``."""

VECTORIZE_MAX_FLOATS = 5e7
"""Vectorising the grid holds one copy of the weights per LR: at most this many floats."""

VECTORIZE_MAX_ACTIVATIONS = 2.5e7
"""... and one forward pass's activations per LR: at most this many floats (100 MB);
beyond it (convolutions, attention on real batches) the LRs go one after another, which
costs no more there: a forward pass is large enough to keep the cores busy."""


def activation_floats(model) -> int | None:
    """Floats of one sample's layer outputs in a forward pass (``None``: unknown, e.g. a
    subclassed model whose layers have no symbolic outputs)."""
    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        try:
            outputs = keras.tree.flatten(layer.output)
        except (AttributeError, ValueError):
            continue
        for out in outputs:
            dims = list(getattr(out, "shape", ()) or ())[1:]
            if all(isinstance(d, int) for d in dims):
                total += int(np.prod(dims))
    return total or None


def training_loss(model, w, nt, mv, x, y, sw, call_kwargs: dict):
    """The training loss at weights ``w`` as ``fit`` computes it (regularisers and the
    forward pass's activity losses included), statelessly; shared by every engine."""
    y_pred, _, fwd_losses = model.stateless_call(w, nt, x, return_losses=True, **call_kwargs)
    if fwd_losses:  # activity regularisers of this forward pass, seen by compute_loss
        model._losses_override.clear()
        model._losses_override = list(fwd_losses)
    try:
        loss, _ = model.stateless_compute_loss(
            w, nt, mv, x=x, y=y, y_pred=y_pred, sample_weight=sw, training=True
        )
    finally:
        if fwd_losses:
            model._losses_override.clear()
    return loss


def along(a, d, lr) -> list:
    """The weights ``a + lr·d`` on the line of one update."""
    return [ai + ops.cast(lr, ai.dtype) * di for ai, di in zip(a, d, strict=True)]


def _all_finite(tensors):
    return ops.all(ops.stack([ops.all(ops.isfinite(t)) for t in tensors]))


def affine_deviation(a, d, checks):
    """Largest relative distance of the check updates from the line ``a + lr·d``.

    ``checks`` is a list of ``(lr, weights after a real update at lr)``. An update that
    overflows at a huge check LR says nothing against affinity and is ignored; a
    non-finite ``a`` or ``d`` (e.g. Ftrl at LR 0) gives ``inf``.
    """
    zero = ops.convert_to_tensor(0.0, "float32")  # on the backend's device
    dev = zero
    for lr_c, c in checks:
        worst = zero
        for ai, ci, pred in zip(a, c, along(a, d, lr_c), strict=True):
            miss = ops.max(ops.abs(ci - pred))
            scale = ops.max(ops.abs(ci - ai)) + ops.max(ops.abs(ai)) * 1e-6 + 1e-12
            worst = ops.maximum(worst, ops.cast(miss / scale, "float32"))
        dev = ops.maximum(dev, ops.where(_all_finite(c), worst, zero))
    ok = ops.logical_and(ops.logical_and(_all_finite(a), _all_finite(d)), ops.isfinite(dev))
    return ops.where(ok, dev, ops.convert_to_tensor(np.inf, "float32"))


FUTURE_CALLS = 20
"""Calls a newly compiled grid size is expected to serve (the sampler's usual subsamples
after its pilot): :class:`GridPadding` weighs padding against compiling over this many."""


class GridPadding:
    """Whether a compiled probe call at ``k`` LRs should run padded to a grid size compiled
    before, or compile its own: padding costs every call, compiling once (pure bookkeeping,
    timed on the calls so far; used by the JAX engine, where every new shape compiles)."""

    def __init__(self) -> None:
        self.grids: set[int] = set()  # grid sizes compiled so far
        self.per_lr: float | None = None  # seconds per LR of a compiled call
        self.compile: float | None = None  # seconds the last new grid size took to compile
        self._first: tuple[float, int] | None = None  # (seconds, LRs) of that first call

    def grid(self, k: int) -> int:
        """The grid size a call at ``k`` LRs runs at: the smallest compiled one that holds
        it, when padding to it over :data:`FUTURE_CALLS` calls is estimated to cost less
        than compiling (before both are timed: when it at most doubles the work), else ``k``.

        Args:
            k: the LRs the call measures.
        """
        fits = [g for g in self.grids if g >= k]
        if not fits:
            return k
        g = min(fits)
        if self.per_lr is None or self.compile is None:
            return g if g <= 2 * k else k
        return g if (g - k) * self.per_lr * FUTURE_CALLS <= self.compile else k

    def timed(self, grid: int, seconds: float) -> None:
        """Learn the cost of an LR and of compiling from one call's duration.

        Args:
            grid: the grid size the call ran at.
            seconds: how long it took (compiling included on a new size).
        """
        if grid in self.grids:
            self.per_lr = seconds / grid
        else:
            self.grids.add(grid)
            self._first = (seconds, grid)
        if self.per_lr is not None and self._first is not None:
            self.compile = max(self._first[0] - self.per_lr * self._first[1], 0.0)


class Engine:
    """The affine probe and the brute-force step for one model; a backend subclasses it."""

    def __init__(self, model):
        self.model = model
        self.opt = model.optimizer
        self.tvars = list(model.trainable_variables)
        self.ntvars = list(model.non_trainable_variables)
        self.ovars = list(self.opt.variables)
        self.mvars = list(model.metrics_variables)
        self._kwargs = {"training": True} if getattr(model, "_call_has_training_arg", True) else {}
        self.num_params = sum(int(np.prod(v.shape)) for v in self.tvars)
        # one copy of the weights per LR when the grid is vectorised: cap that memory
        self.vectorize = self.num_params * DEFAULT_GRID[2] <= VECTORIZE_MAX_FLOATS
        self._activations = activation_floats(model)
        self._sized = False

    def size_grid(self, batch_size: int) -> None:
        """Before the first trace: vectorise the grid only while one forward pass's
        activations per LR fit :data:`VECTORIZE_MAX_ACTIVATIONS` at this batch size."""
        if self._sized:
            return
        self._sized = True
        if self._activations is not None:
            floats = self._activations * int(batch_size) * DEFAULT_GRID[2]
            self.vectorize = self.vectorize and floats <= VECTORIZE_MAX_ACTIVATIONS

    # -- the backend's part ------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        """``(bases[M], losses[M, K], devs[M])`` of a stack of subsamples (module doc)."""
        raise NotImplementedError

    def step(self, x, y, sw, xe, ye, swe, lr):
        """``(base, after)``: one real update at ``lr`` (module doc)."""
        raise NotImplementedError

    def _grads(self, w0, nt0, o0, mv0, x, y, sw) -> tuple:
        """``(gradient of the (scaled) training loss at w0, the loss)``; zeros for unused
        weights."""
        raise NotImplementedError

    def _update(self, lr, grads, w0, o0) -> list:
        """Weights after one optimizer update at ``lr`` from the state ``w0``, ``o0``."""
        raise NotImplementedError

    def _grid(self, loss_at, lrs):
        """``loss_at(lr)`` for every LR of ``lrs``, stacked."""
        raise NotImplementedError

    def _updates(self, lrs, grads, w0, o0) -> list:
        """``_update`` at every LR of the 1-D tensor ``lrs`` (a few): one weight list each.

        A compiled backend loops over them, so that the optimizer's update is traced once.
        """
        return [self._update(lrs[j], grads, w0, o0) for j in range(int(lrs.shape[0]))]

    def _no_grad(self):
        """Context for the updates and forward passes (torch turns autograd off)."""
        return nullcontext()

    # -- shared ---------------------------------------------------------------------------
    def _read(self, variables) -> list:
        return [v.value for v in variables]

    def _values(self):
        """Values of the trainable, non-trainable, optimizer and metrics variables."""
        return tuple(self._read(vs) for vs in (self.tvars, self.ntvars, self.ovars, self.mvars))

    def _loss(self, w, nt, mv, x, y, sw):
        """Training loss (as ``fit`` computes it, regularisers included) at weights ``w``."""
        loss = training_loss(self.model, w, nt, mv, x, y, sw, self._kwargs)
        return ops.cast(loss, "float32")

    def _affine_one(self, values, batch, lrs, check_lrs):
        """One subsample: ``(loss before, loss at every LR of the line, deviation)``."""
        w0, nt0, o0, mv0 = values
        x, y, sw, xe, ye, swe = batch
        grads, loss0 = self._grads(w0, nt0, o0, mv0, x, y, sw)
        same = xe is None  # measured on the gradient's batch
        if same:
            xe, ye, swe = x, y, sw

        def loss_at(w):
            return self._loss(w, nt0, mv0, xe, ye, swe)

        with self._no_grad():
            # LR 0 and 1 give the line; the differential passes two check LRs (the middle
            # of the grid and its top) that must land on it
            line_lrs = ops.concatenate(
                [ops.convert_to_tensor([0.0, 1.0], "float32"), ops.cast(check_lrs, "float32")]
            )
            a, b, *checks = self._updates(line_lrs, grads, w0, o0)
            d = [bi - ai for ai, bi in zip(a, b, strict=True)]
            dev = affine_deviation(a, d, [(check_lrs[j], checks[j]) for j in range(2)])
            base = ops.cast(loss0, "float32") if same else loss_at(w0)
            losses = self._grid(lambda lr: loss_at(along(a, d, lr)), lrs)
        return base, losses, dev

    def _step_one(self, values, batch, lr):
        """Brute force: the loss before and after one real update at ``lr``."""
        w0, nt0, o0, mv0 = values
        x, y, sw, xe, ye, swe = batch
        grads, _ = self._grads(w0, nt0, o0, mv0, x, y, sw)
        if xe is None:
            xe, ye, swe = x, y, sw
        with self._no_grad():
            base = self._loss(w0, nt0, mv0, xe, ye, swe)
            after = self._loss(self._update(lr, grads, w0, o0), nt0, mv0, xe, ye, swe)
        return base, after


class StatelessEngine(Engine):
    """JAX and PyTorch: ``optimizer.stateless_apply`` works, so no variable is ever written.

    The learning rate is swapped in the list of optimizer values that goes into
    ``stateless_apply``; forward passes use ``model.stateless_call`` with explicit weights.
    """

    def __init__(self, model):
        super().__init__(model)
        self.lr_index = check_lr_variable(self.opt)
        self.lr_dtype = self.ovars[self.lr_index].dtype

    def _scaled(self, loss, o):
        """The loss the optimizer's gradients are taken of (loss scaling, as in fit)."""
        if getattr(self.opt, "loss_scale_factor", None) is None:
            return loss
        with keras.StatelessScope(state_mapping=list(zip(self.ovars, o, strict=True))):
            return self.opt.scale_loss(loss)

    def _update(self, lr, grads, w0, o0):
        o = list(o0)
        o[self.lr_index] = ops.cast(lr, self.lr_dtype)
        new_w, _ = self.opt.stateless_apply(o, grads, w0)
        return list(new_w)
