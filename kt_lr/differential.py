"""Keras glue for subsampled one-step loss differentials (autolrtuner's idea, engineered).

For each of ``num_subsamples`` mini-batches and every learning rate of a log
grid: ΔL = L(weights after one optimizer step at that LR) − L(weights before),
always from the optimizer state the model had before the probe.

Fast path: one optimizer update is affine in the learning rate,
``w'(lr) = a + lr·d``. Per subsample we compute the gradient once, run the
optimizer's own update at LR 0 and LR 1 (restoring weights and optimizer
variables in-graph after each), and evaluate the loss at ``a + lr·d`` for the
whole grid with forward passes only, all in one compiled function. Affinity is
checked at run time on a third LR; where it fails (custom optimizers, loss
scaling, EMA overwrites, ...) the brute-force path takes a real optimizer step
per LR instead, and the result says so.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from kt_lr import state, stats
from kt_lr.data import BatchStream
from kt_lr.range_test import first_forward
from kt_lr.results import LossDifferentialResult
from kt_lr.validation import check_int, check_lr_grid

DEFAULT_GRID = (1e-7, 10.0, 50)
AFFINE_RTOL = 1e-3


def default_lrs(low: float = DEFAULT_GRID[0], high: float = DEFAULT_GRID[1], num=DEFAULT_GRID[2]):
    """The default log-spaced grid of learning rates."""
    return np.geomspace(low, high, num)


class _TFEngine:
    """Compiled TensorFlow functions for one model: affine probe and brute-force step."""

    def __init__(self, model):
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.opt = model.optimizer
        self.tvars = list(model.trainable_variables)
        self.ntvars = list(model.non_trainable_variables)
        self.ovars = list(self.opt.variables)
        self.mvars = list(model.metrics_variables)
        self._kwargs = {"training": True} if getattr(model, "_call_has_training_arg", True) else {}
        self.affine = tf.function(self._affine, reduce_retracing=True)
        self.step = tf.function(self._step, reduce_retracing=True)
        self.check = tf.function(self._check, reduce_retracing=True)

    # --- pieces traced inside the compiled functions --------------------------------
    def _loss(self, w, nt, x, y, sw):
        model = self.model
        y_pred, _, fwd_losses = model.stateless_call(w, nt, x, return_losses=True, **self._kwargs)
        if fwd_losses:
            model._losses_override.clear()
            model._losses_override = list(fwd_losses)
        try:
            loss, _ = model.stateless_compute_loss(
                w,
                nt,
                [v.value for v in self.mvars],
                x=x,
                y=y,
                y_pred=y_pred,
                sample_weight=sw,
                training=True,
            )
        finally:
            if fwd_losses:
                model._losses_override.clear()
        return self.tf.cast(loss, "float32")

    def _read(self, variables):
        return [self.tf.identity(v.value) for v in variables]

    def _restore(self, variables, values):
        for v, val in zip(variables, values, strict=True):
            v.assign(val)

    def _grads(self, w0, nt0, x, y, sw):
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(w0)
            loss = self._loss(w0, nt0, x, y, sw)
        return loss, tape.gradient(loss, w0)

    def _update_at(self, lr, grads, w0, o0):
        """Weights after one real optimizer update at ``lr``; state put back in-graph."""
        self.opt.learning_rate.assign(lr)
        self.opt.apply(grads, self.tvars)
        out = self._read(self.tvars)
        self._restore(self.tvars, w0)
        self._restore(self.ovars, o0)
        return out

    def _prepare(self, x, y, sw):
        w0, nt0, o0 = self._read(self.tvars), self._read(self.ntvars), self._read(self.ovars)
        loss0, grads = self._grads(w0, nt0, x, y, sw)
        grads = [
            self.tf.zeros_like(w) if g is None else self.tf.convert_to_tensor(g)
            for g, w in zip(grads, w0, strict=True)
        ]
        return w0, nt0, o0, grads

    # --- compiled entry points ---------------------------------------------------------
    def _affine(self, x, y, sw, xe, ye, swe, lrs):
        tf = self.tf
        w0, nt0, o0, grads = self._prepare(x, y, sw)
        a = self._update_at(0.0, grads, w0, o0)
        b = self._update_at(1.0, grads, w0, o0)
        d = [bi - ai for ai, bi in zip(a, b, strict=True)]
        base = self._loss(w0, nt0, xe, ye, swe)
        n = tf.shape(lrs)[0]
        out = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            lr = tf.cast(lrs[i], a[0].dtype) if a else lrs[i]
            w = [ai + tf.cast(lr, ai.dtype) * di for ai, di in zip(a, d, strict=True)]
            out = out.write(i, self._loss(w, nt0, xe, ye, swe))
        return base, out.stack()

    def _check(self, x, y, sw, lr):
        """Max relative deviation of a real update at ``lr`` from the affine line."""
        tf = self.tf
        w0, _, o0, grads = self._prepare(x, y, sw)
        a = self._update_at(0.0, grads, w0, o0)
        b = self._update_at(1.0, grads, w0, o0)
        c = self._update_at(lr, grads, w0, o0)
        worst = tf.constant(0.0, tf.float32)
        for ai, bi, ci in zip(a, b, c, strict=True):
            pred = ai + tf.cast(lr, ai.dtype) * (bi - ai)
            scale = tf.reduce_max(tf.abs(ci - ai)) + tf.reduce_max(tf.abs(ai)) * 1e-6 + 1e-12
            dev = tf.reduce_max(tf.abs(ci - pred)) / scale
            worst = tf.maximum(worst, tf.cast(dev, tf.float32))
        return worst

    def _step(self, x, y, sw, xe, ye, swe, lr):
        """Brute force: a real optimizer step at ``lr``, loss after, all state restored."""
        w0, nt0, o0, grads = self._prepare(x, y, sw)
        base = self._loss(w0, nt0, xe, ye, swe)
        self.opt.learning_rate.assign(lr)
        self.opt.apply(grads, self.tvars)
        after = self._loss(self._read(self.tvars), nt0, xe, ye, swe)
        self._restore(self.tvars, w0)
        self._restore(self.ovars, o0)
        return base, after


def _engine(model):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise NotImplementedError(
            f"loss_differential runs on the TensorFlow backend for now (KERAS_BACKEND="
            f"{backend!r}); set KERAS_BACKEND=tensorflow."
        )
    return _TFEngine(model)


def _as_tensors(batch):
    x, y, sw = batch
    return x, y, sw


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
    seed: int | None = None,
    verbose: int = 1,
) -> LossDifferentialResult:
    """One-step loss differentials over a log grid of LRs with confidence intervals.

    For each of ``num_subsamples`` batches, ΔL = L(after one step at lr) − L(before)
    for every LR in ``lrs`` (default: 50 points log-spaced over 1e-7…10), each
    step taken from the optimizer state the model had before the probe. With
    ``holdout=True`` L is measured on a different batch than the gradient's
    (generalising vs memorising decrease). ``method`` is ``"auto"`` (affine fast
    path, brute force where the optimizer is not affine in the LR), ``"affine"``
    or ``"brute_force"``. The model is left exactly as it was.
    """
    grid = check_lr_grid(default_lrs() if lrs is None else lrs)
    num_subsamples = check_int("num_subsamples", num_subsamples, 2)
    stats.validate_confidence(confidence)
    if method not in ("auto", "affine", "brute_force"):
        raise ValueError(f"`method` must be 'auto', 'affine' or 'brute_force', got {method!r}.")
    state._check_model(model)
    stream = BatchStream(x, y, batch_size=batch_size, sample_weight=sample_weight, seed=seed)
    first = stream.random_batch()
    first_forward(model, first)
    engine = _engine(model)
    reasons: list[str] = []
    deltas = np.full((num_subsamples, grid.size), np.nan)
    base_losses = np.full(num_subsamples, np.nan)
    bar = keras.utils.Progbar(num_subsamples, verbose=verbose, unit_name="subsample")
    used = method
    with state.preserved(model):
        if method in ("auto", "affine"):
            # the middle of the grid and its top: kinks (e.g. Adafactor's min(lr, 1/sqrt(t)))
            # show at large rates
            devs = {}
            for check_lr in (float(np.sqrt(grid[0] * grid[-1])), float(grid[-1])):
                devs[check_lr] = float(engine.check(*first, np.float32(check_lr)))
            check_lr, dev = max(devs.items(), key=lambda kv: np.inf if np.isnan(kv[1]) else kv[1])
            if dev > AFFINE_RTOL or not np.isfinite(dev):
                if method == "affine":
                    raise RuntimeError(
                        f"{type(model.optimizer).__name__}'s update is not affine in the "
                        f"learning rate here (relative deviation {dev:.2g}); use "
                        "method='brute_force' or method='auto'."
                    )
                used = "brute_force"
                reasons.append(
                    f"{type(model.optimizer).__name__}'s update is not affine in the LR "
                    f"(deviation {dev:.2g} at lr={check_lr:.2g}): one real step per LR used"
                )
            else:
                used = "affine"
        lrs32 = grid.astype(np.float32)
        batch = first
        for m in range(num_subsamples):
            eval_batch = stream.random_batch() if holdout else batch
            if used == "affine":
                base, after = engine.affine(*batch, *eval_batch, lrs32)
                after = np.asarray(after, dtype=np.float64)
            else:
                after = np.empty(grid.size)
                for k, lr in enumerate(lrs32):
                    base, loss_k = engine.step(*batch, *eval_batch, lr)
                    after[k] = float(loss_k)
            base = float(base)
            base_losses[m] = base
            deltas[m] = np.where(np.isfinite(after), after - base, np.nan)
            if verbose:
                bar.update(m + 1)
            batch = stream.random_batch()
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


def _warn(msg: str) -> None:
    warnings.warn(msg, stacklevel=3)
