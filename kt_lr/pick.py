"""The learned, budget-aware pick (pure numpy; no Keras).

The fused probes (:mod:`kt_lr.fuse`) give an *edge of stability*: the largest learning
rate that still trains. The best constant rate for a training budget sits below it, by
an amount the edge alone does not tell: a few times on a short budget where optimisation
sets the rate, one to two decades where the model overfits within a long budget. The
rule here predicts that gap, in decades, from

* the edge itself (its coefficient, shrunk towards 0 by the penalty, lets the gap
  depend on where the edge is) and the shape of both probes: each candidate's distance
  from the edge in decades (the range test's own edge, valley and steepest point; the
  differentials' edge and lowest mean);
* the context: the optimizer's family, the batch size, the training samples, the
  model's parameters per sample and the **budget** (epochs x steps per epoch, and the
  epochs);

with a ridge-regularised linear model in log space fitted across the benchmark corpus
(``python -m benchmarks.fit_rule``; coefficients in ``kt_lr/data/pick_rule.json``, one
set per target: the ``final`` epoch, what a user who trains N epochs keeps, and the
``best`` epoch, what Keras Tuner ranks a trial by). The pick is ``edge x 10^(predicted
gap)``; its interval is the band of the cross-validated errors that held the best rate
on at least 95% of the corpus's tasks out of sample. The figures are in
``benchmarks/RESULTS.md`` ("Learned pick").

A feature that cannot be measured (a probe not run, a range test without a valley, no
budget given) takes the corpus's mean value: it then moves nothing, and the reasons say
which ones were missing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

TARGETS = ("final", "best")

# Keras optimizer class -> family. Unknown classes count as the Adam family (and say so).
OPTIMIZER_FAMILIES = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adam",
    "Adamax": "adam",
    "Nadam": "adam",
    "Lamb": "adam",
    "ScheduleFreeAdamW": "adam",
    "RMSprop": "adam",
    "Lion": "sign",
    "Muon": "sign",
    "Adagrad": "accumulator",
    "Adadelta": "accumulator",
    "Adafactor": "accumulator",
    "Ftrl": "accumulator",
}
FAMILY_FEATURES = ("sgd", "sign", "accumulator")  # one-hots; Adam is the baseline

# probe features: a candidate's log10 distance from the fused edge
PROBE_FEATURES = {
    "rt_edge": "range_test:edge",
    "rt_valley": "range_test:valley",
    "rt_steepest": "range_test:steepest",
    "ld_edge": "differential:edge",
    "ld_lowest_mean": "differential:lowest_mean",
}
CONTEXT_FEATURES = ("log_budget", "log_epochs", "log_samples", "log_batch", "log_params")
FEATURES = ("log_edge", *PROBE_FEATURES, *CONTEXT_FEATURES, *FAMILY_FEATURES)
# features whose coefficient the fit keeps <= 0: a longer budget never raises the pick
NONPOSITIVE = ("log_budget", "log_epochs")

_WORDS = {
    "log_edge": "where the edge sits",
    "rt_edge": "the range test's minimum",
    "rt_valley": "the range test's valley",
    "rt_steepest": "the range test's steepest descent",
    "ld_edge": "the differentials' edge",
    "ld_lowest_mean": "the differentials' lowest mean ΔL",
    "log_budget": "the budget in steps",
    "log_epochs": "the budget in epochs",
    "log_samples": "the training samples",
    "log_batch": "the batch size",
    "log_params": "parameters per training sample",
}


@dataclass
class Context:
    """What the pick knows about the training run besides the probes.

    Args:
        optimizer: the optimizer's class name (``type(optimizer).__name__``).
        batch_size: the training batch size.
        samples: training samples per epoch, or ``None`` when unknown.
        params: the model's trainable parameters, or ``None``.
        epochs: the training budget in epochs, or ``None`` (then the corpus's typical
            budget is assumed, and the reasons say so).
        steps_per_epoch: optimizer steps per epoch; by default ``ceil(samples /
            batch_size)``.
    """

    optimizer: str
    batch_size: int
    samples: int | None = None
    params: int | None = None
    epochs: float | None = None
    steps_per_epoch: int | None = None

    def steps(self) -> int | None:
        """Steps per epoch, from ``steps_per_epoch`` or the samples and batch size."""
        if self.steps_per_epoch:
            return int(self.steps_per_epoch)
        if self.samples:
            return max(1, math.ceil(self.samples / self.batch_size))
        return None

    def training_samples(self) -> int | None:
        """Samples per epoch, from ``samples`` or the steps and batch size."""
        if self.samples:
            return int(self.samples)
        if self.steps_per_epoch:
            return int(self.steps_per_epoch) * self.batch_size
        return None


def optimizer_family(name: str) -> str | None:
    """The family of a Keras optimizer class name, ``None`` for an unknown class.

    Args:
        name: the class name, e.g. ``"AdamW"``.
    """
    return OPTIMIZER_FAMILIES.get(name)


def features(
    candidates: dict[str, float | None], context: Context
) -> tuple[float, dict[str, float | None]]:
    """``(log10 edge, {feature: value or None})`` of one probe run.

    Args:
        candidates: a finding's candidates (``LRFinding.candidates``): needs ``"edge"``.
        context: the training run.
    """
    edge = candidates.get("edge")
    if edge is None or not edge > 0:
        raise ValueError("the pick needs the probes' edge of stability (candidates['edge'])")
    anchor = math.log10(edge)
    out: dict[str, float | None] = {"log_edge": anchor}
    for name, key in PROBE_FEATURES.items():
        v = candidates.get(key)
        out[name] = math.log10(v) - anchor if v is not None and v > 0 else None
    steps, samples = context.steps(), context.training_samples()
    out["log_budget"] = (
        math.log10(context.epochs * steps) if context.epochs and steps is not None else None
    )
    out["log_epochs"] = math.log10(context.epochs) if context.epochs else None
    out["log_samples"] = math.log10(samples) if samples else None
    out["log_batch"] = math.log10(context.batch_size)
    out["log_params"] = math.log10(context.params / samples) if context.params and samples else None
    family = optimizer_family(context.optimizer)
    for fam in FAMILY_FEATURES:
        out[fam] = None if family is None else float(family == fam)
    return anchor, out


@dataclass
class PickRule:
    """One target's fitted rule: ``log10 pick = log10 edge + intercept + sum(coef *
    (x - mean) / scale)``; the interval is ``pick x 10^interval``.

    Args:
        target: ``"final"`` or ``"best"``.
        features: the feature names, in order.
        mean: each feature's mean on the corpus (a missing feature takes it).
        scale: each feature's standard deviation on the corpus.
        coef: decades per standard deviation of each feature.
        intercept: decades from the edge at the mean features.
        interval: ``(below, above)`` in decades around the pick.
        shift: decades added after the regression (chosen for regret, usually <= 0).
        info: where the rule came from and its cross-validated figures.
    """

    target: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    interval: tuple[float, float]
    shift: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored in ``kt_lr/data/pick_rule.json``."""
        out = asdict(self)
        out["interval"] = list(self.interval)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PickRule:
        """The rule from :meth:`to_dict`'s data.

        Args:
            data: the plain data.
        """
        data = dict(data)
        data["interval"] = tuple(data["interval"])
        return cls(**data)

    def contributions(self, values: dict[str, float | None]) -> dict[str, float]:
        """Each feature's contribution to the gap, in decades (0 for a missing one).

        Args:
            values: :func:`features`' second output.
        """
        out = {}
        for name, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True):
            v = values.get(name)
            out[name] = 0.0 if v is None else c * (v - m) / s
        return out

    def gap(self, values: dict[str, float | None]) -> float:
        """The predicted log10 distance of the pick from the edge, capped by
        :func:`ceiling`.

        Args:
            values: :func:`features`' second output.
        """
        raw = self.intercept + self.shift + sum(self.contributions(values).values())
        return min(raw, ceiling(values))


