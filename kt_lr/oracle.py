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
- ``update_trial`` / ``end_trial`` / ``get_trial``: probe trial ids are answered from a
  side slot; the finding arrives as metrics (``kt_lr/lr``, ``kt_lr/low``, ...), its
  reasons and errors as extra values. ``end_trial`` narrows the LR hyperparameter in
  ``self.hyperparameters`` (so ``get_space()`` has the new bounds) and queues seeds.
- ``populate_space``: after the base strategy proposes values, the next queued seed
  replaces the LR value (never in a Hyperband continuation of a checkpoint).
- ``get_state`` / ``set_state``: the probe records live under ``state["kt_lr"]``, so an
  ``overwrite=False`` tuner resumes without probing again.

Only ids, values, status and metrics cross Keras Tuner's gRPC wire, and that is all this
protocol uses, so the oracle can be served by a chief and never needs the data.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

import keras_tuner
from keras_tuner.engine.hyperparameters import HyperParameters
from keras_tuner.engine.trial import Trial, TrialStatus

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
_STATE_VERSION = 1


class LRProbeWarning(UserWarning):
    """A learning-rate probe failed or its interval missed the user's range."""


def _warn(message: str) -> None:
    warnings.warn(message, LRProbeWarning, stacklevel=3)


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
            numeric ``hp.Choice``).
        probe_key_hps: names of discrete hyperparameters that change the LR scale; one
            probe per combination of their values (those absent from the space are
            ignored). ``()`` probes once.
        num_seeds: trials seeded per probe key: the probe's pick, then geometric points
            inside the narrowed interval. ``0`` disables seeding.
        min_decades: minimum width of the narrowed interval, in decades.
        widen: factor applied to each side of the probe's interval before intersecting.
        wait_for_probes: hand out IDLE trials while a probe runs elsewhere (distributed
            search) instead of ordinary trials drawn from the un-narrowed space.
        batch_size_hp_name: a batch-size hyperparameter; a seed trial whose batch size
            differs from the probe's gets its LR scaled by ``batch_scaling``.
        batch_scaling: ``"auto"`` (linear for SGD, sqrt for adaptive optimizers),
            ``"linear"``, ``"sqrt"`` or ``"none"``.
    """

    lr_hp_name: str = sp.DEFAULT_LR_HP_NAME
    probe_key_hps: tuple[str, ...] = sp.DEFAULT_PROBE_KEY_HPS
    num_seeds: int = 3
    min_decades: float = 0.5
    widen: float = 1.0
    wait_for_probes: bool = True
    batch_size_hp_name: str | None = "batch_size"
    batch_scaling: str = "auto"

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

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword names accepted by :class:`LROracle`."""
        return tuple(f.name for f in fields(cls))


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
        "notes": [],
    }


def _new_record(key: str, key_values: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "key_values": dict(key_values),
        "status": "pending",
        "trial_id": None,
        "attempts": 0,
        "metrics": {},
        "finding": None,
        "interval": None,
        "seeds": [],
        "error": None,
        "artifacts": None,
        "notes": [],
    }


def _hp_from_entry(entry: dict[str, Any]) -> Any:
    hps = HyperParameters.from_config({"space": [copy.deepcopy(entry)], "values": {}})
    return hps.space[0]


def _bounds(hp: Any) -> tuple[float, float]:
    info = sp.hp_summary(hp)
    return info["min_value"], info["max_value"]


def _applies(hp: Any, rec: dict[str, Any]) -> bool:
    """Whether a probe (its key values) concerns the LR entry ``hp`` (its conditions)."""
    kv = rec["key_values"]
    return all(c.name not in kv or c.is_active(kv) for c in hp.conditions)


