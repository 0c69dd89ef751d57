"""Pipeline schedules: which minutes an expression is due in, and one run per due tick, however many ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from relay.contract import Catalog, CatalogPipeline, ParamSpec, ScheduleTrigger, Trigger
from relay.logic.schedules import ScheduleError, parse, start_due_runs

from tests.fakes import FakeWorkflow

MONDAY_0300 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)  # a Monday


def due_minutes(expression: str, start: datetime, minutes: int) -> list[datetime]:
    schedule = parse(expression)
    return [m for i in range(minutes) if schedule.due(m := start + timedelta(minutes=i))]


def test_rates_are_due_on_epoch_aligned_minutes() -> None:
    assert len(due_minutes("rate(5 minutes)", MONDAY_0300, 60)) == 12
    assert due_minutes("rate(1 hour)", MONDAY_0300 + timedelta(minutes=1), 119) == [
        MONDAY_0300 + timedelta(hours=1)
    ]
    days = due_minutes("rate(1 day)", MONDAY_0300, 2 * 1440)
    assert days == [datetime(2026, 1, 6, tzinfo=UTC), datetime(2026, 1, 7, tzinfo=UTC)]  # at 00:00 UTC


@pytest.mark.parametrize(
    ("expression", "count"),
    [
        ("cron(0 3 * * ? *)", 1),  # 03:00 every day
        ("cron(15,45 * * * ? *)", 48),
        ("cron(*/20 9-10 * * ? *)", 6),
        ("cron(0 3 ? * MON-FRI *)", 1),  # a Monday
        ("cron(0 3 ? * SAT,SUN *)", 0),
        ("cron(0 3 5 JAN ? 2026)", 1),
        ("cron(0 3 6 * ? *)", 0),
    ],
)
def test_cron_expressions_as_eventbridge_reads_them(expression: str, count: int) -> None:
    assert len(due_minutes(expression, MONDAY_0300.replace(hour=0), 1440)) == count


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("rate(0 minutes)", "at least 1"),
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("every day", "expected rate"),
        ("cron(0 3 * * *)", "six fields"),
        ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 L * ? *)", "L, W and # are not supported"),
        ("cron(61 3 * * ? *)", "outside 0-59"),
        ("cron(0 3 ? * FUNDAY *)", "not a number"),
    ],
)
def test_a_bad_expression_is_refused_saying_why(expression: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse(expression)


def test_a_due_schedule_starts_one_run_named_after_its_minute_with_its_parameters() -> None:
    catalog = Catalog(
        pipelines={
            "nightly": CatalogPipeline(
                name="nightly",
                params={"source": ParamSpec(default="s3"), "days": ParamSpec(type="int", default=1)},
                schedules=[
                    ScheduleTrigger(expression="cron(0 3 * * ? *)", params={"source": "jdbc"}),
                    ScheduleTrigger(expression="rate(1 hour)"),
                ],
            ),
            "quiet": CatalogPipeline(name="quiet"),
        }
    )
    workflow = FakeWorkflow()
    runs = start_due_runs(catalog, MONDAY_0300 + timedelta(seconds=4), workflow)
    # Both schedules are due at 03:00: two runs, each with its own parameters
    assert [(r.run_id, r.started) for r in runs] == [
        ("nightly-schedule0-20260105T0300", True),
        ("nightly-schedule1-20260105T0300", True),
    ]
    pipeline, first = workflow.executions["nightly-schedule0-20260105T0300"]
    assert (pipeline, first.trigger, first.ingest_date, first.params) == (
        "nightly",
        Trigger.SCHEDULE,
        "2026-01-05",
        {"source": "jdbc", "days": 1},
    )
    # A duplicate (or retried) tick for the same minute starts nothing more
    again = start_due_runs(catalog, MONDAY_0300, workflow)
    assert [r.started for r in again] == [False, False] and len(workflow.executions) == 2
    assert start_due_runs(catalog, MONDAY_0300 + timedelta(minutes=1), workflow) == []
