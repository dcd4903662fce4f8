"""kt_lr.ledger: probe records, attempts, timeouts on an injected clock, versioned state."""

import json
from pathlib import Path

import pytest

from kt_lr import space as sp
from kt_lr.ledger import (
    STATE_VERSION,
    Attempt,
    Finding,
    Ledger,
    LRProbeWarning,
    ProbeRecord,
    ProbeStatus,
    Seed,
)

V2 = Path(__file__).parent / "data" / "state_v2"


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def two_keys(clock=None):
    ledger = Ledger(clock=clock or FakeClock())
    entry = {"class_name": "Float", "config": {"name": "learning_rate"}}
    keys = {"optimizer=adam": {"optimizer": "adam"}, "optimizer=sgd": {"optimizer": "sgd"}}
    ledger.prepare("learning_rate", [entry], ["optimizer"], keys)
    return ledger


def test_status_is_an_enum_that_reads_as_its_word():
    assert ProbeStatus("done") is ProbeStatus.DONE
    assert ProbeStatus.DONE == "done" and str(ProbeStatus.FAILED) == "failed"
    assert f"{ProbeStatus.PENDING}" == "pending"
    state = Ledger(probes={"*": ProbeRecord("*")}).to_state()
    assert json.dumps(state["probes"]["*"]["status"]) == '"pending"'


def test_a_fresh_ledger_round_trips():
    ledger = Ledger()
    state = ledger.to_state()
    assert state["version"] == STATE_VERSION == 2
    assert Ledger.from_state(state).to_state() == state
    assert Ledger.from_state(None).to_state() == state
    assert not ledger.prepared and ledger.pending_key() is None


def test_a_full_ledger_round_trips_through_json():
    ledger = two_keys()
    rec = ledger.probes["optimizer=adam"]
    rec.status, rec.trial_id, rec.attempts = ProbeStatus.DONE, "kt_lr_probe_0", 1
    rec.attempt_log = [Attempt("kt_lr_probe_0", "tuner0", "done", 1.5)]
    rec.finding = Finding(3e-4, 1e-4, 1e-3, ["why"], {"valley": 2e-4}, 16, "Adam")
    rec.interval = sp.Interval(1e-4, 1e-3, "inside", ("a note",))
    rec.seeds = [3e-4, 1e-4]
    ledger.seed_queue = [Seed("optimizer=adam", 1e-4)]
    ledger.seeds_used = [Seed("optimizer=adam", 3e-4, "00", "seed")]
    ledger.hull, ledger.batch_sizes, ledger.timed_out = [1e-4, 1e-3], [16.0, 64.0], {"01": 1}
    state = json.loads(json.dumps(ledger.to_state()))
    again = Ledger.from_state(state)
    assert again == ledger and again.to_state() == state
    assert state["probes"]["optimizer=adam"]["interval"]["notes"] == ["a note"]
    assert "seconds" not in Attempt("x").to_state()


def test_reads_the_state_saved_by_kt_lr_before_the_ledger():
    """``tests/data/state_v2`` was saved by the oracle of commit 6d00a42 (state version 2)."""
    saved = json.loads((V2 / "p" / "oracle.json").read_text())["kt_lr"]
    ledger = Ledger.from_state(saved)
    assert ledger.to_state() == saved  # nothing lost, nothing added
    adam, sgd = ledger.probes["optimizer=adam"], ledger.probes["optimizer=sgd"]
    assert adam.status is ProbeStatus.DONE and sgd.status is ProbeStatus.FAILED
    assert adam.finding.batch_size == 16 and adam.interval.status == "inside"
    assert [a.outcome.split(";")[0] for a in adam.attempt_log] == [
        "no answer within probe_timeout=60 s",
        "done",
    ]
    assert ledger.seed_queue == [Seed("optimizer=adam", adam.seeds[2])]


def test_reads_an_older_state_with_missing_fields():
    old = {"hp_name": "lr", "original": [], "probes": {"*": {"key": "*", "status": "done"}}}
    ledger = Ledger.from_state(old)
    rec = ledger.probes["*"]
    assert rec.attempts == 0 and rec.attempt_log == [] and rec.idle_answers == 0
    assert ledger.timed_out == {} and ledger.seed_queue == [] and ledger.probe_counter == 0


