"""Turn what a user passes to ``fit`` into an endless stream of batches.

Accepted: numpy arrays (or dicts / lists of them) with ``y``; a
``tf.data.Dataset`` of batches (finite or repeating); a
``keras.utils.PyDataset``; any other re-iterable of batches (e.g. a torch
``DataLoader``). Batches come out as tuples ``(x, y, sample_weight)`` of numpy
values (``y`` or ``sample_weight`` may be ``None``). ``class_weight`` becomes per-sample
weights as ``fit`` makes them. NaN/inf in the data is refused. Shuffling uses a local
``np.random.Generator``; global random state is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from kt_lr.validation import check_count
from kt_lr.validation_data import (
    check_batch_parts,
    check_batch_size_of,
    check_class_ids,
    check_class_weight,
    check_data_given,
    check_dataset_restarts,
    check_finite_data,
    check_num_batches,
    check_sample_counts,
    check_validation_size,
)

Batch = tuple[Any, Any, Any]


def map_arrays(fn, *trees):
    """``fn`` over the leaves of nested batch parts (``keras.tree``: dicts, lists, tuples,
    namedtuples, as ``fit`` reads them); a ``None`` stays ``None`` and is never passed to
    ``fn``. With several trees, ``fn`` gets one leaf of each.

    Args:
        fn: the function of one leaf (one per tree).
        *trees: nested structures of the same layout.
    """
    return keras.tree.map_structure(fn, *trees, none_is_leaf=False)


def leaves(tree) -> list:
    """The leaves of a nested batch part (dict values in sorted key order), ``None``s
    dropped.

    Args:
        tree: a nested structure of arrays (or ``None``).
    """
    return [leaf for leaf in keras.tree.flatten(tree) if leaf is not None]


def class_weights(y, class_weight: dict) -> np.ndarray:
    """Per-sample weights from ``class_weight``, as ``fit`` makes them: each sample weighs
    its class's weight (1 for a class not listed); the class of a one-hot (or
    probability) target is its argmax, of a ``(n, 1)`` or ``(n,)`` target its rounded value.

    Args:
        y: the targets of a single-output model (one array).
        class_weight: ``{class id: weight}``.
    """
    y = np.asarray(y)
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else np.squeeze(y, axis=-1)
    classes = np.round(y).astype("int32")
    check_class_ids(classes.shape)
    found, index = np.unique(classes, return_inverse=True)
    table = np.array([class_weight.get(int(c), 1.0) for c in found], dtype=keras.config.floatx())
    return table[index.reshape(-1)]


def _checked(batch: Batch, class_weight, where: str) -> Batch:
    """A batch's values checked for NaN/inf, with its class weights as sample weights."""
    x, y, sw = batch
    for name, part in (("x", x), ("y", y), ("sample_weight", sw)):
        check_finite_data(name, leaves(part), where)
    if class_weight is not None:
        check_class_weight(class_weight, sample_weight=sw, y=y)
        sw = class_weights(y, class_weight)
    return x, y, sw


def _to_numpy(value):
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        try:
            return value.numpy()
        except Exception:  # noqa: BLE001 - torch tensors needing .detach() etc.
            pass
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _split_element(element) -> Batch:
    if isinstance(element, tuple | list):
        check_batch_parts(element)
        return (*element, None, None)[:3]
    return element, None, None


def _batch_len(x) -> int:
    found = leaves(x)
    return int(np.shape(found[0])[0]) if found else 0


def _is_dataset(x) -> bool:
    mod = type(x).__module__
    return "tensorflow" in mod and hasattr(x, "element_spec")


def _is_pydataset(x) -> bool:
    return isinstance(x, keras.utils.PyDataset)


