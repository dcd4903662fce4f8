"""LRTunerMixin and the four drop-in tuners.

The mixin runs the probe trials an :class:`~kt_lr.oracle.LROracle` hands out: it builds
the model from the trial's values, calls :func:`kt_lr.find_lr` on the data given to
``search()``, saves the curves under ``<project>/kt_lr/<trial id>/`` and reports the answer
as metrics. Every other trial runs unchanged. A plain oracle is upgraded to an
``LROracle`` when the tuner is created, so ``class MyTuner(kt_lr.LRTunerMixin,
keras_tuner.Tuner)`` works with any oracle, and so does ``class LRTheirs(
kt_lr.LRTunerMixin, TheirTuner)`` for a tuner class with its own ``run_trial``.

Distributed search (``KERASTUNER_TUNER_ID`` / ``KERASTUNER_ORACLE_IP`` /
``KERASTUNER_ORACLE_PORT``, the same script on the chief and on every worker): the
chief serves the oracle with :func:`serve_oracle`, workers run trials and probes.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import time
import warnings
from typing import Any, NamedTuple

import keras_tuner
import numpy as np

from kt_lr import space as sp
from kt_lr.oracle import (
    CANDIDATE_PREFIX,
    METRIC_BATCH_SIZE,
    METRIC_HIGH,
    METRIC_LOW,
    METRIC_LR,
    METRIC_OK,
    PROBE_ARTIFACTS,
    PROBE_ERROR,
    PROBE_MARKER,
    PROBE_OPTIMIZER,
    PROBE_REASONS,
    PROBE_SEED,
    LRConfig,
    LROracle,
    LRReport,
    _oracle_lock,
    is_probe_trial,
    load_lr_report,
    objective_placeholder,
)

try:
    from kt_lr import finder
except ModuleNotFoundError as exc:  # pragma: no cover - only while finder.py is absent
    if exc.name != "kt_lr.finder":
        raise
    finder = None

_RESERVED_PROBE_OPTIONS = ("model", "x", "y", "validation_data")
_DEFAULT_BATCH_SIZE = 32
_FIRST_IDLE_WAIT = 0.05


def distributed_role() -> str | None:
    """``"chief"``, ``"worker"`` or ``None`` (not distributed), from Keras Tuner's env vars.

    As in Keras Tuner: distributed when ``KERASTUNER_ORACLE_IP`` is set; the chief is
    the process whose ``KERASTUNER_TUNER_ID`` contains ``"chief"``.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def _search_over(oracle: Any) -> bool:
    with _oracle_lock(oracle):
        return not oracle.ongoing_trials and not oracle.tuner_ids


