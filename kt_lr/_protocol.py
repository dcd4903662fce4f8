"""The probe's wire format: how a probe is asked for and how its answer travels back.

Only ids, values, status and metrics cross Keras Tuner's gRPC wire, so:

- the chief announces a probe with :func:`request`: the probe trial's values carry a
  marker value (``kt_lr/probe``, the probe key) and the seed of the probe's model;
- the worker answers with :func:`encode`: the numbers travel as metrics
  (``kt_lr/lr``, ``kt_lr/low``, ...), the words (reasons, error, optimizer, where the
  curves were saved) as extra trial values;
- the chief reads the answer back with :func:`decode`, which also judges it (a crashed
  trial, a tuner that ran no probe, non-finite numbers) so the oracle gets either a
  usable finding or an error in words.

Pure Python: no Keras Tuner import (trials and objectives are read duck-typed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

PROBE_MARKER = "kt_lr/probe"
PROBE_SEED = "kt_lr/probe_seed"
PROBE_ERROR = "kt_lr/error"
PROBE_REASONS = "kt_lr/reasons"
PROBE_ARTIFACTS = "kt_lr/artifacts"
PROBE_OPTIMIZER = "kt_lr/optimizer"
PROBE_NOTES = "kt_lr/notes"
METRIC_PREFIX = "kt_lr/"
METRIC_OK = "kt_lr/ok"
METRIC_LR = "kt_lr/lr"
METRIC_LOW = "kt_lr/low"
METRIC_HIGH = "kt_lr/high"
METRIC_BATCH_SIZE = "kt_lr/batch_size"
CANDIDATE_PREFIX = "kt_lr/candidate_"
#: Trial ids of probe trials start with this (they never enter ``oracle.trials``).
PROBE_ID_PREFIX = "kt_lr_probe_"

_COMPLETED = "COMPLETED"  # keras_tuner's TrialStatus.COMPLETED
_MAX_ERROR_CHARS = 2000


@dataclass
class ProbeAnswer:
    """What a worker's probe found, as the chief reads it.

    Args:
        lr: the learning rate to train with.
        low: the low end of the interval a search should explore.
        high: the high end of that interval.
        batch_size: the batch size the probe ran at.
        candidates: each heuristic's learning rate (finite values only).
        reasons: the finding's reasons, in words.
        optimizer: the class name of the probe model's optimizer.
        artifacts: the folder the curves were saved to.
        error: why there is no usable finding (``None`` when there is one).
        notes: what the worker saw that the user should hear about (e.g. the model's
            optimizer does not use the learning-rate hyperparameter); the chief warns.
    """

    lr: float | None = None
    low: float | None = None
    high: float | None = None
    batch_size: int | None = None
    candidates: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    optimizer: str | None = None
    artifacts: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the answer holds a usable finding."""
        return self.error is None


def request(values: dict[str, Any], key: str, seed: int) -> dict[str, Any]:
    """The values of a probe trial (chief side): ``values`` plus the probe key and seed.

    Args:
        values: the hyperparameter values the probe's model is built with.
        key: the probe key (e.g. ``"optimizer=adam"``, or ``"*"``).
        seed: the seed the worker builds the probe's model with.
    """
    return {**values, PROBE_MARKER: key, PROBE_SEED: int(seed)}


def is_probe_trial(trial: Any) -> bool:
    """Whether ``trial`` is a kt_lr probe (its values carry the probe marker).

    Args:
        trial: a Keras Tuner ``Trial`` (or anything with ``hyperparameters.values``).
    """
    hps = getattr(trial, "hyperparameters", None)
    return hps is not None and PROBE_MARKER in getattr(hps, "values", {})


def is_probe_id(trial_id: Any) -> bool:
    """Whether ``trial_id`` names a probe trial (possibly one from before a reload)."""
    return str(trial_id).startswith(PROBE_ID_PREFIX)


def probe_seed(values: dict[str, Any]) -> Any:
    """The seed the chief chose for the probe's model (worker side); ``None`` if absent."""
    return values.get(PROBE_SEED)


def user_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without kt_lr's own entries (the marker, seed, answer values)."""
    return {k: v for k, v in values.items() if not str(k).startswith(METRIC_PREFIX)}


def objective_placeholder(objective: Any) -> dict[str, float]:
    """Metric entries that satisfy Keras Tuner's objective checks for a probe's results.

    The value is NaN: a probe has no objective, and it never reaches the base strategy.

    Args:
        objective: the oracle's ``Objective`` or ``MultiObjective``.
    """
    names = [objective.name]
    names += list(getattr(objective, "name_to_direction", {}) or {})
    return {name: float("nan") for name in names}


