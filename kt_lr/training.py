"""How ``fit`` trains a model, as the probes need to know it.

* Which parts of the training step are the user's own: a subclass may override
  ``train_step`` (the differentials cannot measure what it optimises) or
  ``compute_loss`` (they measure it: the engines compute the loss through it).
* One step fed as ``fit`` feeds it: ``train_on_batch`` hands the step
  ``(x, y, sample_weight)`` with ``None`` parts, where ``fit`` hands it
  ``keras.utils.pack_x_y_sample_weight(x, y, sample_weight)``; the Keras guide's
  ``x, y = data`` works with the latter only.
* The model's distribution: a model built under a ``tf.distribute`` strategy gets the
  variables a probe builds (the optimizer's) inside that strategy's scope, mirrored like
  the model's, as ``fit`` builds them.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager, nullcontext

import keras

STEPS = ("train_step", "test_step")
"""The step methods ``train_on_batch`` / ``test_on_batch`` call."""


def overridden(model, name: str) -> bool:
    """True when ``model``'s class defines its own ``name`` (a method of Keras's trainer).

    ``keras.Model`` of the running backend is the reference: its trainer class (one per
    backend) supplies ``train_step``, ``test_step`` and ``compute_loss``, and Keras's own
    ``Sequential`` and functional models inherit them unchanged.

    Args:
        model: a ``keras.Model`` (anything else: ``False``).
        name: ``"train_step"``, ``"test_step"`` or ``"compute_loss"``.
    """
    if not isinstance(model, keras.Model):
        return False
    return getattr(type(model), name) is not getattr(keras.Model, name)


def custom_train_step_note(model) -> str | None:
    """Why the loss differentials cannot measure this model, in words; ``None`` when they
    can (Keras's own ``train_step``, with or without an overridden ``compute_loss``).

    Args:
        model: a ``keras.Model``.
    """
    if not overridden(model, "train_step"):
        return None
    return (
        f"{type(model).__name__} overrides train_step, whose objective only that step "
        "knows, and the loss differentials measure the compiled loss (model.compute_loss), "
        "so their edge could be one this training does not have; the range test trains "
        "through the model's own train_step. To have both probes, add the extra terms in "
        "an overridden compute_loss instead (the differentials measure it)"
    )


def _packed(step):
    """``step`` with its batch (the last argument) packed as ``fit`` packs it."""

    @functools.wraps(step)
    def packed(*args):
        *state, data = args
        if isinstance(data, tuple) and len(data) == 3:
            data = keras.utils.pack_x_y_sample_weight(*data)
        return step(*state, data)

    return packed


@contextmanager
def fit_shaped_steps(model):
    """Inside, ``train_on_batch`` / ``test_on_batch`` give the model's own overridden
    ``train_step`` / ``test_step`` its batch as ``fit`` does: ``(x, y)`` without sample
    weights, ``x`` alone without targets. Keras's own steps take either and are left
    alone (their compiled functions stay cached). Afterwards the model is as before.

    Args:
        model: a compiled ``keras.Model``.
    """
    function_of = {"train_step": "train_function", "test_step": "test_function"}
    saved = []
    try:
        for name in STEPS:
            if not overridden(model, name):
                continue
            saved.append((name, getattr(model, function_of[name], None)))
            object.__setattr__(model, name, _packed(getattr(model, name)))
            setattr(model, function_of[name], None)  # traced again with the packed step
        yield
    finally:
        for name, function in saved:
            object.__delattr__(model, name)
            setattr(model, function_of[name], function)


def step_loss(logs: dict, model, step: str = "train_step") -> float:
    """The ``"loss"`` a step reported.

    Args:
        logs: what ``train_on_batch`` / ``test_on_batch`` returned (``return_dict=True``).
        model: the model (named in the error).
        step: the step that reported it (named in the error).

    Raises:
        ValueError: when the step reported no ``"loss"`` (a custom step).
    """
    if "loss" not in logs:
        raise ValueError(
            f"{type(model).__name__}.{step} returned {sorted(logs)} but no 'loss': the range "
            "test follows the loss the model's steps report. Return the loss the step "
            'minimises under the key "loss" (e.g. return {"loss": loss, ...}).'
        )
    return float(logs["loss"])


def distribution_scope(model):
    """The scope ``fit`` trains ``model`` in: its ``tf.distribute`` strategy's (a model
    built under ``strategy.scope()``, as Keras Tuner's ``distribution_strategy=`` builds
    every trial), else none. On JAX, a ``keras.distribution`` set globally or entered by
    the caller stays in force and the model's variables keep their layouts.

    Args:
        model: a ``keras.Model`` (anything else gets no scope).
    """
    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is None or keras.backend.backend() != "tensorflow":
        return nullcontext()
    return strategy.scope()