def serve_oracle(oracle: Any, *, poll_interval: float = 0.25) -> None:
    """Serve ``oracle`` to the workers over gRPC until the search is over (the chief's job).

    Listens on ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`` with Keras Tuner's own
    servicer, one request at a time as Keras Tuner does. It returns once the oracle has
    told a worker to stop and no trial or worker is left, checking every
    ``poll_interval`` seconds (Keras Tuner's loop checks every 20 s, which added up to
    20 s to every distributed search). When the base oracle ended the search with an
    error (too many consecutive failed trials), it returns after every live worker was
    told to stop and raises that error, instead of waiting forever.

    Raises:
        RuntimeError: the address cannot be bound, or the search ended with an error.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    ip, port = os.environ.get("KERASTUNER_ORACLE_IP"), os.environ.get("KERASTUNER_ORACLE_PORT")
    if not ip or not port:
        raise RuntimeError(
            "serve_oracle needs KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, e.g. "
            "KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000."
        )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    bound = 0
    try:
        bound = server.add_insecure_port(f"{ip}:{port}")
    except RuntimeError:
        pass
    if not bound:
        raise RuntimeError(
            f"The chief could not listen on {ip}:{port}: is another process using it? Pick "
            "a free KERASTUNER_ORACLE_PORT (the same one for the chief and the workers)."
        )
    server.start()
    fatal = None
    expire = getattr(oracle, "_kt_lr_expire", None)  # trial/probe timeouts of dead workers
    try:
        while True:
            time.sleep(poll_interval)
            if expire is not None:
                with _oracle_lock(oracle):
                    expire()
            fatal = getattr(oracle, "_kt_lr_fatal", None)
            if (servicer.stop_triggered or fatal) and _search_over(oracle):
                break
    finally:
        server.stop(grace=2).wait(5)
    left = list(getattr(oracle, "_retry_queue", []) or [])
    if left and not fatal:
        warnings.warn(
            f"Trial(s) {', '.join(map(str, left))} were queued again after trial_timeout, but "
            "no worker was left to run them; they run when the search is resumed "
            "(the same directory and project_name, overwrite=False).",
            stacklevel=2,
        )
    if fatal:
        raise RuntimeError(f"The search ended with an error on a worker: {fatal}")


class LRTunerMixin:
    """Give any Keras Tuner tuner kt_lr's learning-rate probes.

    Put it first in the bases: ``class MyTuner(kt_lr.LRTunerMixin, keras_tuner.Tuner)``,
    or ``class LRTheirs(kt_lr.LRTunerMixin, TheirTuner)`` to add probes to a tuner class
    written elsewhere. A ``run_trial`` defined in a subclass of the mixin is wrapped so
    that probe trials still go to the probe (the probe builds the model with the tuner's
    hypermodel and runs :func:`kt_lr.find_lr` on the data given to ``search()``).

    Args:
        probe_options: keyword arguments for :func:`kt_lr.find_lr` (e.g.
            ``{"num_steps": 100, "num_subsamples": 50}``); ``batch_size``, ``seed`` and
            ``verbose`` here override what the tuner would pass.
        save_probe_plots: save ``finding.png`` next to ``finding.json`` (needs matplotlib;
            a plotting failure never fails the probe).
        idle_wait: longest pause, in seconds, before asking the oracle again after it
            answered IDLE (a probe runs on another worker, or Hyperband waits for a
            round). Keras Tuner re-asks at once, and a chief answers one request at a
            time, so waiting workers would flood it; the pause starts at 0.05 s and
            doubles up to ``idle_wait``. ``0`` re-asks at once, as Keras Tuner does.
            Measured with a chief and 2 workers on 127.0.0.1 (2 busy cores), one probe:
            with ``idle_wait=0`` the waiting worker got 4,955 and 5,658 IDLE answers
            during the probe (about 900 a second; that probe took 6.1 s), with the
            default 9 and 6 (that probe took 2.7 s: the spinning worker also slowed it).
        **kwargs: the fields of :class:`~kt_lr.oracle.LRConfig` (``lr_hp_name``,
            ``probe_key_hps``, ``num_seeds``, ``min_decades``, ``widen``,
            ``wait_for_probes``, ``batch_size_hp_name``, ``batch_scaling``,
            ``probe_timeout``, ``probe_attempts``) when the tuner upgrades a plain oracle,
            then everything the tuner class itself accepts. ``overwrite=True`` is ignored
            on a distributed worker, with a warning: it would delete the project
            directory the chief is writing to (Keras Tuner deletes it in the tuner's
            constructor); it still applies on the chief, which should be started first.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("run_trial")
        if own is None or getattr(own, "_kt_lr_wrapped", False):
            return

        @functools.wraps(own)
        def run_trial(self: Any, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
            if is_probe_trial(trial):
                return self._kt_lr_run_probe(trial, fit_args, fit_kwargs)
            return own(self, trial, *fit_args, **fit_kwargs)

        run_trial._kt_lr_wrapped = True  # type: ignore[attr-defined]
        cls.run_trial = run_trial  # type: ignore[method-assign]

    def __init__(
        self,
        *args: Any,
        probe_options: dict[str, Any] | None = None,
        save_probe_plots: bool = True,
        idle_wait: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if (
            isinstance(idle_wait, bool)
            or not isinstance(idle_wait, int | float)
            or not math.isfinite(idle_wait)
            or idle_wait < 0
        ):
            raise ValueError(
                f"`idle_wait` must be a number of seconds >= 0 (e.g. 1.0), got {idle_wait!r}."
            )
        names = LRConfig.option_names()
        lr_options = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        if lr_options:
            LRConfig(**lr_options)  # fail fast, before the tuner touches the disk
        probe_options = dict(probe_options or {})
        reserved = sorted(set(probe_options) & set(_RESERVED_PROBE_OPTIONS))
        if reserved:
            raise ValueError(
                f"probe_options must not contain {reserved}: the probe uses the model it "
                "builds and the data given to search()."
            )
        if kwargs.get("overwrite") and distributed_role() == "worker":
            warnings.warn(
                "overwrite=True is ignored on a distributed worker "
                f"(KERASTUNER_TUNER_ID={os.environ.get('KERASTUNER_TUNER_ID')!r}): it would "
                "delete the project directory the chief and the other workers write to. "
                "Pass overwrite=True on the chief only, and start the chief first.",
                UserWarning,
                stacklevel=2,
            )
            kwargs["overwrite"] = False
        self.probe_options = probe_options
        self.save_probe_plots = bool(save_probe_plots)
        self.idle_wait = float(idle_wait)
        self._kt_lr_options = lr_options
        self._kt_lr_upgraded = False
        self._kt_lr_idle = -1  # IDLE answers in a row; -1: no request pending
        super().__init__(*args, **kwargs)

    # Keras Tuner calls exactly one of these two while the tuner is created, after the
    # oracle knows the project directory and before it reads its state: the moment to
    # upgrade the oracle, so that a reload finds kt_lr's saved state.
    def _populate_initial_space(self) -> None:
        self._kt_lr_upgrade_oracle()
        super()._populate_initial_space()

    def reload(self) -> None:
        self._kt_lr_upgrade_oracle()
        super().reload()

    def _kt_lr_upgrade_oracle(self) -> None:
        if self._kt_lr_upgraded:
            return
        self._kt_lr_upgraded = True
        if isinstance(self.oracle, LROracle):
            if self._kt_lr_options:
                raise ValueError(
                    f"The oracle is already an LROracle; pass {sorted(self._kt_lr_options)} "
                    "to kt_lr.LROracle(...) instead of the tuner."
                )
            return
        if isinstance(self.oracle, keras_tuner.Oracle):
            LROracle(self.oracle, **self._kt_lr_options)  # upgrades the instance in place

    @property
    def lr_config(self) -> LRConfig:
        """The oracle's kt_lr options (on a worker: those of its local copy)."""
        oracle = self.oracle
        local = getattr(oracle, "_oracle", None)  # a worker's OracleClient wraps it
        for candidate in (oracle, local):
            if isinstance(candidate, LROracle):
                return candidate.lr_config
        return LRConfig(**self._kt_lr_options)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Keras Tuner's search; on a distributed chief, :func:`serve_oracle` instead."""
        if distributed_role() == "chief" and isinstance(self.oracle, LROracle):
            sp.find_lr_hps(self.oracle.get_space(), self.lr_config.lr_hp_name)
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            serve_oracle(self.oracle)
            return
        super().search(*fit_args, **fit_kwargs)

    def on_search_begin(self) -> None:
        """Fail early, with the fix, when the space has no usable LR hyperparameter.

        Also saves the tuner, so a search interrupted during its probe resumes (and
        probes again) with ``overwrite=False``.
        """
        # A worker checks its local copy of the space: a bad space then fails on every
        # process at once, before any worker waits on the chief.
        local = getattr(self.oracle, "_oracle", None) or self.oracle
        sp.find_lr_hps(local.get_space(), self.lr_config.lr_hp_name)
        self._kt_lr_idle = -1
        self.save()
        super().on_search_begin()

    def pre_create_trial(self) -> None:
        """Pause before asking again when the oracle's last answer was IDLE.

        Keras Tuner's loop calls this hook before every ``create_trial`` and
        ``on_trial_begin`` only for a trial that starts, so a request that reached this
        hook again without a trial in between was answered IDLE. The pause starts at
        0.05 s and doubles up to ``idle_wait`` (see the class docstring for the
        measured effect). A hook rather than a wrapper around the worker's
        ``OracleClient.create_trial``: it needs no private Keras Tuner class, works the
        same in one process, and the worker waits on its own side, so the chief's single
        request thread stays free for the probing worker's reports.
        """
        if self._kt_lr_idle >= 0 and self.idle_wait > 0:
            time.sleep(min(self.idle_wait, _FIRST_IDLE_WAIT * 2**self._kt_lr_idle))
        self._kt_lr_idle += 1
        super().pre_create_trial()

    def on_trial_begin(self, trial: Any) -> None:
        """Reset the IDLE back-off: the oracle handed out a trial."""
        self._kt_lr_idle = -1
        super().on_trial_begin(trial)

    def run_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
        """Run a probe trial with :func:`kt_lr.find_lr`; any other trial as the base tuner does."""
        if is_probe_trial(trial):
            return self._kt_lr_run_probe(trial, fit_args, fit_kwargs)
        return super().run_trial(trial, *fit_args, **fit_kwargs)

    def results_summary(self, num_trials: int = 10) -> None:
        """Keras Tuner's summary, followed by the learning-rate report."""
        super().results_summary(num_trials)
        print()
        print(self.lr_report().summary())

    def lr_report(self) -> LRReport:
        """What the probes saw, the original and narrowed interval, the seeds and the reasons."""
        if isinstance(self.oracle, LROracle):
            return self.oracle.lr_report()
        return load_lr_report(self.project_dir, self.lr_config.lr_hp_name)

    # -------------------------------------------------------------- the probe
    def _kt_lr_run_probe(self, trial: Any, fit_args: tuple, fit_kwargs: dict) -> dict[str, float]:
        values = trial.hyperparameters.values
        metrics = objective_placeholder(self.oracle.objective)
        verbose = _verbosity(self.probe_options.get("verbose", fit_kwargs.get("verbose", 1)))
        try:
            x, y, validation_data, sample_weight = probe_data(fit_args, fit_kwargs)
            batch_size = self._kt_lr_batch_size(values, fit_args, fit_kwargs)
            options = dict(self.probe_options)
            if sample_weight is not None:
                options.setdefault("sample_weight", sample_weight)
            options.pop("verbose", None)
            options.pop("batch_size", None)
            seed = options.pop("seed", values.get(PROBE_SEED))
            model = self._kt_lr_build(trial.hyperparameters, seed)
            if finder is None:
                raise RuntimeError("kt_lr.finder is not available")
            finding = finder.find_lr(
                model,
                x,
                y,
                batch_size=batch_size,
                seed=seed,
                verbose=verbose,
                validation_data=validation_data,
                **options,
            )
            numbers = finding.to_dict()
            if not all(math.isfinite(numbers[k]) for k in ("lr", "low", "high")):
                raise ValueError(
                    f"find_lr returned non-finite values (lr={finding.lr}, low={finding.low}, "
                    f"high={finding.high}); the losses were probably NaN"
                )
        except Exception as exc:
            values[PROBE_ERROR] = f"{type(exc).__name__}: {exc}"[:2000]
            metrics[METRIC_OK] = 0.0
            if verbose:
                print(f"LR probe {trial.trial_id} failed: {values[PROBE_ERROR]}")
            return metrics
        metrics.update(
            {
                METRIC_OK: 1.0,
                METRIC_LR: numbers["lr"],
                METRIC_LOW: numbers["low"],
                METRIC_HIGH: numbers["high"],
                METRIC_BATCH_SIZE: float(batch_size),
            }
        )
        for name, value in numbers.items():
            if name.startswith("candidate_") and math.isfinite(value):
                metrics[CANDIDATE_PREFIX + name[len("candidate_") :]] = float(value)
        values[PROBE_REASONS] = json.dumps([str(r) for r in finding.reasons])
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            values[PROBE_OPTIMIZER] = type(optimizer).__name__
        artifacts = self._kt_lr_save_artifacts(trial, finding)
        if artifacts is not None:
            values[PROBE_ARTIFACTS] = artifacts
        return metrics

    def _kt_lr_build(self, hp: Any, seed: Any) -> Any:
        """Build the probe's model; with a seed, its initial weights are reproducible.

        Keras draws unseeded initializer seeds from Python's ``random`` (and some code
        uses NumPy's global generator): both are seeded for the build and restored after.
        """
        if self.hypermodel is None:
            raise RuntimeError(
                "the probe builds its model with the tuner's hypermodel, and this tuner "
                "has none: pass hypermodel=... to the tuner"
            )
        build = getattr(self, "_try_build", None) or self.hypermodel.build
        if seed is None:
            return build(hp)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            random.seed(int(seed))
            np.random.seed(int(seed) % (2**32))
            return build(hp)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)

    def _kt_lr_batch_size(self, values: dict, fit_args: tuple, fit_kwargs: dict) -> int:
        if self.probe_options.get("batch_size") is not None:
            return int(self.probe_options["batch_size"])
        if fit_kwargs.get("batch_size") is not None:
            return int(fit_kwargs["batch_size"])
        if len(fit_args) > 2 and isinstance(fit_args[2], int):
            return int(fit_args[2])
        name = self.lr_config.batch_size_hp_name
        if name and isinstance(values.get(name), int) and not isinstance(values[name], bool):
            return int(values[name])
        return _DEFAULT_BATCH_SIZE

    def _kt_lr_save_artifacts(self, trial: Any, finding: Any) -> str | None:
        """``finding.json`` (+ ``finding.png``) under the project dir; ``None`` on failure."""
        try:
            from kt_lr.results import as_plain

            folder = os.path.join(str(self.project_dir), "kt_lr", str(trial.trial_id))
            os.makedirs(folder, exist_ok=True)
            record = {
                "trial_id": trial.trial_id,
                "probe_key": trial.hyperparameters.values.get(PROBE_MARKER),
                "values": {
                    k: v
                    for k, v in trial.hyperparameters.values.items()
                    if not str(k).startswith("kt_lr/")
                },
                "finding": as_plain(finding),
            }
            with open(os.path.join(folder, "finding.json"), "w") as fh:
                json.dump(record, fh, indent=1, default=str)
        except Exception:
            return None
        if self.save_probe_plots:
            _save_plot(finding, os.path.join(folder, "finding.png"))
        return folder


def _save_plot(finding: Any, path: str) -> bool:
    try:
        import matplotlib.pyplot as plt

        fig = finding.plot()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return True
    except Exception:
        return False


def _verbosity(value: Any) -> int:
    if value == "auto":
        return 1
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def _split_at(data: Any, start: int | None, stop: int | None) -> Any:
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _split_at(v, start, stop) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_split_at(v, start, stop) for v in data)
    return data[start:stop]


