"""LRTunerMixin and the four drop-in tuners.

The mixin runs the probe trials an :class:`~kt_lr.LROracle` hands out: it builds the
model from the trial's values, calls :func:`kt_lr.find_lr` on the data given to
``search()``, saves the curves under ``<project>/kt_lr/<trial id>/`` and reports the
answer as metrics (:mod:`kt_lr._protocol`). Every other trial runs unchanged. A plain
oracle is upgraded to an ``LROracle`` when the tuner is created, so ``class MyTuner(
kt_lr.LRTunerMixin, keras_tuner.Tuner)`` works with any oracle, and so does ``class
LRTheirs(kt_lr.LRTunerMixin, TheirTuner)`` for a tuner class with its own ``run_trial``.

Distributed search (``KERASTUNER_TUNER_ID`` / ``KERASTUNER_ORACLE_IP`` /
``KERASTUNER_ORACLE_PORT``, the same script on the chief and on every worker): the
chief serves the oracle with :func:`kt_lr.distribute.serve_oracle`, workers run trials
and probes.
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

import keras
import keras_tuner
import numpy as np

from kt_lr import _compat, probe_model
from kt_lr import _protocol as wire
from kt_lr import space as sp
from kt_lr.budget import budget_for_trial
from kt_lr.config import LRConfig
from kt_lr.distribute import distributed_role, serve_oracle
from kt_lr.oracle import LROracle
from kt_lr.report import LRReport, load_lr_report
from kt_lr.validation import check_seconds

try:
    from kt_lr import finder
except ModuleNotFoundError as exc:  # pragma: no cover - only while finder.py is absent
    if exc.name != "kt_lr.finder":
        raise
    finder = None

_RESERVED_PROBE_OPTIONS = ("model", "x", "y", "validation_data")
_DEFAULT_BATCH_SIZE = 32
_FIRST_IDLE_WAIT = 0.05


class LRTunerMixin(_compat.BeforeStateHooks):
    """Give any Keras Tuner tuner kt_lr's learning-rate probes.

    Put it first in the bases: ``class MyTuner(kt_lr.LRTunerMixin, keras_tuner.Tuner)``,
    or ``class LRTheirs(kt_lr.LRTunerMixin, TheirTuner)`` to add probes to a tuner class
    written elsewhere. A ``run_trial`` defined in a subclass of the mixin is wrapped so
    that probe trials still go to the probe (the probe builds the model with the tuner's
    hypermodel and runs :func:`kt_lr.find_lr` on the data given to ``search()``).

    Args:
        probe_options: keyword arguments for :func:`kt_lr.find_lr` (e.g.
            ``{"num_steps": 100, "num_subsamples": 50}``); ``batch_size``, ``seed`` and
            ``verbose`` here override what the tuner would pass, and so do ``epochs``
            (default: a trial's, Hyperband's ``max_epochs``), ``target`` (default
            ``"best"``) and ``budget`` (default: a tenth of a trial's epochs, at least one
            epoch).
        save_probe_plots: save ``finding.png`` next to ``finding.json`` (needs matplotlib;
            a plotting failure never fails the probe).
        idle_wait: longest pause, in seconds, before asking the oracle again after it
            answered IDLE (a probe runs on another worker, or Hyperband waits for a
            round). Keras Tuner re-asks at once, and a chief answers one request at a
            time, so waiting workers would flood it; the pause starts at 0.05 s and
            doubles up to ``idle_wait``. ``0`` re-asks at once, as Keras Tuner does.
        lr_config: the kt_lr options as an :class:`~kt_lr.LRConfig`, used when the
            tuner upgrades a plain oracle (or give them as keywords, not both).
        **kwargs: keywords named like the fields of :class:`~kt_lr.LRConfig` (e.g.
            ``num_seeds=2``, ``trial_timeout=600``), then everything the tuner class
            itself accepts. ``overwrite=True`` is ignored on a distributed worker, with a
            warning: it would delete the project directory the chief is writing to
            (Keras Tuner deletes it in the tuner's constructor); it still applies on the
            chief, which should be started first.
    """

    # The IDLE back-off, measured by hand (chief + 2 workers on 127.0.0.1, 2 busy cores,
    # one probe): with idle_wait=0 the waiting worker got 4,955 and 5,658 IDLE answers
    # (about 900 a second; that probe took 6.1 s), with the default 9 and 6 (2.7 s).
    # Not in benchmarks/RESULTS.md yet; tests/test_distributed.py bounds the rate.

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("run_trial")
        if own is None or getattr(own, "_kt_lr_wrapped", False):
            return

        @functools.wraps(own)
        def run_trial(self: Any, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
            if wire.is_probe_trial(trial):
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
        lr_config: LRConfig | None = None,
        **kwargs: Any,
    ) -> None:
        idle_wait = check_seconds("idle_wait", idle_wait, example=1.0, zero_ok=True)
        options = LRConfig.pop_options(kwargs)
        LRConfig.build(lr_config, **options)  # fail fast, before the tuner touches the disk
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
        self.idle_wait = idle_wait
        self._kt_lr_given = (lr_config, options)
        self._kt_lr_upgraded = False
        self._kt_lr_idle = -1  # IDLE answers in a row; -1: no request pending
        super().__init__(*args, **kwargs)

    def _kt_lr_before_state(self) -> None:
        """Upgrade the oracle once it knows the project directory, before it reads its
        state, so that a reload finds kt_lr's saved state (see ``_compat``)."""
        if self._kt_lr_upgraded:
            return
        self._kt_lr_upgraded = True
        if isinstance(self.oracle, keras_tuner.Oracle):
            lr_config, options = self._kt_lr_given
            LROracle(self.oracle, lr_config, **options)  # in place; a second call checks

    @property
    def lr_config(self) -> LRConfig:
        """The oracle's kt_lr options (on a worker: those of its local copy)."""
        local = _compat.local_oracle(self.oracle)
        if isinstance(local, LROracle):
            return local.lr_config
        lr_config, options = self._kt_lr_given
        return LRConfig.build(lr_config, **options)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Keras Tuner's search; on a distributed chief, :func:`serve_oracle` instead.

        Args:
            *fit_args: the data and arguments for ``model.fit``, as in Keras Tuner.
            **fit_kwargs: the same, by keyword.
        """
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
        local = _compat.local_oracle(self.oracle)
        sp.find_lr_hps(local.get_space(), self.lr_config.lr_hp_name)
        self._kt_lr_idle = -1
        self.save()
        super().on_search_begin()

    def pre_create_trial(self) -> None:
        """Pause before asking again when the oracle's last answer was IDLE.

        Keras Tuner's loop calls this hook before every ``create_trial`` and
        ``on_trial_begin`` only for a trial that starts, so a request that reached this
        hook again without a trial in between was answered IDLE. The pause starts at
        0.05 s and doubles up to ``idle_wait``. A hook rather than a wrapper around the
        worker's ``OracleClient.create_trial``: it needs no private Keras Tuner class,
        works the same in one process, and the worker waits on its own side, so the
        chief's single request thread stays free for the probing worker's reports.
        """
        if self._kt_lr_idle >= 0 and self.idle_wait > 0:
            time.sleep(min(self.idle_wait, _FIRST_IDLE_WAIT * 2**self._kt_lr_idle))
        self._kt_lr_idle += 1
        super().pre_create_trial()

    def on_trial_begin(self, trial: Any) -> None:
        """Reset the IDLE back-off: the oracle handed out a trial.

        Args:
            trial: the trial that starts.
        """
        self._kt_lr_idle = -1
        super().on_trial_begin(trial)

    def run_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
        """Run a probe trial with :func:`kt_lr.find_lr`; any other trial as the base tuner does.

        Args:
            trial: the trial to run.
            *fit_args: the arguments given to ``search()``.
            **fit_kwargs: the keyword arguments given to ``search()``.
        """
        if wire.is_probe_trial(trial):
            return self._kt_lr_run_probe(trial, fit_args, fit_kwargs)
        return super().run_trial(trial, *fit_args, **fit_kwargs)

    def results_summary(self, num_trials: int = 10) -> None:
        """Keras Tuner's summary, followed by the learning-rate report.

        Args:
            num_trials: how many of the best trials Keras Tuner lists.
        """
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
        verbose = _verbosity(self.probe_options.get("verbose", fit_kwargs.get("verbose", 1)))
        try:
            answer, finding = self._kt_lr_probe(trial, fit_args, fit_kwargs, verbose)
        except Exception as exc:
            answer = wire.ProbeAnswer(error=f"{type(exc).__name__}: {exc}")
            if verbose:
                print(f"LR probe {trial.trial_id} failed: {str(answer.error)[:2000]}")
        else:
            answer.artifacts = self._kt_lr_save_artifacts(trial, finding)
            self._kt_lr_tensorboard(trial, finding, fit_kwargs.get("callbacks"), verbose)
        metrics, extra = wire.encode(answer)
        values.update(extra)
        return {**wire.objective_placeholder(self.oracle.objective), **metrics}

    def _kt_lr_probe(
        self, trial: Any, fit_args: tuple, fit_kwargs: dict, verbose: int
    ) -> tuple[wire.ProbeAnswer, Any]:
        """Build the probe's model and run ``find_lr``: ``(answer, finding)``."""
        values = trial.hyperparameters.values
        x, y, validation_data, sample_weight = probe_data(fit_args, fit_kwargs)
        batch_size = self._kt_lr_batch_size(values, fit_args, fit_kwargs)
        options = dict(self.probe_options)
        if sample_weight is not None:
            options.setdefault("sample_weight", sample_weight)
        if fit_kwargs.get("class_weight") is not None:  # as fit honours it (issue 16)
            options.setdefault("class_weight", fit_kwargs["class_weight"])
        options.pop("verbose", None)
        options.pop("batch_size", None)
        # the pick's budget: what a trial trains (Hyperband: its max_epochs), ranked as
        # Keras Tuner ranks trials, by the best epoch (issue 15)
        epochs = options.setdefault("epochs", trial_epochs(self.oracle, fit_kwargs))
        options.setdefault("target", "best")
        # what the probe may cost: a share of that trial, never below one epoch (issue 18)
        options.setdefault("budget", budget_for_trial(epochs))
        if fit_kwargs.get("steps_per_epoch") is not None:
            options.setdefault("steps_per_epoch", fit_kwargs["steps_per_epoch"])
        seed = options.pop("seed", wire.probe_seed(values))
        model = self._kt_lr_build(trial.hyperparameters, seed)
        lr_name = self.lr_config.lr_hp_name
        probe_model.check_constant_rate(model, lr_name, trial.trial_id)
        unused = probe_model.unused_lr_note(model, values, lr_name)
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
        optimizer = getattr(model, "optimizer", None)
        answer = wire.ProbeAnswer(
            lr=numbers["lr"],
            low=numbers["low"],
            high=numbers["high"],
            batch_size=batch_size,
            candidates={
                k[len("candidate_") :]: v for k, v in numbers.items() if k.startswith("candidate_")
            },
            reasons=[str(r) for r in finding.reasons],
            optimizer=None if optimizer is None else type(optimizer).__name__,
            notes=[unused] if unused else [],
        )
        return answer, finding

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
        build = _compat.model_builder(self)
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
        """The probe's batch size: ``probe_options``, else the trial's batch-size
        hyperparameter (a probe key may hold it), else ``search()``'s, else 32."""
        if self.probe_options.get("batch_size") is not None:
            return int(self.probe_options["batch_size"])
        name = self.lr_config.batch_size_hp_name
        if name and isinstance(values.get(name), int) and not isinstance(values[name], bool):
            return int(values[name])
        if fit_kwargs.get("batch_size") is not None:
            return int(fit_kwargs["batch_size"])
        if len(fit_args) > 2 and isinstance(fit_args[2], int):
            return int(fit_args[2])
        return _DEFAULT_BATCH_SIZE

    def _kt_lr_tensorboard(self, trial: Any, finding: Any, callbacks: Any, verbose: int) -> None:
        """The probe's curves under each TensorBoard callback's per-trial log directory
        (see :mod:`kt_lr.tensorboard_log`); a failure never fails the probe."""
        from kt_lr.tensorboard_log import tensorboard_log_dirs, write_finding

        for log_dir in tensorboard_log_dirs(callbacks):
            run_dir = _compat.tensorboard_dir(self, log_dir, trial.trial_id)
            try:
                write_finding(run_dir, finding, image=self.save_probe_plots)
            except Exception as exc:
                if verbose:
                    print(f"LR probe {trial.trial_id}: no TensorBoard data ({exc})")

    def _kt_lr_save_artifacts(self, trial: Any, finding: Any) -> str | None:
        """``finding.json`` (+ ``finding.png``) under the project dir; ``None`` on failure."""
        try:
            from kt_lr.results import as_plain

            folder = os.path.join(str(self.project_dir), "kt_lr", str(trial.trial_id))
            os.makedirs(folder, exist_ok=True)
            values = trial.hyperparameters.values
            record = {
                "trial_id": trial.trial_id,
                "probe_key": values.get(wire.PROBE_MARKER),
                "values": wire.user_values(values),
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
        finding.plot().savefig(path, dpi=80)  # a Figure of its own: no pyplot state
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
    return keras.tree.map_structure(lambda a: a[start:stop], data)


def _num_samples(x: Any) -> int | None:
    leaves = keras.tree.flatten(x)
    shape = getattr(leaves[0], "shape", None) if leaves else None
    return int(shape[0]) if shape is not None and len(shape) else None


class ProbeData(NamedTuple):
    """The data a probe runs on, taken from the arguments given to ``search()``."""

    x: Any
    y: Any
    validation_data: Any
    sample_weight: Any


def trial_epochs(oracle: Any, fit_kwargs: dict) -> int:
    """The epochs a trial trains: Hyperband's ``max_epochs``, else ``search()``'s
    ``epochs`` (``fit``'s default, 1, when not given).

    Args:
        oracle: the tuner's oracle (on a worker, its client).
        fit_kwargs: the keyword arguments given to ``search()``.
    """
    max_epochs = getattr(_compat.local_oracle(oracle), "max_epochs", None)
    if isinstance(max_epochs, int | float) and max_epochs > 0:
        return max_epochs
    return fit_kwargs.get("epochs") or 1


def probe_data(fit_args: tuple, fit_kwargs: dict) -> ProbeData:
    """``(x, y, validation_data, sample_weight)`` for the probe from ``search()``'s arguments.

    Reads ``x``/``y`` positionally or by keyword, takes ``validation_data`` as given, and
    honours ``validation_split`` on arrays the way ``model.fit`` does (the last fraction
    of the samples becomes the validation set).

    Args:
        fit_args: the positional arguments given to ``search()``.
        fit_kwargs: the keyword arguments given to ``search()``.
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


_TUNER_DOC = """``keras_tuner.{name}`` whose first trial is a learning-rate probe.

    Accepts every argument of ``keras_tuner.{name}`` plus the kt_lr options of
    :class:`LRTunerMixin` (``probe_options``, ``save_probe_plots``, ``idle_wait``) and
    :class:`~kt_lr.LRConfig` (``lr_config=LRConfig(...)``, or its fields as keywords).
    {extra}
    """


class RandomSearch(LRTunerMixin, keras_tuner.RandomSearch):
    __doc__ = _TUNER_DOC.format(name="RandomSearch", extra="")


class BayesianOptimization(LRTunerMixin, keras_tuner.BayesianOptimization):
    __doc__ = _TUNER_DOC.format(
        name="BayesianOptimization",
        extra="The probe never feeds the Gaussian process; the seeded trials do.",
    )


class Hyperband(LRTunerMixin, keras_tuner.Hyperband):
    __doc__ = _TUNER_DOC.format(
        name="Hyperband",
        extra="The probe takes no bracket slot; seeds go to first-round trials only.",
    )


class GridSearch(LRTunerMixin, keras_tuner.GridSearch):
    __doc__ = _TUNER_DOC.format(
        name="GridSearch",
        extra="The grid covers the narrowed range; no seeds (the grid enumerates it).",
    )
