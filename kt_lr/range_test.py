"""Keras glue for the LR range test (Smith 2015; fast.ai's lr_find).

The learning rate grows from ``start_lr`` to ``end_lr`` over ``num_steps``
mini-batches of the user's data while the model trains; the loss of each batch
is recorded. The curve logic lives in :mod:`kt_lr.suggest`.
"""

from __future__ import annotations

import keras
import numpy as np

from kt_lr import state, suggest, training
from kt_lr.data import BatchStream, fixed_batches
from kt_lr.results import RangeTestResult
from kt_lr.validation import (
    check_choice,
    check_count,
    check_diverge_factor,
    check_lr_bounds,
    check_model,
    check_smoothing,
    check_targets_given,
    data_fits_model,
)


def lr_schedule(start_lr: float, end_lr: float, num_steps: int, mode: str = "exp") -> np.ndarray:
    """The learning rate of every step: geometric (``"exp"``) or linear.

    Args:
        start_lr: the first step's learning rate.
        end_lr: the last step's learning rate.
        num_steps: how many steps.
        mode: ``"exp"`` (geometric spacing) or ``"linear"``.
    """
    if mode == "exp":
        return np.geomspace(start_lr, end_lr, num_steps)
    return np.linspace(start_lr, end_lr, num_steps)


def first_forward(model, batch) -> None:
    """Build the model on one batch and fail clearly when the data does not fit it (or
    holds no targets for a loss that needs them).

    Args:
        model: the compiled ``keras.Model``.
        batch: one ``(x, y, sample_weight)`` batch of the user's data.
    """
    check_targets_given(model, batch[1])
    with data_fits_model():
        state.ensure_built(model, batch)
        model(batch[0], training=False)


def _batch_loss(model, batch) -> float:
    x, y, sw = batch
    logs = model.test_on_batch(x, y, sample_weight=sw, return_dict=True)
    return training.step_loss(logs, model, "test_step")


