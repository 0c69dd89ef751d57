"""The local CloudWatch's pure parts: EMF parsing, metric math, the alarm decision, and the clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gluerelay.local.clock import Clock
from gluerelay.local.cloudwatch import _decide, check_alarm, emf_metrics, metric_math

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def emf() -> str:
    record: dict[str, object] = {
        "_aws": {
            "Timestamp": 1_795_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "gluerelay",
                    "Dimensions": [["service", "Kind"]],
                    "Metrics": [{"Name": "StepsStarted", "Unit": "Count"}],
                }
            ],
        },
        "service": "gluerelay",
        "Kind": "job",
        "StepsStarted": [1.0, 2.0],
    }
    return json.dumps(record)


def test_an_emf_line_becomes_metric_data_with_its_dimensions_and_values() -> None:
    [(namespace, datum)] = emf_metrics(emf())

    assert namespace == "gluerelay"
    assert datum["MetricName"] == "StepsStarted"
    assert datum["Dimensions"] == [
        {"Name": "service", "Value": "gluerelay"},
        {"Name": "Kind", "Value": "job"},
    ]
    assert datum["Values"] == [1.0, 2.0]
    assert datum["Unit"] == "Count"
    assert datum["Timestamp"] == datetime.fromtimestamp(1_795_000_000, UTC)


def test_lines_that_are_not_emf_are_not_metrics() -> None:
    assert emf_metrics('{"level": "INFO", "message": "step started"}') == []
    assert emf_metrics("START RequestId: 1 Version: $LATEST") == []


def without(key: str) -> str:
    record = json.loads(emf())
    del record[key]
    return json.dumps(record)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (without("Kind"), "dimension"),
        (without("StepsStarted"), "StepsStarted has no value"),
        ('{"_aws": {"Timestamp": 1}}', "CloudWatchMetrics"),
        ('{"_aws": {"Timestamp": "soon", "CloudWatchMetrics": []}}', "Timestamp"),
        ('{"_aws": ', "Expecting value"),
    ],
)
def test_broken_emf_names_the_fault(line: str, problem: str) -> None:
    with pytest.raises((ValueError, TypeError), match=problem):
        emf_metrics(line)


def test_metric_math_arithmetic_on_a_missing_datapoint_is_missing_but_sum_of_an_array_is_not() -> None:
    values = {"start": 0.0, "events": 1.0, "arrivals": None, "sweeper": None}

    # Why the template's error alarm uses SUM([...]): with "+" one idle function hides the others' errors.
    assert metric_math("start + events + arrivals + sweeper", values) is None
    assert metric_math("SUM([start, events, arrivals, sweeper])", values) == 1.0
    assert metric_math("FILL(arrivals, 0) + events * 2", values) == 2.0
    assert metric_math("MAX([arrivals, sweeper])", values) is None
    assert metric_math("events / start", values) is None


def test_metric_math_names_what_is_not_emulated() -> None:
    with pytest.raises(ValueError, match="not emulated"):
        metric_math("ANOMALY_DETECTION_BAND(m1)", {"m1": 1.0})
    with pytest.raises(ValueError, match="no metric or expression with id m2"):
        metric_math("m1 + m2", {"m1": 1.0})
    with pytest.raises(ValueError, match="comparison"):
        check_alarm({"ComparisonOperator": "LessThanLowerThreshold"})


def alarm(**given: object) -> dict[str, object]:
    return {
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "EvaluationPeriods": 3,
        "TreatMissingData": "notBreaching",
        **given,
    }


@pytest.mark.parametrize(
    ("given", "series", "state"),
    [
        ({}, [1.0, 2.0, 1.0], "ALARM"),
        ({}, [None, None, 1.0], "OK"),  # 3 of 3 needed
        ({"DatapointsToAlarm": 1}, [None, None, 1.0], "ALARM"),
        ({}, [0.0, None, None], "OK"),
        ({}, [None, None, None], "OK"),
        ({"TreatMissingData": "missing"}, [None, None, None], "INSUFFICIENT_DATA"),
        ({"TreatMissingData": "ignore"}, [None, None, None], None),
        ({"TreatMissingData": "breaching"}, [None, None, None], "ALARM"),
        ({"DatapointsToAlarm": 2}, [1.0, 0.0, None], "OK"),
        ({"DatapointsToAlarm": 2}, [1.0, 0.0, 5.0], "ALARM"),
        ({"ComparisonOperator": "LessThanOrEqualToThreshold", "Threshold": 1.0}, [1.0, 0.0, 1.0], "ALARM"),
    ],
)
def test_alarm_decisions_follow_cloudwatch(
    given: dict[str, object], series: list[float | None], state: str
) -> None:
    decided, reason = _decide(alarm(**given), series, START, 60)

    assert decided == state
    if decided in ("ALARM", "OK"):
        assert reason.startswith("Threshold Crossed")


def test_the_clock_runs_each_missed_tick_of_a_schedule_and_one_evaluation() -> None:
    clock = Clock()
    ticks: list[float] = []
    evaluations: list[float] = []
    start = clock.now()
    clock.every("schedule", 300, ticks.append, catch_up=True)
    clock.every("alarms", 1, lambda _tick: evaluations.append(clock.now()), catch_up=False)
    try:
        clock.advance(900)

        # Each missed tick runs, and says when it was due
        assert [round(t - start) for t in ticks] == [300, 600, 900]
        assert len(evaluations) == 1
        with pytest.raises(ValueError, match="forward"):
            clock.advance(-1)
    finally:
        clock.stop()
