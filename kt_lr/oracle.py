"""LROracle: learning-rate probes, narrowing and seeding on top of any Keras Tuner oracle.

The Keras Tuner overrides, each a short delegation: the probe ledger is
:mod:`kt_lr.ledger`, narrowing and seeding :mod:`kt_lr.narrowing`, the wire format
:mod:`kt_lr._protocol`, trial timeouts :mod:`kt_lr.distribute`, Keras Tuner internals
:mod:`kt_lr._compat`. Only ids, values, status and metrics cross Keras Tuner's gRPC
wire, and that is all this uses, so a chief can serve the oracle without the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras_tuner
from keras_tuner.engine.trial import Trial, TrialStatus

from kt_lr import _compat
from kt_lr import _protocol as wire
from kt_lr import narrowing as nw
from kt_lr import space as sp
from kt_lr._protocol import is_probe_trial, objective_placeholder
from kt_lr.config import LRConfig
from kt_lr.distribute import TrialWatch
from kt_lr.ledger import Ledger, LRProbeWarning, ProbeRecord, warn
from kt_lr.report import LRReport, load_lr_report

# LRConfig, LRProbeWarning, load_lr_report, is_probe_trial, objective_placeholder: kept
# importable from here, where they lived before the split (benchmarks use is_probe_trial)
__all__ = ["LROracle", "LRConfig", "LRProbeWarning", "load_lr_report", "is_probe_trial"]
__all__ += ["objective_placeholder"]

STATE_KEY = "kt_lr"

_LR_CLASSES: dict[type, type] = {}


def _lr_class(base: type) -> type:
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

    ``LROracle(oracle)`` does not build a new oracle: it **changes the class of the
    instance you pass** to ``LR<ItsClass>``, a subclass of its own class, and returns
    that same instance (``LROracle(o) is o``). Base strategies and tuners keep working
    unchanged, including an oracle subclass with its own ``populate_space``; keep using
    the object. Calling it again on an upgraded oracle is harmless: it returns the
    oracle unchanged when the options agree with its own, and raises ``ValueError``
    when they differ (the options are set once, before any probe).

    Conditional spaces (the optimizer is tuned). The LR is declared *once*, globally;
    declaring it once per optimizer under ``conditional_scope`` is refused, because
    Keras Tuner 1.4.8 drops or re-samples the value of a name declared twice. Each value
    of a probe-key hyperparameter (``probe_key_hps``, default ``("optimizer",)``) gets
    its own probe, narrowed interval and seeds. The space's LR hyperparameter becomes
    the *hull* (union) of the keys' intervals, so the base strategy, ``get_space()``,
    Bayesian vectorisation and ``get_best_hyperparameters`` all see one ordinary
    hyperparameter; each trial's LR is then moved to the same relative position inside
    its own key's interval, and the trial records the value it really trained with.
    GridSearch is left alone (a grid covers the hull). A key whose probe failed uses
    the original range (and the hull then covers it).

    Batch size. A ``batch_size_hp_name`` hyperparameter that is a ``Choice`` of at most
    4 values joins the probe key (one probe per value, no extrapolation). Otherwise a
    key's interval is measured at the probe's batch size and, for a trial with another
    batch size, scaled by ``batch_scaling`` (linear for SGD-like optimizers, square root
    for adaptive ones), never above the top of the probed interval, and narrowed again
    within the original range; the trial's seed follows (see :mod:`kt_lr.batching`).

    A ``Choice`` learning rate keeps, per key, the values inside its interval topped
    up to ``min_choices``; keys whose branch never uses the learning rate (a
    conditional scope) get no probe. Every such change is warned about and reported.

    Distributed search (a chief serves this oracle, see :mod:`kt_lr.distribute`). Other
    workers get IDLE while a probe runs (``wait_for_probes``); a probe whose worker died
    is handed out again after ``probe_timeout`` seconds, at most ``probe_attempts``
    times, then the key falls back to the original range with an
    :class:`LRProbeWarning`; a slow worker's late answer is still used while the key
    has no finding. Each probe record logs its attempts and its IDLE answers.

    Args:
        oracle: a ``keras_tuner.Oracle`` instance, upgraded in place.
        lr_config: the options as an :class:`~kt_lr.LRConfig` (or give them as keywords).
        clock: a zero-argument function returning seconds on a monotonic clock, for the
            probe and trial timeouts (default ``time.monotonic``; tests pass a fake).
        **options: the fields of :class:`~kt_lr.LRConfig` by name.

    Example::

        oracle = kt_lr.LROracle(keras_tuner.oracles.HyperbandOracle(
            objective="val_loss", max_epochs=30), num_seeds=2)
        tuner = MyTuner(oracle=oracle, hypermodel=build_model, directory="runs")
    """

    def __new__(
        cls,
        oracle: Any = None,
        /,
        lr_config: LRConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        **options: Any,
    ):
        if cls is not LROracle:  # copy / unpickle of an already upgraded instance
            return object.__new__(cls)
        if not isinstance(oracle, keras_tuner.Oracle):
            raise TypeError(
                "LROracle wraps a keras_tuner.Oracle instance, e.g. "
                "kt_lr.LROracle(keras_tuner.oracles.RandomSearchOracle(objective='val_loss', "
                f"max_trials=10)); got {type(oracle).__name__}."
            )
        if isinstance(oracle, LROracle):
            oracle._kt_lr_check_same(lr_config, options)
            return oracle
        config = LRConfig.build(lr_config, **options)  # validate before touching it
        oracle.__class__ = _lr_class(type(oracle))
        oracle._kt_lr_setup(config, clock or time.monotonic)
        return oracle

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: ``__new__`` upgraded an instance that is initialised already."""

    def _kt_lr_setup(self, config: LRConfig, clock: Callable[[], float]) -> None:
        self.lr_config: LRConfig = config
        self._kt_lr = Ledger(clock=clock)
        self._kt_lr_watch = TrialWatch(clock)
        self._kt_lr_trials: dict[str, Trial] = {}  # every probe attempt, by trial id
        self._kt_lr_running: dict[str, Trial] = {}  # tuner id -> the probe it runs
        self._kt_lr_metrics: dict[str, dict[str, float]] = {}  # probe trial id -> metrics

    def _kt_lr_check_same(self, lr_config: LRConfig | None, options: dict[str, Any]) -> None:
        """Accept a second upgrade whose options agree with this oracle's; refuse others."""
        changed = self.lr_config.changed_by(lr_config, **options)
        if changed:
            raise ValueError(
                f"This oracle is already an LROracle ({type(self).__name__}) with other "
                f"options ({', '.join(changed)} differ); its options are set once. Pass them "
                "to the first kt_lr.LROracle(...) call (or to the tuner of a plain oracle)."
            )

    @property
    def _kt_lr_fatal(self) -> str | None:
        """Why the base oracle ended the search (read by ``serve_oracle``)."""
        return self._kt_lr_watch.fatal

    # ----------------------------------------------------------------- trials
    def create_trial(self, tuner_id: str) -> Trial:
        """A probe trial while a probe is pending, else the base strategy's trial."""
        with _compat.oracle_lock(self):
            nw.prepare(self._kt_lr, self.hyperparameters, self.lr_config)
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
                key = self._kt_lr.pending_key()
                if key is not None:
                    return self._kt_lr_start_probe(tuner_id, key)
                waiting = self._kt_lr.running()
                if self.lr_config.wait_for_probes and waiting:
                    return self._kt_lr_idle(tuner_id, waiting)
            trial = super().create_trial(tuner_id)
            timeout = self.lr_config.trial_timeout
            if trial.status == TrialStatus.RUNNING:
                self._kt_lr_watch.handed_out(tuner_id, trial.trial_id)
            elif trial.status == TrialStatus.STOPPED and TrialWatch.may_retry(
                self, timeout, tuner_id
            ):  # with trial_timeout, stay until the others' trials end: one may time out
                return self._kt_lr_idle(tuner_id, [])
            return trial

    def update_trial(self, trial_id: str, metrics: dict[str, float], step: int = 0) -> Trial:
        """Record a probe's metrics in the side slot; other trials go to the base oracle."""
        with _compat.oracle_lock(self):
            trial = self._kt_lr_trials.get(trial_id)
            if trial is None:
                if wire.is_probe_id(trial_id):  # stale: from before a reload
                    return Trial(self.get_space(), trial_id=trial_id, status=TrialStatus.STOPPED)
                return super().update_trial(trial_id, metrics, step=step)
            self._kt_lr_metrics.setdefault(trial_id, {}).update(wire.probe_metrics(metrics))
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
        with _compat.oracle_lock(self):
            probe = self._kt_lr_trials.get(trial.trial_id)
            if probe is None:
                if not wire.is_probe_id(trial.trial_id):
                    self._kt_lr_end_ordinary(trial)
                return  # (a probe from before a reload is ignored: it is pending again)
            self._kt_lr_unassign(trial.trial_id)
            probe.status, probe.message = trial.status, trial.message
            metrics = self._kt_lr_metrics.pop(trial.trial_id, {})
            answered = trial.status == TrialStatus.COMPLETED and metrics.get(wire.METRIC_OK) == 1
            rec = self._kt_lr.receive(trial.trial_id, trial.status, answered)
            if rec is not None:
                rec.metrics = metrics
                values = dict(getattr(trial.hyperparameters, "values", None) or {})
                answer = wire.decode(metrics, values, trial.status, trial.message)
                self.hyperparameters = nw.record_answer(
                    self._kt_lr,
                    rec,
                    answer,
                    self.hyperparameters,
                    self.lr_config,
                    used=self._kt_lr_used(),
                    grid=self._kt_lr_is_grid(),
                )
                self._kt_lr.settle(rec, trial.trial_id)
                self._kt_lr_report_pick(rec)
            if self._kt_lr.record_of(trial.trial_id) is not None:
                self.save()

    def get_trial(self, trial_id: str) -> Trial:
        """The trial with ``trial_id`` (probe trials included)."""
        probe = self._kt_lr_trials.get(trial_id)
        return probe if probe is not None else super().get_trial(trial_id)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The base strategy's values, with the LR seeded or moved into its key's interval."""
        self.hyperparameters = nw.refresh(
            self._kt_lr, self.hyperparameters, self.lr_config, self._kt_lr_used()
        )
        response = super().populate_space(trial_id)
        if response.get("status") != TrialStatus.RUNNING:
            return response
        values = response.get("values")
        if not values or self.lr_config.lr_hp_name not in values or "tuner/trial_id" in values:
            return response
        seeded = nw.take_seed(self._kt_lr, self.hyperparameters, trial_id, values, self.lr_config)
        if seeded is not None:
            return {**response, "values": seeded}
        if not self._kt_lr_is_grid():
            placed = nw.place(self._kt_lr, self.hyperparameters, values, self.lr_config)
            return {**response, "values": placed}
        return response

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """The base oracle's state plus kt_lr's ledger under ``"kt_lr"``."""
        state = super().get_state()
        state[STATE_KEY] = self._kt_lr.to_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the base state and kt_lr's ledger; a probe that was running is redone."""
        super().set_state(state)
        TrialWatch.forget_ended(self)
        clock = self._kt_lr.clock
        self._kt_lr = Ledger.from_state(state.get(STATE_KEY), clock=clock)
        self._kt_lr_trials, self._kt_lr_running, self._kt_lr_metrics = {}, {}, {}
        self._kt_lr_watch.assigned = {}
        hp_name = self._kt_lr.hp_name
        if hp_name is not None and hp_name != self.lr_config.lr_hp_name:
            warn(
                f"The saved probe results are for {hp_name!r} but lr_hp_name is "
                f"{self.lr_config.lr_hp_name!r}; the saved results are ignored."
            )
            self._kt_lr = Ledger(clock=clock)
        self._kt_lr.resumed()

    def lr_report(self) -> LRReport:
        """What the probes saw, the original and narrowed intervals, the seeds, and why."""
        return LRReport.from_ledger(self._kt_lr, self.get_space(), self.lr_config.lr_hp_name)

    @property
    def lr_state(self) -> dict[str, Any]:
        """A copy of the kt_lr part of the oracle's state (JSON-friendly)."""
        return self._kt_lr.to_state()

    def lr_interval_for(self, values: dict[str, Any]) -> tuple[float, float] | None:
        """The LR interval a trial with these ``values`` samples from.

        Its probe key's narrowed interval (scaled to the trial's batch size), the
        original range when that key's probe failed, or ``None`` while it is not probed.

        Args:
            values: a trial's hyperparameter values (at least its probe keys).
        """
        iv = nw.target(self._kt_lr, self.hyperparameters, values, self.lr_config)
        return None if iv is None else (iv.low, iv.high)

    # -------------------------------------------------------------- internals
    def _kt_lr_start_probe(self, tuner_id: str, key: str) -> Trial:
        rec = self._kt_lr.probes[key]
        trial_id, seed = self._kt_lr.start_probe(key, tuner_id, self.seed)
        hps = self.hyperparameters.copy()
        values = nw.probe_values(self.hyperparameters, rec.key_values, self.lr_config.lr_hp_name)
        if values is None:  # (the keys leave out branches without the LR)
            values = sp.default_values(self.hyperparameters, rec.key_values)
        hps.values = wire.request(values, key, seed)
        trial = Trial(hyperparameters=hps, trial_id=trial_id, status=TrialStatus.RUNNING)
        self.tuner_ids.add(tuner_id)
        self._kt_lr_trials[trial_id] = trial
        self._kt_lr_running[tuner_id] = trial
        if self.verbose and self.verbose >= 1:
            label = "" if key == sp.ALL_KEY else f" for {key}"
            print(f"\nSearch: learning-rate probe{label} ({trial_id})\n")
        self.save()
        return trial

    def _kt_lr_idle(self, tuner_id: str, waiting: list) -> Trial:
        self.tuner_ids.add(tuner_id)
        for rec in waiting:
            rec.idle_answers += 1
        return Trial(self.get_space(), status=TrialStatus.IDLE)

    def _kt_lr_unassign(self, trial_id: str) -> str | None:
        """Forget which worker runs probe ``trial_id``; return that worker's id."""
        for tuner_id, t in list(self._kt_lr_running.items()):
            if t.trial_id == trial_id:
                del self._kt_lr_running[tuner_id]
                return tuner_id
        return None

    def _kt_lr_expire(self) -> None:
        """Take probes and trials from workers that gave no answer in time (see LRConfig)."""
        cfg, ledger = self.lr_config, self._kt_lr
        self._kt_lr_watch.expire(
            self, cfg.trial_timeout, ledger.timed_out, self._kt_lr_end_ordinary
        )
        for rec, trial_id, error in ledger.expire(cfg.probe_timeout, cfg.probe_attempts):
            # A dead worker never asks again; without this the chief waits for it
            # forever. A live one is added back by its next request.
            self.tuner_ids.discard(self._kt_lr_unassign(trial_id))
            if error is not None:
                self.hyperparameters = nw.record_failure(
                    ledger, rec, error, self.hyperparameters, cfg, used=self._kt_lr_used()
                )
            self.save()

    def _kt_lr_end_ordinary(self, trial: Trial) -> None:
        base_end = super().end_trial
        self._kt_lr_watch.end(self, trial, self._kt_lr.timed_out, base_end)

    def _kt_lr_report_pick(self, rec: ProbeRecord) -> None:
        if rec.finding is None or not (self.verbose and self.verbose >= 1):
            return
        iv = rec.interval
        kept = f"[{iv.low:.3g}, {iv.high:.3g}]"
        if rec.choices is not None:
            kept = "the values [" + ", ".join(f"{v:g}" for v in rec.choices) + "]"
        print(
            f"LR probe {rec.trial_id}{rec.label}: picked {rec.finding.lr:.3g}; "
            f"{self.lr_config.lr_hp_name} narrowed to {kept}"
        )

    def _kt_lr_used(self) -> list[Any]:
        name = self.lr_config.lr_hp_name
        return [t.hyperparameters.values.get(name) for t in self.trials.values()]

    def _kt_lr_is_grid(self) -> bool:
        return isinstance(self, keras_tuner.oracles.GridSearchOracle)