class BatchStream:
    """An endless iterator of batches plus a few facts about the data.

    ``num_samples`` and ``num_batches`` are ``None`` when unknown (e.g. a
    repeating ``tf.data.Dataset``). ``kind`` is ``"arrays"``, ``"dataset"``,
    ``"pydataset"`` or ``"iterable"``.

    Args:
        x: arrays (or dicts / lists of them), a ``tf.data.Dataset``, a
            ``keras.utils.PyDataset`` or another re-iterable of batches.
        y: the targets for array data; ``None`` for datasets.
        batch_size: the batch size for array data.
        sample_weight: per-sample weights for array data.
        class_weight: ``{class id: weight}``, turned into per-sample weights from the
            targets as ``fit`` does (arrays, datasets and PyDatasets; not with
            ``sample_weight`` or per-batch weights, which ``fit`` refuses too).
        seed: seeds the local generator that shuffles array data.
    """

    def __init__(
        self,
        x,
        y=None,
        *,
        batch_size: int = 32,
        sample_weight=None,
        class_weight=None,
        seed=None,
    ):
        is_dataset = (
            _is_dataset(x)
            or _is_pydataset(x)
            or (not isinstance(x, np.ndarray | dict | list | tuple) and hasattr(x, "__iter__"))
        )
        check_data_given(x, y, is_dataset=is_dataset)
        self.batch_size = check_count("batch_size", batch_size)
        self.class_weight = check_class_weight(class_weight, sample_weight=sample_weight)
        self._rng = np.random.default_rng(seed)
        self.num_samples: int | None = None
        self.num_batches: int | None = None
        if is_dataset:
            self._init_iterable(x)
        else:
            self._init_arrays(x, y, sample_weight)

    # -- numpy arrays -------------------------------------------------------------------
    def _init_arrays(self, x, y, sample_weight) -> None:
        self.kind = "arrays"
        self._x = map_arrays(np.asarray, x)
        self._y = map_arrays(np.asarray, y)
        self._sw = None if sample_weight is None else np.asarray(sample_weight)
        self._x, self._y, self._sw = _checked((self._x, self._y, self._sw), self.class_weight, "")
        lengths = {len(a) if a.ndim else -1 for a in leaves(self._x)}
        if self._y is not None:
            lengths |= {len(a) if a.ndim else -1 for a in leaves(self._y)}
        n = check_sample_counts(lengths, self.batch_size)
        self.num_samples = n
        self.num_batches = int(np.ceil(n / self.batch_size))
        self._order = self._rng.permutation(n)
        self._pos = 0

    def _take(self, idx) -> Batch:
        def pick(a):
            return a[idx]

        sw = None if self._sw is None else self._sw[idx]
        return map_arrays(pick, self._x), map_arrays(pick, self._y), sw

    # -- datasets and other iterables ---------------------------------------------------
    def _init_iterable(self, data) -> None:
        self._data = data
        if _is_dataset(data):
            self.kind = "dataset"
            card = int(data.cardinality())
            self.num_batches = card if card >= 0 else None  # -1 infinite, -2 unknown
        elif _is_pydataset(data):
            self.kind = "pydataset"
            nb = getattr(data, "num_batches", None)
            if nb is None:
                try:
                    nb = len(data)
                except TypeError:
                    nb = None
            self.num_batches = nb
        else:
            self.kind = "iterable"
            try:
                self.num_batches = len(data)
            except TypeError:
                self.num_batches = None
        source = {"dataset": "The tf.data.Dataset", "pydataset": "The PyDataset"}
        check_num_batches(self.num_batches, source.get(self.kind, "The data"))
        check_class_weight(self.class_weight, iterable=self.kind == "iterable")
        self._iter = self._fresh_iter()
        self._yielded_any = False

    def _fresh_iter(self) -> Iterator:
        if self.kind == "pydataset":
            data = self._data

            def gen():
                n = self.num_batches
                i = 0
                while n is None or i < n:
                    try:
                        yield data[i]
                    except IndexError:
                        return
                    i += 1
                if hasattr(data, "on_epoch_end"):
                    data.on_epoch_end()

            return gen()
        return iter(self._data)

    def next_batch(self) -> Batch:
        """The next batch, cycling through the data (reshuffled) when it runs out."""
        if self.kind == "arrays":
            if self._pos + self.batch_size > self.num_samples:
                self._order = self._rng.permutation(self.num_samples)
                self._pos = 0
            idx = np.sort(self._order[self._pos : self._pos + self.batch_size])
            self._pos += self.batch_size
            return self._take(idx)
        for attempt in range(2):
            try:
                element = next(self._iter)
                self._yielded_any = True
                break
            except StopIteration:
                check_dataset_restarts(attempt == 0 and self._yielded_any)
                self._iter = self._fresh_iter()
        x, y, sw = _split_element(element)
        batch = (map_arrays(_to_numpy, x), map_arrays(_to_numpy, y), map_arrays(_to_numpy, sw))
        check_batch_size_of(_batch_len(batch[0]))
        return _checked(batch, self.class_weight, " (in a batch of the dataset)")

    def random_batch(self) -> Batch:
        """A batch of ``batch_size`` samples drawn at random (arrays) or the next batch."""
        if self.kind == "arrays":
            idx = np.sort(self._rng.choice(self.num_samples, self.batch_size, replace=False))
            return self._take(idx)
        return self.next_batch()


def fixed_batches(data, *, batch_size: int, max_batches: int = 4) -> list[Batch]:
    """A fixed list of up to ``max_batches`` batches from ``validation_data``: the first
    ones, in order.

    Args:
        data: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight)`` or a dataset.
        batch_size: the batch size for array data.
        max_batches: at most this many batches.
    """
    if isinstance(data, tuple | list) and 2 <= len(data) <= 3:
        x, y = data[0], data[1]
        sw = data[2] if len(data) == 3 else None
        n = _batch_len(x)
        check_validation_size(n, arrays=True)
        bs = min(batch_size, n)
        out = []
        for start in range(0, min(n, bs * max_batches), bs):
            sl = slice(start, min(start + bs, n))
            batch = (
                map_arrays(lambda a, s=sl: np.asarray(a)[s], x),
                map_arrays(lambda a, s=sl: np.asarray(a)[s], y),
                None if sw is None else np.asarray(sw)[sl],
            )
            out.append(_checked(batch, None, " (in validation_data)"))
        return out
    it = iter(data) if not _is_pydataset(data) else (data[i] for i in range(len(data)))
    out = []
    for element in it:
        x, y, sw = _split_element(element)
        batch = (map_arrays(_to_numpy, x), map_arrays(_to_numpy, y), map_arrays(_to_numpy, sw))
        out.append(_checked(batch, None, " (in validation_data)"))
        if len(out) >= max_batches:
            break
    check_validation_size(len(out), arrays=False)
    return out
