"""The learning-rate side of a search, in words and numbers: LRReport and ProbeReport.

``tuner.lr_report()`` / ``oracle.lr_report()`` during or after a search, or
:func:`load_lr_report` on a project directory (its saved ``oracle.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from keras_tuner import HyperParameters

from kt_lr import narrowing
from kt_lr import space as sp
from kt_lr.ledger import Ledger, ProbeRecord, ProbeStatus, clause


@dataclass(repr=False)
class ProbeReport:
    """One probe key: what its probe found, the narrowed interval and its seeds.

    ``status`` is ``"pending"``, ``"running"``, ``"done"`` or ``"failed"``;
    ``low``/``high`` the probe's own interval, ``narrowed_low``/``narrowed_high`` the
    key's interval at the probe's batch size; ``attempt_log`` lists each hand-out of
    the probe (worker, outcome) and ``idle_answers`` the IDLE answers given while it ran.
    For a ``Choice`` learning rate, ``choices`` lists the values this key's trials
    choose among (``None`` for a ``Float``).
    """

    key: str
    key_values: dict[str, Any]
    status: str
    trial_id: str | None = None
    lr: float | None = None
    low: float | None = None
    high: float | None = None
    narrowed_low: float | None = None
    narrowed_high: float | None = None
    interval_status: str | None = None
    seeds: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    candidates: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    artifacts: str | None = None
    batch_size: int | None = None
    attempts: int = 0
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    idle_answers: int = 0
    choices: list[float] | None = None
    scaled: bool = True  # False: the batch size is part of this key, nothing is scaled

    @property
    def kept(self) -> str:
        """The key's narrowed interval, or for a ``Choice`` its kept values, in words."""
        if self.choices is not None:
            return f"values {sp.format_values(self.choices)}"
        return f"[{self.narrowed_low:.3g}, {self.narrowed_high:.3g}]"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeReport:
        """The report from :meth:`to_dict`'s data.

        Args:
            data: the plain data.
        """
        return cls(**data)

    def __repr__(self) -> str:
        if self.status == ProbeStatus.DONE:
            return (
                f"ProbeReport({self.key}: lr={self.lr:.3g}, probe [{self.low:.3g}, "
                f"{self.high:.3g}] -> {self.kept})"
            )
        return f"ProbeReport({self.key}: {self.status})"


@dataclass(repr=False)
class LRReport:
    """The learning-rate side of a search: ``tuner.lr_report()``.

    ``original`` and ``narrowed`` describe the LR hyperparameter before and after the
    probes (one dict per entry: kind, min_value, max_value, sampling, values, default);
    ``probes`` maps each probe key to a :class:`ProbeReport` (its ``narrowed_low`` /
    ``narrowed_high`` are that key's own interval at the probe's batch size; ``narrowed``
    is the space's hull of every key's interval); ``seeds`` lists the seeded trials
    (``trial_id`` is ``None`` while still queued); ``batch_sizes`` the batch sizes the
    intervals were scaled to.
    """

    hp_name: str
    original: list[dict[str, Any]]
    narrowed: list[dict[str, Any]]
    probes: dict[str, ProbeReport]
    seeds: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    batch_sizes: list[float] = field(default_factory=list)

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, space: Any, hp_name: str) -> LRReport:
        """Build the report from an oracle's saved kt_lr state and its current space.

        Args:
            state: the ``"kt_lr"`` entry of an oracle's state (``None``: nothing yet).
            space: the oracle's current ``HyperParameters``.
            hp_name: the LR hyperparameter's name, when the state does not name it.
        """
        return cls.from_ledger(Ledger.from_state(state), space, hp_name)

    @classmethod
    def from_ledger(cls, ledger: Ledger, space: Any, hp_name: str) -> LRReport:
        """Build the report from an oracle's :class:`~kt_lr.ledger.Ledger` and its space."""
        hp_name = ledger.hp_name or hp_name
        original = [sp.hp_summary(narrowing.entry_hp(e, space)) for e in ledger.original]
        narrowed = [sp.hp_summary(hp) for hp in space.space if hp.name == hp_name]
        if not original:
            original = [dict(n) for n in narrowed]
        probes = {key: _probe_report(rec) for key, rec in ledger.probes.items()}
        seeds = [dict(asdict(s), status="used") for s in ledger.seeds_used]
        seeds += [
            {"key": s.key, "lr": s.lr, "trial_id": None, "status": "queued"}
            for s in ledger.seed_queue
        ]
        sizes = [b for b in ledger.batch_sizes or [] if b is not None]
        for key, rec in ledger.probes.items():  # probed at its own batch size: not scaled
            probes[key].scaled = ledger.batch_key not in rec.key_values
        return cls(hp_name, original, narrowed, probes, seeds, list(ledger.notes), sizes)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data (:meth:`from_dict` reads it back)."""
        out = asdict(self)
        out["probes"] = {k: p.to_dict() for k, p in self.probes.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRReport:
        """The report from :meth:`to_dict`'s data.

        Args:
            data: the plain data.
        """
        data = dict(data)
        data["probes"] = {k: ProbeReport.from_dict(p) for k, p in data["probes"].items()}
        return cls(**data)

    @property
    def interval(self) -> tuple[float, float] | None:
        """``(min_value, max_value)`` of the LR hyperparameter now (first entry)."""
        if not self.narrowed:
            return None
        return (self.narrowed[0]["min_value"], self.narrowed[0]["max_value"])

    @property
    def original_interval(self) -> tuple[float, float] | None:
        """``(min_value, max_value)`` of the LR hyperparameter before any probe."""
        if not self.original:
            return None
        return (self.original[0]["min_value"], self.original[0]["max_value"])

    def to_frame(self):
        """One row per probe key: finding, original and narrowed bounds, seeds, reasons."""
        import pandas as pd

        o = self.original_interval or (None, None)
        n = self.interval or (None, None)
        rows = [
            {
                "key": key,
                "status": p.status,
                "lr": p.lr,
                "probe_low": p.low,
                "probe_high": p.high,
                "original_low": o[0],
                "original_high": o[1],
                "narrowed_low": p.narrowed_low,
                "narrowed_high": p.narrowed_high,
                "space_low": n[0],
                "space_high": n[1],
                "seeds": list(p.seeds),
                "choices": None if p.choices is None else list(p.choices),
                "reasons": " | ".join(p.reasons + p.notes),
                "error": p.error,
            }
            for key, p in self.probes.items()
        ]
        return pd.DataFrame(rows, columns=_FRAME_COLUMNS)

    def summary(self) -> str:
        """The report in words."""
        lines = [f"Learning-rate report for {self.hp_name!r}"]
        for label, entries in (("original", self.original), ("search", self.narrowed)):
            if entries:
                lines.append(f"  {_range_words(label, entries[0])}")
        if not self.probes:
            lines.append("  no probe has run yet")
        for key, p in self.probes.items():
            lines += self._probe_lines(key, p)
        used = [s for s in self.seeds if s["status"] == "used"]
        if used:
            lines.append("  seeded trials: " + ", ".join(_seeded_words(s) for s in used))
        lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def _probe_lines(self, key: str, p: ProbeReport) -> list[str]:
        label = "all trials" if key == sp.ALL_KEY else key
        lines = []
        if p.status == ProbeStatus.DONE:
            lines.append(
                f"  probe {p.trial_id} ({label}): picked {p.lr:.3g}, probe interval "
                f"[{p.low:.3g}, {p.high:.3g}] -> {p.kept} ({p.interval_status})"
            )
            others = [b for b in self.batch_sizes if b != p.batch_size]
            if p.batch_size and others and p.scaled:
                sizes = ", ".join(f"{b:g}" for b in others)
                lines.append(
                    f"    measured at batch size {p.batch_size}; scaled for batch size "
                    f"{sizes} by the batch_scaling rule"
                )
            if p.seeds:
                lines.append("    seeds: " + ", ".join(f"{s:.3g}" for s in p.seeds))
        elif p.status == ProbeStatus.FAILED:
            lines.append(f"  probe {p.trial_id} ({label}) failed: {clause(p.error)}; range kept")
        else:
            lines.append(f"  probe ({label}): {p.status}")
        if p.attempts > 1:
            tried = "; ".join(
                f"{a['trial_id']} on {a['tuner_id']}: {a['outcome']}" for a in p.attempt_log
            )
            lines.append(f"    attempts: {tried}")
        lines += [f"    - {r}" for r in p.reasons + p.notes]
        if p.artifacts:
            lines.append(f"    curves: {p.artifacts}")
        return lines

    def __repr__(self) -> str:
        return self.summary()

    def plot(self, ax=None):
        """Original range, probe interval, narrowed range, pick and seeds per key (log x).

        Args:
            ax: a matplotlib ``Axes`` to draw into; a new ``Figure`` when ``None``.

        Returns:
            The matplotlib ``Figure``.
        """
        from kt_lr.plot import plot_lr_report

        return plot_lr_report(self, ax=ax)


_FRAME_COLUMNS = [
    "key",
    "status",
    "lr",
    "probe_low",
    "probe_high",
    "original_low",
    "original_high",
    "narrowed_low",
    "narrowed_high",
    "space_low",
    "space_high",
    "seeds",
    "choices",
    "reasons",
    "error",
]


def _range_words(label: str, entry: dict[str, Any]) -> str:
    """``original range: [a, b]``, or for a Choice ``original values: [...]``."""
    when = " now" if label == "search" else ""
    if entry.get("kind") == "Choice":
        return f"{label} values{when}: {sp.format_values(entry['values'])}"
    return f"{label} range{when}: [{entry['min_value']:.3g}, {entry['max_value']:.3g}]"


def _seeded_words(seed: dict[str, Any]) -> str:
    """One seeded trial: its id, its LR and, when it differs from the queued seed, why."""
    note = seed.get("note")
    extra = f": {note}" if note and note != "seed" else ""
    return f"{seed['trial_id']} (lr={seed['lr']:.3g}{extra})"


def _probe_report(rec: ProbeRecord) -> ProbeReport:
    f, iv = rec.finding, rec.interval
    return ProbeReport(
        key=rec.key,
        key_values=dict(rec.key_values),
        status=rec.status.value,
        trial_id=rec.trial_id,
        lr=None if f is None else f.lr,
        low=None if f is None else f.low,
        high=None if f is None else f.high,
        narrowed_low=None if iv is None else iv.low,
        narrowed_high=None if iv is None else iv.high,
        interval_status=None if iv is None else iv.status,
        seeds=list(rec.seeds),
        reasons=[] if f is None else list(f.reasons),
        notes=(list(iv.notes) if iv is not None else []) + list(rec.notes),
        candidates={} if f is None else dict(f.candidates),
        error=rec.error,
        artifacts=rec.artifacts,
        batch_size=None if f is None else f.batch_size,
        attempts=int(rec.attempts),
        attempt_log=[a.to_state() for a in rec.attempt_log],
        idle_answers=int(rec.idle_answers),
        choices=None if rec.choices is None else list(rec.choices),
    )


def load_lr_report(project_dir: str, hp_name: str = sp.DEFAULT_LR_HP_NAME) -> LRReport:
    """The :class:`LRReport` of a project directory, read from its saved ``oracle.json``.

    Args:
        project_dir: the search's project directory (``<directory>/<project_name>``).
        hp_name: the LR hyperparameter's name, for a project saved before any probe.

    Raises:
        FileNotFoundError: the directory holds no ``oracle.json``.
    """
    path = os.path.join(str(project_dir), "oracle.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No oracle.json in {project_dir!r}; run a search there first (or check the "
            "directory / project_name)."
        )
    with open(path) as fh:
        state = json.load(fh)
    space = HyperParameters.from_config(state["hyperparameters"])
    return LRReport.from_state(state.get("kt_lr"), space, hp_name)
