"""Result dataclasses of the probes: plain fields, ``to_frame()`` and ``plot()``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def _fmt(lr: float | None) -> str:
    return "none" if lr is None else f"{lr:.3g}"


@dataclass
class RangeTestResult:
    """What an LR range test saw.

    ``lrs``/``losses`` are per step (raw training loss of that mini-batch),
    ``smoothed`` the bias-corrected EMA, ``val_losses`` the loss on a fixed
    held-out batch set after each step (or ``None``). ``suggestions`` maps each
    heuristic's name to its LR (``None`` when the curve gives it nothing).
    ``lr``, ``low`` and ``high`` are the test's own recommendation and interval.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    val_losses: np.ndarray | None
    stop_step: int
    stop_reason: str
    suggestions: dict[str, float | None]
    lr: float | None
    low: float | None
    high: float | None
    reasons: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self):
        """One row per step: ``lr``, ``loss``, ``smoothed`` (and ``val_loss``)."""
        import pandas as pd

        data = {"lr": self.lrs, "loss": self.losses, "smoothed": self.smoothed}
        if self.val_losses is not None:
            data["val_loss"] = self.val_losses
        return pd.DataFrame(data)

    def summary(self) -> str:
        """A few lines in words."""
        parts = [f"{k}={_fmt(v)}" for k, v in self.suggestions.items()]
        return (
            f"Range test: {len(self.lrs)} steps, stopped: {self.stop_reason}. "
            f"Suggestions: {', '.join(parts)}. Recommended {_fmt(self.lr)} "
            f"in [{_fmt(self.low)}, {_fmt(self.high)}]."
        )

    def plot(self, ax=None):
        """Loss vs LR (log x) with every suggestion marked; returns the Figure."""
        from kt_lr.plot import plot_range_test

        return plot_range_test(self, ax=ax)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready Python (arrays as lists, see :func:`as_plain`)."""
        return as_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeTestResult:
        """The result back from :meth:`to_dict` (or its JSON)."""
        return _rebuild(cls, data)


@dataclass
class LossDifferentialResult:
    """Subsampled one-step loss differentials ΔL = L(after) − L(before) per LR.

    ``deltas`` has shape (num_subsamples, len(lrs)). Interval arrays are per LR.
    ``best`` maps each best-LR rule to its LR (``None`` when the rule has no
    answer, e.g. no LR whose whole CI is below zero). ``method`` is
    ``"affine"`` (one gradient, forward passes) or ``"brute_force"``.
    ``lrs`` are the LRs measured, increasing (a subset of the candidate grid,
    ``settings["lattice"]``, when the probe refined it). ``measured`` says which
    subsample was measured at which LR (``None``: every one at every LR; elsewhere
    ``deltas`` holds nan), ``count`` how many subsamples measured each LR.
    """

    lrs: np.ndarray
    deltas: np.ndarray
    base_losses: np.ndarray
    mean: np.ndarray
    median: np.ndarray
    std: np.ndarray
    t_low: np.ndarray
    t_high: np.ndarray
    boot_low: np.ndarray
    boot_high: np.ndarray
    confidence: float
    best: dict[str, float | None]
    method: str
    holdout: bool
    reasons: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    measured: np.ndarray | None = None
    count: np.ndarray | None = None

    def __post_init__(self):
        if self.measured is not None:
            self.measured = np.asarray(self.measured, dtype=bool)
        if self.count is None:
            rows = np.shape(self.deltas)[0]
            self.count = (
                np.full(len(self.lrs), rows) if self.measured is None else self.measured.sum(axis=0)
            )
        self.count = np.asarray(self.count, dtype=int)

    def to_frame(self):
        """One row per LR: mean, median, std, both intervals of ΔL and the count."""
        import pandas as pd

        return pd.DataFrame(
            {
                "lr": self.lrs,
                "mean": self.mean,
                "median": self.median,
                "std": self.std,
                "t_low": self.t_low,
                "t_high": self.t_high,
                "boot_low": self.boot_low,
                "boot_high": self.boot_high,
                "count": self.count,
            }
        )

    def summary(self) -> str:
        """A few lines in words."""
        parts = [f"{k}={_fmt(v)}" for k, v in self.best.items()]
        return (
            f"Loss differentials ({self.method}, {self.deltas.shape[0]} subsamples x "
            f"{len(self.lrs)} LRs, {self.confidence:.0%} CI): {', '.join(parts)}."
        )

    def plot(self, ax=None):
        """Mean ΔL vs LR with the CI band and the zero line; returns the Figure."""
        from kt_lr.plot import plot_loss_differential

        return plot_loss_differential(self, ax=ax)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready Python (arrays as lists, see :func:`as_plain`)."""
        return as_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossDifferentialResult:
        """The result back from :meth:`to_dict` (or its JSON)."""
        return _rebuild(cls, data)


