"""Distributed search: the chief's server, trial timeouts and re-issue.

Keras Tuner's distributed mode (``KERASTUNER_TUNER_ID`` / ``KERASTUNER_ORACLE_IP`` /
``KERASTUNER_ORACLE_PORT``, the same script on the chief and on every worker) waits
forever for a worker that died, re-checks for the end of the search every 20 s, and
never exits after a search that ended with an error. The pieces here fix that for
any oracle kt_lr serves; none of them is about the learning rate:

- :func:`distributed_role`: ``"chief"``, ``"worker"`` or ``None``;
- :func:`serve_oracle`: the chief's job, serving the oracle until the search is over;
- :class:`TrialWatch`: an ordinary trial without a result after ``trial_timeout``
  seconds is taken from its worker and handed to the next one (the same trial id);
  the error that ended a search is kept so that every worker is told to stop.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from kt_lr import _compat
from kt_lr.ledger import warn

__all__ = ["TrialWatch", "distributed_role", "serve_oracle"]


def distributed_role() -> str | None:
    """``"chief"``, ``"worker"`` or ``None`` (not distributed), from Keras Tuner's env vars.

    As in Keras Tuner: distributed when ``KERASTUNER_ORACLE_IP`` is set; the chief is
    the process whose ``KERASTUNER_TUNER_ID`` contains ``"chief"``.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def _search_over(oracle: Any) -> bool:
    with _compat.oracle_lock(oracle):
        return not oracle.ongoing_trials and not oracle.tuner_ids


def serve_oracle(oracle: Any, *, poll_interval: float = 0.25) -> None:
    """Serve ``oracle`` to the workers over gRPC until the search is over (the chief's job).

    Listens on ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`` with Keras Tuner's own
    servicer, one request at a time as Keras Tuner does. It returns once the oracle has
    told a worker to stop and no trial or worker is left, checking every
    ``poll_interval`` seconds (Keras Tuner's own loop checks every 20 s). Between
    checks it takes back the probes and trials of workers that gave no answer in time
    (an oracle upgraded by :class:`~kt_lr.LROracle`). When the base oracle ended the
    search with an error (too many consecutive failed trials), it returns after every
    live worker was told to stop and raises that error, instead of waiting forever.

    Args:
        oracle: the search's oracle (usually ``tuner.oracle`` on the chief).
        poll_interval: seconds between two checks for the end of the search.

    Raises:
        RuntimeError: the address cannot be bound, or the search ended with an error.
    """
    ip, port = os.environ.get("KERASTUNER_ORACLE_IP"), os.environ.get("KERASTUNER_ORACLE_PORT")
    if not ip or not port:
        raise RuntimeError(
            "serve_oracle needs KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, e.g. "
            "KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000."
        )
    started = _compat.start_oracle_server(oracle, f"{ip}:{port}")
    if started is None:
        raise RuntimeError(
            f"The chief could not listen on {ip}:{port}: is another process using it? Pick "
            "a free KERASTUNER_ORACLE_PORT (the same one for the chief and the workers)."
        )
    server, servicer = started
    fatal = None
    expire = getattr(oracle, "_kt_lr_expire", None)  # trial/probe timeouts of dead workers
    try:
        while True:
            time.sleep(poll_interval)
            if expire is not None:
                with _compat.oracle_lock(oracle):
                    expire()
            fatal = getattr(oracle, "_kt_lr_fatal", None)
            if (_compat.stop_requested(servicer) or fatal) and _search_over(oracle):
                break
    finally:
        server.stop(grace=2).wait(5)
    left = list(_compat.retry_queue(oracle) or [])
    if left and not fatal:
        warnings.warn(
            f"Trial(s) {', '.join(map(str, left))} were queued again after trial_timeout, but "
            "no worker was left to run them; they run when the search is resumed "
            "(the same directory and project_name, overwrite=False).",
            stacklevel=2,
        )
    if fatal:
        raise RuntimeError(f"The search ended with an error on a worker: {fatal}")