def _num_samples(x: Any) -> int | None:
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    elif isinstance(x, list | tuple):
        x = x[0] if x else None
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else None


class ProbeData(NamedTuple):
    """The data a probe runs on, taken from the arguments given to ``search()``."""

    x: Any
    y: Any
    validation_data: Any
    sample_weight: Any


def probe_data(fit_args: tuple, fit_kwargs: dict) -> ProbeData:
    """``(x, y, validation_data, sample_weight)`` for the probe from ``search()``'s arguments.

    Reads ``x``/``y`` positionally or by keyword, takes ``validation_data`` as given, and
    honours ``validation_split`` on arrays the way ``model.fit`` does (the last fraction
    of the samples becomes the validation set).
    """
    args = list(fit_args)
    x = fit_kwargs.get("x", args[0] if args else None)
    y = fit_kwargs.get("y", args[1] if len(args) > 1 else None)
    if x is None:
        raise ValueError(
            "search() got no training data: pass it as to model.fit, e.g. "
            "tuner.search(x, y, epochs=..., validation_data=(x_val, y_val))."
        )
    validation_data = fit_kwargs.get("validation_data")
    sample_weight = fit_kwargs.get("sample_weight")
    split = fit_kwargs.get("validation_split") or 0.0
    if validation_data is None and split:
        n = _num_samples(x)
        if n is not None:
            at = int(math.floor(n * (1.0 - float(split))))
            if 0 < at < n:
                validation_data = (_split_at(x, at, None), _split_at(y, at, None))
                x, y = _split_at(x, None, at), _split_at(y, None, at)
                sample_weight = _split_at(sample_weight, None, at)
    return ProbeData(x, y, validation_data, sample_weight)