def range_test(
    model,
    x,
    y=None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 32,
    mode: str = "exp",
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    validation_data=None,
    sample_weight=None,
    class_weight=None,
    seed: int | None = None,
    verbose: int = 1,
) -> RangeTestResult:
    """Sweep the learning rate over ``num_steps`` training steps and record the loss.

    Stops early when the smoothed loss exceeds ``diverge_factor`` times its
    minimum or becomes NaN/inf. With ``validation_data`` the loss on a fixed
    set of held-out batches is recorded after every step too. The model's
    weights, optimizer state and learning rate are restored afterwards, even
    when the probe raises.

    Args:
        model: a compiled ``keras.Model`` with a constant learning rate; it is trained
            with its own optimizer and loss, batch by batch through its own
            ``train_step``, each batch packed as ``fit`` packs it (``(x, y)``, or
            ``(x, y, sample_weight)`` with weights), under the model's distribution
            strategy; the loss followed is the ``"loss"`` the step reports.
        x: the training inputs, as ``fit`` takes them: arrays (or dicts / lists of
            them), a ``tf.data.Dataset``, a ``keras.utils.PyDataset`` or any other
            re-iterable of batches (e.g. a torch ``DataLoader``).
        y: the targets when ``x`` holds arrays; ``None`` for datasets.
        start_lr: the learning rate of the first step.
        end_lr: the learning rate of the last step.
        num_steps: how many training steps the sweep takes (at least 5).
        batch_size: the batch size for array data.
        mode: ``"exp"`` (geometric LR steps) or ``"linear"``.
        smoothing: the factor of the loss's exponential moving average, in ``[0, 1)``.
        diverge_factor: stop once the smoothed loss exceeds this many times its
            minimum (a number > 1).
        validation_data: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight)`` or a
            dataset; its loss on up to 2 fixed batches is recorded after every step.
        sample_weight: per-sample weights for array data.
        class_weight: ``{class id: weight}``, per-sample weights from the targets as
            ``fit`` makes them (not with ``sample_weight``).
        seed: seeds the local generator that shuffles array data.
        verbose: 0 for silence, 1 for a progress bar.

    Returns:
        A :class:`~kt_lr.results.RangeTestResult`: the LRs, losses, smoothed losses,
        why the sweep stopped, each heuristic's suggestion and a pick with reasons.
    """
    start_lr, end_lr = check_lr_bounds(start_lr, end_lr)
    num_steps = check_count("num_steps", num_steps, 5)
    check_choice("mode", mode, ("exp", "linear"))
    smoothing = check_smoothing("smoothing", smoothing)
    diverge_factor = check_diverge_factor(diverge_factor)
    check_model(model)
    stream = BatchStream(
        x,
        y,
        batch_size=batch_size,
        sample_weight=sample_weight,
        class_weight=class_weight,
        seed=seed,
    )
    val_batches = (
        None
        if validation_data is None
        else fixed_batches(validation_data, batch_size=batch_size, max_batches=2)
    )
    first = stream.next_batch()
    first_forward(model, first)
    lrs = lr_schedule(start_lr, end_lr, num_steps, mode)
    losses = np.full(num_steps, np.nan)
    val_losses = None if val_batches is None else np.full(num_steps, np.nan)
    smoothed = np.full(num_steps, np.nan)
    stop_step, stop_reason = num_steps, "reached end_lr"
    bar = keras.utils.Progbar(num_steps, verbose=verbose, unit_name="step") if verbose else None
    avg, best = 0.0, np.inf
    with state.preserved(model), training.fit_shaped_steps(model):
        opt = model.optimizer
        batch = first
        for i, lr in enumerate(lrs):
            opt.learning_rate.assign(lr)
            xb, yb, swb = batch
            out = model.train_on_batch(xb, yb, sample_weight=swb, return_dict=True)
            loss = training.step_loss(out, model)
            losses[i] = loss
            if val_losses is not None:
                val_losses[i] = np.mean([_batch_loss(model, b) for b in val_batches])
            if np.isfinite(loss):
                avg = smoothing * avg + (1 - smoothing) * loss
                smoothed[i] = avg / (1 - smoothing ** (i + 1))
            if bar is not None:
                bar.update(i + 1, [("lr", lr), ("loss", loss)])
            if not np.isfinite(loss):
                stop_step, stop_reason = i + 1, f"loss became {loss} at lr={lr:.3g}"
                break
            best = min(best, smoothed[i])
            if i > 0 and smoothed[i] > diverge_factor * best:
                stop_step = i + 1
                stop_reason = (
                    f"smoothed loss {smoothed[i]:.4g} exceeded {diverge_factor:g} x its "
                    f"minimum {best:.4g} at lr={lr:.3g}"
                )
                break
            batch = stream.next_batch()
    if bar is not None and stop_step < num_steps:
        bar.update(num_steps, [("stopped", stop_step)], finalize=True)
    n = stop_step
    lrs, losses, smoothed = lrs[:n], losses[:n], smoothed[:n]
    if val_losses is not None:
        val_losses = val_losses[:n]
    if not np.any(np.isfinite(losses)):
        raise RuntimeError(
            f"The loss was {losses[0]} from the very first step (lr={lrs[0]:.3g}); nothing "
            "to learn from. Check your data and labels for NaN/inf, the loss function for "
            "your targets, or lower `start_lr`."
        )
    return summarize_curve(
        lrs,
        losses,
        smoothed,
        val_losses=val_losses,
        stop_step=stop_step,
        stop_reason=stop_reason,
        settings={
            "start_lr": start_lr,
            "end_lr": end_lr,
            "num_steps": num_steps,
            "batch_size": stream.batch_size,
            "mode": mode,
            "smoothing": smoothing,
            "diverge_factor": diverge_factor,
            "seed": seed,
            "optimizer": type(model.optimizer).__name__,
        },
    )


def summarize_curve(
    lrs, losses, smoothed, *, val_losses=None, stop_step=None, stop_reason="", settings=None
) -> RangeTestResult:
    """Run every suggestion heuristic over a recorded curve and build the result.

    Args:
        lrs: the learning rate of every recorded step.
        losses: the training loss of every step.
        smoothed: the loss's exponential moving average (as the sweep computed it).
        val_losses: the held-out loss after every step, or ``None``.
        stop_step: the number of steps taken (default: ``len(lrs)``).
        stop_reason: why the sweep stopped, in words.
        settings: the probe's settings, kept in the result.
    """
    found = suggest.suggest_all(lrs, losses, smoothed=smoothed)
    suggestions = {k: (None if s is None else float(s.lr)) for k, s in found.items()}
    reasons = [s.reason for s in found.values() if s is not None]
    # the lag-free (despiked, Savitzky-Golay) curve: the EMA's minimum trails the real one
    x_lrs, _, curve = suggest.prepare_curve(lrs, losses)
    interval = suggest.interval_from_curve(x_lrs, curve) if len(curve) >= 5 else None
    low, high = (None, None) if interval is None else (float(interval[0]), float(interval[1]))
    pick = suggestions.get("valley") or suggestions.get("steepest")
    if pick is None:
        reasons.append("the smoothed loss never decreased: no suggestion from the range test")
    return RangeTestResult(
        lrs=np.asarray(lrs),
        losses=np.asarray(losses),
        smoothed=np.asarray(smoothed),
        val_losses=None if val_losses is None else np.asarray(val_losses),
        stop_step=int(len(lrs) if stop_step is None else stop_step),
        stop_reason=stop_reason,
        suggestions=suggestions,
        lr=pick,
        low=low,
        high=high,
        reasons=reasons,
        settings=dict(settings or {}),
    )