def ceiling(values: dict[str, float | None]) -> float:
    """The highest gap allowed: the pick never goes above the lower of the two probes'
    edges (where either saw training stop), whatever the context says.

    Args:
        values: :func:`features`' second output.
    """
    edges = [values.get(n) for n in ("rt_edge", "ld_edge")]
    return min([0.0, *[v for v in edges if v is not None]])


@cache
def _stored() -> dict[str, Any]:
    text = resources.files("kt_lr").joinpath("data/pick_rule.json").read_text()
    return json.loads(text)


def load_rule(target: str = "final") -> PickRule:
    """The shipped rule for ``target``.

    Args:
        target: ``"final"`` (the model after the last epoch) or ``"best"`` (the best
            epoch: Keras Tuner's score, EarlyStopping's restored weights).
    """
    if target not in TARGETS:
        raise ValueError(
            f"target={target!r}: use 'final' (the model after the last epoch, what "
            "model.fit leaves) or 'best' (the best epoch, what Keras Tuner ranks by)."
        )
    return PickRule.from_dict(_stored()["targets"][target])


def _missing_note(values: dict[str, float | None], optimizer: str) -> list[str]:
    budget = [n for n in ("log_budget", "log_epochs") if values.get(n) is None]
    family = [n for n in FAMILY_FEATURES if values.get(n) is None]
    notes = []
    if budget:
        notes.append(
            "no training budget given (epochs, and steps per epoch or data of known "
            "length): assumed the corpus's typical budget; pass epochs=... for a "
            "budget-aware pick"
        )
    if family:
        notes.append(
            f"optimizer {optimizer} is not among the corpus's (kt_lr.pick."
            "OPTIMIZER_FAMILIES): its family taken at the corpus's mean"
        )
    other = [n for n in values if values[n] is None and n not in budget + family]
    if other:
        notes.append(
            "not measured, so taken at the corpus's mean: "
            + ", ".join(_WORDS.get(n, n) for n in other)
        )
    return notes


