"""LROracle driven directly (no model, no data): probes, narrowing, seeds, state, failures."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import json
import math
import threading

import keras_tuner
import pytest
from keras_tuner import HyperParameters
from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.oracles import (
    BayesianOptimizationOracle,
    GridSearchOracle,
    HyperbandOracle,
    RandomSearchOracle,
)

import kt_lr
from kt_lr import LROracle, LRProbeWarning
from kt_lr import _protocol as wire


def space(lr="float", optimizer=False, batch_size=False):
    hps = HyperParameters()
    if optimizer:
        hps.Choice("optimizer", ["adam", "sgd"])
    if lr == "float":
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    elif lr == "choice":
        hps.Choice("learning_rate", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    hps.Int("units", 4, 64, step=4)
    add_batch_size(hps, batch_size)
    return hps


def add_batch_size(hps, batch_size):
    """``"choice"``: a few values (probed per value); ``True``: a range (rates scaled)."""
    if batch_size == "choice":
        hps.Choice("batch_size", [16, 64])
    elif batch_size:
        hps.Int("batch_size", 16, 64, step=16)


def make(
    tmp_path, cls=RandomSearchOracle, hps=None, name="p", lr_options=None, clock=None, **kwargs
):
    kwargs.setdefault("objective", "val_loss")
    if cls is not HyperbandOracle:
        kwargs.setdefault("max_trials", 6)
    base = cls(hyperparameters=hps if hps is not None else space(), seed=3, **kwargs)
    oracle = LROracle(base, clock=clock, **(lr_options or {}))
    oracle._set_project_dir(str(tmp_path), name)
    return oracle


def lr_bounds(oracle):
    hp = next(h for h in oracle.get_space().space if h.name == "learning_rate")
    return hp.min_value, hp.max_value


def finish_probe(oracle, trial, lr=3e-3, low=1e-3, high=1e-2, ok=True, status="COMPLETED", **extra):
    metrics = {"val_loss": float("nan"), wire.METRIC_OK: 1.0 if ok else 0.0}
    if ok:
        metrics.update({wire.METRIC_LR: lr, wire.METRIC_LOW: low, wire.METRIC_HIGH: high})
        metrics[wire.METRIC_BATCH_SIZE] = float(extra.pop("batch_size", 32))
    oracle.update_trial(trial.trial_id, metrics)
    trial.hyperparameters.values[wire.PROBE_REASONS] = json.dumps(["fake finding"])
    trial.hyperparameters.values.update(extra)
    trial.status = status
    oracle.end_trial(trial)


def score_of(values):
    return abs(math.log10(values["learning_rate"]) + 2.5) + values.get("units", 0) / 1000


def run_trial(oracle, tuner_id="tuner0"):
    trial = oracle.create_trial(tuner_id)
    if trial.status != TrialStatus.RUNNING:
        return trial
    assert not wire.is_probe_trial(trial)
    oracle.update_trial(trial.trial_id, {"val_loss": score_of(trial.hyperparameters.values)})
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    return trial


def run_search(oracle, limit=50):
    probe = oracle.create_trial("tuner0")
    assert wire.is_probe_trial(probe)
    finish_probe(oracle, probe)
    trials = []
    for _ in range(limit):
        t = run_trial(oracle)
        if t.status == TrialStatus.STOPPED:
            break
        trials.append(t)
    return trials


# ------------------------------------------------------------------ the wrapper
def test_upgrade_in_place_keeps_identity_and_type(tmp_path):
    base = HyperbandOracle(objective="val_loss", max_epochs=9, hyperparameters=space())
    oracle = LROracle(base, num_seeds=2)
    assert oracle is base
    assert isinstance(oracle, HyperbandOracle) and isinstance(oracle, LROracle)
    assert isinstance(oracle, keras_tuner.Oracle)
    assert type(oracle).__name__ == "LRHyperbandOracle"
    assert oracle.max_epochs == 9 and oracle.lr_config.num_seeds == 2
    other = LROracle(HyperbandOracle(objective="val_loss", max_epochs=3))
    assert type(other) is type(oracle)  # one class per base class


def test_wrapper_rejects_bad_input_without_touching_the_oracle():
    with pytest.raises(TypeError, match="keras_tuner.Oracle"):
        LROracle("not an oracle")
    base = RandomSearchOracle(objective="val_loss")
    with pytest.raises(ValueError, match="num_seeds"):
        LROracle(base, num_seeds=-1)
    assert type(base) is RandomSearchOracle
    with pytest.raises(ValueError, match="widen"):
        LROracle(base, widen=0.1)
    LROracle(base)
    assert LROracle(base) is base  # a second call is harmless (issue 17)
    with pytest.raises(ValueError, match="already an LROracle"):
        LROracle(base, num_seeds=1)  # options other than its own are refused


def test_a_second_upgrade_is_harmless_and_checks_its_options(tmp_path):
    oracle = make(tmp_path, lr_options={"num_seeds": 2})
    probe = oracle.create_trial("tuner0")
    finish_probe(oracle, probe)
    state = oracle.lr_state
    assert LROracle(oracle) is oracle
    assert LROracle(oracle, num_seeds=2) is oracle  # the same options: accepted
    assert LROracle(oracle, kt_lr.LRConfig(num_seeds=2)) is oracle
    assert oracle.lr_state == state and lr_bounds(oracle) == (1e-3, 1e-2)  # nothing reset
    with pytest.raises(ValueError, match=r"already an LROracle.*num_seeds, widen differ"):
        LROracle(oracle, num_seeds=1, widen=2.0)
    with pytest.raises(ValueError, match="already an LROracle.*num_seeds differ"):
        LROracle(oracle, kt_lr.LRConfig())
    with pytest.raises(ValueError, match="not both"):
        LROracle(oracle, kt_lr.LRConfig(num_seeds=2), num_seeds=2)
    assert oracle.lr_config.num_seeds == 2


def test_options_as_an_lr_config(tmp_path):
    config = kt_lr.LRConfig(num_seeds=1, min_decades=1.0)
    oracle = LROracle(RandomSearchOracle(objective="val_loss", hyperparameters=space()), config)
    assert oracle.lr_config == config and oracle.lr_config is not config
    with pytest.raises(ValueError, match="not both"):
        LROracle(RandomSearchOracle(objective="val_loss"), config, num_seeds=2)
    with pytest.raises(TypeError, match="Unknown kt_lr option"):
        LROracle(RandomSearchOracle(objective="val_loss"), num_seed=2)


# ------------------------------------------------------------------ the probe trial
def test_first_trial_is_a_probe_outside_the_trials(tmp_path):
    oracle = make(tmp_path)
    probe = oracle.create_trial("tuner0")
    values = probe.hyperparameters.values
    assert values[wire.PROBE_MARKER] == "*" and isinstance(values[wire.PROBE_SEED], int)
    assert values["learning_rate"] == 1e-5 and values["units"] == 4  # defaults
    assert oracle.trials == {} and oracle.ongoing_trials == {} and oracle.start_order == []
    assert oracle.remaining_trials() == 6
    assert oracle.get_trial(probe.trial_id) is probe
    assert oracle.create_trial("tuner0") is probe  # same worker asks again
    assert oracle.lr_state["probes"]["*"]["status"] == "running"


def test_end_of_probe_narrows_the_space_and_records_the_finding(tmp_path):
    oracle = make(tmp_path)
    probe = oracle.create_trial("tuner0")
    finish_probe(oracle, probe, lr=3e-3, low=1e-3, high=1e-2)
    assert lr_bounds(oracle) == (1e-3, 1e-2)
    hp = next(h for h in oracle.get_space().space if h.name == "learning_rate")
    assert hp.sampling == "log" and hp.default == 3e-3
    rec = oracle.lr_state["probes"]["*"]
    assert rec["status"] == "done" and rec["finding"]["lr"] == 3e-3
    assert rec["finding"]["reasons"] == ["fake finding"]
    assert rec["seeds"][0] == 3e-3 and len(rec["seeds"]) == 3
    assert oracle.trials == {}  # still nothing in the trials
    saved = json.load(open(os.path.join(tmp_path, "p", "oracle.json")))
    assert saved["kt_lr"]["probes"]["*"]["status"] == "done"
    assert not any(name.startswith("trial_kt_lr") for name in os.listdir(tmp_path / "p"))


def test_seeds_come_first_then_the_base_strategy_in_the_narrowed_range(tmp_path):
    oracle = make(tmp_path)
    trials = run_search(oracle)
    assert len(trials) == 6 == len(oracle.trials)  # the probe did not count
    lrs = [t.hyperparameters.values["learning_rate"] for t in trials]
    seeds = oracle.lr_state["probes"]["*"]["seeds"]
    assert lrs[:3] == seeds
    assert all(1e-3 <= lr <= 1e-2 for lr in lrs)
    used = oracle.lr_state["seeds_used"]
    assert [s["trial_id"] for s in used] == [t.trial_id for t in trials[:3]]
    assert oracle.lr_state["seed_queue"] == []
    best = oracle.get_best_trials(10)
    assert all(not t.trial_id.startswith("kt_lr") for t in best)


def test_num_seeds_zero_leaves_the_base_strategy_alone(tmp_path):
    oracle = make(tmp_path, lr_options={"num_seeds": 0})
    trials = run_search(oracle)
    assert oracle.lr_state["seeds_used"] == []
    assert trials[0].hyperparameters.values["learning_rate"] != 3e-3


def test_bayesian_gp_never_sees_the_probe(tmp_path):
    oracle = make(tmp_path, cls=BayesianOptimizationOracle, max_trials=4, num_initial_points=3)
    trials = run_search(oracle)
    assert len(trials) == 4 == len(oracle.trials)  # the 4th came from the GP
    x, y = oracle._vectorize_trials()
    assert x.shape[0] == 4 and all(math.isfinite(v) for v in y)
    assert all(1e-3 <= t.hyperparameters.values["learning_rate"] <= 1e-2 for t in trials)


def test_hyperband_probe_takes_no_bracket_slot_and_continuations_keep_their_lr(tmp_path):
    oracle = make(tmp_path, cls=HyperbandOracle, max_epochs=3, factor=3)
    trials = run_search(oracle)
    ids = {info["id"] for b in oracle._brackets for r in b["rounds"] for info in r}
    assert all(not i.startswith("kt_lr") for i in ids)
    assert len(trials) == len(oracle.trials)
    by_id = {t.trial_id: t for t in trials}
    continued = [t for t in trials if "tuner/trial_id" in t.hyperparameters.values]
    assert continued, "the schedule should continue at least one trial"
    for t in continued:
        parent = by_id[t.hyperparameters.values["tuner/trial_id"]]
        lr = t.hyperparameters.values["learning_rate"]
        assert lr == parent.hyperparameters.values["learning_rate"]
    seeds = oracle.lr_state["probes"]["*"]["seeds"]
    first_round = [t for t in trials if "tuner/trial_id" not in t.hyperparameters.values]
    assert [t.hyperparameters.values["learning_rate"] for t in first_round[:3]] == seeds


def test_grid_search_gets_the_narrowed_grid_and_no_seeds(tmp_path):
    oracle = make(tmp_path, cls=GridSearchOracle, max_trials=4)
    trials = run_search(oracle)
    assert len(trials) == 4
    assert oracle.lr_state["seeds_used"] == []
    assert "grid search" in oracle.lr_state["probes"]["*"]["notes"][0]
    assert all(1e-3 <= t.hyperparameters.values["learning_rate"] <= 1e-2 for t in trials)


def test_choice_lr_is_filtered(tmp_path):
    oracle = make(tmp_path, hps=space(lr="choice"))
    trials = run_search(oracle)
    hp = next(h for h in oracle.get_space().space if h.name == "learning_rate")
    assert list(hp.values) == [1e-3, 1e-2]
    assert {t.hyperparameters.values["learning_rate"] for t in trials} <= {1e-3, 1e-2}


def test_choice_lr_with_nothing_inside_keeps_the_closest(tmp_path):
    hps = HyperParameters()
    hps.Choice("learning_rate", [1e-5, 1e-1])
    oracle = make(tmp_path, hps=hps)  # min_choices=2: both kept, nothing to say
    finish_probe(oracle, oracle.create_trial("t"), lr=3e-3, low=2e-3, high=5e-3)
    assert list(oracle.get_space().space[0].values) == [1e-5, 1e-1]
    one = make(tmp_path, hps=hps, name="one", lr_options={"min_choices": 1})
    with pytest.warns(LRProbeWarning, match=r"dropped 1e-05 \(2.\d decades below it\)"):
        finish_probe(one, one.create_trial("t"), lr=3e-3, low=2e-3, high=5e-3)
    assert list(one.get_space().space[0].values) == [1e-1]


def test_interval_missing_the_range_warns_and_keeps_a_slice(tmp_path):
    oracle = make(tmp_path)
    with pytest.warns(LRProbeWarning, match="entirely above"):
        finish_probe(oracle, oracle.create_trial("t"), lr=3.0, low=1.0, high=10.0)
    lo, hi = lr_bounds(oracle)
    assert hi == 1e-1 and lo == pytest.approx(1e-1 / 10**0.5)


def test_missing_lr_hp_raises_the_fix_and_does_not_hold_the_lock(tmp_path):
    hps = HyperParameters()
    hps.Int("units", 4, 8)
    oracle = make(tmp_path, hps=hps)
    with pytest.raises(ValueError, match=r"hp\.Float\('learning_rate', 1e-5, 1e-1"):
        oracle.create_trial("tuner0")
    # another thread can still use the oracle (keras_tuner.synchronized would deadlock)
    result = []
    th = threading.Thread(target=lambda: result.append(oracle.get_best_trials()))
    th.start()
    th.join(timeout=10)
    assert result == [[]]


# ------------------------------------------------------------------ failures
@pytest.mark.parametrize(
    "finish, reason",
    [
        (dict(ok=False, **{wire.PROBE_ERROR: "ValueError: too little data"}), "too little data"),
        (dict(lr=float("nan"), low=float("nan"), high=float("nan")), "non-finite"),
        (dict(lr=1e-3, low=1e-2, high=1e-3), "low="),
        (dict(ok=False), "no probe result"),
    ],
)
def test_failed_probe_keeps_the_range_and_the_search_goes_on(tmp_path, finish, reason):
    oracle = make(tmp_path)
    probe = oracle.create_trial("tuner0")
    with pytest.warns(LRProbeWarning, match="Keeping the original range"):
        finish_probe(oracle, probe, **finish)
    rec = oracle.lr_state["probes"]["*"]
    assert rec["status"] == "failed" and reason in rec["error"]
    assert lr_bounds(oracle) == (1e-5, 1e-1)
    assert oracle.lr_state["seed_queue"] == []
    trial = run_trial(oracle)
    assert trial.status == TrialStatus.COMPLETED and len(oracle.trials) == 1


def test_probe_trial_that_crashed_falls_back(tmp_path):
    oracle = make(tmp_path)
    probe = oracle.create_trial("tuner0")
    probe.status = TrialStatus.INVALID
    probe.message = "Traceback (most recent call last):\n  ...\nRuntimeError: build exploded\n"
    with pytest.warns(LRProbeWarning, match="build exploded"):
        oracle.end_trial(probe)
    assert oracle.lr_state["probes"]["*"]["status"] == "failed"
    assert oracle.create_trial("tuner0").trial_id == "0"  # no second probe


# ------------------------------------------------------------------ several workers
def test_other_workers_wait_while_a_probe_runs(tmp_path):
    oracle = make(tmp_path)
    probe = oracle.create_trial("tuner0")
    idle = oracle.create_trial("tuner1")
    assert idle.status == TrialStatus.IDLE and oracle.trials == {}
    finish_probe(oracle, probe)
    assert oracle.create_trial("tuner1").status == TrialStatus.RUNNING


def test_without_waiting_other_workers_get_ordinary_trials(tmp_path):
    oracle = make(tmp_path, lr_options={"wait_for_probes": False})
    oracle.create_trial("tuner0")
    trial = oracle.create_trial("tuner1")
    assert trial.status == TrialStatus.RUNNING and not wire.is_probe_trial(trial)


def test_idle_answers_are_counted_per_probe(tmp_path):
    oracle = make(tmp_path)
    oracle.create_trial("tuner0")
    for _ in range(3):
        assert oracle.create_trial("tuner1").status == TrialStatus.IDLE
    assert oracle.lr_state["probes"]["*"]["idle_answers"] == 3


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    """A clock the tests move by hand, injected with ``LROracle(..., clock=clock)``."""
    return FakeClock()


def test_probe_of_a_dead_worker_is_reissued_after_the_timeout(tmp_path, clock):
    oracle = make(tmp_path, lr_options={"probe_timeout": 60}, clock=clock)
    lost = oracle.create_trial("tuner0")  # tuner0 dies during its probe
    clock.t += 59
    assert oracle.create_trial("tuner1").status == TrialStatus.IDLE
    clock.t += 2
    with pytest.warns(LRProbeWarning, match="no answer within probe_timeout=60 s"):
        again = oracle.create_trial("tuner1")
    assert wire.is_probe_trial(again) and again.trial_id != lost.trial_id
    assert "tuner0" not in oracle.tuner_ids  # the chief does not wait for it to exit
    assert oracle.create_trial("tuner2").status == TrialStatus.IDLE  # still one probe
    finish_probe(oracle, again)
    rec = oracle.lr_state["probes"]["*"]
    assert rec["status"] == "done" and rec["attempts"] == 2 and rec["trial_id"] == again.trial_id
    assert [(a["tuner_id"], a["outcome"].split(";")[0]) for a in rec["attempt_log"]] == [
        ("tuner0", "no answer within probe_timeout=60 s"),
        ("tuner1", "done"),
    ]
    assert lr_bounds(oracle) == (1e-3, 1e-2)
    assert run_trial(oracle, "tuner2").status == TrialStatus.COMPLETED
    assert "attempts:" in oracle.lr_report().summary()


def test_a_late_answer_is_used_once_and_the_other_ignored(tmp_path, clock):
    oracle = make(tmp_path, lr_options={"probe_timeout": 60}, clock=clock)
    slow = oracle.create_trial("tuner0")
    clock.t += 61
    with pytest.warns(LRProbeWarning):
        again = oracle.create_trial("tuner1")
    finish_probe(oracle, slow, lr=2e-3, low=1e-3, high=4e-3)  # tuner0 was only slow
    rec = oracle.lr_state["probes"]["*"]
    assert rec["status"] == "done" and rec["trial_id"] == slow.trial_id
    assert rec["finding"]["lr"] == 2e-3
    assert oracle.create_trial("tuner2").status == TrialStatus.RUNNING  # no more waiting
    finish_probe(oracle, again, lr=5e-2, low=1e-2, high=1e-1)  # too late: ignored
    assert oracle.lr_state["probes"]["*"]["finding"]["lr"] == 2e-3
    outcomes = [a["outcome"] for a in oracle.lr_state["probes"]["*"]["attempt_log"]]
    assert outcomes[0] == "late answer, used" and "ignored" in outcomes[1]
    assert lr_bounds(oracle) == (1e-3, 4e-3)  # from the late answer


def test_after_its_last_attempt_a_probe_falls_back_to_the_original_range(tmp_path, clock):
    oracle = make(tmp_path, lr_options={"probe_timeout": 30, "probe_attempts": 1}, clock=clock)
    oracle.create_trial("tuner0")
    clock.t += 31
    with pytest.warns(LRProbeWarning, match="Keeping the original range"):
        trial = oracle.create_trial("tuner1")
    assert trial.status == TrialStatus.RUNNING and not wire.is_probe_trial(trial)
    rec = oracle.lr_state["probes"]["*"]
    assert rec["status"] == "failed" and "probe_timeout=30 s" in rec["error"]
    assert lr_bounds(oracle) == (1e-5, 1e-1)
    saved = json.load(open(os.path.join(tmp_path, "p", "oracle.json")))
    assert saved["kt_lr"]["probes"]["*"]["status"] == "failed"


def test_without_a_timeout_the_probe_is_waited_for(tmp_path, clock):
    oracle = make(tmp_path, lr_options={"probe_timeout": None}, clock=clock)
    oracle.create_trial("tuner0")
    clock.t += 10**6
    assert oracle.create_trial("tuner1").status == TrialStatus.IDLE


def done_probe_oracle(tmp_path, clock=None, **lr_options):
    oracle = make(tmp_path, lr_options=lr_options, clock=clock, max_trials=10)
    finish_probe(oracle, oracle.create_trial("tuner0"))
    return oracle


def stalled(tmp_path, clock):
    """An oracle whose first ordinary trial (on tuner0) is past its trial_timeout."""
    oracle = done_probe_oracle(tmp_path, clock, trial_timeout=100)
    trial = oracle.create_trial("tuner0")
    clock.t += 101
    return oracle, trial


def complete(oracle, trial, score):
    oracle.update_trial(trial.trial_id, {"val_loss": score})
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)


def test_trial_of_a_dead_worker_is_run_again_by_another(tmp_path, clock):
    oracle = done_probe_oracle(tmp_path, clock, trial_timeout=100)
    lost = oracle.create_trial("tuner0")  # tuner0 dies during this trial
    clock.t += 99
    assert run_trial(oracle, "tuner1").status == TrialStatus.COMPLETED
    clock.t += 2
    with pytest.warns(LRProbeWarning, match="within trial_timeout=100 s"):
        again = oracle.create_trial("tuner1")
    assert (
        again.trial_id == lost.trial_id
        and again.hyperparameters.values == lost.hyperparameters.values
    )
    assert "tuner0" not in oracle.tuner_ids and "tuner0" not in oracle.ongoing_trials
    complete(oracle, again, 0.5)
    assert oracle.trials[lost.trial_id].status == TrialStatus.COMPLETED
    assert oracle.trials[lost.trial_id].score == 0.5
    assert oracle.lr_state["timed_out"] == {lost.trial_id: 1}
    assert not oracle.ongoing_trials
    saved = json.load(open(os.path.join(tmp_path, "p", "oracle.json")))
    assert saved["kt_lr"]["timed_out"] == {lost.trial_id: 1}


def test_a_slow_trial_answering_late_is_kept_once(tmp_path, clock):
    oracle, slow = stalled(tmp_path, clock)
    with pytest.warns(LRProbeWarning):
        retry = oracle.create_trial("tuner1")  # the same trial, now on tuner1
    assert retry.trial_id == slow.trial_id
    complete(oracle, slow, 0.25)  # tuner0 was only slow: its result counts
    retry.status = TrialStatus.COMPLETED
    oracle.end_trial(retry)  # the second answer is ignored
    assert oracle.end_order.count(slow.trial_id) == 1
    assert oracle.trials[slow.trial_id].score == 0.25
    assert oracle.create_trial("tuner1").trial_id != slow.trial_id


def test_a_slow_trial_answering_before_its_retry_leaves_the_queue(tmp_path, clock):
    oracle, slow = stalled(tmp_path, clock)
    with pytest.warns(LRProbeWarning):
        oracle._kt_lr_expire()  # what the chief's loop does every poll
    assert oracle._retry_queue == [slow.trial_id]
    complete(oracle, slow, 0.25)
    assert oracle._retry_queue == []
    assert oracle.create_trial("tuner1").trial_id != slow.trial_id


def test_a_trial_timing_out_twice_fails(tmp_path, clock):
    oracle, first = stalled(tmp_path, clock)
    with pytest.warns(LRProbeWarning):
        oracle.create_trial("tuner1")
    clock.t += 101
    with pytest.warns(LRProbeWarning, match="second time; it ends as FAILED"):
        nxt = oracle.create_trial("tuner2")
    assert nxt.trial_id != first.trial_id
    assert oracle.trials[first.trial_id].status == TrialStatus.FAILED
    assert "twice" in oracle.trials[first.trial_id].message
    assert first.trial_id in oracle.end_order and not oracle._retry_queue


def test_without_a_trial_timeout_a_trial_is_waited_for(tmp_path, clock):
    oracle = done_probe_oracle(tmp_path, clock)
    lost = oracle.create_trial("tuner0")
    clock.t += 10**6
    assert oracle.create_trial("tuner1").trial_id != lost.trial_id
    assert oracle.ongoing_trials["tuner0"] is lost


@pytest.mark.parametrize(
    "options, match",
    [
        ({"probe_timeout": 0}, "probe_timeout"),
        ({"probe_timeout": float("inf")}, "probe_timeout"),
        ({"probe_attempts": 0}, "probe_attempts"),
        ({"trial_timeout": -1}, "trial_timeout"),
        ({"trial_timeout": True}, "trial_timeout"),
        ({"probe_attempts": 1.5}, "probe_attempts"),
    ],
)
def test_bad_timeout_options(options, match):
    with pytest.raises(ValueError, match=match):
        kt_lr.LRConfig(**options)


def test_too_many_failed_trials_stop_every_worker_and_free_the_lock(tmp_path):
    oracle = make(tmp_path, max_consecutive_failed_trials=1)
    finish_probe(oracle, oracle.create_trial("tuner0"))
    failing = oracle.create_trial("tuner0")
    other = oracle.create_trial("tuner1")
    oracle.update_trial(failing.trial_id, {"val_loss": 1.0})
    failing.status = TrialStatus.FAILED
    with pytest.raises(RuntimeError, match="consecutive failures"):
        oracle.end_trial(failing)
    assert "tuner0" not in oracle.tuner_ids and "tuner0" not in oracle.ongoing_trials
    # the lock is free (keras_tuner.synchronized would keep it after the error)
    result = []
    th = threading.Thread(target=lambda: result.append(oracle.create_trial("tuner2").status))
    th.start()
    th.join(timeout=10)
    assert result == [TrialStatus.STOPPED]
    oracle.update_trial(other.trial_id, {"val_loss": 1.0})
    other.status = TrialStatus.COMPLETED
    with pytest.raises(RuntimeError):  # Keras Tuner re-checks the whole history
        oracle.end_trial(other)
    assert oracle.create_trial("tuner1").status == TrialStatus.STOPPED
    assert not oracle.ongoing_trials and not oracle.tuner_ids  # a chief may exit now


def test_probe_protocol_survives_the_wire(tmp_path):
    """Only the proto form of trials, spaces and metric maps crosses gRPC."""
    oracle = make(tmp_path)
    sent = Trial.from_proto(oracle.create_trial("tuner0").to_proto())  # chief -> worker
    assert wire.is_probe_trial(sent)
    values = sent.hyperparameters.values
    assert values[wire.PROBE_MARKER] == "*" and values[wire.PROBE_SEED] > 0
    oracle.update_trial(
        sent.trial_id,
        {"val_loss": float("nan"), wire.METRIC_OK: 1.0, wire.METRIC_LR: 3e-3}
        | {wire.METRIC_LOW: 1e-3, wire.METRIC_HIGH: 1e-2, wire.CANDIDATE_PREFIX + "valley": 2e-3},
    )
    sent.hyperparameters.values[wire.PROBE_REASONS] = json.dumps(["from the worker"])
    sent.hyperparameters.values[wire.PROBE_ARTIFACTS] = "/somewhere"
    sent.status = TrialStatus.COMPLETED
    oracle.end_trial(Trial.from_proto(sent.to_proto()))  # worker -> chief
    rec = oracle.lr_state["probes"]["*"]
    assert rec["finding"]["reasons"] == ["from the worker"]
    assert rec["finding"]["candidates"] == {"valley": 2e-3}
    assert rec["artifacts"] == "/somewhere"
    space_on_worker = HyperParameters.from_proto(oracle.get_space().to_proto())
    hp = next(h for h in space_on_worker.space if h.name == "learning_rate")
    assert (hp.min_value, hp.max_value) == (1e-3, 1e-2)


# ------------------------------------------------------------------ probe keys
def test_one_probe_per_optimizer_and_seeds_per_key(tmp_path):
    oracle = make(tmp_path, hps=space(optimizer=True), lr_options={"num_seeds": 1})
    first = oracle.create_trial("tuner0")
    assert first.hyperparameters.values[wire.PROBE_MARKER] == "optimizer=adam"
    assert first.hyperparameters.values["optimizer"] == "adam"
    finish_probe(oracle, first, lr=3e-4, low=1e-4, high=1e-3)
    second = oracle.create_trial("tuner0")
    assert second.hyperparameters.values[wire.PROBE_MARKER] == "optimizer=sgd"
    assert second.hyperparameters.values["optimizer"] == "sgd"
    finish_probe(oracle, second, lr=3e-2, low=1e-2, high=5e-2)
    assert lr_bounds(oracle) == (1e-4, 5e-2)  # the hull of both keys
    probes = oracle.lr_state["probes"]
    assert probes["optimizer=sgd"]["interval"]["low"] == 1e-2
    seeded = [run_trial(oracle).hyperparameters.values for _ in range(2)]
    by_opt = {v["optimizer"]: v["learning_rate"] for v in seeded}
    assert by_opt == {"adam": 3e-4, "sgd": 3e-2}


def test_lr_declared_once_per_optimizer_is_refused_with_the_fix(tmp_path):
    # Keras Tuner 1.4.8 drops or re-samples a value whose name is declared twice
    # (ensure_active_values), so this layout would train with the wrong LR.
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    with hps.conditional_scope("optimizer", ["adam"]):
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    with hps.conditional_scope("optimizer", ["sgd"]):
        hps.Float("learning_rate", 1e-4, 1.0, sampling="log")
    oracle = make(tmp_path, hps=hps)
    with pytest.raises(ValueError, match="declared 2 times"):
        oracle.create_trial("t")


def two_key_space(batch_size=False):
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    hps.Float("learning_rate", 1e-5, 1.0, sampling="log")
    hps.Int("units", 4, 64, step=4)
    add_batch_size(hps, batch_size)
    return hps


ADAM = dict(lr=3e-4, low=1e-4, high=1e-3)
SGD = dict(lr=3e-2, low=1e-2, high=1e-1)
FINDINGS = {"optimizer=adam": ADAM, "optimizer=sgd": SGD}


def run_until_stopped(oracle, limit=60):
    trials = []
    for _ in range(limit):
        t = run_trial(oracle)
        if t.status == TrialStatus.STOPPED:
            break
        if t.status == TrialStatus.RUNNING or t.status == TrialStatus.COMPLETED:
            trials.append(t)
    return trials


@pytest.mark.parametrize(
    "cls, extra",
    [
        (RandomSearchOracle, {"max_trials": 12}),
        (BayesianOptimizationOracle, {"max_trials": 7, "num_initial_points": 2}),
        (HyperbandOracle, {"max_epochs": 9, "factor": 3}),
    ],
)
def test_each_trial_samples_its_lr_inside_its_own_keys_interval(tmp_path, cls, extra):
    oracle = make(tmp_path, cls=cls, hps=two_key_space(), lr_options={"num_seeds": 1}, **extra)
    first = oracle.create_trial("tuner0")
    second = oracle.create_trial("tuner1")  # both probes run at once on two workers
    for probe in (first, second):
        finish_probe(oracle, probe, **FINDINGS[probe.hyperparameters.values[wire.PROBE_MARKER]])
    probes = oracle.lr_state["probes"]
    assert [probes[k]["attempts"] for k in FINDINGS] == [1, 1]
    assert lr_bounds(oracle) == (1e-4, 1e-1)  # the space holds the hull of both keys
    trials = run_until_stopped(oracle)
    assert len(trials) >= 7
    for t in trials:
        values = t.hyperparameters.values
        own = FINDINGS[f"optimizer={values['optimizer']}"]
        assert own["low"] <= values["learning_rate"] <= own["high"], values
        assert oracle.lr_interval_for(values) == (own["low"], own["high"])
    assert {t.hyperparameters.values["optimizer"] for t in trials} == {"adam", "sgd"}
    best = oracle.get_best_trials(1)[0].hyperparameters
    assert best.get("learning_rate") == best.values["learning_rate"]


def test_one_key_keeps_the_base_strategys_values(tmp_path):
    oracle = make(tmp_path, lr_options={"num_seeds": 0})
    finish_probe(oracle, oracle.create_trial("t"))
    twin = RandomSearchOracle(objective="val_loss", max_trials=6, hyperparameters=space(), seed=3)
    twin._set_project_dir(str(tmp_path), "twin")
    twin.hyperparameters = oracle.get_space()  # the same narrowed space, without kt_lr
    ours = [run_trial(oracle).hyperparameters.values for _ in range(3)]
    theirs = [run_trial(twin).hyperparameters.values for _ in range(3)]
    assert ours == theirs


def test_choice_lr_is_chosen_inside_each_keys_interval(tmp_path):
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    hps.Choice("learning_rate", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    oracle = make(tmp_path, hps=hps, lr_options={"num_seeds": 0}, max_trials=10)
    finish_probe(oracle, oracle.create_trial("t"), **ADAM)
    finish_probe(oracle, oracle.create_trial("t"), **SGD)
    for t in run_until_stopped(oracle):
        v = t.hyperparameters.values
        allowed = {"adam": {1e-4, 1e-3}, "sgd": {1e-2, 1e-1}}[v["optimizer"]]
        assert v["learning_rate"] in allowed


def scaled_interval(finding, factor, top_of_range=1.0):
    """What a key's interval becomes at ``factor`` x the probe's batch size (>= 1): scaled,
    never above the probed top, at least half a decade wide."""
    from kt_lr import space as sp

    top = min(top_of_range, finding["high"])
    iv = sp.narrow_interval(finding["low"] * factor, finding["high"] * factor, 1e-5, top)
    return iv.low, iv.high


def test_lr_interval_and_seeds_follow_the_batch_size_rule_up_to_the_probed_top(tmp_path):
    oracle = make(
        tmp_path, hps=two_key_space(batch_size=True), lr_options={"num_seeds": 2}, max_trials=30
    )
    # probed at batch size 16 (the default); at 64: Adam x sqrt(4) = x2, SGD x4 (linear),
    # both capped at the top of their probed interval
    for name in ("Adam", "SGD"):
        probe = oracle.create_trial("t")
        key = probe.hyperparameters.values[wire.PROBE_MARKER]
        assert probe.hyperparameters.values["batch_size"] == 16
        with pytest.warns(LRProbeWarning, match="the top of the probed interval"):
            finish_probe(
                oracle, probe, batch_size=16, **FINDINGS[key], **{wire.PROBE_OPTIMIZER: name}
            )

    def factor(opt, bs):
        return bs / 16 if opt == "sgd" else (bs / 16) ** 0.5

    def want(opt, bs):
        finding = FINDINGS[f"optimizer={opt}"]
        if bs == 16:
            return finding["low"], finding["high"]
        return scaled_interval(finding, factor(opt, bs))

    assert want("adam", 64) == pytest.approx((2e-4, 1e-3))
    assert want("sgd", 64) == pytest.approx((0.1 / 10**0.5, 0.1))
    for opt in ("adam", "sgd"):
        for bs in (16, 32, 48, 64):
            got = oracle.lr_interval_for({"optimizer": opt, "batch_size": bs})
            assert got == pytest.approx(want(opt, bs))
    assert lr_bounds(oracle) == pytest.approx((1e-4, 1e-1))  # hull: never above a probed top
    trials = run_until_stopped(oracle)
    seeds = {k: r["seeds"] for k, r in oracle.lr_state["probes"].items()}
    seeded = {s["trial_id"]: s for s in oracle.lr_state["seeds_used"]}
    assert len(seeded) == 4
    for t in trials:
        v = t.hyperparameters.values
        lo, hi = want(v["optimizer"], v["batch_size"])
        assert lo * (1 - 1e-9) <= v["learning_rate"] <= hi * (1 + 1e-9), v
        if t.trial_id in seeded:
            f = factor(v["optimizer"], v["batch_size"])
            key = f"optimizer={v['optimizer']}"
            scaled = [min(max(s * f, lo), hi) for s in seeds[key]]
            assert any(v["learning_rate"] == pytest.approx(s) for s in scaled)
            assert v["learning_rate"] <= FINDINGS[key]["high"] * (1 + 1e-9)
    assert len({t.hyperparameters.values["batch_size"] for t in trials}) > 1


def test_batch_scaling_options_and_clipping(tmp_path):
    def probed(name, **lr_options):
        oracle = make(tmp_path, hps=space(batch_size=True), name=name, lr_options=lr_options)
        return oracle

    linear = probed("lin", batch_scaling="linear")
    with pytest.warns(LRProbeWarning, match="capped at 0.01"):
        finish_probe(linear, linear.create_trial("t"), batch_size=16)  # optimizer unknown
    # x4: [4e-3, 4e-2] capped at the probed top 1e-2, grown back to half a decade
    assert linear.lr_interval_for({"batch_size": 64}) == pytest.approx((1e-2 / 10**0.5, 1e-2))
    auto = probed("auto")
    with pytest.warns(LRProbeWarning, match="capped at 0.01"):
        finish_probe(auto, auto.create_trial("t"), batch_size=16)  # unknown: sqrt
    assert auto.lr_interval_for({"batch_size": 64}) == pytest.approx((2e-3, 1e-2))
    off = probed("off", batch_scaling="none")
    finish_probe(off, off.create_trial("t"), batch_size=16, **{wire.PROBE_OPTIMIZER: "SGD"})
    assert off.lr_interval_for({"batch_size": 64}) == (1e-3, 1e-2)
    assert lr_bounds(off) == (1e-3, 1e-2)
    down = probed("down")  # probed at 64, scaled down to 16: no cap
    finish_probe(down, down.create_trial("t"), batch_size=64, **{wire.PROBE_OPTIMIZER: "SGD"})
    assert down.lr_interval_for({"batch_size": 16}) == pytest.approx((2.5e-4, 2.5e-3))
    top = probed("top")  # the probed top above the original range: clipped at the range
    with pytest.warns(LRProbeWarning, match="capped at 0.05"):
        finish_probe(
            top,
            top.create_trial("t"),
            lr=3e-2,
            low=1e-2,
            high=5e-2,
            batch_size=16,
            **{wire.PROBE_OPTIMIZER: "SGD"},
        )
    lo, hi = top.lr_interval_for({"batch_size": 64})
    assert hi == 5e-2 and lo == pytest.approx(5e-2 / 10**0.5)  # 0.5 decades


def test_a_batch_size_with_a_few_values_is_probed_per_value(tmp_path):
    """Issue 16: no rate is extrapolated across a batch-size Choice of <= 4 values."""
    oracle = make(
        tmp_path, hps=two_key_space(batch_size="choice"), lr_options={"num_seeds": 1}, max_trials=8
    )
    answers = {
        "optimizer=adam,batch_size=16": dict(lr=3e-4, low=1e-4, high=1e-3),
        "optimizer=adam,batch_size=64": dict(lr=6e-4, low=2e-4, high=2e-3),
        "optimizer=sgd,batch_size=16": dict(lr=3e-2, low=1e-2, high=1e-1),
        "optimizer=sgd,batch_size=64": dict(lr=5e-2, low=2e-2, high=2e-1),
    }
    for _ in answers:
        probe = oracle.create_trial("t")
        values = probe.hyperparameters.values
        key = values[wire.PROBE_MARKER]
        assert key == f"optimizer={values['optimizer']},batch_size={values['batch_size']}"
        finish_probe(oracle, probe, batch_size=values["batch_size"], **answers[key])
    assert set(oracle.lr_state["probes"]) == set(answers)
    assert not wire.is_probe_trial(oracle.create_trial("t2"))  # no fifth probe
    for key, answer in answers.items():
        opt, bs = (part.split("=")[1] for part in key.split(","))
        got = oracle.lr_interval_for({"optimizer": opt, "batch_size": int(bs)})
        assert got == pytest.approx((answer["low"], answer["high"]))
    for t in run_until_stopped(oracle):
        v = t.hyperparameters.values
        answer = answers[f"optimizer={v['optimizer']},batch_size={v['batch_size']}"]
        assert answer["low"] <= v["learning_rate"] <= answer["high"]
    summary = oracle.lr_report().summary()
    assert "'batch_size' takes 2 values (16, 64): each is probed" in summary
    assert "scaled" not in summary


def test_a_failed_key_searches_the_original_range(tmp_path):
    oracle = make(tmp_path, hps=two_key_space(), lr_options={"num_seeds": 0}, max_trials=10)
    finish_probe(oracle, oracle.create_trial("t"), **ADAM)
    assert lr_bounds(oracle) == (1e-4, 1e-3)
    with pytest.warns(LRProbeWarning, match="Keeping the original range"):
        finish_probe(oracle, oracle.create_trial("t"), ok=False)
    assert lr_bounds(oracle) == (1e-5, 1.0)  # the hull now covers the failed key
    assert oracle.lr_interval_for({"optimizer": "sgd"}) == (1e-5, 1.0)
    for t in run_until_stopped(oracle):
        v = t.hyperparameters.values
        if v["optimizer"] == "adam":
            assert 1e-4 <= v["learning_rate"] <= 1e-3


# ------------------------------------------------------------------ state and resume
def test_state_round_trip_and_interrupted_probe_runs_again(tmp_path):
    oracle = make(tmp_path)
    finish_probe(oracle, oracle.create_trial("tuner0"))
    run_trial(oracle)
    state = json.loads(json.dumps(oracle.get_state()))
    fresh = make(tmp_path, name="q")
    fresh.set_state(state)
    assert lr_bounds(fresh) == (1e-3, 1e-2)
    assert fresh.lr_state == oracle.lr_state
    # a probe that was running when the state was saved is done again
    running = make(tmp_path, name="r")
    running.create_trial("tuner0")
    again = make(tmp_path, name="s")
    again.set_state(json.loads(json.dumps(running.get_state())))
    assert again.lr_state["probes"]["*"]["status"] == "pending"
    assert wire.is_probe_trial(again.create_trial("tuner0"))


def test_a_probe_ending_after_a_reload_is_ignored_and_redone(tmp_path):
    oracle = make(tmp_path)
    stale = oracle.create_trial("tuner0")
    oracle.save()
    restarted = make(tmp_path)
    restarted.reload()  # e.g. the chief restarted while a worker ran the probe
    finish_probe(restarted, stale)  # no KeyError, no effect
    assert restarted.lr_state["probes"]["*"]["status"] == "pending"
    assert lr_bounds(restarted) == (1e-5, 1e-1)
    assert wire.is_probe_trial(restarted.create_trial("tuner0"))


def test_save_and_reload_from_disk(tmp_path):
    oracle = make(tmp_path, max_trials=6)
    probe = oracle.create_trial("tuner0")
    finish_probe(oracle, probe)
    done = [run_trial(oracle) for _ in range(2)]
    reloaded = make(tmp_path, max_trials=6)
    reloaded.reload()
    assert lr_bounds(reloaded) == (1e-3, 1e-2)
    assert set(reloaded.trials) == {t.trial_id for t in done}
    assert len(reloaded.lr_state["seed_queue"]) == 1  # two of three seeds used
    nxt = reloaded.create_trial("tuner0")
    assert not wire.is_probe_trial(nxt)
    assert nxt.hyperparameters.values["learning_rate"] == reloaded.lr_state["seeds_used"][-1]["lr"]


def test_same_seed_same_narrowing_and_trials(tmp_path):
    runs = []
    for name in ("a", "b"):
        oracle = make(tmp_path, name=name)
        trials = run_search(oracle)
        runs.append(
            (lr_bounds(oracle), [t.hyperparameters.values for t in trials], oracle.lr_state)
        )
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert runs[0][2]["probes"]["*"]["seeds"] == runs[1][2]["probes"]["*"]["seeds"]


# ------------------------------------------------------------------ the report
def test_lr_report(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    oracle = make(tmp_path)
    run_search(oracle)
    report = oracle.lr_report()
    assert report.original_interval == (1e-5, 1e-1) and report.interval == (1e-3, 1e-2)
    assert report.probes["*"].lr == 3e-3 and report.probes["*"].reasons == ["fake finding"]
    assert [s["status"] for s in report.seeds] == ["used"] * 3
    frame = report.to_frame()
    assert frame.loc[0, "narrowed_low"] == 1e-3 and frame.loc[0, "original_high"] == 1e-1
    assert "picked 0.003" in repr(report) and "fake finding" in report.summary()
    fig = report.plot()
    assert fig.axes[0].get_xscale() == "log"
    same = kt_lr.load_lr_report(os.path.join(tmp_path, "p"))
    assert same.interval == report.interval and same.probes["*"].seeds == report.probes["*"].seeds


def test_a_resume_does_not_run_an_ended_trial_again(tmp_path):
    oracle = done_probe_oracle(tmp_path)
    ended = run_trial(oracle, "tuner0")
    path = os.path.join(tmp_path, "p", "oracle.json")
    saved = json.load(open(path))
    assert saved["ongoing_trials"] == {}
    saved["ongoing_trials"] = {"tuner0": ended.trial_id}  # as Keras Tuner alone saves it
    with open(path, "w") as fh:
        json.dump(saved, fh)
    again = make(tmp_path, max_trials=10)
    again.reload()
    assert again._retry_queue == []
    assert again.create_trial("tuner0").trial_id != ended.trial_id


# ------------------------------------------------------------------ resume of older projects
V2 = os.path.join(os.path.dirname(__file__), "data", "state_v2")


def test_resume_a_project_saved_by_the_previous_oracle(tmp_path):
    """``tests/data/state_v2/p`` was saved by the oracle of commit 6d00a42 (state version
    2): two keys (adam probed after a timeout, sgd failed), batch sizes, two seeded trials
    (one timed out once), one seed queued. ``expected.json`` is what that oracle did on
    reload; this oracle must do the same."""
    import shutil

    shutil.copytree(os.path.join(V2, "p"), tmp_path / "p")
    expected = json.load(open(os.path.join(V2, "expected.json")))
    oracle = make(
        tmp_path,
        hps=two_key_space(batch_size="choice"),
        max_trials=10,
        lr_options={"num_seeds": 3, "probe_timeout": 60, "trial_timeout": 100},
    )
    oracle.verbose = 0
    oracle.reload()
    assert oracle.lr_state == expected["lr_state"]
    assert oracle.lr_report().summary() == expected["summary"]
    for combo, interval in expected["intervals"].items():
        opt, bs = combo.split(",")
        assert list(oracle.lr_interval_for({"optimizer": opt, "batch_size": int(bs)})) == interval
    for i, want in enumerate(expected["next_trials"]):
        trial = oracle.create_trial("tuner0")
        assert not wire.is_probe_trial(trial)  # no second probe
        assert trial.trial_id == want["trial_id"] and trial.status == want["status"]
        assert trial.hyperparameters.values == want["values"]
        oracle.update_trial(trial.trial_id, {"val_loss": 0.1 * i})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    assert oracle.lr_state == expected["lr_state_after"]