@dataclass
class LRFinding:
    """The fused answer of ``find_lr``.

    ``lr`` is the single learning rate to train with; ``[low, high]`` the
    interval a search should explore (``low <= lr <= high``). ``reasons`` says
    which heuristic and which CI rule said what and how they were combined.
    """

    lr: float
    low: float
    high: float
    reasons: list[str]
    range_test: RangeTestResult | None = None
    differential: LossDifferentialResult | None = None
    candidates: dict[str, float | None] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        """Flat numbers (``lr``, ``low``, ``high`` and the candidates as ``candidate_<name>``)
        for metrics; with ``full``, every field (reasons, settings, both probes' results)
        as JSON-ready Python, what a search saves in ``finding.json``.

        Args:
            full: the whole finding rather than its numbers.
        """
        if full:
            return as_plain(self)
        out = {"lr": float(self.lr), "low": float(self.low), "high": float(self.high)}
        for k, v in self.candidates.items():
            if v is not None:
                out[f"{_CANDIDATE}{k}"] = float(v)
        return out

    def to_frame(self):
        """One row per candidate LR (plus the pick and the interval) with its source."""
        import pandas as pd

        rows = [{"name": "pick", "lr": self.lr}, {"name": "low", "lr": self.low}]
        rows.append({"name": "high", "lr": self.high})
        rows += [{"name": k, "lr": v} for k, v in self.candidates.items()]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """The pick, the interval and the reasons, in words."""
        head = f"Learning rate {self.lr:.3g} (explore [{self.low:.3g}, {self.high:.3g}])."
        return "\n".join([head, *("  - " + r for r in self.reasons)])

    def plot(self):
        """Both probe curves side by side with the pick and interval marked."""
        from kt_lr.plot import plot_finding

        return plot_finding(self)

    def __repr__(self) -> str:
        return f"LRFinding(lr={self.lr:.3g}, low={self.low:.3g}, high={self.high:.3g})"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFinding:
        """A finding back from what kt_lr writes: :meth:`to_dict` (full or its numbers) or a
        search's ``<project>/kt_lr/<probe id>/finding.json`` (the finding under
        ``"finding"``, next to the probe's trial id and values).

        Args:
            data: the dict (e.g. ``json.load`` of the file).

        Raises:
            ValueError: when ``data`` holds no finding (no ``lr``, ``low`` and ``high``).
        """
        if "lr" not in data and isinstance(data.get("finding"), dict):
            data = data["finding"]  # a probe's finding.json
        missing = [k for k in ("lr", "low", "high") if data.get(k) is None]
        if missing:
            raise ValueError(
                f"LRFinding.from_dict: no {missing} in the data (keys: {sorted(data)}); pass "
                "finding.to_dict(full=True), finding.to_dict() or a probe's finding.json."
            )
        rt = data.get("range_test")
        ld = data.get("differential")
        candidates = dict(data.get("candidates") or {})
        candidates.update(
            {k[len(_CANDIDATE) :]: v for k, v in data.items() if k.startswith(_CANDIDATE)}
        )
        return cls(
            lr=float(data["lr"]),
            low=float(data["low"]),
            high=float(data["high"]),
            reasons=list(data.get("reasons") or []),
            range_test=None if rt is None else RangeTestResult.from_dict(rt),
            differential=None if ld is None else LossDifferentialResult.from_dict(ld),
            candidates=candidates,
            settings=dict(data.get("settings") or {}),
        )


_CANDIDATE = "candidate_"
_TEXT_LISTS = {"reasons"}  # list fields that are not arrays of numbers


def _numbers(value):
    """Nested lists of numbers back from :func:`as_plain`: ``None`` -> nan,
    ``"inf"``/``"-inf"`` -> infinities; ints and booleans stay what they were."""
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if value is None:
        return np.nan
    return float(value) if isinstance(value, str) else value


def _rebuild(kind, data: dict[str, Any]):
    """A result dataclass from plain data: lists back to arrays (of the JSON's numbers:
    floats, ints or booleans)."""
    values = {}
    for name in kind.__dataclass_fields__:
        if name not in data:
            continue  # a field with a default (e.g. from an older file)
        value = data[name]
        if isinstance(value, list) and name not in _TEXT_LISTS:
            value = np.array(_numbers(value))
        values[name] = value
    return kind(**values)


def as_plain(obj: Any) -> Any:
    """Convert a result (or nested structure) into JSON-friendly python objects: arrays
    as nested lists, nan as ``None``, infinities as ``"inf"`` / ``"-inf"`` (JSON has
    neither; :meth:`LRFinding.from_dict` reads them back)."""
    if hasattr(obj, "__dataclass_fields__"):
        return as_plain(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): as_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [as_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [as_plain(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj
