"""The probe ledger: what every probe key was asked, answered and decided, and when.

The ledger is kt_lr's side slot in an oracle's state (``state["kt_lr"]``): one
:class:`ProbeRecord` per probe key with its attempts, finding, narrowed interval and
seeds, the seed queue, and the ordinary trials that timed out. It lives outside
``oracle.trials``, so a probe never reaches the base strategy.

Running probes are timed with an injected clock (``Ledger(clock=...)``, default
``time.monotonic``), so tests move time by hand. :meth:`Ledger.to_state` writes the
JSON form (version :data:`STATE_VERSION`); :meth:`Ledger.from_state` reads it back and
also reads the states saved by older kt_lr versions (fields they lack get defaults), so
``overwrite=False`` resumes old projects. Pure Python: no Keras Tuner import.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from kt_lr import _protocol as wire
from kt_lr import space as sp

#: The version of the state written by :meth:`Ledger.to_state`.
STATE_VERSION = 2


class LRProbeWarning(UserWarning):
    """A learning-rate probe failed, timed out, or its interval missed the user's range."""


def warn(message: str) -> None:
    """Issue ``message`` as an :class:`LRProbeWarning`."""
    warnings.warn(message, LRProbeWarning, stacklevel=3)


def clause(text: Any) -> str:
    """``text`` without its closing punctuation, to go on inside a sentence.

    For messages that quote an error: ``f"failed: {clause(error)}; ..."`` never
    reads ``"..."`` or ``".;"`` when the error ends with a full stop.
    """
    return str(text).rstrip().rstrip(".;:,").rstrip()


class ProbeStatus(str, Enum):
    """Where a probe key stands: waiting, handed out, answered, or given up on."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass
class Attempt:
    """One hand-out of a probe key to a worker.

    Args:
        trial_id: the probe trial's id.
        tuner_id: the worker it was handed to.
        outcome: ``"running"``, the record's final status, or what happened (in words).
        seconds: how long the worker took to answer (``None`` without an answer).
    """

    trial_id: str
    tuner_id: str | None = None
    outcome: str = "unknown"
    seconds: float | None = None

    def to_state(self) -> dict[str, Any]:
        out = {"trial_id": self.trial_id, "tuner_id": self.tuner_id, "outcome": self.outcome}
        if self.seconds is not None:
            out["seconds"] = self.seconds
        return out


@dataclass
class Finding:
    """A probe's answer as the oracle keeps it (see ``kt_lr._protocol.ProbeAnswer``)."""

    lr: float
    low: float
    high: float
    reasons: list[str] = field(default_factory=list)
    candidates: dict[str, float] = field(default_factory=dict)
    batch_size: int | None = None
    optimizer: str | None = None


@dataclass
class Seed:
    """A learning rate a trial of probe key ``key`` is seeded with.

    ``trial_id`` and ``note`` are set when a trial takes it from the queue.
    """

    key: str
    lr: float
    trial_id: str | None = None
    note: str | None = None


