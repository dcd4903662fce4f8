"""Turn what a user passes to ``fit`` into an endless stream of batches.

Accepted: numpy arrays (or dicts / lists of them) with ``y``; a
``tf.data.Dataset`` of batches (finite or repeating); a
``keras.utils.PyDataset``; any other re-iterable of batches (e.g. a torch
``DataLoader``). Batches come out as tuples ``(x, y, sample_weight)`` of numpy
values (``y`` or ``sample_weight`` may be ``None``). Shuffling uses a local
``np.random.Generator``; global random state is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Batch = tuple[Any, Any, Any]


def _tree_map(fn, obj):
    if isinstance(obj, dict):
        return {k: _tree_map(fn, v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_tree_map(fn, v) for v in obj)
    if obj is None:
        return None
    return fn(obj)


def _leaves(obj) -> list:
    if isinstance(obj, dict):
        return [leaf for v in obj.values() for leaf in _leaves(v)]
    if isinstance(obj, list | tuple):
        return [leaf for v in obj for leaf in _leaves(v)]
    return [] if obj is None else [obj]


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
    if isinstance(element, tuple | list) and not isinstance(element, dict):
        if len(element) == 1:
            return element[0], None, None
        if len(element) == 2:
            return element[0], element[1], None
        if len(element) == 3:
            return element[0], element[1], element[2]
        raise ValueError(
            f"A batch from your dataset has {len(element)} parts; kt_lr expects (x,), (x, y) "
            "or (x, y, sample_weight), as keras.Model.fit does."
        )
    return element, None, None


def _batch_len(x) -> int:
    leaves = _leaves(x)
    return int(np.shape(leaves[0])[0]) if leaves else 0


def _is_dataset(x) -> bool:
    mod = type(x).__module__
    return "tensorflow" in mod and hasattr(x, "element_spec")


def _is_pydataset(x) -> bool:
    try:
        import keras

        return isinstance(x, keras.utils.PyDataset)
    except Exception:  # noqa: BLE001
        return False


class BatchStream:
    """An endless iterator of batches plus a few facts about the data.

    ``num_samples`` and ``num_batches`` are ``None`` when unknown (e.g. a
    repeating ``tf.data.Dataset``). ``kind`` is ``"arrays"``, ``"dataset"``,
    ``"pydataset"`` or ``"iterable"``.
    """

    def __init__(self, x, y=None, *, batch_size: int = 32, sample_weight=None, seed=None):
        if x is None:
            raise ValueError("`x` is None: pass training data (arrays, a tf.data.Dataset, ...).")
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        self.batch_size = int(batch_size)
        self._rng = np.random.default_rng(seed)
        self.num_samples: int | None = None
        self.num_batches: int | None = None
        if (
            _is_dataset(x)
            or _is_pydataset(x)
            or (not isinstance(x, np.ndarray | dict | list | tuple) and hasattr(x, "__iter__"))
        ):
            if y is not None:
                raise ValueError(
                    "`y` must be None when `x` is a dataset (the dataset yields (x, y) batches)."
                )
            self._init_iterable(x)
        else:
            self._init_arrays(x, y, sample_weight)

    # -- numpy arrays -------------------------------------------------------------------
    def _init_arrays(self, x, y, sample_weight) -> None:
        self.kind = "arrays"
        self._x = _tree_map(np.asarray, x)
        self._y = _tree_map(np.asarray, y)
        self._sw = None if sample_weight is None else np.asarray(sample_weight)
        lengths = {len(a) if a.ndim else -1 for a in _leaves(self._x)}
        if self._y is not None:
            lengths |= {len(a) if a.ndim else -1 for a in _leaves(self._y)}
        if -1 in lengths:
            raise ValueError("`x` and `y` must be arrays with a leading sample dimension.")
        if len(lengths) > 1:
            raise ValueError(
                f"`x` and `y` have different numbers of samples ({sorted(lengths)}); pass "
                "arrays with the same length along axis 0."
            )
        n = lengths.pop() if lengths else 0
        if n == 0:
            raise ValueError("The training data is empty (0 samples); pass at least 2 batches.")
        if n < 2 * self.batch_size:
            raise ValueError(
                f"The training data has {n} samples, fewer than two batches of "
                f"batch_size={self.batch_size}: a probe needs at least 2 distinct batches. "
                f"Lower `batch_size` (e.g. batch_size={max(1, n // 4)}) or pass more data."
            )
        self.num_samples = n
        self.num_batches = int(np.ceil(n / self.batch_size))
        self._order = self._rng.permutation(n)
        self._pos = 0

    def _take(self, idx) -> Batch:
        def pick(a):
            return a[idx]

        sw = None if self._sw is None else self._sw[idx]
        return _tree_map(pick, self._x), _tree_map(pick, self._y), sw

    # -- datasets and other iterables ---------------------------------------------------
    def _init_iterable(self, data) -> None:
        self._data = data
        if _is_dataset(data):
            self.kind = "dataset"
            card = int(data.cardinality())
            if card == 0:
                raise ValueError("The tf.data.Dataset is empty: it yields no batches.")
            self.num_batches = card if card > 0 else None  # -1 infinite, -2 unknown
        elif _is_pydataset(data):
            self.kind = "pydataset"
            nb = getattr(data, "num_batches", None)
            if nb is None:
                try:
                    nb = len(data)
                except TypeError:
                    nb = None
            if nb == 0:
                raise ValueError("The PyDataset is empty: it has no batches.")
            self.num_batches = nb
        else:
            self.kind = "iterable"
            try:
                self.num_batches = len(data)
            except TypeError:
                self.num_batches = None
        if self.num_batches == 1:
            raise ValueError(
                "The data yields a single batch; a probe needs at least 2 distinct batches. "
                "Use a smaller batch size in your dataset or pass more data."
            )
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
                if attempt == 1 or not self._yielded_any:
                    raise ValueError(
                        "The dataset yielded no batches; pass a non-empty dataset."
                    ) from None
                self._iter = self._fresh_iter()
        x, y, sw = _split_element(element)
        batch = (_tree_map(_to_numpy, x), _tree_map(_to_numpy, y), _tree_map(_to_numpy, sw))
        if _batch_len(batch[0]) == 0:
            raise ValueError("The dataset yielded an empty batch; check its batching.")
        return batch

    def random_batch(self) -> Batch:
        """A batch of ``batch_size`` samples drawn at random (arrays) or the next batch."""
        if self.kind == "arrays":
            idx = np.sort(self._rng.choice(self.num_samples, self.batch_size, replace=False))
            return self._take(idx)
        return self.next_batch()


def fixed_batches(data, *, batch_size: int, max_batches: int = 4, seed=0) -> list[Batch]:
    """A fixed list of up to ``max_batches`` batches from ``validation_data``.

    ``data`` is ``(x_val, y_val)``, ``(x_val, y_val, sample_weight)`` or a dataset.
    """
    if isinstance(data, tuple | list) and 2 <= len(data) <= 3:
        x, y = data[0], data[1]
        sw = data[2] if len(data) == 3 else None
        n = _batch_len(x)
        if n == 0:
            raise ValueError("`validation_data` is empty; pass (x_val, y_val) with samples.")
        bs = min(batch_size, n)
        out = []
        for start in range(0, min(n, bs * max_batches), bs):
            sl = slice(start, min(start + bs, n))
            out.append(
                (
                    _tree_map(lambda a, s=sl: np.asarray(a)[s], x),
                    _tree_map(lambda a, s=sl: np.asarray(a)[s], y),
                    None if sw is None else np.asarray(sw)[sl],
                )
            )
        return out
    it = iter(data) if not _is_pydataset(data) else (data[i] for i in range(len(data)))
    out = []
    for element in it:
        x, y, sw = _split_element(element)
        out.append((_tree_map(_to_numpy, x), _tree_map(_to_numpy, y), _tree_map(_to_numpy, sw)))
        if len(out) >= max_batches:
            break
    if not out:
        raise ValueError("`validation_data` yielded no batches.")
    return out
