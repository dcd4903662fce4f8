"""The Keras Tuner internals kt_lr relies on, pinned in one place.

When a Keras Tuner upgrade moves one of them, this file fails and names it; the fix
goes into ``kt_lr/_compat.py`` only.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import inspect
import threading
from pathlib import Path

import keras_tuner
import pytest

from kt_lr import _compat

KT_LR = Path(__file__).resolve().parents[1] / "kt_lr"


def test_the_installed_version_is_one_we_checked():
    assert _compat.check_version()
    assert _compat.keras_tuner_version()[:2] == (1, 4)


def test_the_private_names_kt_lr_uses_are_there():
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief, oracle_client
    from keras_tuner.src.engine import base_tuner, oracle, tuner

    # the lock table behind keras_tuner.synchronized
    assert isinstance(oracle.THREADS, dict) and isinstance(oracle.LOCKS, dict)
    assert "THREADS[oracle]" in inspect.getsource(oracle.synchronized)
    # the oracle's retry queue and trial files
    plain = keras_tuner.oracles.RandomSearchOracle(objective="val_loss")
    assert plain._retry_queue == [] and callable(plain._save_trial)
    assert "self._retry_queue.pop()" in inspect.getsource(oracle.Oracle)
    # the tuner's build and the moment it reads its state
    assert callable(tuner.Tuner._try_build)
    init = inspect.getsource(base_tuner.BaseTuner.__init__)
    assert "self._populate_initial_space()" in init and "self.reload()" in init
    assert init.index("_set_project_dir") < init.index("self.reload()")
    # the worker's client keeps its local oracle as `_oracle`
    assert "self._oracle = oracle" in inspect.getsource(oracle_client.OracleClient.__init__)
    # the chief's servicer and protos
    assert "self.stop_triggered = False" in inspect.getsource(oracle_chief.OracleServicer)
    assert callable(protos.get_service_grpc().add_OracleServicer_to_server)


def test_keras_tuner_src_is_imported_in_compat_only():
    users = sorted(
        p.name
        for p in KT_LR.rglob("*.py")
        if "keras_tuner.src" in p.read_text() and p.name != "_compat.py"
    )
    assert users == []


def test_the_lock_is_released_when_the_call_raises():
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss")
    with pytest.raises(RuntimeError), _compat.oracle_lock(oracle):
        with _compat.oracle_lock(oracle):  # nested in the same thread: no deadlock
            raise RuntimeError("inside")
    result = []
    th = threading.Thread(target=lambda: result.append(oracle.get_best_trials()))
    th.start()
    th.join(timeout=10)
    assert result == [[]]


def test_small_accessors():
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss")
    _compat.retry_queue(oracle).append("3")
    assert oracle._retry_queue == ["3"]
    _compat.set_retry_queue(oracle, [])
    assert _compat.retry_queue(oracle) == []
    assert _compat.local_oracle(oracle) is oracle

    class Client:
        _oracle = oracle

    assert _compat.local_oracle(Client()) is oracle
