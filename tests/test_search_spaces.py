"""Issue 16, search side: Choice rates, batch-size scaling, conditional and unused rates.

Each test reproduces a case where kt_lr quietly changed what the user asked for.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import gc
import json
import math
import warnings

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner import HyperParameters
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.oracles import RandomSearchOracle

import kt_lr.tuners as kt_tuners
from kt_lr import LROracle, LRProbeWarning
from kt_lr import _protocol as wire
from kt_lr.results import LRFinding


@pytest.fixture(autouse=True)
def _fast_gc():
    gc.freeze()  # Keras Tuner collects garbage on every build; see test_tuners.py
    yield


def make(tmp_path, hps, name="p", lr_options=None, **kwargs):
    kwargs.setdefault("max_trials", 8)
    base = RandomSearchOracle(objective="val_loss", hyperparameters=hps, seed=3, **kwargs)
    oracle = LROracle(base, **(lr_options or {}))
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def finish_probe(oracle, trial, lr, low, high, batch_size=32, optimizer=None):
    metrics = {"val_loss": float("nan"), wire.METRIC_OK: 1.0}
    metrics.update({wire.METRIC_LR: lr, wire.METRIC_LOW: low, wire.METRIC_HIGH: high})
    metrics[wire.METRIC_BATCH_SIZE] = float(batch_size)
    oracle.update_trial(trial.trial_id, metrics)
    values = trial.hyperparameters.values
    values[wire.PROBE_REASONS] = json.dumps(["fake finding"])
    if optimizer:
        values[wire.PROBE_OPTIMIZER] = optimizer
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)


def run_trials(oracle, limit=30):
    trials = []
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status != TrialStatus.RUNNING:
            break
        assert not wire.is_probe_trial(trial)
        lr = trial.hyperparameters.values.get("learning_rate", 1e-3)
        oracle.update_trial(trial.trial_id, {"val_loss": abs(math.log10(lr) + 2.5)})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
        trials.append(trial)
    return trials


# ------------------------------------------------------------------ 5. Choice rates
def test_a_choice_of_rates_keeps_the_nearest_values_and_names_the_dropped(tmp_path):
    """``[1e-2, 1e-3, 1e-4]`` used to become ``[0.01]`` silently: every trial at 0.01."""
    hps = HyperParameters()
    hps.Choice("learning_rate", [1e-2, 1e-3, 1e-4])
    oracle = make(tmp_path, hps)
    with pytest.warns(LRProbeWarning, match="learning-rate Choice") as caught:
        finish_probe(oracle, oracle.create_trial("t"), lr=1.5e-2, low=5e-3, high=4e-2)
    message = str(caught[0].message)
    assert "keeps [0.01, 0.001] of [0.01, 0.001, 0.0001]" in message
    assert "dropped 0.0001 (1.5 decades below it)" in message
    assert "min_choices=3" in message and ".." not in message
    hp = next(h for h in oracle.get_space().space if h.name == "learning_rate")
    assert list(hp.values) == [1e-2, 1e-3]
    used = {t.hyperparameters.values["learning_rate"] for t in run_trials(oracle)}
    assert used == {1e-2, 1e-3}
    summary = oracle.lr_report().summary()
    assert "original values: [0.01, 0.001, 0.0001]" in summary
    assert "search values now: [0.01, 0.001]" in summary
    assert "-> values [0.01, 0.001]" in summary and "dropped 0.0001" in summary
    assert oracle.lr_report().probes["*"].choices == [1e-2, 1e-3]
    assert oracle.lr_report().to_frame()["choices"][0] == [1e-2, 1e-3]


def test_min_choices_keeps_more_and_each_key_keeps_its_own(tmp_path):
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    hps.Choice("learning_rate", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    oracle = make(tmp_path, hps, lr_options={"min_choices": 3, "num_seeds": 0}, max_trials=12)
    with pytest.warns(LRProbeWarning, match="dropped"):
        finish_probe(oracle, oracle.create_trial("t"), lr=3e-4, low=1e-4, high=1e-3)
        finish_probe(oracle, oracle.create_trial("t"), lr=3e-2, low=1e-2, high=1e-1)
    probes = oracle.lr_report().probes
    # two inside each interval, topped up with the nearest (a tie goes to the lower value)
    assert probes["optimizer=adam"].choices == [1e-5, 1e-4, 1e-3]
    assert probes["optimizer=sgd"].choices == [1e-3, 1e-2, 1e-1]
    for t in run_trials(oracle):
        v = t.hyperparameters.values
        assert v["learning_rate"] in probes[f"optimizer={v['optimizer']}"].choices


# ------------------------------------------------------------------ 6. batch-size scaling
def test_a_seed_scaled_to_a_larger_batch_stays_within_the_probed_interval(tmp_path):
    """The issue's case: SGD probed at batch 16 (edge 2), a seed moved x8 to lr 6.25 at
    batch 128, above any rate the probe found stable."""
    hps = HyperParameters()
    hps.Float("learning_rate", 1e-4, 10.0, sampling="log")
    hps.Int("batch_size", 16, 128, step=16)
    oracle = make(tmp_path, hps, lr_options={"num_seeds": 3}, max_trials=40)
    probe = oracle.create_trial("t")
    assert probe.hyperparameters.values["batch_size"] == 16
    with pytest.warns(LRProbeWarning, match="capped at 2, the top of the probed interval"):
        finish_probe(oracle, probe, lr=0.78, low=0.026, high=2.0, batch_size=16, optimizer="SGD")
    assert oracle.lr_interval_for({"batch_size": 128}) == pytest.approx((0.026 * 8, 2.0))
    assert oracle.get_space().space[0].max_value <= 2.0
    trials = run_trials(oracle)
    assert all(t.hyperparameters.values["learning_rate"] <= 2.0 for t in trials)
    # seeds taken at another batch size than 16 say how they were scaled (and capped)
    report = oracle.lr_report()
    used = [s for s in report.seeds if s["status"] == "used"]
    assert len(used) == 3
    seeds_line = next(ln for ln in report.summary().splitlines() if "seeds:" in ln)
    seeded_line = next(ln for ln in report.summary().splitlines() if "seeded trials" in ln)
    for s in used:
        trial = oracle.trials[s["trial_id"]]
        bs = trial.hyperparameters.values["batch_size"]
        if bs == 16:
            assert s["note"] == "seed" and f"{s['lr']:.3g}" in seeds_line
        else:
            assert s["note"].startswith("seed ") and f"from batch size 16 to {bs}" in s["note"]
            assert s["note"].split()[1] in seeds_line  # the queued seed it came from
        assert f"{s['trial_id']} (lr={s['lr']:.3g}" in seeded_line


def test_a_batch_size_declared_in_fit_is_probed_per_value(tmp_path, monkeypatch):
    """Keras Tuner's pattern: ``hp.Choice("batch_size", ...)`` in ``HyperModel.fit``. It
    enters the space after the first trial; each of its values is then probed."""
    calls = []

    def fake(model, x, y=None, **kwargs):
        calls.append(kwargs["batch_size"])
        bs = kwargs["batch_size"]
        return LRFinding(lr=1e-3 * bs / 32, low=3e-4 * bs / 32, high=3e-3 * bs / 32, reasons=[])

    monkeypatch.setattr(kt_tuners.finder, "find_lr", fake)

    class FitBatch(keras_tuner.HyperModel):
        def build(self, hp):
            lr = hp.Float("learning_rate", 1e-5, 1e-1, sampling="log")
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(lr), "mse")
            return model

        def fit(self, hp, model, *args, **kwargs):
            hp.Choice("batch_size", [16, 64])
            lr = hp.get("learning_rate")
            return {"val_loss": abs(math.log10(lr) + 2.5)}

    tuner = kt_tuners.RandomSearch(
        FitBatch(),
        objective="val_loss",
        max_trials=6,
        seed=1,
        num_seeds=1,
        directory=str(tmp_path),
        project_name="fitbs",
        save_probe_plots=False,
    )
    x = np.zeros((32, 4), "float32")
    tuner.search(x, x[:, :1], verbose=0)
    assert calls == [32, 16, 64]  # search()'s default, then each value of the hp
    report = tuner.lr_report()
    assert set(report.probes) == {"batch_size=16", "batch_size=64"}
    assert all(p.status == "done" and not p.scaled for p in report.probes.values())
    assert "each value is probed instead" in report.summary()
    for t in tuner.oracle.trials.values():
        v = t.hyperparameters.values
        if "batch_size" in v:
            low, high = tuner.oracle.lr_interval_for(v)
            assert low * (1 - 1e-9) <= v["learning_rate"] <= high * (1 + 1e-9)


# ------------------------------------------------------------------ 7. unused rates
def test_no_probe_for_a_branch_that_never_uses_the_rate(tmp_path):
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd", "adafactor"])
    with hps.conditional_scope("optimizer", ["adam", "sgd"]):
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    oracle = make(tmp_path, hps, lr_options={"num_seeds": 1})
    keys = []
    for _ in range(2):
        probe = oracle.create_trial("t")
        assert wire.is_probe_trial(probe)
        keys.append(probe.hyperparameters.values[wire.PROBE_MARKER])
        finish_probe(oracle, probe, lr=3e-3, low=1e-3, high=1e-2)
    assert keys == ["optimizer=adam", "optimizer=sgd"]
    trials = run_trials(oracle)
    assert trials and not any(wire.is_probe_trial(t) for t in trials)
    assert set(oracle.lr_state["probes"]) == {"optimizer=adam", "optimizer=sgd"}
    assert "optimizer=adafactor: 'learning_rate' is not used in that branch" in (
        oracle.lr_report().summary()
    )


def test_a_probe_enters_the_scope_of_a_rate_that_is_off_by_default(tmp_path):
    hps = HyperParameters()
    hps.Boolean("custom_lr", default=False)
    with hps.conditional_scope("custom_lr", [True]):
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    oracle = make(tmp_path, hps)
    probe = oracle.create_trial("t")
    assert probe.hyperparameters.values["custom_lr"] is True
    assert "learning_rate" in probe.hyperparameters.values


def fake_finding():
    return LRFinding(lr=3e-3, low=1e-3, high=1e-2, reasons=["fake"])


def test_a_rate_the_optimizer_does_not_use_is_warned_about(tmp_path, monkeypatch):
    monkeypatch.setattr(kt_tuners.finder, "find_lr", lambda *a, **k: fake_finding())

    def fixed_rate(hp):
        hp.Float("learning_rate", 1e-5, 1e-1, sampling="log")  # declared, never passed
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        return model

    tuner = kt_tuners.RandomSearch(
        fixed_rate,
        objective="loss",
        max_trials=1,
        directory=str(tmp_path),
        project_name="fixed",
        save_probe_plots=False,
    )
    x = np.zeros((16, 4), "float32")
    with pytest.warns(LRProbeWarning, match="trains at learning_rate=0.001, not at the value"):
        tuner.search(x, x[:, :1], epochs=1, verbose=0)
    assert "narrowing 'learning_rate' changes nothing" in tuner.lr_report().summary()


def test_a_rate_passed_to_the_optimizer_raises_no_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(kt_tuners.finder, "find_lr", lambda *a, **k: fake_finding())

    def passed(hp):
        lr = hp.Float("learning_rate", 1e-5, 1e-1, sampling="log")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(lr), "mse")
        return model

    tuner = kt_tuners.RandomSearch(
        passed, objective="loss", max_trials=1, directory=str(tmp_path), save_probe_plots=False
    )
    x = np.zeros((16, 4), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRProbeWarning)
        tuner.search(x, x[:, :1], epochs=1, verbose=0)