class TrialWatch:
    """The chief's watch over ordinary trials: timeouts, re-issue, and a fatal end.

    Args:
        clock: seconds on a monotonic clock (tests pass a fake one).

    ``timed_out`` (trial id -> how many times it timed out) is passed in by the owner,
    which saves it with its state; the hand-out times are not saved.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.assigned: dict[str, tuple[str, float]] = {}  # tuner id -> (trial id, since)
        self.fatal: str | None = None  # why the base oracle ended the search

    def handed_out(self, tuner_id: str, trial_id: str) -> None:
        """Start the clock of the trial just handed to ``tuner_id``."""
        self.assigned[tuner_id] = (trial_id, self.clock())

    def expire(
        self,
        oracle: Any,
        timeout: float | None,
        timed_out: dict[str, int],
        end: Callable[[Any], None],
    ) -> None:
        """Take the trials without a result after ``timeout`` seconds from their workers.

        The first time, the trial is queued for the next worker that asks; the second
        time it ends as ``FAILED`` through ``end`` (the oracle's end of an ordinary
        trial). Saves the oracle after each.
        """
        if not timeout:
            return
        now = self.clock()
        for tuner_id, (trial_id, since) in list(self.assigned.items()):
            trial = oracle.ongoing_trials.get(tuner_id)
            if trial is None or trial.trial_id != trial_id:
                del self.assigned[tuner_id]  # ended, or the tuner moved on
                continue
            if now - since < timeout:
                continue
            del self.assigned[tuner_id]
            del oracle.ongoing_trials[tuner_id]
            oracle.tuner_ids.discard(tuner_id)  # a live worker is added back when it asks
            timed_out[trial_id] = timed_out.get(trial_id, 0) + 1
            words = f"no result from {tuner_id} within trial_timeout={timeout:g} s"
            if timed_out[trial_id] == 1:
                _compat.retry_queue(oracle).append(trial_id)
                warn(
                    f"Trial {trial_id}: {words} (its worker may have died); handing it to "
                    "the next worker that asks. Raise trial_timeout if trials are just slow."
                )
            else:
                trial.status = "FAILED"
                trial.message = f"{words}, twice"
                warn(f"Trial {trial_id}: {words}, for the second time; it ends as FAILED.")
                with contextlib.suppress(RuntimeError):  # too many failures: self.fatal
                    end(trial)
            oracle.save()

    @staticmethod
    def may_retry(oracle: Any, timeout: float | None, tuner_id: str) -> bool:
        """Whether another worker's trial could still time out and need ``tuner_id``."""
        if not timeout:
            return False
        return any(other != tuner_id for other in oracle.ongoing_trials)

    def end(
        self,
        oracle: Any,
        trial: Any,
        timed_out: dict[str, int],
        base_end: Callable[[Any], None],
    ) -> None:
        """End an ordinary trial with ``base_end`` (the base oracle's ``end_trial``).

        A timed-out trial that answers twice is kept once; one that answers before its
        retry leaves the retry queue. The oracle is saved after the trial left
        ``ongoing_trials`` (Keras Tuner saves before, so a resume would run it again).
        When ``base_end`` ends the search by raising (too many consecutive failed
        trials), the error is kept in :attr:`fatal` and raised again.
        """
        trial_id = trial.trial_id
        if trial_id in timed_out:
            if trial_id in oracle.end_order:  # a timed-out trial answered twice
                return
            queue = _compat.retry_queue(oracle)
            if trial_id in queue:  # the slow worker answered before a retry
                queue.remove(trial_id)
        try:
            base_end(trial)
            oracle.save()
        except RuntimeError as exc:  # e.g. "Number of consecutive failures exceeded"
            self.fatal = str(exc) or type(exc).__name__
            for tuner_id, t in list(oracle.ongoing_trials.items()):
                if t.trial_id == trial_id:
                    del oracle.ongoing_trials[tuner_id]
                    oracle.tuner_ids.discard(tuner_id)
            with contextlib.suppress(Exception):
                _compat.save_trial(oracle, oracle.trials[trial_id])
                oracle.save()
            raise

    @staticmethod
    def forget_ended(oracle: Any) -> None:
        """After a reload: a trial saved as running that had in fact ended is done."""
        ended = set(oracle.end_order)
        oracle.ongoing_trials = {
            k: t for k, t in oracle.ongoing_trials.items() if t.trial_id not in ended
        }
        _compat.set_retry_queue(oracle, [t for t in _compat.retry_queue(oracle) if t not in ended])
