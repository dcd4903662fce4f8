"""The TensorFlow engine: the affine probe and the brute-force step as ``tf.function``s.

On TensorFlow ``optimizer.stateless_apply`` raises, so each update is a real
``optimizer.apply`` on the model's variables, read and followed by an in-graph restore
of the weights and the optimizer's variables (learning rate included); the forward
passes use ``model.stateless_call`` with explicit weights. Subsamples go one after
another in a ``tf.while_loop``; the LR grid through ``tf.vectorized_map`` while one copy
of the weights and of the activations per LR fits the memory caps (a loop beyond them).
The functions are traced without AutoGraph (the loops are written out, as Keras's own
train step is): converting every Keras call on the way took most of the tracing time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from kt_lr.data import leaves, map_arrays
from kt_lr.engines._base import Engine


class _TFEngine(Engine):
    """Compiled TensorFlow functions for one model: affine probe and brute-force step."""

    def __init__(self, model):
        super().__init__(model)
        self._affine = tf.function(self._affine_many, reduce_retracing=True, autograph=False)
        self._generic = False
        self._step = tf.function(self._step_flat, reduce_retracing=True, autograph=False)

    # -- entry points -------------------------------------------------------------------
    def affine(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        args = (xs, ys, sws, xes, yes, swes, lrs, check_lrs)
        return _outside_strategy_scope(self._affine_any_size, *args)

    def _affine_any_size(self, *args):
        """The affine probe, traced once for any number of subsamples, batch size and LRs:
        the first call traces it on shapes with those dimensions unknown."""
        if not self._generic:
            self._affine.get_concrete_function(*_generic_specs(args))
            self._generic = True
        return self._affine(*args)

    def step(self, x, y, sw, xe, ye, swe, lr):
        return _outside_strategy_scope(self._step, x, y, sw, xe, ye, swe, lr)

    # -- traced -------------------------------------------------------------------------
    def _read(self, variables):
        return [tf.identity(v.value) for v in variables]

    def _restore(self, variables, values):
        for v, val in zip(variables, values, strict=True):
            v.assign(val)

    def _grads(self, w0, nt0, o0, mv0, x, y, sw):
        with tf.GradientTape() as tape:
            tape.watch(w0)
            loss = self._loss(w0, nt0, mv0, x, y, sw)
            scaled = self.opt.scale_loss(loss)  # what fit differentiates; apply() unscales
        grads = tape.gradient(scaled, w0)
        grads = [
            tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
            for g, w in zip(grads, w0, strict=True)
        ]
        return grads, loss

    def _update(self, lr, grads, w0, o0):
        """Weights after one real optimizer update at ``lr``; state put back in-graph."""
        self.opt.learning_rate.assign(lr)
        self.opt.apply(grads, self.tvars)
        out = self._read(self.tvars)
        self._restore(self.tvars, w0)
        self._restore(self.ovars, o0)
        return out

    def _updates(self, lrs, grads, w0, o0):
        stacked = _loop(
            tf.shape(lrs)[0],
            lambda j: self._update(lrs[j], grads, w0, o0),
            [w.dtype for w in w0],
        )
        return [[s[j] for s in stacked] for j in range(int(lrs.shape[0]))]

    def _grid(self, loss_at, lrs):
        if self.vectorize:
            # every LR of the grid in one batched forward pass
            return tf.vectorized_map(loss_at, lrs)
        return _loop(tf.shape(lrs)[0], lambda i: (loss_at(lrs[i]),), [tf.float32])[0]

    def _affine_many(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        """``_affine_one`` over a stack of subsamples (leading axis), in-graph."""
        stacks = (xs, ys, sws, xes, yes, swes)

        def one(i):
            batch = map_arrays(lambda t: t[i], stacks)
            return self._affine_one(self._values(), batch, lrs, check_lrs)

        return _loop(tf.shape(leaves(xs)[0])[0], one, [tf.float32] * 3)

    def _step_flat(self, x, y, sw, xe, ye, swe, lr):
        return self._step_one(self._values(), (x, y, sw, xe, ye, swe), lr)


def _outside_strategy_scope(fn, *args):
    """``fn(*args)`` outside any ``tf.distribute`` strategy scope.

    Inside ``strategy.scope()`` (a probe called there) the context is cross-replica:
    ``optimizer.apply`` finds no replica context for its merge call, and every loss is
    scaled by 1 / replicas. Outside it a mirrored variable reads as one value and an
    update writes every copy, as the engine needs. The scope stack is per thread, so
    there ``fn`` runs on a thread of its own.
    """
    if not tf.distribute.has_strategy():
        return fn(*args)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def _loop(n, body, dtypes):
    """``body(i)`` for ``i`` in ``0..n-1`` in a ``tf.while_loop``: its results (one per
    dtype of ``dtypes``), each stacked over ``i``."""

    def step(i, arrays):
        return i + 1, tuple(a.write(i, v) for a, v in zip(arrays, body(i), strict=True))

    def more(i, arrays):
        return i < n

    arrays = tuple(tf.TensorArray(dtype, size=n) for dtype in dtypes)
    _, arrays = tf.while_loop(more, step, (tf.constant(0), arrays))
    return tuple(a.stack() for a in arrays)


def _generic_specs(args):
    """``tf.TensorSpec``s of the affine probe's arguments with the subsample, batch and LR
    dimensions unknown (the two check LRs keep their shape)."""

    def spec(t):
        shape = np.shape(t)
        free = min(len(shape), 2)
        return tf.TensorSpec([None] * free + list(shape[free:]), tf.as_dtype(np.asarray(t).dtype))

    *stacks, lrs, check_lrs = args
    return (
        *map_arrays(spec, tuple(stacks)),
        tf.TensorSpec([None], tf.float32),
        tf.TensorSpec(np.shape(check_lrs), tf.float32),
    )
