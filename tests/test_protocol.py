"""kt_lr._protocol: the probe's wire format, worker side and chief side, without Keras."""

import json
import math

import pytest

from kt_lr import _protocol as wire
from kt_lr._protocol import ProbeAnswer


def found(**changes):
    answer = ProbeAnswer(
        lr=3e-3,
        low=1e-3,
        high=1e-2,
        batch_size=32,
        candidates={"valley": 2e-3, "steepest": 4e-3},
        reasons=["valley at 2e-3", "edge at 1e-2"],
        optimizer="Adam",
        artifacts="/runs/p/kt_lr/kt_lr_probe_0",
    )
    for name, value in changes.items():
        setattr(answer, name, value)
    return answer


def wire_trip(answer, status="COMPLETED", message=None):
    """What the chief reads back: metrics filtered as the oracle keeps them, values as
    they come back (JSON-able scalars only)."""
    metrics, values = wire.encode(answer)
    metrics = wire.probe_metrics({"val_loss": float("nan"), **metrics})
    values = json.loads(json.dumps(values))
    assert all(isinstance(v, float) for v in metrics.values())
    return wire.decode(metrics, values, status, message)


def test_a_finding_survives_the_round_trip():
    answer = found()
    assert wire_trip(answer) == answer
    assert wire_trip(answer).ok


def test_an_error_survives_the_round_trip():
    answer = ProbeAnswer(error="ValueError: The training data has 3 samples")
    back = wire_trip(answer)
    assert back == answer and not back.ok


def test_encode_leaves_out_what_cannot_travel():
    metrics, values = wire.encode(found(candidates={"valley": 2e-3, "slide": math.nan}))
    assert wire.CANDIDATE_PREFIX + "slide" not in metrics
    assert metrics[wire.METRIC_OK] == 1.0 and metrics[wire.METRIC_BATCH_SIZE] == 32.0
    _, values = wire.encode(found(optimizer=None, artifacts=None))
    assert set(values) == {wire.PROBE_REASONS}
    metrics, values = wire.encode(ProbeAnswer(error="x" * 5000))
    assert metrics == {wire.METRIC_OK: 0.0} and len(values[wire.PROBE_ERROR]) == 2000


def test_metric_names_share_the_prefix_the_chief_keeps():
    metrics, _ = wire.encode(found())
    assert all(name.startswith(wire.METRIC_PREFIX) for name in metrics)
    assert wire.probe_metrics({"val_loss": 1.0, "kt_lr/lr": 2}) == {"kt_lr/lr": 2.0}


@pytest.mark.parametrize(
    "metrics, values, status, message, reason",
    [
        ({}, {}, "FAILED", "Traceback ...\n  ...\nRuntimeError: build exploded\n", "exploded"),
        ({}, {}, "INVALID", None, "the probe trial ended as INVALID"),
        ({}, {wire.PROBE_ERROR: "ValueError: boom"}, "FAILED", "x", "ValueError: boom"),
        ({wire.METRIC_OK: 0.0}, {}, "COMPLETED", None, "no probe result"),
        ({wire.METRIC_OK: 1.0, wire.METRIC_LR: 1e-3}, {}, "COMPLETED", None, "non-finite"),
        (
            {wire.METRIC_OK: 1.0, wire.METRIC_LR: 1e-3, wire.METRIC_LOW: 1e-2}
            | {wire.METRIC_HIGH: 1e-3},
            {},
            "COMPLETED",
            None,
            "low=0.01 > high=0.001",
        ),
    ],
)
def test_decode_judges_the_answer(metrics, values, status, message, reason):
    answer = wire.decode(metrics, values, status, message)
    assert not answer.ok and reason in answer.error


def test_an_error_value_wins_over_good_numbers():
    metrics, values = wire.encode(found())
    values[wire.PROBE_ERROR] = "RuntimeError: after the numbers"
    assert wire.decode(metrics, values).error == "RuntimeError: after the numbers"


def test_reasons_that_are_not_json_are_kept_as_text():
    metrics, values = wire.encode(found())
    values[wire.PROBE_REASONS] = "not [json"
    assert wire.decode(metrics, values).reasons == ["not [json"]
    values[wire.PROBE_REASONS] = ["already", "a list"]
    assert wire.decode(metrics, values).reasons == ["already", "a list"]


def test_request_marks_the_probe_and_carries_its_seed():
    values = wire.request({"learning_rate": 1e-5, "optimizer": "adam"}, "optimizer=adam", 17)
    assert values[wire.PROBE_MARKER] == "optimizer=adam" and wire.probe_seed(values) == 17
    assert wire.user_values(values) == {"learning_rate": 1e-5, "optimizer": "adam"}

    class Trial:
        class hyperparameters:  # noqa: N801 - the shape of a Keras Tuner trial
            pass

    Trial.hyperparameters.values = values
    assert wire.is_probe_trial(Trial)
    Trial.hyperparameters.values = {"learning_rate": 1e-5}
    assert not wire.is_probe_trial(Trial) and not wire.is_probe_trial(object())
    assert wire.is_probe_id(wire.PROBE_ID_PREFIX + "3") and not wire.is_probe_id("03")


def test_objective_placeholder_names_every_objective():
    class Single:
        name = "val_loss"

    class Multi:
        name = "multi_objective"
        name_to_direction = {"loss": "min", "val_loss": "min"}

    assert list(wire.objective_placeholder(Single())) == ["val_loss"]
    names = wire.objective_placeholder(Multi())
    assert list(names) == ["multi_objective", "loss", "val_loss"]
    assert all(math.isnan(v) for v in names.values())
