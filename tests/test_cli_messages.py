"""Issue 16, item 11: ``kt-lr --help``, the schedule message in a search, punctuation."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import gc
import io
import re
import warnings
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest

import kt_lr
import kt_lr.tuners as kt_tuners
from kt_lr import LRProbeWarning
from kt_lr.__main__ import main
from kt_lr.results import LRFinding


@pytest.fixture(autouse=True)
def _fast_gc():
    gc.freeze()  # Keras Tuner collects garbage on every build; see test_tuners.py
    yield


def test_help_lists_the_commands_and_their_options():
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = out.getvalue()
    assert "demo" in text and "the demo search" in text
    for option in ("--output", "--trials", "--epochs", "--seed"):
        assert option in text
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([]) == 2  # no command: the same help, and a usage error
    assert "--trials" in out.getvalue()


def search(tmp_path, build, monkeypatch, name="p"):
    seen = []

    def fake(model, *args, **kwargs):
        seen.append(model)
        return LRFinding(lr=3e-3, low=1e-3, high=1e-2, reasons=["fake"])

    monkeypatch.setattr(kt_tuners.finder, "find_lr", fake)
    tuner = kt_tuners.RandomSearch(
        build,
        objective="loss",
        max_trials=1,
        directory=str(tmp_path),
        project_name=name,
        save_probe_plots=False,
    )
    x = np.zeros((16, 4), "float32")
    tuner.search(x, x[:, :1], epochs=1, verbose=0)
    return tuner, seen


def dense(optimizer):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    return model


def test_a_schedule_in_a_search_names_hp_schedule_as_the_fix(tmp_path, monkeypatch):
    def with_schedule(hp):
        lr = hp.Float("learning_rate", 1e-5, 1e-1, sampling="log")
        decay = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=10, decay_rate=0.9)
        return dense(keras.optimizers.Adam(decay))

    with pytest.warns(LRProbeWarning, match="failed") as caught:
        search(tmp_path, with_schedule, monkeypatch)
    message = next(str(w.message) for w in caught if w.category is LRProbeWarning)
    assert "kt_lr.hp_schedule(hp, kinds, steps_per_epoch=..., epochs=...)" in message
    assert "ExponentialDecay" in message
    assert not re.search(r"\.\.(?!\.)|:\.|\. \.|\.;", message.replace("...", "")), message


def test_hp_schedule_probes_at_its_constant_kind(tmp_path, monkeypatch):
    def scheduled(hp):
        rate = kt_lr.hp_schedule(hp, ["one_cycle", "constant"], steps_per_epoch=2, epochs=2)
        return dense(keras.optimizers.SGD(rate))

    with warnings.catch_warnings():
        warnings.simplefilter("error", LRProbeWarning)
        tuner, seen = search(tmp_path, scheduled, monkeypatch)
    probe = tuner.lr_report().probes["*"]
    assert probe.status == "done"
    rate = seen[0].optimizer._learning_rate
    assert not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule)


def test_a_quoted_error_ending_in_a_full_stop_is_not_doubled(tmp_path, monkeypatch):
    def fails(model, *args, **kwargs):
        raise ValueError("the data has NaN in it.")

    monkeypatch.setattr(kt_tuners.finder, "find_lr", fails)
    tuner = kt_tuners.RandomSearch(
        lambda hp: dense(keras.optimizers.Adam(hp.Float("learning_rate", 1e-5, 1e-1))),
        objective="loss",
        max_trials=1,
        directory=str(tmp_path),
        save_probe_plots=False,
    )
    x = np.zeros((16, 4), "float32")
    with pytest.warns(LRProbeWarning, match="failed") as caught:
        tuner.search(x, x[:, :1], epochs=1, verbose=0)
    message = next(str(w.message) for w in caught if w.category is LRProbeWarning)
    assert "ValueError: the data has NaN in it. Keeping the original range" in message
    summary = tuner.lr_report().summary()
    assert "in it; range kept" in summary and ".;" not in summary
