"""A real chief and two workers on 127.0.0.1: one probe per key, narrowing, timeouts.

Every test here starts processes: a free port (bound to port 0), a hard deadline for the
whole group, output to files (no pipe can fill up), and every process killed and reaped
in a ``finally``. The chief's state is read from its ``oracle.json`` and trial files.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kt_lr
from kt_lr import _protocol as wire

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 150  # seconds for a whole chief + workers group, start to exit

JOB = r'''
"""One search script for the chief and the workers; argv: directory tuner options-json."""
import json, os, signal, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, keras, keras_tuner
import kt_lr

directory, tuner_name, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
die_flag = options.pop("die_flag", None)
die_in_trial = options.pop("die_in_trial_flag", None)
keys = options.pop("optimizers", ["adam"])
fail_trials = options.pop("fail_trials", False)
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=128)).astype("float32")

class Model(keras_tuner.HyperModel):
    def build(self, hp):
        lr = hp.Float("learning_rate", 1e-5, 1.0, sampling="log")
        name = hp.Choice("optimizer", keys)
        if die_flag and "kt_lr/probe" in hp.values:
            try:  # the first worker to build a probe model dies on the spot
                os.close(os.open(die_flag, os.O_CREAT | os.O_EXCL))
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass
        optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[name](lr)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1)]
        )
        model.compile(optimizer, "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        if die_in_trial:
            try:  # the first worker to fit an ordinary trial dies on the spot
                os.close(os.open(die_in_trial, os.O_CREAT | os.O_EXCL))
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass
        if fail_trials:
            raise keras_tuner.errors.FailedTrialError("this trial fails on purpose")
        return model.fit(*args, **kwargs)

tuner = getattr(kt_lr, tuner_name)(
    Model(), objective="val_loss", directory=directory, project_name="d", seed=1,
    save_probe_plots=False, probe_options={"num_steps": 20, "num_subsamples": 5},
    overwrite=os.environ["KERASTUNER_TUNER_ID"] != "chief",  # refused on workers
    **options,
)
tuner.search(x, y, validation_split=0.25, epochs=1, batch_size=16, verbose=0)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_all(procs, deadline_at, grace=10.0):
    """Exit codes once all exited, "timeout" for those still running at the deadline.

    When the chief fails, the workers can only hang on it: they get ``grace`` seconds.
    """
    while time.monotonic() < deadline_at:
        codes = {k: p.poll() for k, p in procs.items()}
        if all(c is not None for c in codes.values()):
            break
        if codes["chief"] not in (None, 0):
            deadline_at = min(deadline_at, time.monotonic() + grace)
        time.sleep(0.2)
    return {k: ("timeout" if p.poll() is None else p.returncode) for k, p in procs.items()}


def run_group(tmp_path, tuner, options, workers=("tuner0", "tuner1"), deadline=DEADLINE):
    """Run a chief and ``workers``; return (exit codes, stderr texts, wall seconds)."""
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = dict(
        os.environ,
        KERASTUNER_ORACLE_IP="127.0.0.1",
        KERASTUNER_ORACLE_PORT=str(free_port()),
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        TF_NUM_INTRAOP_THREADS="1",
    )
    procs, logs = {}, {}
    start = time.monotonic()
    try:
        for tuner_id in ("chief", *workers):
            logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w+")
            procs[tuner_id] = subprocess.Popen(
                [sys.executable, str(script), str(tmp_path / "runs"), tuner, json.dumps(options)],
                env=dict(env, KERASTUNER_TUNER_ID=tuner_id),
                stdout=subprocess.DEVNULL,
                stderr=logs[tuner_id],
                start_new_session=True,
            )
        codes = wait_all(procs, start + deadline)
        elapsed = time.monotonic() - start
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        texts = {}
        for tuner_id, fh in logs.items():
            fh.seek(0)
            texts[tuner_id] = fh.read()
            fh.close()
    return codes, texts, elapsed


def chief_state(tmp_path):
    project = tmp_path / "runs" / "d"
    oracle = json.loads((project / "oracle.json").read_text())
    trials = {
        d.name[len("trial_") :]: json.loads((d / "trial.json").read_text())
        for d in project.iterdir()
        if d.name.startswith("trial_")
    }
    return project, oracle, trials


def lr_hp(oracle_json):
    (entry,) = [
        e for e in oracle_json["hyperparameters"]["space"] if e["config"]["name"] == "learning_rate"
    ]
    return entry["config"]


def describe(codes, texts):
    return "\n".join(f"--- {k} exit {codes.get(k)}\n{texts[k][-1500:]}" for k in texts)


def test_chief_and_two_workers_probe_once_per_optimizer_and_narrow(tmp_path):
    options = {"max_trials": 4, "optimizers": ["sgd", "adam"], "num_seeds": 1}
    codes, texts, elapsed = run_group(tmp_path, "RandomSearch", options)
    assert codes == {"tuner0": 0, "tuner1": 0, "chief": 0}, describe(codes, texts)
    print(f"\nchief + 2 workers: {elapsed:.1f} s")
    for worker in ("tuner0", "tuner1"):  # overwrite=True was refused on the workers
        assert "overwrite=True is ignored on a distributed worker" in texts[worker]
    project, saved, trials = chief_state(tmp_path)
    state = saved["kt_lr"]
    # exactly one probe per key, each done on its first attempt, curves saved once
    assert set(state["probes"]) == {"optimizer=sgd", "optimizer=adam"}
    for rec in state["probes"].values():
        assert rec["status"] == "done" and rec["attempts"] == 1, rec
        assert len(rec["attempt_log"]) == 1 and rec["attempt_log"][0]["outcome"] == "done"
        # the back-off: about one IDLE answer a second (without it: ~900 a second)
        assert rec["idle_answers"] <= 6 + 2 * rec["attempt_log"][0]["seconds"], rec
    assert len(list((project / "kt_lr").iterdir())) == 2
    # the saved space is the hull of the keys' narrowed intervals
    intervals = {
        rec["key_values"]["optimizer"]: (rec["interval"]["low"], rec["interval"]["high"])
        for rec in state["probes"].values()
    }
    hp = lr_hp(saved)
    assert hp["min_value"] == min(lo for lo, _ in intervals.values())
    assert hp["max_value"] == max(hi for _, hi in intervals.values())
    assert (hp["min_value"], hp["max_value"]) != (1e-5, 1.0)
    # every trial ran after the narrowing, inside its own optimizer's interval
    assert len(trials) == 4 and len(saved["end_order"]) == 4
    assert not any(tid.startswith(wire.PROBE_ID_PREFIX) for tid in trials)
    for trial in trials.values():
        assert trial["status"] == "COMPLETED"
        values = trial["hyperparameters"]["values"]
        low, high = intervals[values["optimizer"]]
        assert low <= values["learning_rate"] <= high, values
    report = kt_lr.load_lr_report(project)
    assert "optimizer=sgd" in report.summary() and report.interval == (
        hp["min_value"],
        hp["max_value"],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "tuner, options",
    [("BayesianOptimization", {"max_trials": 4}), ("Hyperband", {"max_epochs": 2})],
)
def test_other_drop_in_tuners_distributed(tmp_path, tuner, options):
    codes, texts, elapsed = run_group(tmp_path, tuner, dict(options, num_seeds=1))
    assert codes == {"tuner0": 0, "tuner1": 0, "chief": 0}, describe(codes, texts)
    print(f"\n{tuner}: chief + 2 workers: {elapsed:.1f} s")
    project, saved, trials = chief_state(tmp_path)
    rec = saved["kt_lr"]["probes"]["optimizer=adam"]
    assert rec["status"] == "done" and rec["attempts"] == 1
    low, high = rec["interval"]["low"], rec["interval"]["high"]
    assert trials and all(
        low <= t["hyperparameters"]["values"]["learning_rate"] <= high for t in trials.values()
    )


def run_with_one_killed(tmp_path, options, flag, when):
    """Run a RandomSearch group in which one worker kills itself; (dead, alive, texts)."""
    codes, texts, elapsed = run_group(tmp_path, "RandomSearch", options)
    print(f"\nchief + 2 workers, one killed {when}: {elapsed:.1f} s")
    assert flag.exists()
    dead = [w for w in ("tuner0", "tuner1") if codes[w] == -signal.SIGKILL]
    assert len(dead) == 1, describe(codes, texts)
    (alive,) = {"tuner0", "tuner1"} - set(dead)
    assert codes[alive] == 0 and codes["chief"] == 0, describe(codes, texts)
    return dead[0], alive, texts


@pytest.mark.slow
def test_a_worker_killed_during_its_probe_does_not_stall_the_search(tmp_path):
    flag = tmp_path / "died"
    options = {"max_trials": 2, "probe_timeout": 5, "die_flag": str(flag), "num_seeds": 1}
    dead, alive, _ = run_with_one_killed(tmp_path, options, flag, "during its probe")
    project, saved, trials = chief_state(tmp_path)
    rec = saved["kt_lr"]["probes"]["optimizer=adam"]
    assert rec["status"] == "done" and rec["attempts"] == 2
    first, second = rec["attempt_log"]
    assert first["tuner_id"] == dead and "probe_timeout=5 s; re-issued" in first["outcome"]
    # on busy cores the re-issued probe may outlast probe_timeout too: its answer is
    # then used late (the key had no finding), which is as good for the search
    assert second["tuner_id"] == alive and second["outcome"] in ("done", "late answer, used")
    low, high = rec["interval"]["low"], rec["interval"]["high"]
    assert len(trials) == 2 and all(
        low <= t["hyperparameters"]["values"]["learning_rate"] <= high for t in trials.values()
    )


@pytest.mark.slow
def test_a_worker_killed_during_a_trial_does_not_stall_the_search(tmp_path):
    flag = tmp_path / "died"
    options = {"max_trials": 3, "trial_timeout": 8, "die_in_trial_flag": str(flag)}
    _, _, texts = run_with_one_killed(tmp_path, options, flag, "during a trial")
    assert "trial_timeout=8 s" in texts["chief"], texts["chief"][-1500:]
    _, saved, trials = chief_state(tmp_path)
    (lost,) = saved["kt_lr"]["timed_out"]
    assert saved["kt_lr"]["timed_out"][lost] == 1
    assert len(trials) == 3 and all(t["status"] == "COMPLETED" for t in trials.values())
    assert not saved["ongoing_trials"] and not saved["retry_queue"]


@pytest.mark.slow
def test_the_chief_exits_when_failing_trials_end_the_search(tmp_path):
    options = {"max_trials": 8, "fail_trials": True, "max_consecutive_failed_trials": 2}
    codes, texts, elapsed = run_group(tmp_path, "RandomSearch", options)
    print(f"\nchief + 2 workers, failing trials: {elapsed:.1f} s")
    assert codes["chief"] not in (0, "timeout"), describe(codes, texts)
    assert "consecutive failures" in texts["chief"], describe(codes, texts)
    assert all(codes[w] != "timeout" for w in ("tuner0", "tuner1")), describe(codes, texts)
    _, saved, _ = chief_state(tmp_path)
    assert saved["kt_lr"]["probes"]["optimizer=adam"]["status"] == "done"


@pytest.mark.slow
def test_the_distributed_example_launch_script(tmp_path):
    script = ROOT / "examples" / "distributed" / "run_local.sh"
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        TIMEOUT="200",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    env.pop("KERASTUNER_ORACLE_PORT", None)
    args = ["bash", str(script), str(tmp_path / "dist"), "--", "--max-trials", "3"]
    proc = subprocess.Popen(
        [*args, "--epochs", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "probe kt_lr_probe_0 (optimizer=" in text and "best:" in text
    report = kt_lr.load_lr_report(tmp_path / "dist" / "digits")
    assert {p.status for p in report.probes.values()} == {"done"}