def apply(
    candidates: dict[str, float | None],
    context: Context,
    *,
    target: str = "final",
    bounds: tuple[float, float] | None = None,
    rule: PickRule | None = None,
) -> tuple[float, float, float, list[str]]:
    """``(lr, low, high, reasons)``: the learned pick for one probe run.

    Args:
        candidates: the fused finding's candidates (needs ``"edge"``).
        context: the training run (optimizer, batch size, samples, budget).
        target: ``"final"`` or ``"best"``.
        bounds: ``(low, high)`` the probed range; the answer is clipped into it.
        rule: a rule to use instead of the shipped one.
    """
    rule = rule or load_rule(target)
    anchor, values = features(candidates, context)
    parts = rule.contributions(values)
    gap = rule.gap(values)
    capped = gap < rule.intercept + rule.shift + sum(parts.values()) - 1e-12
    lr = 10 ** (anchor + gap)
    low, high = lr * 10 ** rule.interval[0], lr * 10 ** rule.interval[1]
    if bounds is not None:
        lr = float(np.clip(lr, *bounds))
        low = float(np.clip(low, bounds[0], lr))
        high = float(np.clip(high, lr, bounds[1]))
    family = optimizer_family(context.optimizer) or "unknown"
    words = {n: _WORDS.get(n, n) for n in parts}
    merged: dict[str, float] = {}
    for n, v in parts.items():  # the family one-hots read as one effect
        key = (
            f"the {context.optimizer} optimizer ({family} family)"
            if n in FAMILY_FEATURES
            else words[n]
        )
        merged[key] = merged.get(key, 0.0) + v
    top = sorted((p for p in merged.items() if abs(p[1]) >= 0.05), key=lambda p: -abs(p[1]))
    moved = ", ".join(f"{n} {v:+.2f}" for n, v in top[:4]) or "nothing"
    reasons = [
        f"learned pick ({target} epoch): {-gap:.2f} decades below the edge "
        f"{10**anchor:.3g} (a typical task's: {-(rule.intercept + rule.shift):.2f}; "
        f"moved, in decades, by {moved})",
        *_missing_note(values, context.optimizer),
        *(
            ["capped at the lower of the two probes' edges (the context alone pointed higher)"]
            if capped
            else []
        ),
        f"picked {lr:.3g}; search interval [{low:.3g}, {high:.3g}] (the band that held the "
        f"best LR on {rule.info.get('interval_coverage', '95%')} of the corpus's tasks "
        "out of sample)",
    ]
    return float(lr), float(low), float(high), reasons


def ridge(x: np.ndarray, y: np.ndarray, lam: float, nonpositive: list[int] = ()) -> np.ndarray:
    """Ridge coefficients ``[intercept, coef...]`` of ``y`` on standardised ``x`` (the
    intercept not penalised); coefficients listed in ``nonpositive`` are kept <= 0 by
    dropping any that come out positive and refitting.

    Args:
        x: ``(n, k)`` standardised features.
        y: ``(n,)`` targets.
        lam: the penalty (>= 0).
        nonpositive: column indices constrained to be <= 0.
    """
    active = np.ones(x.shape[1], bool)
    while True:
        xa = np.column_stack([np.ones(len(x)), x[:, active]])
        pen = lam * np.eye(xa.shape[1])
        pen[0, 0] = 0.0
        sol = np.linalg.solve(xa.T @ xa + pen, xa.T @ y)
        coef = np.zeros(x.shape[1])
        coef[active] = sol[1:]
        bad = [i for i in nonpositive if active[i] and coef[i] > 0]
        if not bad:
            return np.concatenate([[sol[0]], coef])
        active[bad] = False
