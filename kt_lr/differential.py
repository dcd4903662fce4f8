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
VECTORIZE_MAX_FLOATS = 5e7
CHUNK = 20


def default_lrs(low: float = DEFAULT_GRID[0], high: float = DEFAULT_GRID[1], num=DEFAULT_GRID[2]):
    """The default log-spaced grid of learning rates."""
    return np.geomspace(low, high, num)


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
        num_params = sum(int(np.prod(v.shape)) for v in self.tvars)
        # vectorising the grid holds one copy of the weights per LR: cap that memory
        self.vectorize = num_params * DEFAULT_GRID[2] <= VECTORIZE_MAX_FLOATS
        self.affine = tf.function(self._affine_many, reduce_retracing=True)
        self.step = tf.function(self._step, reduce_retracing=True)

    # --- pieces traced inside the compiled functions --------------------------------
    def _loss(self, w, nt, x, y, sw):
        mv = [v.value for v in self.mvars]
        loss = training_loss(self.model, w, nt, mv, x, y, sw, self._kwargs)
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
            scaled = self.opt.scale_loss(loss)  # what fit differentiates; apply() unscales
        return loss, tape.gradient(scaled, w0)

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
    def _affine_one(self, x, y, sw, xe, ye, swe, lrs, check_lrs):
        tf = self.tf
        w0, nt0, o0, grads = self._prepare(x, y, sw)
        a = self._update_at(0.0, grads, w0, o0)
        b = self._update_at(1.0, grads, w0, o0)
        d = [bi - ai for ai, bi in zip(a, b, strict=True)]
        base = self._loss(w0, nt0, xe, ye, swe)
        # run-time affinity check: real updates at the check LRs must land on the line
        # (an update that overflows at a huge check LR says nothing against affinity; a
        # non-finite a or d, e.g. Ftrl at LR 0, does)
        line_ok = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in a + d])
        dev = tf.constant(0.0, tf.float32)
        for j in range(2):
            lr_c = check_lrs[j]
            c = self._update_at(lr_c, grads, w0, o0)
            dev_j = tf.constant(0.0, tf.float32)
            for ai, di, ci in zip(a, d, c, strict=True):
                pred = ai + tf.cast(lr_c, ai.dtype) * di
                scale = tf.reduce_max(tf.abs(ci - ai)) + tf.reduce_max(tf.abs(ai)) * 1e-6 + 1e-12
                rel = tf.cast(tf.reduce_max(tf.abs(ci - pred)) / scale, "float32")
                dev_j = tf.maximum(dev_j, rel)
            c_ok = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in c])
            dev_j = tf.where(c_ok, dev_j, tf.constant(0.0, tf.float32))
            dev = tf.maximum(dev, dev_j)
        inf = tf.constant(np.inf, tf.float32)
        dev = tf.where(line_ok & tf.math.is_finite(dev), dev, inf)

        def loss_at(lr):
            w = [ai + tf.cast(lr, ai.dtype) * di for ai, di in zip(a, d, strict=True)]
            return self._loss(w, nt0, xe, ye, swe)

        if self.vectorize:
            # every LR of the grid in one batched forward pass
            return base, tf.vectorized_map(loss_at, lrs), dev
        n = tf.shape(lrs)[0]
        out = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            out = out.write(i, loss_at(lrs[i]))
        return base, out.stack(), dev

    def _affine_many(self, xs, ys, sws, xes, yes, swes, lrs, check_lrs):
        """``_affine_one`` over a stack of subsamples (leading axis), in-graph."""
        tf = self.tf
        n = tf.shape(tf.nest.flatten(xs)[0])[0]
        bases = tf.TensorArray(tf.float32, size=n)
        losses = tf.TensorArray(tf.float32, size=n)
        devs = tf.TensorArray(tf.float32, size=n)

        def pick(tree, i):
            return None if tree is None else tf.nest.map_structure(lambda t: t[i], tree)

        for i in tf.range(n):
            base, out, dev = self._affine_one(
                pick(xs, i),
                pick(ys, i),
                pick(sws, i),
                pick(xes, i),
                pick(yes, i),
                pick(swes, i),
                lrs,
                check_lrs,
            )
            bases = bases.write(i, base)
            losses = losses.write(i, out)
            devs = devs.write(i, dev)
        return bases.stack(), losses.stack(), devs.stack()

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
    if backend == "tensorflow":
        engine_cls = _TFEngine
    else:
        from kt_lr.engines import ENGINES

        if backend not in ENGINES:
            raise NotImplementedError(
                f"loss_differential runs on the TensorFlow, JAX and PyTorch backends "
                f"(KERAS_BACKEND={backend!r}); set KERAS_BACKEND to one of them."
            )
        engine_cls = ENGINES[backend]
    # tracing costs more than a whole probe on small models: keep the compiled engine on
    # the model while its optimizer, loss and variables stay the same
    key = (
        id(model.optimizer),
        id(getattr(model, "_compile_loss", None)),
        tuple(id(v) for v in model.trainable_variables),
        tuple(id(v) for v in model.optimizer.variables),
    )
    cached = getattr(model, "_kt_lr_engine", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    engine = engine_cls(model)
    try:
        object.__setattr__(model, "_kt_lr_engine", (key, engine))
    except Exception:  # noqa: BLE001 - a model that refuses attributes just retraces
        pass
    return engine


def _shape_key(tree) -> tuple:
    from kt_lr.data import _leaves

    return tuple(np.shape(leaf) for leaf in _leaves(tree))


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

    out = []
    for part in range(6):
        trees = [pair[part // 3][part % 3] for pair in group]
        if trees[0] is None:
            out.append(None)
            continue
        flat = [_flatten(t) for t in trees]
        stacked = [np.stack([f[i] for f in flat]) for i in range(len(flat[0]))]
        out.append(_unflatten(trees[0], iter(stacked)))
    return out


def _flatten(tree) -> list:
    from kt_lr.data import _leaves

    return [np.asarray(leaf) for leaf in _leaves(tree)]


def _unflatten(template, it):
    if isinstance(template, dict):
        return {k: _unflatten(v, it) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return type(template)(_unflatten(v, it) for v in template)
    return next(it)


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


def _warn(msg: str) -> None:
    warnings.warn(msg, stacklevel=3)
