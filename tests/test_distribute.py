"""kt_lr.distribute without processes: roles and the chief's argument errors.

Real chiefs and workers are in ``test_distributed.py`` (marked ``distributed``).
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras_tuner
import pytest

from kt_lr import distribute


def test_roles_follow_keras_tuners_environment(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert distribute.distributed_role() is None
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distribute.distributed_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    assert distribute.distributed_role() == "worker"


def test_serve_oracle_says_which_variables_it_needs(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss")
    with pytest.raises(RuntimeError, match="KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT"):
        distribute.serve_oracle(oracle)


def test_the_public_names():
    assert set(distribute.__all__) == {"TrialWatch", "distributed_role", "serve_oracle"}
