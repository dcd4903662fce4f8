"""One probe engine per Keras backend, behind :func:`get_engine`.

``engines/tensorflow.py``, ``engines/jax.py`` and ``engines/torch.py`` each import
their framework; only the module of the running backend is ever imported. What they
share (the training loss, the affine line and its run-time check, the brute-force
step) is in ``engines/_base.py``.
"""

from __future__ import annotations

import importlib

import keras

from kt_lr.engines._base import DEFAULT_GRID, VECTORIZE_MAX_FLOATS, Engine, training_loss

__all__ = [
    "DEFAULT_GRID",
    "ENGINES",
    "VECTORIZE_MAX_FLOATS",
    "Engine",
    "get_engine",
    "training_loss",
]

ENGINES = {
    "tensorflow": "kt_lr.engines.tensorflow:_TFEngine",
    "jax": "kt_lr.engines.jax:JaxEngine",
    "torch": "kt_lr.engines.torch:TorchEngine",
}
"""The engine class of every supported backend, as ``"module:class"`` (imported on use)."""


def _engine_class(backend: str) -> type[Engine]:
    if backend not in ENGINES:
        raise NotImplementedError(
            f"loss_differential runs on the TensorFlow, JAX and PyTorch backends "
            f"(KERAS_BACKEND={backend!r}); set KERAS_BACKEND to one of them."
        )
    module, name = ENGINES[backend].split(":")
    return getattr(importlib.import_module(module), name)


def get_engine(model) -> Engine:
    """The probe engine of the running backend for ``model``, compiled once and cached.

    Tracing costs more than a whole probe on small models, so the engine is kept on the
    model while its optimizer, loss and variables stay the same.

    Args:
        model: a compiled, built ``keras.Model`` whose optimizer is built.

    Returns:
        An :class:`Engine` with ``affine(...)`` and ``step(...)`` (see ``engines/_base.py``).

    Raises:
        NotImplementedError: on a Keras backend other than TensorFlow, JAX or PyTorch.
    """
    engine_cls = _engine_class(keras.backend.backend())
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
