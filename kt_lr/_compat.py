"""Every touch of Keras Tuner's internals, behind named functions.

kt_lr relies on a few things Keras Tuner does not promise: the lock table behind
``keras_tuner.synchronized``, the oracle's retry queue and trial files, the tuner's
``_try_build`` and ``_populate_initial_space``, the worker's ``OracleClient._oracle``
and the gRPC servicer and protos of ``keras_tuner.src``. They are all here, so that a
Keras Tuner upgrade that moves one fails in one place (``tests/test_compat.py`` pins
them) instead of somewhere in a search.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import keras_tuner
from keras_tuner.src.engine import oracle as _kt_oracle_module

#: The Keras Tuner versions (major.minor) whose internals this module was checked against.
TESTED_VERSIONS = ("1.4",)


def keras_tuner_version() -> tuple[int, ...]:
    """The installed Keras Tuner version as numbers, e.g. ``(1, 4, 8)``."""
    parts = []
    for piece in str(keras_tuner.__version__).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_version() -> bool:
    """Warn once when Keras Tuner is a version kt_lr's internals were not checked on.

    Returns whether the version is one of :data:`TESTED_VERSIONS`.
    """
    major_minor = ".".join(str(p) for p in keras_tuner_version()[:2])
    if major_minor in TESTED_VERSIONS:
        return True
    warnings.warn(
        f"kt_lr was tested with Keras Tuner {', '.join(TESTED_VERSIONS)}.x and found "
        f"{keras_tuner.__version__}. kt_lr uses a few Keras Tuner internals (listed in "
        "kt_lr/_compat.py); if a search fails, run tests/test_compat.py to see which moved.",
        UserWarning,
        stacklevel=2,
    )
    return False


check_version()


# ------------------------------------------------------------------ the oracle
@contextlib.contextmanager
def oracle_lock(oracle: Any) -> Iterator[None]:
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


def retry_queue(oracle: Any) -> list[str]:
    """The ids of the trials the oracle hands out again before new ones (the live list)."""
    return oracle._retry_queue


def set_retry_queue(oracle: Any, trial_ids: list[str]) -> None:
    """Replace the oracle's retry queue."""
    oracle._retry_queue = list(trial_ids)


def save_trial(oracle: Any, trial: Any) -> None:
    """Write ``trial`` to its ``trial.json`` in the project directory."""
    oracle._save_trial(trial)


def local_oracle(oracle: Any) -> Any:
    """The oracle a worker's ``OracleClient`` wraps (its local copy); else ``oracle``."""
    return getattr(oracle, "_oracle", None) or oracle


# ------------------------------------------------------------------ the tuner
def model_builder(tuner: Any) -> Any:
    """The function the tuner builds a model with (``_try_build`` when the tuner has it)."""
    return getattr(tuner, "_try_build", None) or tuner.hypermodel.build


class BeforeStateHooks:
    """Calls ``self._kt_lr_before_state()`` where Keras Tuner's ``BaseTuner.__init__``
    has given the oracle its project directory and is about to read the saved state.

    Keras Tuner calls exactly one of ``_populate_initial_space`` (new project) and
    ``reload`` (existing project) at that moment.
    """

    def _populate_initial_space(self) -> None:
        self._kt_lr_before_state()
        super()._populate_initial_space()

    def reload(self) -> None:
        self._kt_lr_before_state()
        super().reload()


# ------------------------------------------------------------------ the chief's server
def start_oracle_server(oracle: Any, address: str) -> tuple[Any, Any] | None:
    """Serve ``oracle`` on ``address`` with Keras Tuner's own gRPC servicer.

    One request at a time, as Keras Tuner does. Returns ``(server, servicer)``, or
    ``None`` when the address cannot be bound.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    bound = 0
    with contextlib.suppress(RuntimeError):
        bound = server.add_insecure_port(address)
    if not bound:
        return None
    server.start()
    return server, servicer


def stop_requested(servicer: Any) -> bool:
    """Whether the servicer has told a worker to stop (the search is over)."""
    return bool(servicer.stop_triggered)


def tensorboard_dir(tuner: Any, log_dir: str, trial_id: str) -> str:
    """Keras Tuner's TensorBoard log directory of a trial: ``<log_dir>/<trial id>/execution0``.

    Asks the tuner (``Tuner._get_tensorboard_dir``, which a subclass may override) and
    falls back to Keras Tuner 1.4's layout.
    """
    get = getattr(tuner, "_get_tensorboard_dir", None)
    if callable(get):
        try:
            return str(get(log_dir, trial_id, 0))
        except TypeError:
            pass
    return os.path.join(str(log_dir), str(trial_id), "execution0")