def _finite_positive(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


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
    tuners keep working unchanged). Keep using the returned object. ``options`` are the
    fields of :class:`LRConfig`.

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
        self._kt_lr_trials: dict[str, Trial] = {}
        self._kt_lr_running: dict[str, Trial] = {}

    # ----------------------------------------------------------------- trials
    def create_trial(self, tuner_id: str) -> Trial:
        """A probe trial while a probe is pending, else the base strategy's trial."""
        # Checked before taking the oracle's lock: keras_tuner.synchronized does not
        # release it when the wrapped call raises.
        self._kt_lr_prepare()
        return self._kt_lr_create_trial(tuner_id)

    @keras_tuner.synchronized
    def _kt_lr_create_trial(self, tuner_id: str) -> Trial:
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
            if self.lr_config.wait_for_probes and self._kt_lr_running:
                self.tuner_ids.add(tuner_id)
                return Trial(self.get_space(), status=TrialStatus.IDLE)
        return super().create_trial(tuner_id)

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics: dict[str, float], step: int = 0) -> Trial:
        """Record a probe's metrics in the side slot; other trials go to the base oracle."""
        trial = self._kt_lr_trials.get(trial_id)
        if trial is None:
            if str(trial_id).startswith(PROBE_ID_PREFIX):  # stale: from before a reload
                return Trial(self.get_space(), trial_id=trial_id, status=TrialStatus.STOPPED)
            return super().update_trial(trial_id, metrics, step=step)
        rec = self._kt_lr_record_of(trial_id)
        if rec is not None:
            for name, value in dict(metrics).items():
                if str(name).startswith(METRIC_PREFIX):
                    rec["metrics"][str(name)] = float(value)
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial: Trial) -> None:
        """Finish a probe (record, narrow, seed, save); other trials go to the base oracle."""
        probe = self._kt_lr_trials.get(trial.trial_id)
        if probe is None:
            if not str(trial.trial_id).startswith(PROBE_ID_PREFIX):
                super().end_trial(trial)
            return  # (a probe from before a reload is ignored: it is pending again)
        for tuner_id, t in list(self._kt_lr_running.items()):
            if t.trial_id == trial.trial_id:
                del self._kt_lr_running[tuner_id]
        rec = self._kt_lr_record_of(trial.trial_id)
        if rec is None or rec["status"] != "running":
            return  # a duplicate end: nothing to do
        incoming = dict(getattr(trial.hyperparameters, "values", None) or {})
        probe.status = trial.status
        probe.message = trial.message
        self._kt_lr_finish(rec, trial.status, trial.message, incoming)
        self.save()

    def get_trial(self, trial_id: str) -> Trial:
        """The trial with ``trial_id`` (probe trials included)."""
        probe = self._kt_lr_trials.get(trial_id)
        return probe if probe is not None else super().get_trial(trial_id)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The base strategy's values, with the next queued seed as the learning rate."""
        response = super().populate_space(trial_id)
        queue = self._kt_lr["seed_queue"]
        if not queue or response.get("status") != TrialStatus.RUNNING:
            return response
        values = response.get("values")
        name = self.lr_config.lr_hp_name
        if not values or name not in values or "tuner/trial_id" in values:
            return response
        key = sp.probe_key(values, self._kt_lr["key_names"])
        index = next((i for i, s in enumerate(queue) if s["key"] == key), None)
        if index is None:
            index = 0
            forced = self._kt_lr["probes"][queue[0]["key"]]["key_values"]
            values = self._kt_lr_complete(values, forced)
            if name not in values:
                return response
        seed = queue.pop(index)
        lr, note = self._kt_lr_seed_value(seed, values)
        values[name] = lr
        self._kt_lr["seeds_used"].append(
            {"key": seed["key"], "lr": float(lr), "trial_id": trial_id, "note": note}
        )
        return {**response, "values": values}

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """The base oracle's state plus kt_lr's records under ``"kt_lr"``."""
        state = super().get_state()
        state[STATE_KEY] = json.loads(json.dumps(self._kt_lr))
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the base state and kt_lr's records; a probe that was running is redone."""
        super().set_state(state)
        saved = state.get(STATE_KEY)
        self._kt_lr = _fresh_state() if saved is None else copy.deepcopy(saved)
        self._kt_lr_trials, self._kt_lr_running = {}, {}
        hp_name = self._kt_lr.get("hp_name")
        if hp_name is not None and hp_name != self.lr_config.lr_hp_name:
            _warn(
                f"The saved probe results are for {hp_name!r} but lr_hp_name is "
                f"{self.lr_config.lr_hp_name!r}; the saved results are ignored."
            )
            self._kt_lr = _fresh_state()
        for rec in self._kt_lr["probes"].values():
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

    def _kt_lr_record_of(self, trial_id: str) -> dict[str, Any] | None:
        for rec in self._kt_lr["probes"].values():
            if rec["trial_id"] == trial_id:
                return rec
        return None

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
        self.tuner_ids.add(tuner_id)
        self._kt_lr_trials[trial_id] = trial
        self._kt_lr_running[tuner_id] = trial
        if self.verbose and self.verbose >= 1:
            label = "" if key == sp.ALL_KEY else f" for {key}"
            print(f"\nSearch: learning-rate probe{label} ({trial_id})\n")
        self.save()
        return trial

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
            rec.update(status="failed", error=str(error))
            orig = _hp_from_entry(self._kt_lr["original"][0])
            lo_b, hi_b = _bounds(orig)
            _warn(
                f"Learning-rate probe {rec['trial_id']} ({rec['key']}) failed: {error}. "
                f"Keeping the original range [{lo_b:g}, {hi_b:g}] for "
                f"{self.lr_config.lr_hp_name!r}; the search goes on."
            )
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
        rec["status"] = "done"
        try:
            self._kt_lr_narrow()
            self._kt_lr_queue_seeds(rec)
        except Exception as exc:  # never lose the search over a narrowing problem
            rec.update(status="failed", error=f"narrowing failed: {type(exc).__name__}: {exc}")
            rec["interval"], rec["seeds"] = None, []
            _warn(
                f"Could not narrow {self.lr_config.lr_hp_name!r} from probe "
                f"{rec['trial_id']}: {exc}. Keeping the range; the search goes on."
            )
            return
        if self.verbose and self.verbose >= 1:
            iv = rec["interval"]
            print(
                f"LR probe {rec['trial_id']}: picked {lr:.3g}; "
                f"{self.lr_config.lr_hp_name} narrowed to [{iv['low']:.3g}, {iv['high']:.3g}]"
            )

    def _kt_lr_narrow(self) -> None:
        """Narrow each original LR entry to the hull of its probes' intervals.

        A probe applies to an entry unless the entry is conditioned on a key
        hyperparameter with another value, so ``learning_rate`` declared per optimizer
        (under ``conditional_scope('optimizer', ...)``) is narrowed per optimizer.
        """
        st, cfg = self._kt_lr, self.lr_config
        done = [r for r in st["probes"].values() if r["status"] == "done"]
        if not done:
            return
        entries = [_hp_from_entry(e) for e in st["original"]]
        for rec in done:
            if rec["interval"] is None:
                hp = next((h for h in entries if _applies(h, rec)), entries[0])
                iv = self._kt_lr_interval(rec, hp)
                rec["interval"] = {
                    "low": iv.low,
                    "high": iv.high,
                    "status": iv.status,
                    "notes": list(iv.notes),
                }
                if iv.status.startswith("missed"):
                    f, (b_lo, b_hi) = rec["finding"], _bounds(hp)
                    side = "below" if iv.status == "missed_below" else "above"
                    _warn(
                        f"The probe's interval [{f['low']:.3g}, {f['high']:.3g}] for "
                        f"{cfg.lr_hp_name!r} lies entirely {side} your range [{b_lo:g}, "
                        f"{b_hi:g}]; kept [{iv.low:.3g}, {iv.high:.3g}] at its "
                        f"{'lower' if side == 'below' else 'upper'} end. Consider widening "
                        "the range in your build function."
                    )
        used = [t.hyperparameters.values.get(cfg.lr_hp_name) for t in self.trials.values()]
        for orig in entries:
            recs = [r for r in done if _applies(orig, r)]
            if not recs:
                continue
            intervals = [self._kt_lr_interval(r, orig) for r in recs]
            hull = sp.Interval(min(iv.low for iv in intervals), max(iv.high for iv in intervals))
            picks = [sp.clamp(r["finding"]["lr"], hull.low, hull.high) for r in recs]
            pick = picks[0] if len(picks) == 1 else math.prod(picks) ** (1 / len(picks))
            keep = [v for v in used if v is not None] if sp.hp_kind(orig) == "Choice" else ()
            new_hp = sp.narrow_hp(orig, hull, pick=pick, keep=keep)
            self.hyperparameters = sp.replace_hp(self.hyperparameters, new_hp)

    def _kt_lr_interval(self, rec: dict[str, Any], hp: Any) -> sp.Interval:
        f, cfg = rec["finding"], self.lr_config
        b_lo, b_hi = _bounds(hp)
        return sp.narrow_interval(
            f["low"], f["high"], b_lo, b_hi, min_decades=cfg.min_decades, widen=cfg.widen
        )

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
        current = self._kt_lr_active_lr_hp(rec["key_values"]) or _hp_from_entry(
            self._kt_lr["original"][0]
        )
        seeds: list[float] = []
        for v in sp.seed_lrs(f["lr"], iv["low"], iv["high"], self.lr_config.num_seeds):
            s = sp.snap_to_hp(v, current)
            if s not in seeds:
                seeds.append(s)
        rec["seeds"] = [float(s) for s in seeds]
        self._kt_lr["seed_queue"].extend({"key": rec["key"], "lr": float(s)} for s in seeds)

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
        f = (self._kt_lr["probes"].get(seed["key"]) or {}).get("finding") or {}
        probe_bs = f.get("batch_size")
        trial_bs = values.get(cfg.batch_size_hp_name) if cfg.batch_size_hp_name else None
        if (
            cfg.batch_scaling != "none"
            and probe_bs
            and isinstance(trial_bs, int | float)
            and not isinstance(trial_bs, bool)
            and trial_bs > 0
            and trial_bs != probe_bs
        ):
            lr = sp.scale_lr_for_batch_size(
                lr, probe_bs, trial_bs, rule=cfg.batch_scaling, optimizer=f.get("optimizer")
            )
            note = f"seed scaled from batch size {probe_bs} to {trial_bs}"
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
    ``probes`` maps each probe key to a :class:`ProbeReport`; ``seeds`` lists the seeded
    trials (``trial_id`` is ``None`` while still queued).
    """

    hp_name: str
    original: list[dict[str, Any]]
    narrowed: list[dict[str, Any]]
    probes: dict[str, ProbeReport]
    seeds: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

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
            )
        seeds = [dict(s, status="used") for s in state.get("seeds_used", [])]
        seeds += [dict(s, trial_id=None, status="queued") for s in state.get("seed_queue", [])]
        return cls(hp_name, original, narrowed, probes, seeds, list(state.get("notes", [])))

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
                if p.seeds:
                    lines.append("    seeds: " + ", ".join(f"{s:.3g}" for s in p.seeds))
            elif p.status == "failed":
                lines.append(f"  probe {p.trial_id} ({label}) failed: {p.error}; range kept")
            else:
                lines.append(f"  probe ({label}): {p.status}")
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
