"""Shared helpers: quiet single-threaded TensorFlow, timing, JSON I/O, fixed-budget training."""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).resolve().parent / "results"
RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"

_SETUP_DONE = False


def setup(threads: int = 1) -> None:
    """Silence TensorFlow and pin it to ``threads`` threads (the machine is shared)."""
    global _SETUP_DONE
    if _SETUP_DONE:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # context already initialised: keep whatever it has
        pass
    tf.get_logger().setLevel("ERROR")
    _SETUP_DONE = True


@contextmanager
def timer():
    """``with timer() as t: ...`` then ``t()`` is the elapsed wall time in seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def clean(value):
    """JSON-friendly copy: numpy scalars/arrays to python, non-finite floats to strings."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def unclean(value):
    """Inverse of :func:`clean` for the float strings."""
    if isinstance(value, dict):
        return {k: unclean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unclean(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def save_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(clean(obj), indent=1, sort_keys=False))
    tmp.replace(path)


def load_json(path: Path, default=None):
    if not path.exists():
        return default
    return unclean(json.loads(path.read_text()))


def lr_key(lr: float) -> str:
    """Stable text key of a learning rate (6 significant digits)."""
    return f"{float(lr):.6e}"


def train_eval(task, data, lr: float, seed: int) -> dict:
    """Train a fresh ``task`` model at ``lr`` for the task's fixed budget; final val loss.

    NaN/inf (training stopped by ``TerminateOnNaN``, or a non-finite evaluation)
    count as ``inf``: diverged.
    """
    import keras
    import numpy as np

    x_tr, y_tr, x_va, y_va = data
    # all epochs as one pass over stacked per-epoch permutations: the same number of
    # steps and the same reshuffling per epoch as fit(epochs=E, shuffle=True), without
    # Keras's per-epoch overhead (which dominates on these tiny datasets)
    rng = np.random.default_rng(10_000 + int(seed))
    n = len(x_tr)
    idx = np.concatenate([rng.permutation(n) for _ in range(task.epochs)])
    keras.backend.clear_session()
    with timer() as t:
        model = task.build_model(seed, lr)
        model.steps_per_execution = 16  # fewer Python round trips; same updates
        hist = model.fit(
            x_tr[idx],
            y_tr[idx],
            epochs=1,
            batch_size=task.batch_size,
            verbose=0,
            shuffle=False,
            callbacks=[keras.callbacks.TerminateOnNaN()],
        )
        losses = hist.history.get("loss", [])
        finite_train = bool(losses) and all(math.isfinite(v) for v in losses)
        val = (
            float(model.evaluate(x_va, y_va, batch_size=512, verbose=0))
            if finite_train
            else math.inf
        )
    if not math.isfinite(val):
        val = math.inf
    return {"val_loss": val, "seconds": t()}


def update_results_md(section: str, body: str, path: Path | None = None) -> None:
    """Replace (or append) the ``## section`` block of RESULTS.md (or of ``path``)."""
    path = RESULTS_MD if path is None else path
    head = f"## {section}"
    text = path.read_text() if path.exists() else "# kt_lr benchmarks\n"
    lines = text.splitlines()
    out: list[str] = []
    skipping = False
    replaced = False
    for line in lines:
        if line.strip() == head:
            skipping = True
            replaced = True
            out.extend([head, "", body.rstrip(), ""])
            continue
        if skipping and line.startswith("## "):
            skipping = False
        if not skipping:
            out.append(line)
    if not replaced:
        out.extend(["", head, "", body.rstrip(), ""])
    path.write_text("\n".join(out).rstrip() + "\n")


def _cell(v, missing: str) -> str:
    """A table cell: floats to 3 significant digits, ``None`` as ``missing``."""
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf" if v > 0 else "nan"
        return f"{v:.3g}"
    return missing if v is None else str(v)


def md_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub markdown table."""

    def fmt(v):
        return _cell(v, "")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list]) -> str:
    """A fixed-width table for the terminal."""

    def fmt(v):
        return _cell(v, "-")

    cells = [[str(h) for h in headers]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells)
