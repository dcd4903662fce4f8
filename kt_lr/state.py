"""Snapshot and restore a compiled Keras model in memory, bit for bit.

A snapshot holds the values of every model variable (trainable weights,
non-trainable variables such as BatchNorm statistics and dropout seed state),
the compiled metrics' variables, and every optimizer variable (iterations,
moments, momentum, the learning rate). No files, no global RNG. A variable of a
``tf.distribute`` strategy is recorded and restored per device (its mirrored copies, or
a metric's per-replica sums), so a restore is bit for bit on every device; under
``keras.distribution`` on JAX a restored value takes the variable's layout again.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import keras
import numpy as np

from kt_lr import training
from kt_lr.validation import check_buildable


def _per_device(variable) -> list:
    """What stores ``variable``: its per-device copies for a ``tf.distribute`` variable,
    else the Keras variable itself."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        value = variable.value
        if isinstance(value, tf.distribute.DistributedValues):
            return list(value.values)
    return [variable]


def _storage(variables) -> list:
    return [slot for v in variables for slot in _per_device(v)]


def _read(slot) -> np.ndarray:
    value = slot.value if isinstance(slot, keras.Variable) else slot
    return np.array(keras.ops.convert_to_numpy(value), copy=True)


def _values(slots) -> list[np.ndarray]:
    return [_read(s) for s in slots]


@dataclass
class Snapshot:
    """Values of a model's and its optimizer's variables at one moment (the variables
    lists hold what stores them: per device under a ``tf.distribute`` strategy)."""

    model_variables: list
    model_values: list[np.ndarray]
    optimizer_variables: list
    optimizer_values: list[np.ndarray]
    optimizer_built: bool

    def restore(self) -> None:
        """Write every recorded value back into its variable."""
        for var, val in zip(self.model_variables, self.model_values, strict=True):
            var.assign(val)
        for var, val in zip(self.optimizer_variables, self.optimizer_values, strict=True):
            var.assign(val)


def _model_variables(model) -> list:
    seen: set[int] = set()
    out = []
    for v in [*model.variables, *model.metrics_variables]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def ensure_built(model, example_batch=None) -> None:
    """Build the model (from one batch if needed) and its optimizer's variables.

    Args:
        model: a compiled ``keras.Model``.
        example_batch: an ``(x, y, sample_weight)`` batch to build an unbuilt model on.
    """
    with training.distribution_scope(model):  # variables mirrored like the model's
        if not model.built or not model.trainable_variables:
            check_buildable(example_batch)
            model(example_batch[0], training=False)
        opt = model.optimizer
        if not opt.built:
            opt.build(model.trainable_variables)


def snapshot(model) -> Snapshot:
    """Record the model's and its optimizer's state (the optimizer must be built).

    Args:
        model: a compiled, built ``keras.Model``.
    """
    mvars = _storage(_model_variables(model))
    ovars = _storage(model.optimizer.variables)
    return Snapshot(
        model_variables=mvars,
        model_values=_values(mvars),
        optimizer_variables=ovars,
        optimizer_values=_values(ovars),
        optimizer_built=model.optimizer.built,
    )


@contextmanager
def preserved(model):
    """Context manager: whatever happens inside, the model's state is put back.

    On torch, the global generator is forked too, so the caller's random stream is
    left as it was.

    Args:
        model: a compiled, built ``keras.Model``; yields its :class:`Snapshot`.
    """
    snap = snapshot(model)
    with _torch_generator_forked():
        try:
            yield snap
        finally:
            snap.restore()


@contextmanager
def _torch_generator_forked():
    """On torch, Keras's unseeded Dropout draws from torch's global generator: probes get
    a fork of it, so the caller's random stream is left as it was."""
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    with torch.random.fork_rng():
        yield


def state_equal(a: Snapshot, b: Snapshot) -> bool:
    """True when two snapshots hold bit-for-bit identical values.

    Args:
        a: a snapshot.
        b: another snapshot.
    """
    if len(a.model_values) != len(b.model_values):
        return False
    if len(a.optimizer_values) != len(b.optimizer_values):
        return False
    pairs = [
        *zip(a.model_values, b.model_values, strict=True),
        *zip(a.optimizer_values, b.optimizer_values, strict=True),
    ]
    return all(x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in pairs)