@dataclass
class ProbeRecord:
    """Everything about one probe key: status, attempts, finding, interval, seeds."""

    key: str
    key_values: dict[str, Any] = field(default_factory=dict)
    status: ProbeStatus = ProbeStatus.PENDING
    trial_id: str | None = None
    attempts: int = 0
    attempt_log: list[Attempt] = field(default_factory=list)
    idle_answers: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    finding: Finding | None = None
    interval: sp.Interval | None = None
    seeds: list[float] = field(default_factory=list)
    error: str | None = None
    artifacts: str | None = None
    notes: list[str] = field(default_factory=list)
    choices: list[float] | None = None  # a Choice LR: the values this key keeps

    @property
    def label(self) -> str:
        """``" (key)"`` for messages, empty for the single key of an unkeyed space."""
        return "" if self.key == sp.ALL_KEY else f" ({self.key})"

    def attempt(self, trial_id: str) -> Attempt:
        """The attempt of ``trial_id`` (added, as ``"unknown"``, if it is not logged)."""
        for attempt in self.attempt_log:
            if attempt.trial_id == trial_id:
                return attempt
        attempt = Attempt(trial_id)
        self.attempt_log.append(attempt)
        return attempt

    def fail(self, error: str) -> None:
        """Give up on this key: its trials search the original range."""
        self.status, self.error = ProbeStatus.FAILED, str(error)
        self.interval, self.seeds, self.choices = None, [], None

    def to_state(self) -> dict[str, Any]:
        iv = self.interval
        return {
            "key": self.key,
            "key_values": dict(self.key_values),
            "status": self.status.value,
            "trial_id": self.trial_id,
            "attempts": self.attempts,
            "attempt_log": [a.to_state() for a in self.attempt_log],
            "idle_answers": self.idle_answers,
            "metrics": dict(self.metrics),
            "finding": None if self.finding is None else asdict(self.finding),
            "interval": None
            if iv is None
            else {"low": iv.low, "high": iv.high, "status": iv.status, "notes": list(iv.notes)},
            "seeds": list(self.seeds),
            "error": self.error,
            "artifacts": self.artifacts,
            "notes": list(self.notes),
            **({} if self.choices is None else {"choices": list(self.choices)}),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProbeRecord:
        """Read a record; fields an older kt_lr did not save get their defaults."""
        f, iv = state.get("finding"), state.get("interval")
        return cls(
            key=state.get("key", sp.ALL_KEY),
            key_values=dict(state.get("key_values") or {}),
            status=ProbeStatus(state.get("status", "pending")),
            trial_id=state.get("trial_id"),
            attempts=int(state.get("attempts", 0)),
            attempt_log=[Attempt(**a) for a in state.get("attempt_log") or []],
            idle_answers=int(state.get("idle_answers", 0)),
            metrics=dict(state.get("metrics") or {}),
            finding=None if f is None else Finding(**f),
            interval=None
            if iv is None
            else sp.Interval(iv["low"], iv["high"], iv["status"], tuple(iv.get("notes", ()))),
            seeds=list(state.get("seeds") or []),
            error=state.get("error"),
            artifacts=state.get("artifacts"),
            notes=list(state.get("notes") or []),
            choices=state.get("choices"),
        )


@dataclass
class Ledger:
    """kt_lr's state in an oracle: the probe records, the seed queue, the timeouts.

    Args:
        clock: seconds on a monotonic clock, for probe timeouts (tests pass a fake).
    """

    hp_name: str | None = None
    original: list[dict[str, Any]] = field(default_factory=list)
    key_names: list[str] = field(default_factory=list)
    probes: dict[str, ProbeRecord] = field(default_factory=dict)
    seed_queue: list[Seed] = field(default_factory=list)
    seeds_used: list[Seed] = field(default_factory=list)
    probe_counter: int = 0
    hull: list[float] | None = None
    batch_sizes: list[float | None] | None = None
    notes: list[str] = field(default_factory=list)
    timed_out: dict[str, int] = field(default_factory=dict)  # ordinary trial id -> count
    batch_key: str | None = None  # a batch-size hp that is part of the probe key
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    # probe trial id -> clock() when handed out; not saved (a reload probes again)
    started: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """The JSON form saved under ``state["kt_lr"]``."""
        return {
            "version": STATE_VERSION,
            "hp_name": self.hp_name,
            "original": copy.deepcopy(self.original),
            "key_names": list(self.key_names),
            "probes": {k: r.to_state() for k, r in self.probes.items()},
            "seed_queue": [{"key": s.key, "lr": s.lr} for s in self.seed_queue],
            "seeds_used": [asdict(s) for s in self.seeds_used],
            "probe_counter": self.probe_counter,
            "hull": None if self.hull is None else list(self.hull),
            "batch_sizes": None if self.batch_sizes is None else list(self.batch_sizes),
            "notes": list(self.notes),
            "timed_out": dict(self.timed_out),
            **({} if self.batch_key is None else {"batch_key": self.batch_key}),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any] | None, clock: Callable[[], float] = time.monotonic
    ) -> Ledger:
        """Read :meth:`to_state`'s form, or one saved by an older kt_lr (``None``: empty).

        Raises:
            ValueError: the state was written by a newer kt_lr.
        """
        if state is None:
            return cls(clock=clock)
        version = state.get("version", 1)
        if version > STATE_VERSION:
            raise ValueError(
                f"The saved kt_lr state has version {version}, written by a newer kt_lr than "
                f"this one (it reads versions up to {STATE_VERSION}): upgrade kt_lr, or "
                "start a new project (another project_name, or overwrite=True)."
            )
        return cls(
            hp_name=state.get("hp_name"),
            original=copy.deepcopy(state.get("original") or []),
            key_names=list(state.get("key_names") or []),
            probes={k: ProbeRecord.from_state(r) for k, r in (state.get("probes") or {}).items()},
            seed_queue=[Seed(s["key"], s["lr"]) for s in state.get("seed_queue") or []],
            seeds_used=[Seed(**s) for s in state.get("seeds_used") or []],
            probe_counter=int(state.get("probe_counter", 0)),
            hull=state.get("hull"),
            batch_sizes=state.get("batch_sizes"),
            notes=list(state.get("notes") or []),
            timed_out=dict(state.get("timed_out") or {}),
            batch_key=state.get("batch_key"),
            clock=clock,
        )

    # ------------------------------------------------------------------ probe keys
    @property
    def prepared(self) -> bool:
        """Whether the probe keys have been read from the space."""
        return bool(self.original)

    def prepare(
        self,
        hp_name: str,
        original: list[dict[str, Any]],
        key_names: list[str],
        keys: dict[str, dict[str, Any]],
    ) -> None:
        """Start the ledger: the LR's original entries and one pending record per key."""
        self.hp_name = hp_name
        self.original = copy.deepcopy(original)
        self.key_names = list(key_names)
        self.probes = {k: ProbeRecord(k, dict(kv)) for k, kv in keys.items()}

    def resumed(self) -> None:
        """After a reload: a probe that was running when the state was saved runs again."""
        self.started = {}
        for rec in self.probes.values():
            if rec.status is ProbeStatus.RUNNING:
                rec.status = ProbeStatus.PENDING
                rec.notes.append("interrupted before it finished; probing again")

    def pending_key(self) -> str | None:
        """The first key whose probe still has to be handed out."""
        return next((k for k, r in self.probes.items() if r.status is ProbeStatus.PENDING), None)

    def running(self) -> list[ProbeRecord]:
        """The records whose probe runs on a worker now."""
        return [r for r in self.probes.values() if r.status is ProbeStatus.RUNNING]

    def done(self) -> list[ProbeRecord]:
        """The records with a finding."""
        return [r for r in self.probes.values() if r.status is ProbeStatus.DONE]

    def any_failed(self) -> bool:
        """Whether some key's probe was given up on."""
        return any(r.status is ProbeStatus.FAILED for r in self.probes.values())

    def record_of(self, trial_id: str) -> ProbeRecord | None:
        """The record that ``trial_id`` (any of its attempts) belongs to."""
        for rec in self.probes.values():
            if rec.trial_id == trial_id or any(a.trial_id == trial_id for a in rec.attempt_log):
                return rec
        return None

    # ------------------------------------------------------------------ a probe's life
    def start_probe(self, key: str, tuner_id: str, base_seed: int) -> tuple[str, int]:
        """Hand the probe of ``key`` to ``tuner_id``: ``(trial id, seed of its model)``."""
        rec = self.probes[key]
        index = self.probe_counter
        self.probe_counter = index + 1
        trial_id = f"{wire.PROBE_ID_PREFIX}{index}"
        rec.status, rec.trial_id, rec.metrics = ProbeStatus.RUNNING, trial_id, {}
        rec.attempts += 1
        rec.attempt_log.append(Attempt(trial_id, tuner_id, "running"))
        self.started[trial_id] = self.clock()
        return trial_id, int((int(base_seed) * 7919 + index) % (2**31 - 1))

    def expire(
        self, timeout: float | None, max_attempts: int
    ) -> list[tuple[ProbeRecord, str, str | None]]:
        """Take back the probes without an answer after ``timeout`` seconds.

        A key with attempts left is pending again (with a warning). Returns
        ``(record, trial id, error)`` for each probe taken back; ``error`` is set for a
        key without attempts left, which the caller fails (and narrows again).
        """
        if not timeout:
            return []
        now, expired = self.clock(), []
        for rec in self.probes.values():
            trial_id = rec.trial_id
            started = self.started.get(trial_id)
            if rec.status is not ProbeStatus.RUNNING or started is None or now - started < timeout:
                continue
            del self.started[trial_id]
            attempt = rec.attempt(trial_id)
            within = f"no answer within probe_timeout={timeout:g} s"
            error = None
            if rec.attempts < max_attempts:
                attempt.outcome = f"{within}; re-issued"
                rec.status = ProbeStatus.PENDING
                rec.notes.append(f"{trial_id} timed out after {timeout:g} s; probing again")
                warn(
                    f"Learning-rate probe {trial_id}{rec.label} gave no answer within "
                    f"probe_timeout={timeout:g} s (its worker may have died); handing it to "
                    "the next worker that asks. Raise probe_timeout if probes are just slow."
                )
            else:
                attempt.outcome = f"{within}; gave up"
                error = (
                    f"{within} in {rec.attempts} attempt(s) (raise probe_timeout or probe_attempts)"
                )
            expired.append((rec, trial_id, error))
        return expired

    def receive(self, trial_id: str, status: str, answered: bool) -> ProbeRecord | None:
        """Log the end of probe trial ``trial_id``; the record to finish, or ``None``.

        ``answered``: the trial completed with a probe result. The answer of the trial
        the key waits for is used; so is a late answer of a timed-out attempt while the
        key has no finding yet. Anything else is only logged in the attempt.
        """
        started = self.started.pop(trial_id, None)
        rec = self.record_of(trial_id)
        if rec is None:
            return None
        attempt = rec.attempt(trial_id)
        if rec.status is ProbeStatus.DONE:  # a duplicate end, or the key was answered
            if attempt.outcome == "running":
                attempt.outcome = "answered after the key was done; ignored"
            return None
        if started is not None:
            attempt.seconds = round(self.clock() - started, 3)
        current = rec.status is ProbeStatus.RUNNING and rec.trial_id == trial_id
        if not current and not answered:
            attempt.outcome = f"late {status}, ignored"
            return None
        if not current:  # a timed-out worker answered after all: use its finding
            attempt.outcome = "late answer, used"
            rec.notes.append(f"{trial_id} answered after its probe_timeout; used")
            rec.trial_id = trial_id
        return rec

    def settle(self, rec: ProbeRecord, trial_id: str) -> None:
        """Log the record's final status in the attempt that decided it."""
        attempt = rec.attempt(trial_id)
        if attempt.outcome == "running":
            attempt.outcome = rec.status.value
