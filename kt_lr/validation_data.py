"""The checks of the data a probe reads (``x``, ``y``, sample and class weights,
datasets, ``validation_data``): the data half of :mod:`kt_lr.validation`, with errors that
name the argument, what is wrong and the fix."""

from __future__ import annotations

import math

import numpy as np


def check_data_given(x, y, *, is_dataset: bool) -> None:
    """``x`` is there, and ``y`` is not when ``x`` is a dataset yielding ``(x, y)``."""
    if x is None:
        raise ValueError("`x` is None: pass training data (arrays, a tf.data.Dataset, ...).")
    if is_dataset and y is not None:
        raise ValueError(
            "`y` must be None when `x` is a dataset (the dataset yields (x, y) batches)."
        )


def check_sample_counts(lengths: set, batch_size: int) -> int:
    """The number of samples, from the leading lengths of every array of ``x`` and ``y``
    (``-1`` for a scalar): one shared length, at least two batches of it."""
    if -1 in lengths:
        raise ValueError("`x` and `y` must be arrays with a leading sample dimension.")
    if len(lengths) > 1:
        raise ValueError(
            f"`x` and `y` have different numbers of samples ({sorted(lengths)}); pass "
            "arrays with the same length along axis 0."
        )
    n = next(iter(lengths), 0)
    if n == 0:
        raise ValueError("The training data is empty (0 samples); pass at least 2 batches.")
    if n < 2 * batch_size:
        raise ValueError(
            f"The training data has {n} samples, fewer than two batches of "
            f"batch_size={batch_size}: a probe needs at least 2 distinct batches. "
            f"Lower `batch_size` (e.g. batch_size={max(1, n // 4)}) or pass more data."
        )
    return n


def check_num_batches(num_batches, source: str) -> None:
    """At least two batches from ``source`` (e.g. "The PyDataset") when its length is known."""
    if num_batches == 0:
        raise ValueError(f"{source} is empty: it yields no batches.")
    if num_batches == 1:
        raise ValueError(
            "The data yields a single batch; a probe needs at least 2 distinct batches. "
            "Use a smaller batch size in your dataset or pass more data."
        )


def check_dataset_restarts(restarted: bool) -> None:
    """A dataset that ran out may start again, but only if it yielded anything before."""
    if not restarted:
        raise ValueError("The dataset yielded no batches; pass a non-empty dataset.") from None


def check_batch_parts(element) -> None:
    """A batch of a dataset is ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if not 1 <= len(element) <= 3:
        raise ValueError(
            f"A batch from your dataset has {len(element)} parts; kt_lr expects (x,), (x, y) "
            "or (x, y, sample_weight), as keras.Model.fit does."
        )


def check_batch_size_of(n: int) -> None:
    """A batch from a dataset holds at least one sample."""
    if n == 0:
        raise ValueError("The dataset yielded an empty batch; check its batching.")


def check_validation_size(size: int, *, arrays: bool) -> None:
    """``validation_data`` holds samples (``arrays``) or yields batches."""
    if size == 0:
        raise ValueError(
            "`validation_data` is empty; pass (x_val, y_val) with samples."
            if arrays
            else "`validation_data` yielded no batches."
        )


def check_finite_data(name: str, arrays, where: str = "") -> None:
    """No NaN/inf in the float arrays of ``name`` (``x``, ``y``, ``sample_weight``): a
    network maps NaN to anything, and the probe would answer confidently from garbage."""
    for arr in arrays:
        arr = np.asarray(arr)
        if not np.issubdtype(arr.dtype, np.inexact):
            continue  # integers, booleans, strings: nothing to check
        bad = ~np.isfinite(arr)
        if bad.any():
            sample = int(np.argwhere(bad)[0][0]) if arr.ndim else 0
            raise ValueError(
                f"`{name}` holds {int(bad.sum())} NaN/inf value(s){where}, the first in sample "
                f"{sample}: the probes would learn from them and answer from garbage (fit "
                "would train on them silently). Remove or impute those samples before "
                f"probing, e.g. keep = np.isfinite({name}).reshape(len({name}), -1).all(1)."
            )


def check_class_weight(class_weight, *, sample_weight=None, y=None, iterable=False):
    """``class_weight`` as ``fit`` takes it: ``{class id: weight}`` (weights finite, >= 0),
    never with sample weights, for one array of targets, not for a generic iterable
    (``fit`` refuses it for a torch ``DataLoader`` or a generator). ``None`` passes.

    Returns:
        ``{int: float}`` or ``None``.
    """
    if class_weight is None:
        return None
    from operator import index

    try:
        out = {index(k): float(v) for k, v in dict(class_weight).items()}
    except (TypeError, ValueError):
        out = None
    if not out or not all(math.isfinite(v) and v >= 0 for v in out.values()):
        raise ValueError(
            f"`class_weight` must map integer class ids to finite weights >= 0, as for "
            f"fit, e.g. class_weight={{0: 1.0, 1: 5.0}}; got {class_weight!r}."
        )
    if sample_weight is not None:
        raise ValueError(
            "`class_weight` and sample weights were both given; keras.Model.fit refuses "
            "that too. Fold the class weights into the sample weights (each sample's "
            "weight times its class's weight) and pass `sample_weight` alone."
        )
    if iterable:
        raise ValueError(
            "`class_weight` is not supported for this kind of data (keras.Model.fit refuses "
            "it for a torch DataLoader or a generator): yield (x, y, sample_weight) "
            "batches instead, or pass arrays, a tf.data.Dataset or a PyDataset."
        )
    if y is not None and not hasattr(y, "shape"):
        raise ValueError(
            "`class_weight` is only supported for a model with a single output (one array "
            "of targets), as in fit; pass per-output `sample_weight` instead."
        )
    return out


def check_class_ids(shape) -> None:
    """One class per sample for ``class_weight`` (not per time step or pixel)."""
    if len(shape) != 1:
        raise ValueError(
            f"`class_weight` needs one class per sample, but the targets give classes of "
            f"shape {tuple(shape)} (per time step or position); pass `sample_weight` "
            "instead, as fit would need."
        )
