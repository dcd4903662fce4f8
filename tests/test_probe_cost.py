"""benchmarks.probe_cost: a --quick run keeps away from the full figures."""

import pytest

from benchmarks import probe_cost

EDGES = {"lr": 1e-3, "edge": 1e-2, "differential_edge": 1e-2, "range_test_edge": 1e-2}
FIT = {"cold_s": 1.0, "warm_s": 0.5, "rss_mb": 100.0, "steps": 10}
PROBE = {
    "cold_s": 2.0,
    "warm_s": 0.5,
    "rss_mb": 110.0,
    "full_s": 3.0,
    "budgeted": EDGES,
    "full": EDGES,
    "range_test_steps": 100,
    "lr_points": 50,
    "subsamples": 20,
    "stop_reason": "settled",
}


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """Children replaced by fixed figures; the JSON files and RESULTS.md under tmp_path."""
    monkeypatch.setattr(probe_cost, "OUT", tmp_path / "probe_cost.json")
    monkeypatch.setattr(probe_cost, "QUICK_OUT", tmp_path / "probe_cost_quick.json")
    monkeypatch.setattr(
        probe_cost, "_run_child", lambda kind, name, backend: dict(FIT if kind == "fit" else PROBE)
    )
    written = []
    monkeypatch.setattr(
        probe_cost.common, "update_results_md", lambda section, body: written.append(section)
    )
    return tmp_path, written


def test_quick_writes_its_own_file_and_leaves_results_md_alone(fake_run):
    tmp_path, written = fake_run
    assert probe_cost.main(["--quick"]) == 0
    assert (tmp_path / "probe_cost_quick.json").exists()
    assert not (tmp_path / "probe_cost.json").exists() and written == []


def test_a_full_run_writes_the_results_and_says_what_was_not_measured(fake_run, capsys):
    tmp_path, written = fake_run
    assert probe_cost.main(["--tasks", "ts_sgd", "--backends", "jax"]) == 0
    assert (tmp_path / "probe_cost.json").exists() and written == ["Probe cost"]
    runs = {"jax/ts_sgd": {}, "jax/mlp_100k": {}, "torch/bn_cnn": {}}
    assert probe_cost._not_measured(runs) == (
        "bn_cnn, resnet, transformer on jax; resnet, transformer, mlp_100k on torch"
    )
