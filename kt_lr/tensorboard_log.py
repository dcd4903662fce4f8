"""What a probe saw, as TensorBoard data next to the trials' logs.

When ``search()`` is given a ``keras.callbacks.TensorBoard``, Keras Tuner gives every
trial its own log directory, ``<log_dir>/<trial id>/execution0``; the probe trial writes
its curves to the same place (``<log_dir>/kt_lr_probe_0/execution0``), so
``tensorboard --logdir <log_dir>`` shows them next to the trials:

- ``kt_lr/range_test/loss``: the training loss at every step of the range test;
  ``kt_lr/range_test/smoothed_loss``: the smoothed curve the decision read (cut where
  the loss diverged, :func:`kt_lr.suggest.prepare_curve`);
  ``kt_lr/range_test/learning_rate``: the learning rate of every step;
- ``kt_lr/loss_differential/mean_delta_loss`` with ``ci_low`` / ``ci_high``, its
  t-interval (the decision uses its top), and ``kt_lr/loss_differential/learning_rate``;
- ``kt_lr/finding``: the pick, the interval and the reasons (Text tab), and
  ``kt_lr/finding_plot``: the finding's plot on log axes (Images tab, with matplotlib).

The step of every scalar is the point's index along the learning-rate axis (step ``i``
of the sweep, grid point ``i`` of the differentials), and the learning rate is logged
as its own scalar at the same step: TensorBoard draws steps on a linear axis, and an
index keeps the log-spaced rates evenly spread (read the rate of a step off the
``learning_rate`` chart).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np


def tensorboard_log_dirs(callbacks: Iterable[Any] | None) -> list[str]:
    """The ``log_dir`` of every TensorBoard callback in ``callbacks``.

    Matched by class name, as Keras Tuner does (``keras.callbacks.TensorBoard`` and
    ``tf.keras.callbacks.TensorBoard`` alike).
    """
    return [
        str(cb.log_dir)
        for cb in callbacks or []
        if type(cb).__name__ == "TensorBoard" and getattr(cb, "log_dir", None)
    ]


def write_finding(log_dir: str, finding: Any, *, image: bool = True) -> str:
    """Write ``finding``'s curves to ``log_dir`` as TensorBoard event files; returns it.

    Args:
        log_dir: the run directory (created if needed).
        finding: an :class:`~kt_lr.LRFinding` (its ``range_test`` and ``differential``
            may be ``None``).
        image: also log the finding's plot (skipped without matplotlib).
    """
    import tensorflow as tf

    os.makedirs(log_dir, exist_ok=True)
    writer = tf.summary.create_file_writer(log_dir)
    try:
        with writer.as_default():
            if finding.range_test is not None:
                _range_test(tf, finding.range_test)
            if finding.differential is not None:
                _differential(tf, finding.differential)
            tf.summary.text("kt_lr/finding", _as_markdown(finding), step=0)
            if image:
                _image(tf, finding)
        writer.flush()
    finally:
        writer.close()
    return log_dir


def _scalars(tf: Any, prefix: str, columns: dict[str, Any]) -> None:
    """One scalar per finite value of each column, at its index as the step."""
    for name, values in columns.items():
        for step, value in enumerate(np.asarray(values, dtype=float)):
            if np.isfinite(value):
                tf.summary.scalar(f"{prefix}/{name}", float(value), step=step)


def _range_test(tf: Any, result: Any) -> None:
    from kt_lr import suggest

    columns = {"learning_rate": result.lrs, "loss": result.losses}
    try:
        columns["smoothed_loss"] = suggest.prepare_curve(result.lrs, result.losses)[2]
    except ValueError:  # too short or broken a curve: the raw losses say it
        pass
    _scalars(tf, "kt_lr/range_test", columns)


def _differential(tf: Any, result: Any) -> None:
    columns = {
        "learning_rate": result.lrs,
        "mean_delta_loss": result.mean,
        "ci_low": result.t_low,
        "ci_high": result.t_high,
    }
    _scalars(tf, "kt_lr/loss_differential", columns)


def _as_markdown(finding: Any) -> str:
    """The finding in words; indented, so TensorBoard's Text tab keeps the lines."""
    lines = [f"learning rate {finding.lr:.3g}, interval [{finding.low:.3g}, {finding.high:.3g}]"]
    lines += [f"- {r}" for r in finding.reasons]
    lines.append(
        "(scalars: step = index along the learning-rate axis; the rate of each step is "
        "the learning_rate scalar)"
    )
    return "\n".join("    " + line for line in lines)


def _image(tf: Any, finding: Any) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = finding.plot()
    except Exception:  # no matplotlib, or nothing to draw: the scalars say it all
        return
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    tf.summary.image("kt_lr/finding_plot", pixels[None, ...], step=0)