def probe_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The kt_lr entries of a metrics report, as floats (the chief keeps only these)."""
    return {str(k): float(v) for k, v in dict(metrics).items() if str(k).startswith(METRIC_PREFIX)}


def encode(answer: ProbeAnswer) -> tuple[dict[str, float], dict[str, Any]]:
    """The probe's answer as ``(metrics, values)`` for the wire (worker side).

    ``metrics`` are reported as the trial's metrics, ``values`` are added to the trial's
    hyperparameter values.

    Args:
        answer: the finding, or an answer whose ``error`` says why there is none.
    """
    if answer.error is not None:
        return {METRIC_OK: 0.0}, {PROBE_ERROR: str(answer.error)[:_MAX_ERROR_CHARS]}
    metrics = {
        METRIC_OK: 1.0,
        METRIC_LR: float(answer.lr),
        METRIC_LOW: float(answer.low),
        METRIC_HIGH: float(answer.high),
        METRIC_BATCH_SIZE: float(answer.batch_size),
    }
    for name, value in answer.candidates.items():
        if value is not None and math.isfinite(value):
            metrics[CANDIDATE_PREFIX + name] = float(value)
    values: dict[str, Any] = {PROBE_REASONS: json.dumps([str(r) for r in answer.reasons])}
    if answer.optimizer is not None:
        values[PROBE_OPTIMIZER] = answer.optimizer
    if answer.artifacts is not None:
        values[PROBE_ARTIFACTS] = answer.artifacts
    if answer.notes:
        values[PROBE_NOTES] = json.dumps([str(n) for n in answer.notes])
    return metrics, values


def decode(
    metrics: dict[str, float],
    values: dict[str, Any],
    status: str = _COMPLETED,
    message: str | None = None,
) -> ProbeAnswer:
    """Read and judge a probe's answer (chief side).

    Args:
        metrics: the kt_lr metrics the worker reported (see :func:`probe_metrics`).
        values: the probe trial's values as they came back from the worker.
        status: the probe trial's final status (``"COMPLETED"`` when it ran to the end).
        message: the trial's message (a traceback when it crashed).

    Returns:
        A :class:`ProbeAnswer`; its ``error`` is set when the answer is not usable.
    """
    lr, low, high = metrics.get(METRIC_LR), metrics.get(METRIC_LOW), metrics.get(METRIC_HIGH)
    error = _problem(metrics, values, status, message, lr, low, high)
    artifacts = values.get(PROBE_ARTIFACTS)
    if error is not None:
        return ProbeAnswer(artifacts=artifacts, error=str(error))
    reasons, notes = _words(values.get(PROBE_REASONS)), _words(values.get(PROBE_NOTES))
    candidates = {
        k[len(CANDIDATE_PREFIX) :]: v
        for k, v in metrics.items()
        if k.startswith(CANDIDATE_PREFIX) and math.isfinite(v)
    }
    batch = metrics.get(METRIC_BATCH_SIZE)
    return ProbeAnswer(
        lr=float(lr),
        low=float(low),
        high=float(high),
        batch_size=int(batch) if batch is not None and math.isfinite(batch) else None,
        candidates=candidates,
        reasons=reasons,
        optimizer=values.get(PROBE_OPTIMIZER),
        artifacts=artifacts,
        notes=notes,
    )


def _words(value: Any) -> list[str]:
    """A list of strings sent as JSON (or as a list); a broken one as one string."""
    try:
        words = json.loads(value) if isinstance(value, str) else list(value or [])
    except ValueError:
        words = [value]
    return [str(w) for w in words]


def _problem(
    metrics: dict[str, float],
    values: dict[str, Any],
    status: str,
    message: str | None,
    lr: Any,
    low: Any,
    high: Any,
) -> str | None:
    """Why the answer is not usable, in words (``None`` when it is)."""
    error = values.get(PROBE_ERROR)
    if status != _COMPLETED:
        return error or _last_line(message) or f"the probe trial ended as {status}"
    if metrics.get(METRIC_OK) != 1.0:
        return error or (
            "the tuner reported no probe result; use a kt_lr tuner or put "
            "kt_lr.LRTunerMixin first in your tuner's bases"
        )
    if not (_finite_positive(lr) and _finite_positive(low) and _finite_positive(high)):
        return f"the probe returned a non-finite learning rate (lr={lr}, low={low}, high={high})"
    if low > high:
        return f"the probe returned low={low:g} > high={high:g}"
    return error


def _finite_positive(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


def _last_line(message: str | None) -> str | None:
    if not message:
        return None
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None