class RandomSearch(LRTunerMixin, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` whose first trial is a learning-rate probe.

    Accepts every argument of ``keras_tuner.RandomSearch`` plus the kt_lr options of
    :class:`LRTunerMixin` and :class:`~kt_lr.oracle.LRConfig`.
    """


class BayesianOptimization(LRTunerMixin, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` whose first trial is a learning-rate probe.

    Accepts every argument of ``keras_tuner.BayesianOptimization`` plus the kt_lr options
    of :class:`LRTunerMixin` and :class:`~kt_lr.oracle.LRConfig`. The probe never feeds
    the Gaussian process; the seeded trials do.
    """


class Hyperband(LRTunerMixin, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` whose first trial is a learning-rate probe.

    Accepts every argument of ``keras_tuner.Hyperband`` plus the kt_lr options of
    :class:`LRTunerMixin` and :class:`~kt_lr.oracle.LRConfig`. The probe takes no bracket
    slot; seeds go to first-round trials only.
    """


class GridSearch(LRTunerMixin, keras_tuner.GridSearch):
    """``keras_tuner.GridSearch`` whose first trial is a learning-rate probe.

    Accepts every argument of ``keras_tuner.GridSearch`` plus the kt_lr options of
    :class:`LRTunerMixin` and :class:`~kt_lr.oracle.LRConfig`. The grid covers the
    narrowed range; no seeds (the grid enumerates it).
    """
