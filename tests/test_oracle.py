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

from kt_lr import oracle as ko
from kt_lr.oracle import LROracle, LRProbeWarning


def space(lr="float", optimizer=False, batch_size=False):
    hps = HyperParameters()
    if optimizer:
        hps.Choice("optimizer", ["adam", "sgd"])
    if lr == "float":
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    elif lr == "choice":
        hps.Choice("learning_rate", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    hps.Int("units", 4, 64, step=4)
    if batch_size:
        hps.Choice("batch_size", [16, 64])
    return hps


def make(tmp_path, cls=RandomSearchOracle, hps=None, name="p", lr_options=None, **kwargs):
    kwargs.setdefault("objective", "val_loss")
    if cls is not HyperbandOracle:
        kwargs.setdefault("max_trials", 6)
    base = cls(hyperparameters=hps if hps is not None else space(), seed=3, **kwargs)
    oracle = LROracle(base, **(lr_options or {}))
    oracle._set_project_dir(str(tmp_path), name)
    return oracle


def lr_bounds(oracle):
    hp = next(h for h in oracle.get_space().space if h.name == "learning_rate")
    return hp.min_value, hp.max_value


def finish_probe(oracle, trial, lr=3e-3, low=1e-3, high=1e-2, ok=True, status="COMPLETED", **extra):
    metrics = {"val_loss": float("nan"), ko.METRIC_OK: 1.0 if ok else 0.0}
    if ok:
        metrics.update({ko.METRIC_LR: lr, ko.METRIC_LOW: low, ko.METRIC_HIGH: high})
        metrics[ko.METRIC_BATCH_SIZE] = float(extra.pop("batch_size", 32))
    oracle.update_trial(trial.trial_id, metrics)
    trial.hyperparameters.values[ko.PROBE_REASONS] = json.dumps(["fake finding"])
    trial.hyperparameters.values.update(extra)
    trial.status = status
    oracle.end_trial(trial)


def score_of(values):
    return abs(math.log10(values["learning_rate"]) + 2.5) + values.get("units", 0) / 1000


def run_trial(oracle, tuner_id="tuner0"):
    trial = oracle.create_trial(tuner_id)
    if trial.status != TrialStatus.RUNNING:
        return trial
    assert not ko.is_probe_trial(trial)
    oracle.update_trial(trial.trial_id, {"val_loss": score_of(trial.hyperparameters.values)})
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    return trial


def run_search(oracle, limit=50):
    probe = oracle.create_trial("tuner0")
    assert ko.is_probe_trial(probe)
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
    with pytest.raises(ValueError, match="already an LROracle"):
        LROracle(base)


# ------------------------------------------------------------------ the probe trial
def test_first_trial_is_a_probe_outside_the_trials(tmp_path):
    oracle = make(tmp_path)
    probe = oracle.create_trial("tuner0")
    values = probe.hyperparameters.values
    assert values[ko.PROBE_MARKER] == "*" and isinstance(values[ko.PROBE_SEED], int)
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
    oracle = make(tmp_path, hps=hps)
    finish_probe(oracle, oracle.create_trial("t"), lr=3e-3, low=2e-3, high=5e-3)
    hp = oracle.get_space().space[0]
    assert list(hp.values) == [1e-1]


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
        (dict(ok=False, **{ko.PROBE_ERROR: "ValueError: too little data"}), "too little data"),
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
    assert trial.status == TrialStatus.RUNNING and not ko.is_probe_trial(trial)


def test_probe_protocol_survives_the_wire(tmp_path):
    """Only the proto form of trials, spaces and metric maps crosses gRPC."""
    oracle = make(tmp_path)
    sent = Trial.from_proto(oracle.create_trial("tuner0").to_proto())  # chief -> worker
    assert ko.is_probe_trial(sent)
    values = sent.hyperparameters.values
    assert values[ko.PROBE_MARKER] == "*" and values[ko.PROBE_SEED] > 0
    oracle.update_trial(
        sent.trial_id,
        {"val_loss": float("nan"), ko.METRIC_OK: 1.0, ko.METRIC_LR: 3e-3}
        | {ko.METRIC_LOW: 1e-3, ko.METRIC_HIGH: 1e-2, ko.CANDIDATE_PREFIX + "valley": 2e-3},
    )
    sent.hyperparameters.values[ko.PROBE_REASONS] = json.dumps(["from the worker"])
    sent.hyperparameters.values[ko.PROBE_ARTIFACTS] = "/somewhere"
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
    assert first.hyperparameters.values[ko.PROBE_MARKER] == "optimizer=adam"
    assert first.hyperparameters.values["optimizer"] == "adam"
    finish_probe(oracle, first, lr=3e-4, low=1e-4, high=1e-3)
    second = oracle.create_trial("tuner0")
    assert second.hyperparameters.values[ko.PROBE_MARKER] == "optimizer=sgd"
    assert second.hyperparameters.values["optimizer"] == "sgd"
    finish_probe(oracle, second, lr=3e-2, low=1e-2, high=5e-2)
    assert lr_bounds(oracle) == (1e-4, 5e-2)  # the hull of both keys
    probes = oracle.lr_state["probes"]
    assert probes["optimizer=sgd"]["interval"]["low"] == 1e-2
    seeded = [run_trial(oracle).hyperparameters.values for _ in range(2)]
    by_opt = {v["optimizer"]: v["learning_rate"] for v in seeded}
    assert by_opt == {"adam": 3e-4, "sgd": 3e-2}


def test_lr_declared_per_optimizer_is_narrowed_per_optimizer(tmp_path):
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    with hps.conditional_scope("optimizer", ["adam"]):
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    with hps.conditional_scope("optimizer", ["sgd"]):
        hps.Float("learning_rate", 1e-4, 1.0, sampling="log")
    oracle = make(tmp_path, hps=hps, lr_options={"num_seeds": 1})
    finish_probe(oracle, oracle.create_trial("t"), lr=3e-4, low=1e-4, high=1e-3)
    finish_probe(oracle, oracle.create_trial("t"), lr=3e-2, low=1e-2, high=5e-2)
    adam, sgd = [h for h in oracle.get_space().space if h.name == "learning_rate"]
    assert (adam.min_value, adam.max_value) == (1e-4, 1e-3)
    assert (sgd.min_value, sgd.max_value) == (1e-2, 5e-2)
    # (Trials are not run here: Keras Tuner 1.4.8's ensure_active_values drops the value
    # of a name that also has an inactive entry, a limitation of its own.)


def test_seed_lr_is_scaled_to_the_trial_batch_size(tmp_path):
    hps = space(batch_size=True)
    oracle = make(tmp_path, hps=hps, lr_options={"num_seeds": 4})
    probe = oracle.create_trial("tuner0")
    finish_probe(oracle, probe, batch_size=16, **{ko.PROBE_OPTIMIZER: "SGD"})
    trials = [run_trial(oracle) for _ in range(4)]
    seeds = oracle.lr_state["probes"]["*"]["seeds"]
    for t, seed in zip(trials, seeds, strict=True):
        v = t.hyperparameters.values
        want = seed if v["batch_size"] == 16 else min(seed * 4, 1e-2)  # linear for SGD
        assert v["learning_rate"] == pytest.approx(want)
    assert any(t.hyperparameters.values["batch_size"] == 64 for t in trials)


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
    assert ko.is_probe_trial(again.create_trial("tuner0"))


def test_a_probe_ending_after_a_reload_is_ignored_and_redone(tmp_path):
    oracle = make(tmp_path)
    stale = oracle.create_trial("tuner0")
    oracle.save()
    restarted = make(tmp_path)
    restarted.reload()  # e.g. the chief restarted while a worker ran the probe
    finish_probe(restarted, stale)  # no KeyError, no effect
    assert restarted.lr_state["probes"]["*"]["status"] == "pending"
    assert lr_bounds(restarted) == (1e-5, 1e-1)
    assert ko.is_probe_trial(restarted.create_trial("tuner0"))


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
    assert not ko.is_probe_trial(nxt)
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
    same = ko.load_lr_report(os.path.join(tmp_path, "p"))
    assert same.interval == report.interval and same.probes["*"].seeds == report.probes["*"].seeds
