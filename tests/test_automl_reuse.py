"""examples/automl_reuse.py: kt_lr added to an oracle and a tuner written elsewhere."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import gc
import importlib.util
import io
from contextlib import redirect_stdout
from pathlib import Path

import keras_tuner
import pytest

from kt_lr import LROracle
from kt_lr._protocol import is_probe_trial

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "automl_reuse.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("automl_reuse_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_runs_with_their_oracle_and_their_run_trial(tmp_path, example, monkeypatch):
    gc.freeze()  # Keras Tuner collects garbage on every build; keep that cheap
    their_runs = []
    original = example.HandLoopTuner.run_trial

    def counting_run_trial(self, trial, *args, **kwargs):
        assert not is_probe_trial(trial)
        their_runs.append(trial.trial_id)
        return original(self, trial, *args, **kwargs)

    monkeypatch.setattr(example.HandLoopTuner, "run_trial", counting_run_trial)
    out = io.StringIO()
    with redirect_stdout(out):
        tuner = example.main(str(tmp_path), max_trials=2, epochs=1)
    oracle = tuner.oracle
    assert isinstance(oracle, example.KeepBestWidthOracle) and isinstance(oracle, LROracle)
    assert isinstance(oracle, keras_tuner.Oracle)
    assert oracle.proposals == 2  # their populate_space proposed every ordinary trial
    assert sorted(their_runs) == sorted(oracle.trials)  # their run_trial ran each of them
    report = tuner.lr_report()
    # the example tunes a batch size of two values: one probe each (issue 16)
    assert set(report.probes) == {"batch_size=16", "batch_size=64"}
    for probe in report.probes.values():
        assert probe.status == "done" and probe.attempts == 1
    for trial in oracle.trials.values():
        values = trial.hyperparameters.values
        low, high = oracle.lr_interval_for(values)
        assert low <= values["learning_rate"] <= high
    text = out.getvalue()
    assert "Learning-rate report" in text and "still a KeepBestWidthOracle: True" in text
    assert "best values:" in text
