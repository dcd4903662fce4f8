"""LROracle: probe trials, narrowing, seeding and state on top of any Keras Tuner oracle.

``LROracle(oracle)`` upgrades an oracle instance *in place* to a class made for it,
``LR<ItsClass>``, whose bases are ``(LROracle, type(oracle))``. The instance keeps its
identity, attributes and type (``isinstance(o, HyperbandOracle)`` stays true), and the
base strategy keeps reading its own ``self.trials`` and ``self.hyperparameters``. LROracle
only adds a few overrides that run before the base strategy:

- ``create_trial``: while a probe is pending, hand out a *probe trial* (values: the
  space defaults plus a marker value ``kt_lr/probe`` naming the probe key). It is not
  put into ``trials`` / ``ongoing_trials``: it never counts against ``max_trials``,
  never becomes best, never feeds a Bayesian model, never takes a Hyperband slot.
  While a probe runs, other workers get ``IDLE`` (see ``wait_for_probes``); a probe
  with no answer after ``probe_timeout`` seconds is handed to the next worker that asks.
- ``update_trial`` / ``end_trial`` / ``get_trial``: probe trial ids are answered from a
  side slot; the finding arrives as metrics (``kt_lr/lr``, ``kt_lr/low``, ...), its
  reasons and errors as extra values. ``end_trial`` narrows the LR hyperparameter in
  ``self.hyperparameters`` (so ``get_space()`` has the new bounds) and queues seeds.
- ``populate_space``: after the base strategy proposes values, the next queued seed
  replaces the LR value, or the LR is moved into the interval of the trial's own probe
  key (never in a Hyperband continuation of a checkpoint).
- ``get_state`` / ``set_state``: the probe records live under ``state["kt_lr"]``, so an
  ``overwrite=False`` tuner resumes without probing again.

Only ids, values, status and metrics cross Keras Tuner's gRPC wire, and that is all this
protocol uses, so the oracle can be served by a chief and never needs the data.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import keras_tuner
from keras_tuner.engine.hyperparameters import HyperParameters
from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.src.engine import oracle as _kt_oracle_module

from kt_lr import space as sp

PROBE_MARKER = "kt_lr/probe"
PROBE_SEED = "kt_lr/probe_seed"
PROBE_ERROR = "kt_lr/error"
PROBE_REASONS = "kt_lr/reasons"
PROBE_ARTIFACTS = "kt_lr/artifacts"
PROBE_OPTIMIZER = "kt_lr/optimizer"
METRIC_PREFIX = "kt_lr/"
METRIC_OK = "kt_lr/ok"
METRIC_LR = "kt_lr/lr"
METRIC_LOW = "kt_lr/low"
METRIC_HIGH = "kt_lr/high"
METRIC_BATCH_SIZE = "kt_lr/batch_size"
CANDIDATE_PREFIX = "kt_lr/candidate_"
STATE_KEY = "kt_lr"
PROBE_ID_PREFIX = "kt_lr_probe_"
_STATE_VERSION = 2


def _now() -> float:
    """The clock probe timeouts are measured with (tests replace it)."""
    return time.monotonic()


class LRProbeWarning(UserWarning):
    """A learning-rate probe failed, timed out, or its interval missed the user's range."""


def _warn(message: str) -> None:
    warnings.warn(message, LRProbeWarning, stacklevel=3)


@contextlib.contextmanager
def _oracle_lock(oracle: Any) -> Iterator[None]:
    """The lock ``keras_tuner.synchronized`` takes for ``oracle``, released on errors too.

    ``synchronized`` leaves the lock held when the wrapped call raises, after which a
    chief can never answer again (e.g. after "Number of consecutive failures exceeded").
    Calls nested in the same thread (the base class's synchronized methods) do not
    take it again, exactly as with ``synchronized``.
    """
    threads, locks = _kt_oracle_module.THREADS, _kt_oracle_module.LOCKS
    name = threading.current_thread().name
    acquire = threads[oracle] != name
    if acquire:
        locks[oracle].acquire()
        threads[oracle] = name
    try:
        yield
    finally:
        if acquire:
            threads[oracle] = None
            locks[oracle].release()


def is_probe_trial(trial: Any) -> bool:
    """Whether ``trial`` is a kt_lr probe (its values carry the probe marker)."""
    hps = getattr(trial, "hyperparameters", None)
    return hps is not None and PROBE_MARKER in getattr(hps, "values", {})


def objective_placeholder(objective: Any) -> dict[str, float]:
    """Metric entries that satisfy Keras Tuner's objective checks for a probe's results.

    The value is NaN: a probe has no objective, and it never reaches the base strategy.
    """
    names = [objective.name]
    names += list(getattr(objective, "name_to_direction", {}) or {})
    return {name: float("nan") for name in names}