def test_refuses_a_state_from_a_newer_kt_lr():
    with pytest.raises(ValueError, match="newer kt_lr"):
        Ledger.from_state({"version": STATE_VERSION + 1})


def test_a_probe_is_handed_out_with_a_seed_and_timed_on_the_clock():
    clock = FakeClock()
    ledger = two_keys(clock)
    assert ledger.pending_key() == "optimizer=adam"
    trial_id, seed = ledger.start_probe("optimizer=adam", "tuner0", base_seed=3)
    assert trial_id == "kt_lr_probe_0" and seed == 3 * 7919
    assert ledger.started == {trial_id: 1000.0} and "started" not in ledger.to_state()
    assert ledger.pending_key() == "optimizer=sgd"
    assert [r.key for r in ledger.running()] == ["optimizer=adam"]
    assert ledger.record_of(trial_id) is ledger.probes["optimizer=adam"]
    clock.t += 2.5
    rec = ledger.receive(trial_id, "COMPLETED", answered=True)
    assert rec is ledger.probes["optimizer=adam"] and rec.attempt_log[0].seconds == 2.5


def test_timeouts_reissue_then_give_up():
    clock = FakeClock()
    ledger = two_keys(clock)
    first, _ = ledger.start_probe("optimizer=adam", "tuner0", 0)
    clock.t += 59
    assert ledger.expire(60, max_attempts=2) == []
    clock.t += 2
    with pytest.warns(LRProbeWarning, match="no answer within probe_timeout=60 s"):
        ((rec, trial_id, error),) = ledger.expire(60, max_attempts=2)
    assert trial_id == first and error is None and rec.status is ProbeStatus.PENDING
    assert rec.attempt_log[0].outcome.endswith("re-issued")
    second, _ = ledger.start_probe("optimizer=adam", "tuner1", 0)
    clock.t += 61
    ((rec, trial_id, error),) = ledger.expire(60, max_attempts=2)
    assert trial_id == second and "in 2 attempt(s)" in error
    assert rec.attempt_log[1].outcome.endswith("gave up")
    assert ledger.expire(None, 2) == []


def test_answers_late_duplicate_and_ignored():
    clock = FakeClock()
    ledger = two_keys(clock)
    slow, _ = ledger.start_probe("optimizer=adam", "tuner0", 0)
    clock.t += 61
    with pytest.warns(LRProbeWarning):
        ledger.expire(60, 2)
    again, _ = ledger.start_probe("optimizer=adam", "tuner1", 0)
    rec = ledger.receive(slow, "COMPLETED", answered=True)  # late, but an answer: used
    assert rec.trial_id == slow and rec.attempt_log[0].outcome == "late answer, used"
    rec.status = ProbeStatus.DONE
    assert ledger.receive(again, "COMPLETED", answered=True) is None  # the key is done
    assert "ignored" in rec.attempt_log[1].outcome
    sgd, _ = ledger.start_probe("optimizer=sgd", "tuner0", 0)
    clock.t += 61
    with pytest.warns(LRProbeWarning):
        ledger.expire(60, 2)
    assert ledger.receive(sgd, "FAILED", answered=False) is None
    assert ledger.probes["optimizer=sgd"].attempt_log[0].outcome == "late FAILED, ignored"
    assert ledger.receive("kt_lr_probe_99", "COMPLETED", True) is None


def test_settle_and_fail():
    ledger = two_keys()
    trial_id, _ = ledger.start_probe("optimizer=sgd", "tuner0", 0)
    rec = ledger.receive(trial_id, "COMPLETED", answered=False)
    rec.seeds, rec.interval = [1.0], sp.Interval(1, 2)
    rec.fail("boom")
    ledger.settle(rec, trial_id)
    assert (rec.status, rec.error, rec.seeds, rec.interval) == (
        ProbeStatus.FAILED,
        "boom",
        [],
        None,
    )
    assert rec.attempt_log[0].outcome == "failed" and ledger.any_failed()


def test_an_interrupted_probe_is_pending_again_after_a_resume():
    ledger = two_keys()
    ledger.start_probe("optimizer=adam", "tuner0", 0)
    again = Ledger.from_state(json.loads(json.dumps(ledger.to_state())))
    again.resumed()
    rec = again.probes["optimizer=adam"]
    assert rec.status is ProbeStatus.PENDING and "probing again" in rec.notes[-1]
    assert again.started == {}