@dataclass
class LRConfig:
    """Options of :class:`LROracle` (also accepted by the kt_lr tuners).

    Attributes:
        lr_hp_name: name of the learning-rate hyperparameter (an ``hp.Float`` or a
            numeric ``hp.Choice``), declared once, outside any conditional scope.
        probe_key_hps: names of discrete hyperparameters that change the LR scale; one
            probe per combination of their values (those absent from the space are
            ignored). ``()`` probes once.
        num_seeds: trials seeded per probe key: the probe's pick, then pick / 10 and
            pick x 10**0.5, then geometric points inside the narrowed interval (all
            within it). ``0`` disables seeding.
        min_decades: minimum width of the narrowed interval, in decades.
        widen: factor applied to each side of the probe's interval before intersecting.
        wait_for_probes: hand out IDLE trials while a probe runs elsewhere (distributed
            search) instead of ordinary trials drawn from the un-narrowed space.
        batch_size_hp_name: a batch-size hyperparameter. A trial whose batch size
            differs from the probe's gets its LR interval (and seed) scaled by
            ``batch_scaling``; the space's LR range covers every scaled interval.
        batch_scaling: ``"auto"`` (linear for SGD, sqrt for adaptive optimizers),
            ``"linear"``, ``"sqrt"`` or ``"none"`` (no scaling).
        probe_timeout: seconds after which a probe without an answer (its worker died
            or hangs) is handed to the next worker that asks; ``None`` waits forever.
            Set it well above the time one probe takes.
        probe_attempts: how many times a probe key is handed out before its timeouts
            count as a failure (the original range is kept, with a warning). A probe
            that *reports* an error is not retried: the error would repeat.
        trial_timeout: seconds after which an ordinary trial without a result (its
            worker died) is taken from its worker and queued for the next worker that
            asks; after a second timeout it ends as ``FAILED``. ``None`` (the default,
            as in Keras Tuner) waits forever. Set it well above the longest trial.
    """

    lr_hp_name: str = sp.DEFAULT_LR_HP_NAME
    probe_key_hps: tuple[str, ...] = sp.DEFAULT_PROBE_KEY_HPS
    num_seeds: int = 3
    min_decades: float = 0.5
    widen: float = 1.0
    wait_for_probes: bool = True
    batch_size_hp_name: str | None = "batch_size"
    batch_scaling: str = "auto"
    probe_timeout: float | None = 300.0
    probe_attempts: int = 2
    trial_timeout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.lr_hp_name, str) or not self.lr_hp_name:
            raise ValueError(
                f"`lr_hp_name` must be a non-empty string (e.g. 'learning_rate'), "
                f"got {self.lr_hp_name!r}."
            )
        if isinstance(self.probe_key_hps, str):
            self.probe_key_hps = (self.probe_key_hps,)
        self.probe_key_hps = tuple(self.probe_key_hps or ())
        if not all(isinstance(n, str) for n in self.probe_key_hps):
            raise ValueError(
                f"`probe_key_hps` must be hyperparameter names, got {self.probe_key_hps!r}."
            )
        n = self.num_seeds
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"`num_seeds` must be an integer >= 0 (e.g. 3), got {n!r}.")
        self.min_decades, self.widen = sp.check_width_options(self.min_decades, self.widen)
        if self.batch_scaling not in ("auto", "linear", "sqrt", "none"):
            raise ValueError(
                "`batch_scaling` must be one of 'auto', 'linear', 'sqrt', 'none'; got "
                f"{self.batch_scaling!r}."
            )
        self.probe_timeout = _timeout("probe_timeout", self.probe_timeout, 300)
        self.trial_timeout = _timeout("trial_timeout", self.trial_timeout, 3600)
        a = self.probe_attempts
        if isinstance(a, bool) or not isinstance(a, int) or a < 1:
            raise ValueError(f"`probe_attempts` must be an integer >= 1 (e.g. 2), got {a!r}.")

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword names accepted by :class:`LROracle`."""
        return tuple(f.name for f in fields(cls))


def _timeout(name: str, value: Any, example: int) -> float | None:
    """``value`` as seconds > 0, or ``None`` (wait forever)."""
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"`{name}` must be a number of seconds > 0 (e.g. {example}), or None to wait "
            f"forever; got {value!r}."
        )
    return float(value)


def _fresh_state() -> dict[str, Any]:
    return {
        "version": _STATE_VERSION,
        "hp_name": None,
        "original": [],
        "key_names": [],
        "probes": {},
        "seed_queue": [],
        "seeds_used": [],
        "probe_counter": 0,
        "hull": None,
        "batch_sizes": None,
        "notes": [],
        "timed_out": {},  # ordinary trial id -> how many times it timed out
    }


def _new_record(key: str, key_values: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "key_values": dict(key_values),
        "status": "pending",
        "trial_id": None,
        "attempts": 0,
        "attempt_log": [],
        "idle_answers": 0,
        "metrics": {},
        "finding": None,
        "interval": None,
        "seeds": [],
        "error": None,
        "artifacts": None,
        "notes": [],
    }


def _upgrade_record(rec: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields a record saved by an older kt_lr lacks."""
    for name, value in _new_record(rec.get("key", sp.ALL_KEY), {}).items():
        rec.setdefault(name, value)
    return rec


def _hp_from_entry(entry: dict[str, Any]) -> Any:
    hps = HyperParameters.from_config({"space": [copy.deepcopy(entry)], "values": {}})
    return hps.space[0]


def _bounds(hp: Any) -> tuple[float, float]:
    info = sp.hp_summary(hp)
    return info["min_value"], info["max_value"]


def _finite_positive(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


def _positive_number(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
        return float(v)
    return None


def _last_line(message: str | None) -> str | None:
    if not message:
        return None
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None


_LR_CLASSES: dict[type, type] = {}


def _lr_class(base: type) -> type:
    if issubclass(base, LROracle):
        return base
    cls = _LR_CLASSES.get(base)
    if cls is None:
        cls = type(
            f"LR{base.__name__}",
            (LROracle, base),
            {
                "__module__": __name__,
                "__doc__": f"{base.__name__} with kt_lr learning-rate probes (see LROracle).",
            },
        )
        _LR_CLASSES[base] = cls
    return cls


class LROracle(keras_tuner.Oracle):
    """Add learning-rate probes, narrowing and seeding to any Keras Tuner oracle.

    ``LROracle(oracle, **options)`` returns the *same* instance, upgraded in place to a
    subclass of its own class (see the module docstring for why: base strategies and
    tuners keep working unchanged, including an oracle subclass with its own
    ``populate_space``). Keep using the returned object. ``options`` are the fields of
    :class:`LRConfig`.

    Conditional spaces (the optimizer is tuned). The LR is declared *once*, globally;
    declaring it once per optimizer under ``conditional_scope`` is refused, because
    Keras Tuner 1.4.8 drops or re-samples the value of a name declared twice. Each value
    of a probe-key hyperparameter (``probe_key_hps``, default ``("optimizer",)``) gets
    its own probe, narrowed interval and seeds. The space's LR hyperparameter becomes
    the *hull* (union) of the keys' intervals, so the base strategy, ``get_space()``,
    Bayesian vectorisation and ``get_best_hyperparameters`` all see one ordinary
    hyperparameter. In ``populate_space``, after the base strategy proposes values, the
    LR is moved from the hull to the same relative position inside the trial's own
    key's interval (affine in log space for log sampling: a uniform draw over the hull
    becomes a uniform draw over the key's interval; with one key nothing moves). So
    every trial's LR lies in its own key's interval and the trial records the value it
    really trained with. Not for GridSearch: its enumeration must see the values it
    proposed, so a grid covers the hull. A key whose probe failed uses the original
    range (and the hull then covers it).

    Batch size. With ``batch_size_hp_name`` in the space, a key's interval is measured
    at the probe's batch size; for a trial with another batch size the probe's interval
    is scaled by ``batch_scaling`` (linear for SGD-like optimizers, square root for
    adaptive ones) and narrowed again within the original range, and both the trial's
    LR range and its seed follow. The hull covers every batch size the space allows.
    ``batch_scaling="none"`` turns this off.

    Distributed search (a chief serves this oracle, workers run trials). Other workers
    get IDLE while a probe runs (``wait_for_probes``); a probe whose worker died is
    handed out again after ``probe_timeout`` seconds, at most ``probe_attempts`` times,
    then the key falls back to the original range with an :class:`LRProbeWarning`. A
    worker given up on is dropped from ``tuner_ids`` so that the chief can exit; if it
    was only slow, its late answer is still used when the key has no finding yet.
    Each record in ``lr_state["probes"]`` logs its attempts (worker, outcome) and
    ``idle_answers``, the IDLE answers given while it ran.

    Example::

        oracle = kt_lr.LROracle(keras_tuner.oracles.HyperbandOracle(
            objective="val_loss", max_epochs=30))
        tuner = MyTuner(oracle=oracle, hypermodel=build_model, directory="runs")
    """

    def __new__(cls, oracle: Any = None, /, **options: Any):
        if cls is not LROracle:  # copy / unpickle of an already upgraded instance
            return object.__new__(cls)
        if not isinstance(oracle, keras_tuner.Oracle):
            raise TypeError(
                "LROracle wraps a keras_tuner.Oracle instance, e.g. "
                "kt_lr.LROracle(keras_tuner.oracles.RandomSearchOracle(objective='val_loss', "
                f"max_trials=10)); got {type(oracle).__name__}."
            )
        if isinstance(oracle, LROracle):
            raise ValueError(
                f"This oracle is already an LROracle ({type(oracle).__name__}); wrap the "
                "plain keras_tuner oracle once."
            )
        config = LRConfig(**options)  # validate before touching the instance
        oracle.__class__ = _lr_class(type(oracle))
        oracle._kt_lr_pending_config = config
        return oracle

    def __init__(self, oracle: Any = None, /, **options: Any) -> None:
        # The wrapped instance is already initialised; only add kt_lr's slots.
        config = self.__dict__.pop("_kt_lr_pending_config", None) or LRConfig(**options)
        self.lr_config: LRConfig = config
        self._kt_lr: dict[str, Any] = _fresh_state()
        self._kt_lr_trials: dict[str, Trial] = {}  # every probe attempt, by trial id
        self._kt_lr_running: dict[str, Trial] = {}  # tuner id -> the probe it runs
        self._kt_lr_metrics: dict[str, dict[str, float]] = {}  # probe trial id -> metrics
        self._kt_lr_started: dict[str, float] = {}  # probe trial id -> _now() at hand-out
        self._kt_lr_fatal: str | None = None  # why the base oracle ended the search
        self._kt_lr_assigned: dict[str, tuple[str, float]] = {}  # tuner id -> (trial, since)

    # ----------------------------------------------------------------- trials
    def create_trial(self, tuner_id: str) -> Trial:
        """A probe trial while a probe is pending, else the base strategy's trial."""
        with _oracle_lock(self):
            self._kt_lr_prepare()
            self._kt_lr_expire()
            if self._kt_lr_fatal is not None:  # tell every worker to stop
                self.tuner_ids.discard(tuner_id)
                return Trial(self.get_space(), status=TrialStatus.STOPPED)
            running = self._kt_lr_running.get(tuner_id)
            if running is not None:
                return running
            if tuner_id in self.ongoing_trials:
                return super().create_trial(tuner_id)
            if not (self.max_trials and len(self.trials) >= self.max_trials):
                probes = self._kt_lr["probes"]
                key = next((k for k, r in probes.items() if r["status"] == "pending"), None)
                if key is not None:
                    return self._kt_lr_start_probe(tuner_id, key)
                waiting = [r for r in probes.values() if r["status"] == "running"]
                if self.lr_config.wait_for_probes and waiting:
                    self.tuner_ids.add(tuner_id)
                    for rec in waiting:
                        rec["idle_answers"] += 1
                    return Trial(self.get_space(), status=TrialStatus.IDLE)
            trial = super().create_trial(tuner_id)
            if trial.status == TrialStatus.RUNNING:
                self._kt_lr_assigned[tuner_id] = (trial.trial_id, _now())
            elif trial.status == TrialStatus.STOPPED and self._kt_lr_may_retry(tuner_id):
                # with trial_timeout, stay until the others' trials end: one may time out
                self.tuner_ids.add(tuner_id)
                return Trial(self.get_space(), status=TrialStatus.IDLE)
            return trial

    def update_trial(self, trial_id: str, metrics: dict[str, float], step: int = 0) -> Trial:
        """Record a probe's metrics in the side slot; other trials go to the base oracle."""
        with _oracle_lock(self):
            trial = self._kt_lr_trials.get(trial_id)
            if trial is None:
                if str(trial_id).startswith(PROBE_ID_PREFIX):  # stale: from before a reload
                    return Trial(self.get_space(), trial_id=trial_id, status=TrialStatus.STOPPED)
                return super().update_trial(trial_id, metrics, step=step)
            store = self._kt_lr_metrics.setdefault(trial_id, {})
            for name, value in dict(metrics).items():
                if str(name).startswith(METRIC_PREFIX):
                    store[str(name)] = float(value)
            return trial

    def end_trial(self, trial: Trial, status: str | None = None) -> None:
        """Finish a probe (record, narrow, seed, save); other trials go to the base oracle.

        When the base oracle ends the search by raising (too many consecutive failed
        trials), the error is re-raised to that trial's worker as before, and every
        other worker is then told to stop, so a chief does not wait forever for them.
        ``end_trial(trial_id, status)``, Keras Tuner's old form, is accepted too.
        """
        if isinstance(trial, str):
            trial = Trial(self.get_space(), trial_id=trial, status=status or "COMPLETED")
        with _oracle_lock(self):
            probe = self._kt_lr_trials.get(trial.trial_id)
            if probe is None:
                if not str(trial.trial_id).startswith(PROBE_ID_PREFIX):
                    self._kt_lr_end_ordinary(trial)
                return  # (a probe from before a reload is ignored: it is pending again)
            for tuner_id, t in list(self._kt_lr_running.items()):
                if t.trial_id == trial.trial_id:
                    del self._kt_lr_running[tuner_id]
            started = self._kt_lr_started.pop(trial.trial_id, None)
            metrics = self._kt_lr_metrics.pop(trial.trial_id, {})
            rec = self._kt_lr_record_of(trial.trial_id)
            if rec is None:
                return
            if rec["status"] == "done":  # a duplicate end, or the key was answered already
                attempt = self._kt_lr_attempt(rec, trial.trial_id)
                if attempt["outcome"] == "running":
                    attempt["outcome"] = "answered after the key was done; ignored"
                    self.save()
                return
            incoming = dict(getattr(trial.hyperparameters, "values", None) or {})
            probe.status = trial.status
            probe.message = trial.message
            attempt = self._kt_lr_attempt(rec, trial.trial_id)
            if started is not None:
                attempt["seconds"] = round(_now() - started, 3)
            current = rec["status"] == "running" and rec["trial_id"] == trial.trial_id
            answered = trial.status == TrialStatus.COMPLETED and metrics.get(METRIC_OK) == 1.0
            if not current and not answered:
                attempt["outcome"] = f"late {trial.status}, ignored"
                self.save()
                return
            if not current:  # a timed-out worker answered after all: use its finding
                attempt["outcome"] = "late answer, used"
                rec["notes"].append(f"{trial.trial_id} answered after its probe_timeout; used")
                rec["trial_id"] = trial.trial_id
            rec["metrics"] = metrics
            self._kt_lr_finish(rec, trial.status, trial.message, incoming)
            if current:
                attempt["outcome"] = rec["status"]
            self.save()

    def get_trial(self, trial_id: str) -> Trial:
        """The trial with ``trial_id`` (probe trials included)."""
        probe = self._kt_lr_trials.get(trial_id)
        return probe if probe is not None else super().get_trial(trial_id)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The base strategy's values, with the LR seeded or moved into its key's interval."""
        self._kt_lr_refresh_hull()
        response = super().populate_space(trial_id)
        if response.get("status") != TrialStatus.RUNNING:
            return response
        values = response.get("values")
        name = self.lr_config.lr_hp_name
        if not values or name not in values or "tuner/trial_id" in values:
            return response
        seeded = self._kt_lr_take_seed(trial_id, values)
        if seeded is not None:
            return {**response, "values": seeded}
        if self._kt_lr_places_values():
            return {**response, "values": self._kt_lr_place(values)}
        return response

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """The base oracle's state plus kt_lr's records under ``"kt_lr"``."""
        state = super().get_state()
        state[STATE_KEY] = json.loads(json.dumps(self._kt_lr))
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the base state and kt_lr's records; a probe that was running is redone."""
        super().set_state(state)
        # a trial saved as running that had in fact ended (see _kt_lr_end_ordinary) is done
        ended = set(self.end_order)
        self.ongoing_trials = {
            k: t for k, t in self.ongoing_trials.items() if t.trial_id not in ended
        }
        self._retry_queue = [t for t in self._retry_queue if t not in ended]
        saved = state.get(STATE_KEY)
        self._kt_lr = _fresh_state() if saved is None else copy.deepcopy(saved)
        for name, value in _fresh_state().items():
            self._kt_lr.setdefault(name, value)
        self._kt_lr_trials, self._kt_lr_running = {}, {}
        self._kt_lr_metrics, self._kt_lr_started = {}, {}
        self._kt_lr_assigned = {}
        hp_name = self._kt_lr.get("hp_name")
        if hp_name is not None and hp_name != self.lr_config.lr_hp_name:
            _warn(
                f"The saved probe results are for {hp_name!r} but lr_hp_name is "
                f"{self.lr_config.lr_hp_name!r}; the saved results are ignored."
            )
            self._kt_lr = _fresh_state()
        for rec in self._kt_lr["probes"].values():
            _upgrade_record(rec)
            if rec["status"] == "running":  # interrupted: probe again
                rec["status"] = "pending"
                rec["notes"].append("interrupted before it finished; probing again")

    def lr_report(self) -> LRReport:
        """What the probes saw, the original and narrowed intervals, the seeds, and why."""
        return LRReport.from_state(self._kt_lr, self.get_space(), self.lr_config.lr_hp_name)

    @property
    def lr_state(self) -> dict[str, Any]:
        """A copy of the kt_lr part of the oracle's state (JSON-friendly)."""
        return copy.deepcopy(self._kt_lr)

    def lr_interval_for(self, values: dict[str, Any]) -> tuple[float, float] | None:
        """The LR interval a trial with these ``values`` samples from.

        Its probe key's narrowed interval (scaled to the trial's batch size), the
        original range when that key's probe failed, or ``None`` while it is not probed.
        """
        iv = self._kt_lr_target(values)
        return None if iv is None else (iv.low, iv.high)

    # -------------------------------------------------------------- internals
    def _kt_lr_prepare(self) -> None:
        st = self._kt_lr
        if st["original"]:
            return
        name = self.lr_config.lr_hp_name
        entries = sp.find_lr_hps(self.hyperparameters, name)
        key_names = sp.probe_key_names(self.hyperparameters, self.lr_config.probe_key_hps)
        st["hp_name"] = name
        st["original"] = [
            {"class_name": type(hp).__name__, "config": hp.get_config()} for hp in entries
        ]
        st["key_names"] = list(key_names)
        keys = sp.probe_keys(self.hyperparameters, key_names)
        st["probes"] = {k: _new_record(k, kv) for k, kv in keys.items()}

    def _kt_lr_original_hp(self) -> Any:
        return _hp_from_entry(self._kt_lr["original"][0])

    def _kt_lr_record_of(self, trial_id: str) -> dict[str, Any] | None:
        for rec in self._kt_lr["probes"].values():
            if rec["trial_id"] == trial_id or any(
                a["trial_id"] == trial_id for a in rec["attempt_log"]
            ):
                return rec
        return None

    @staticmethod
    def _kt_lr_attempt(rec: dict[str, Any], trial_id: str) -> dict[str, Any]:
        for attempt in rec["attempt_log"]:
            if attempt["trial_id"] == trial_id:
                return attempt
        attempt = {"trial_id": trial_id, "tuner_id": None, "outcome": "unknown"}
        rec["attempt_log"].append(attempt)
        return attempt

    def _kt_lr_start_probe(self, tuner_id: str, key: str) -> Trial:
        st = self._kt_lr
        rec = st["probes"][key]
        index = st["probe_counter"]
        st["probe_counter"] = index + 1
        trial_id = f"{PROBE_ID_PREFIX}{index}"
        values = sp.default_values(self.hyperparameters, rec["key_values"])
        values[PROBE_MARKER] = key
        values[PROBE_SEED] = int((int(self.seed) * 7919 + index) % (2**31 - 1))
        hps = self.hyperparameters.copy()
        hps.values = values
        trial = Trial(hyperparameters=hps, trial_id=trial_id, status=TrialStatus.RUNNING)
        rec.update(status="running", trial_id=trial_id, attempts=rec["attempts"] + 1, metrics={})
        rec["attempt_log"].append(
            {"trial_id": trial_id, "tuner_id": tuner_id, "outcome": "running"}
        )
        self.tuner_ids.add(tuner_id)
        self._kt_lr_trials[trial_id] = trial
        self._kt_lr_running[tuner_id] = trial
        self._kt_lr_started[trial_id] = _now()
        if self.verbose and self.verbose >= 1:
            label = "" if key == sp.ALL_KEY else f" for {key}"
            print(f"\nSearch: learning-rate probe{label} ({trial_id})\n")
        self.save()
        return trial

    def _kt_lr_expire(self) -> None:
        """Take probes and trials from workers that gave no answer in time (see LRConfig)."""
        self._kt_lr_expire_trials()
        self._kt_lr_expire_probes()

    def _kt_lr_expire_trials(self) -> None:
        timeout = self.lr_config.trial_timeout
        if not timeout:
            return
        now = _now()
        for tuner_id, (trial_id, since) in list(self._kt_lr_assigned.items()):
            trial = self.ongoing_trials.get(tuner_id)
            if trial is None or trial.trial_id != trial_id:
                del self._kt_lr_assigned[tuner_id]  # ended, or the tuner moved on
                continue
            if now - since < timeout:
                continue
            del self._kt_lr_assigned[tuner_id]
            del self.ongoing_trials[tuner_id]
            self.tuner_ids.discard(tuner_id)  # a live worker is added back when it asks
            counts = self._kt_lr.setdefault("timed_out", {})
            counts[trial_id] = counts.get(trial_id, 0) + 1
            words = f"no result from {tuner_id} within trial_timeout={timeout:g} s"
            if counts[trial_id] == 1:
                self._retry_queue.append(trial_id)
                _warn(
                    f"Trial {trial_id}: {words} (its worker may have died); handing it to "
                    "the next worker that asks. Raise trial_timeout if trials are just slow."
                )
            else:
                trial.status = TrialStatus.FAILED
                trial.message = f"{words}, twice"
                _warn(f"Trial {trial_id}: {words}, for the second time; it ends as FAILED.")
                with contextlib.suppress(RuntimeError):  # too many failures: _kt_lr_fatal
                    self._kt_lr_end_ordinary(trial)
            self.save()

    def _kt_lr_may_retry(self, tuner_id: str) -> bool:
        """Whether another worker's trial could still time out and need ``tuner_id``."""
        if not self.lr_config.trial_timeout:
            return False
        return any(other != tuner_id for other in self.ongoing_trials)

    def _kt_lr_expire_probes(self) -> None:
        timeout = self.lr_config.probe_timeout
        if not timeout:
            return
        now = _now()
        for rec in self._kt_lr["probes"].values():
            trial_id = rec["trial_id"]
            started = self._kt_lr_started.get(trial_id)
            if rec["status"] != "running" or started is None or now - started < timeout:
                continue
            del self._kt_lr_started[trial_id]
            for tuner_id, t in list(self._kt_lr_running.items()):
                if t.trial_id == trial_id:
                    del self._kt_lr_running[tuner_id]
                    # A dead worker never asks again; without this the chief waits for it
                    # forever. A live one is added back by its next request.
                    self.tuner_ids.discard(tuner_id)
            attempt = self._kt_lr_attempt(rec, trial_id)
            label = "" if rec["key"] == sp.ALL_KEY else f" ({rec['key']})"
            if rec["attempts"] < self.lr_config.probe_attempts:
                attempt["outcome"] = f"no answer within probe_timeout={timeout:g} s; re-issued"
                rec["status"] = "pending"
                rec["notes"].append(f"{trial_id} timed out after {timeout:g} s; probing again")
                _warn(
                    f"Learning-rate probe {trial_id}{label} gave no answer within "
                    f"probe_timeout={timeout:g} s (its worker may have died); handing it to "
                    "the next worker that asks. Raise probe_timeout if probes are just slow."
                )
            else:
                attempt["outcome"] = f"no answer within probe_timeout={timeout:g} s; gave up"
                self._kt_lr_fail(
                    rec,
                    f"no answer within probe_timeout={timeout:g} s in {rec['attempts']} "
                    "attempt(s) (raise probe_timeout or probe_attempts)",
                )
            self.save()

    def _kt_lr_end_ordinary(self, trial: Trial) -> None:
        trial_id = trial.trial_id
        if trial_id in self._kt_lr.get("timed_out", {}):
            if trial_id in self.end_order:  # a timed-out trial answered twice: keep the first
                return
            if trial_id in self._retry_queue:  # the slow worker answered before a retry
                self._retry_queue.remove(trial_id)
        try:
            super().end_trial(trial)
            # Keras Tuner saves before it drops the trial from ongoing_trials, so its
            # oracle.json would list the trial as running and a resume would run it again
            self.save()
        except RuntimeError as exc:  # e.g. "Number of consecutive failures exceeded"
            self._kt_lr_fatal = str(exc) or type(exc).__name__
            for tuner_id, t in list(self.ongoing_trials.items()):
                if t.trial_id == trial.trial_id:
                    del self.ongoing_trials[tuner_id]
                    self.tuner_ids.discard(tuner_id)
            with contextlib.suppress(Exception):
                self._save_trial(self.trials[trial.trial_id])
                self.save()
            raise

    def _kt_lr_fail(self, rec: dict[str, Any], error: str) -> None:
        rec.update(status="failed", error=str(error), interval=None, seeds=[])
        lo_b, hi_b = _bounds(self._kt_lr_original_hp())
        label = rec["trial_id"] or rec["key"]
        _warn(
            f"Learning-rate probe {label} ({rec['key']}) failed: {error}. "
            f"Keeping the original range [{lo_b:g}, {hi_b:g}] for "
            f"{self.lr_config.lr_hp_name!r}; the search goes on."
        )
        with contextlib.suppress(Exception):
            self._kt_lr_narrow()  # other keys' narrowing must now cover the original range

    def _kt_lr_finish(
        self, rec: dict[str, Any], status: str, message: str | None, incoming: dict[str, Any]
    ) -> None:
        m = rec["metrics"]
        rec["artifacts"] = incoming.get(PROBE_ARTIFACTS) or rec["artifacts"]
        error = incoming.get(PROBE_ERROR)
        lr, low, high = m.get(METRIC_LR), m.get(METRIC_LOW), m.get(METRIC_HIGH)
        if status != TrialStatus.COMPLETED:
            error = error or _last_line(message) or f"the probe trial ended as {status}"
        elif m.get(METRIC_OK) != 1.0:
            error = error or (
                "the tuner reported no probe result; use a kt_lr tuner or put "
                "kt_lr.LRTunerMixin first in your tuner's bases"
            )
        elif not (_finite_positive(lr) and _finite_positive(low) and _finite_positive(high)):
            error = (
                f"the probe returned a non-finite learning rate (lr={lr}, low={low}, high={high})"
            )
        elif low > high:
            error = f"the probe returned low={low:g} > high={high:g}"
        if error is not None:
            self._kt_lr_fail(rec, str(error))
            return
        reasons = incoming.get(PROBE_REASONS)
        try:
            reasons = json.loads(reasons) if isinstance(reasons, str) else list(reasons or [])
        except ValueError:
            reasons = [str(reasons)]
        candidates = {
            k[len(CANDIDATE_PREFIX) :]: v
            for k, v in m.items()
            if k.startswith(CANDIDATE_PREFIX) and math.isfinite(v)
        }
        batch = m.get(METRIC_BATCH_SIZE)
        rec["finding"] = {
            "lr": float(lr),
            "low": float(low),
            "high": float(high),
            "reasons": [str(r) for r in reasons],
            "candidates": candidates,
            "batch_size": int(batch) if batch is not None and math.isfinite(batch) else None,
            "optimizer": incoming.get(PROBE_OPTIMIZER),
        }
        rec.update(status="done", error=None)
        try:
            self._kt_lr_narrow()
            self._kt_lr_queue_seeds(rec)
        except Exception as exc:  # never lose the search over a narrowing problem
            rec["finding"] = None
            self._kt_lr_fail(rec, f"narrowing failed: {type(exc).__name__}: {exc}")
            return
        if self.verbose and self.verbose >= 1:
            iv = rec["interval"]
            print(
                f"LR probe {rec['trial_id']}: picked {lr:.3g}; "
                f"{self.lr_config.lr_hp_name} narrowed to [{iv['low']:.3g}, {iv['high']:.3g}]"
            )

    # ---------------------------------------------------------- narrowing
    def _kt_lr_batch_sizes(self) -> list[float | None]:
        """The batch sizes the space allows (``[None]`` without a batch-size hp)."""
        name = self.lr_config.batch_size_hp_name
        if not name or self.lr_config.batch_scaling == "none":
            return [None]
        hp = next((h for h in self.hyperparameters.space if h.name == name), None)
        values = sp.batch_size_values(hp) if hp is not None else []
        return list(values) or [None]

    def _kt_lr_batch_factor(self, finding: dict[str, Any], batch_size: Any) -> float:
        cfg = self.lr_config
        probe_bs = _positive_number(finding.get("batch_size"))
        trial_bs = _positive_number(batch_size)
        if cfg.batch_scaling == "none" or probe_bs is None or trial_bs is None:
            return 1.0
        if trial_bs == probe_bs:
            return 1.0
        return sp.batch_factor(
            probe_bs, trial_bs, rule=cfg.batch_scaling, optimizer=finding.get("optimizer")
        )

    def _kt_lr_key_interval(self, rec: dict[str, Any], batch_size: Any = None) -> sp.Interval:
        """A done key's interval, at ``batch_size`` (scaled from the probe's batch size)."""
        iv, f, cfg = rec["interval"], rec["finding"], self.lr_config
        factor = self._kt_lr_batch_factor(f, batch_size)
        if factor == 1.0:
            return sp.Interval(iv["low"], iv["high"], iv["status"])
        b_lo, b_hi = _bounds(self._kt_lr_original_hp())
        return sp.narrow_interval(
            f["low"] * factor,
            f["high"] * factor,
            b_lo,
            b_hi,
            min_decades=cfg.min_decades,
            widen=cfg.widen,
        )

    def _kt_lr_target(self, values: dict[str, Any]) -> sp.Interval | None:
        st = self._kt_lr
        if not st["original"]:
            return None
        rec = st["probes"].get(sp.probe_key(values, st["key_names"]))
        if rec is None:
            return None
        if rec["status"] == "done" and rec["interval"] is not None:
            name = self.lr_config.batch_size_hp_name
            return self._kt_lr_key_interval(rec, values.get(name) if name else None)
        if rec["status"] == "failed":
            return sp.Interval(*_bounds(self._kt_lr_original_hp()))
        return None

    def _kt_lr_narrow(self) -> None:
        """Set the space's LR to the hull of every key's interval at every batch size.

        Done keys contribute their narrowed interval (scaled to each batch size the
        space allows), failed keys the original range; pending keys nothing yet.
        """
        st, cfg = self._kt_lr, self.lr_config
        done = [r for r in st["probes"].values() if r["status"] == "done"]
        if not done:
            return
        orig = self._kt_lr_original_hp()
        b_lo, b_hi = _bounds(orig)
        for rec in done:
            if rec["interval"] is None:
                f = rec["finding"]
                iv = sp.narrow_interval(
                    f["low"], f["high"], b_lo, b_hi, min_decades=cfg.min_decades, widen=cfg.widen
                )
                rec["interval"] = {
                    "low": iv.low,
                    "high": iv.high,
                    "status": iv.status,
                    "notes": list(iv.notes),
                }
                if iv.status.startswith("missed"):
                    side = "below" if iv.status == "missed_below" else "above"
                    _warn(
                        f"The probe's interval [{f['low']:.3g}, {f['high']:.3g}] for "
                        f"{cfg.lr_hp_name!r} lies entirely {side} your range [{b_lo:g}, "
                        f"{b_hi:g}]; kept [{iv.low:.3g}, {iv.high:.3g}] at its "
                        f"{'lower' if side == 'below' else 'upper'} end. Consider widening "
                        "the range in your build function."
                    )
        sizes = self._kt_lr_batch_sizes()
        targets = [self._kt_lr_key_interval(r, bs) for r in done for bs in sizes]
        if any(r["status"] == "failed" for r in st["probes"].values()):
            targets.append(sp.Interval(b_lo, b_hi))
        hull = sp.Interval(min(iv.low for iv in targets), max(iv.high for iv in targets))
        picks = [sp.clamp(r["finding"]["lr"], hull.low, hull.high) for r in done]
        pick = picks[0] if len(picks) == 1 else math.prod(picks) ** (1 / len(picks))
        name = cfg.lr_hp_name
        used = [t.hyperparameters.values.get(name) for t in self.trials.values()]
        keep = [v for v in used if v is not None] if sp.hp_kind(orig) == "Choice" else ()
        new_hp = sp.narrow_hp(orig, hull, pick=pick, keep=keep)
        self.hyperparameters = sp.replace_hp(self.hyperparameters, new_hp)
        st["hull"] = [hull.low, hull.high]
        st["batch_sizes"] = sizes

    def _kt_lr_refresh_hull(self) -> None:
        """Narrow again when a batch-size hp appeared (e.g. declared in ``fit``)."""
        st = self._kt_lr
        if st["hull"] is not None and st["batch_sizes"] != self._kt_lr_batch_sizes():
            self._kt_lr_narrow()

    def _kt_lr_places_values(self) -> bool:
        return not isinstance(self, keras_tuner.oracles.GridSearchOracle)

    def _kt_lr_place(self, values: dict[str, Any]) -> dict[str, Any]:
        """Move the proposed LR from the hull into the trial's own key's interval."""
        name = self.lr_config.lr_hp_name
        target = self._kt_lr_target(values)
        hp = self._kt_lr_active_lr_hp(values)
        if target is None or hp is None:
            return values
        if sp.hp_kind(hp) == "Choice":
            lr = sp.choose_inside(values[name], list(hp.values), (target.low, target.high))
        else:
            lr = sp.map_into(
                values[name],
                (float(hp.min_value), float(hp.max_value)),
                (target.low, target.high),
                log=getattr(hp, "sampling", "linear") == "log",
            )
            lr = sp.snap_to_hp(lr, hp)
        return {**values, name: lr}

    # ------------------------------------------------------------- seeding
    def _kt_lr_seeding_off_reason(self) -> str | None:
        if self.lr_config.num_seeds == 0:
            return "num_seeds=0"
        if isinstance(self, keras_tuner.oracles.GridSearchOracle):
            return "grid search enumerates the narrowed range itself"
        return None

    def _kt_lr_queue_seeds(self, rec: dict[str, Any]) -> None:
        off = self._kt_lr_seeding_off_reason()
        if off is not None:
            rec["notes"].append(f"no seeded trials: {off}")
            return
        iv, f = rec["interval"], rec["finding"]
        current = self._kt_lr_active_lr_hp(rec["key_values"]) or self._kt_lr_original_hp()
        seeds: list[float] = []
        for v in sp.seed_lrs(f["lr"], iv["low"], iv["high"], self.lr_config.num_seeds):
            s = sp.snap_to_hp(v, current)
            if s not in seeds:
                seeds.append(s)
        rec["seeds"] = [float(s) for s in seeds]
        self._kt_lr["seed_queue"].extend({"key": rec["key"], "lr": float(s)} for s in seeds)

    def _kt_lr_take_seed(self, trial_id: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """``values`` with the next queued seed as the LR (``None`` when no seed is queued)."""
        queue = self._kt_lr["seed_queue"]
        if not queue:
            return None
        name = self.lr_config.lr_hp_name
        key = sp.probe_key(values, self._kt_lr["key_names"])
        index = next((i for i, s in enumerate(queue) if s["key"] == key), None)
        if index is None:
            index = 0
            forced = self._kt_lr["probes"][queue[0]["key"]]["key_values"]
            values = self._kt_lr_complete(values, forced)
            if name not in values:
                return None
        seed = queue.pop(index)
        lr, note = self._kt_lr_seed_value(seed, values)
        self._kt_lr["seeds_used"].append(
            {"key": seed["key"], "lr": float(lr), "trial_id": trial_id, "note": note}
        )
        return {**values, name: lr}

    def _kt_lr_active_lr_hp(self, values: dict[str, Any]) -> Any | None:
        name = self.lr_config.lr_hp_name
        for hp in self.hyperparameters.space:
            if hp.name == name and all(c.is_active(values) for c in hp.conditions):
                return hp
        return None

    def _kt_lr_complete(self, values: dict[str, Any], forced: dict[str, Any]) -> dict[str, Any]:
        names = {hp.name for hp in self.hyperparameters.space}
        extras = {k: v for k, v in values.items() if k not in names}
        out = sp.default_values(self.hyperparameters, {**values, **forced})
        out.update(extras)
        return out

    def _kt_lr_seed_value(self, seed: dict[str, Any], values: dict[str, Any]) -> tuple[Any, str]:
        cfg = self.lr_config
        lr, note = float(seed["lr"]), "seed"
        rec = self._kt_lr["probes"].get(seed["key"]) or {}
        f = rec.get("finding") or {}
        trial_bs = values.get(cfg.batch_size_hp_name) if cfg.batch_size_hp_name else None
        factor = self._kt_lr_batch_factor(f, trial_bs)
        if factor != 1.0:
            lr *= factor
            note = f"seed scaled x{factor:.3g} from batch size {f.get('batch_size')} to {trial_bs}"
            target = self._kt_lr_key_interval(rec, trial_bs)
            lr = sp.clamp(lr, target.low, target.high)
        hp = self._kt_lr_active_lr_hp(values)
        return (sp.snap_to_hp(lr, hp) if hp is not None else lr), note


@dataclass(repr=False)
class ProbeReport:
    """One probe key: what its probe found, the narrowed interval and its seeds."""

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

    def __repr__(self) -> str:
        if self.status == "done":
            return (
                f"ProbeReport({self.key}: lr={self.lr:.3g}, probe [{self.low:.3g}, "
                f"{self.high:.3g}] -> [{self.narrowed_low:.3g}, {self.narrowed_high:.3g}])"
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
    def from_state(cls, state: dict[str, Any], space: Any, hp_name: str) -> LRReport:
        """Build the report from an oracle's kt_lr state and its current search space."""
        state = state or _fresh_state()
        hp_name = state.get("hp_name") or hp_name
        original = [sp.hp_summary(_hp_from_entry(e)) for e in state.get("original", [])]
        narrowed = [sp.hp_summary(hp) for hp in space.space if hp.name == hp_name]
        if not original:
            original = [dict(n) for n in narrowed]
        probes = {}
        for key, rec in state.get("probes", {}).items():
            f, iv = rec.get("finding") or {}, rec.get("interval") or {}
            probes[key] = ProbeReport(
                key=key,
                key_values=dict(rec.get("key_values", {})),
                status=rec["status"],
                trial_id=rec.get("trial_id"),
                lr=f.get("lr"),
                low=f.get("low"),
                high=f.get("high"),
                narrowed_low=iv.get("low"),
                narrowed_high=iv.get("high"),
                interval_status=iv.get("status"),
                seeds=list(rec.get("seeds", [])),
                reasons=list(f.get("reasons", [])),
                notes=list(iv.get("notes", [])) + list(rec.get("notes", [])),
                candidates=dict(f.get("candidates", {})),
                error=rec.get("error"),
                artifacts=rec.get("artifacts"),
                batch_size=f.get("batch_size"),
                attempts=int(rec.get("attempts", 0)),
                attempt_log=[dict(a) for a in rec.get("attempt_log", [])],
                idle_answers=int(rec.get("idle_answers", 0)),
            )
        seeds = [dict(s, status="used") for s in state.get("seeds_used", [])]
        seeds += [dict(s, trial_id=None, status="queued") for s in state.get("seed_queue", [])]
        sizes = [b for b in state.get("batch_sizes") or [] if b is not None]
        notes = list(state.get("notes", []))
        return cls(hp_name, original, narrowed, probes, seeds, notes, sizes)

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
        rows = []
        for key, p in self.probes.items():
            rows.append(
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
                    "reasons": " | ".join(p.reasons + p.notes),
                    "error": p.error,
                }
            )
        columns = [
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
            "reasons",
            "error",
        ]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        """The report in words."""
        lines = [f"Learning-rate report for {self.hp_name!r}"]
        if self.original_interval:
            lo, hi = self.original_interval
            lines.append(f"  original range: [{lo:.3g}, {hi:.3g}]")
        if self.interval:
            lo, hi = self.interval
            lines.append(f"  search range now: [{lo:.3g}, {hi:.3g}]")
        if not self.probes:
            lines.append("  no probe has run yet")
        for key, p in self.probes.items():
            label = "all trials" if key == sp.ALL_KEY else key
            if p.status == "done":
                lines.append(
                    f"  probe {p.trial_id} ({label}): picked {p.lr:.3g}, probe interval "
                    f"[{p.low:.3g}, {p.high:.3g}] -> [{p.narrowed_low:.3g}, "
                    f"{p.narrowed_high:.3g}] ({p.interval_status})"
                )
                others = [b for b in self.batch_sizes if b != p.batch_size]
                if p.batch_size and others:
                    sizes = ", ".join(f"{b:g}" for b in others)
                    lines.append(
                        f"    measured at batch size {p.batch_size}; scaled for batch size "
                        f"{sizes} by the batch_scaling rule"
                    )
                if p.seeds:
                    lines.append("    seeds: " + ", ".join(f"{s:.3g}" for s in p.seeds))
            elif p.status == "failed":
                lines.append(f"  probe {p.trial_id} ({label}) failed: {p.error}; range kept")
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
        used = [s for s in self.seeds if s["status"] == "used"]
        if used:
            lines.append(
                "  seeded trials: " + ", ".join(f"{s['trial_id']} (lr={s['lr']:.3g})" for s in used)
            )
        lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def plot(self):
        """Original range, probe interval, narrowed range, pick and seeds per key (log x)."""
        import matplotlib.pyplot as plt

        keys = list(self.probes) or ["(no probe)"]
        fig, ax = plt.subplots(figsize=(7, 1.2 + 0.9 * len(keys)))
        o, n = self.original_interval, self.interval
        for row, key in enumerate(keys):
            y = len(keys) - 1 - row
            p = self.probes.get(key)
            if o:
                ax.plot(o, [y, y], color="0.8", lw=10, solid_capstyle="butt", label=None)
            if p is not None and p.narrowed_low is not None:
                ax.plot([p.narrowed_low, p.narrowed_high], [y, y], color="tab:blue", lw=6)
            elif n:
                ax.plot(n, [y, y], color="tab:blue", lw=6)
            if p is not None and p.low is not None:
                ax.plot([p.low, p.high], [y + 0.18] * 2, color="tab:orange", lw=2)
                ax.plot([p.lr], [y], marker="*", color="black", ms=12, ls="none")
            if p is not None and p.seeds:
                ax.plot(p.seeds, [y - 0.2] * len(p.seeds), "|", color="tab:green", ms=12)
        ax.set_xscale("log")
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels(list(reversed(["all" if k == sp.ALL_KEY else k for k in keys])))
        ax.set_ylim(-0.8, len(keys) - 0.2)
        ax.set_xlabel(self.hp_name)
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color="0.8", lw=8, label="original range"),
            Line2D([], [], color="tab:blue", lw=6, label="narrowed"),
            Line2D([], [], color="tab:orange", lw=2, label="probe interval"),
            Line2D([], [], marker="*", color="black", ls="none", label="pick"),
            Line2D([], [], marker="|", color="tab:green", ls="none", ms=10, label="seeds"),
        ]
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.35),
            ncol=5,
            fontsize="small",
            frameon=False,
        )
        ax.set_title(f"kt_lr: {self.hp_name}")
        fig.tight_layout()
        return fig


def load_lr_report(project_dir: str, hp_name: str = sp.DEFAULT_LR_HP_NAME) -> LRReport:
    """The :class:`LRReport` of a project directory, read from its saved ``oracle.json``."""
    path = os.path.join(str(project_dir), "oracle.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No oracle.json in {project_dir!r}; run a search there first (or check the "
            "directory / project_name)."
        )
    with open(path) as fh:
        state = json.load(fh)
    space = HyperParameters.from_config(state["hyperparameters"])
    return LRReport.from_state(state.get(STATE_KEY) or _fresh_state(), space, hp_name)
