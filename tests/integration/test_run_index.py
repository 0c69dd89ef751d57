"""The run index on moto (the table built from template.yaml): newest first across pipelines, pages that
never repeat or skip a run, filters, and reads bounded by the key rather than the table's size."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from relay.contract import RunStatus, Trigger, run_key, run_sort, runs_pk

from gluerelay.runindex import QueryError, RunQuery, all_runs, date_range, query_runs
from tests.template import resource

pytestmark = pytest.mark.integration
T0 = datetime(2026, 9, 1, tzinfo=UTC)
PIPELINES = ["customers", "orders"]


@dataclass(frozen=True)
class Run:
    run_id: str
    pipeline: str
    status: RunStatus
    trigger: Trigger
    started_at: str
    ingest_date: str


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    properties = resource("ControlTable")["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="control",
            **{k: properties[k] for k in ("BillingMode", "AttributeDefinitions", "KeySchema")},
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        )
        yield client


def put_runs(dynamodb: Any, runs: list[Run]) -> None:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("control")
    with table.batch_writer() as batch:
        for run in runs:
            batch.put_item(
                Item={
                    **run_key(run.run_id),
                    "run_id": run.run_id,
                    "pipeline": run.pipeline,
                    "status": run.status.value,
                    "trigger": run.trigger.value,
                    "started_at": run.started_at,
                    "ingest_date": run.ingest_date,
                    "executions": 1,
                    "input": "x" * 2000,  # not projected: a listing never reads it
                    "runs_pk": runs_pk(run.pipeline),
                    "run_sort": run_sort(run.started_at, run.run_id),
                }
            )


def history(count: int, *, seed: int = 7, failed_every: int = 0) -> list[Run]:
    """`count` runs over the pipelines, one every ~10 minutes from T0, some starting at the same
    millisecond (a backfill's), each writing its start's date (a manual one now and then an older date)."""
    rng = random.Random(seed)
    runs = []
    moment = T0
    for n in range(count):
        if n % 5:  # every fifth run starts at the same millisecond as the one before
            moment += timedelta(minutes=rng.randint(1, 20), milliseconds=rng.randint(0, 999))
        pipeline = PIPELINES[n % len(PIPELINES)]
        trigger = [Trigger.S3, Trigger.SCHEDULE, Trigger.MANUAL][n % 3]
        ingest = moment.date() - timedelta(days=3 if trigger is Trigger.MANUAL and n % 2 else 0)
        failed = failed_every and n % failed_every == 0
        runs.append(
            Run(
                run_id=f"{pipeline}-r{n:06d}",
                pipeline=pipeline,
                status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
                trigger=trigger,
                started_at=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                ingest_date=ingest.isoformat(),
            )
        )
    return runs


def newest_first(runs: list[Run]) -> list[str]:
    return [r.run_id for r in sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)]


def test_pages_list_every_pipelines_runs_newest_first_never_repeating_or_skipping_one(dynamodb: Any) -> None:
    runs = history(230)
    put_runs(dynamodb, runs)
    listed, token, pages = [], None, 0
    while True:
        page = query_runs(dynamodb, "control", RunQuery(PIPELINES), limit=40, token=token)
        assert len(page.runs) <= 40
        listed += [r.run_id for r in page.runs]
        pages += 1
        if page.next_token is None:
            break
        token = page.next_token
    assert listed == newest_first(runs)
    assert pages == 6  # 5 full pages, then 30 runs and no token
    one = query_runs(dynamodb, "control", RunQuery(["orders"]), limit=1000)
    assert [r.run_id for r in one.runs] == newest_first([r for r in runs if r.pipeline == "orders"])
    assert one.next_token is None


def test_runs_started_while_paging_never_shift_the_pages(dynamodb: Any) -> None:
    runs = history(50)
    put_runs(dynamodb, runs)
    first = query_runs(dynamodb, "control", RunQuery(PIPELINES), limit=20)
    put_runs(
        dynamodb,
        [
            Run(
                "customers-new",
                "customers",
                RunStatus.RUNNING,
                Trigger.S3,
                "2027-01-01T00:00:00.000Z",
                "2027-01-01",
            )
        ],
    )
    rest = list(all_runs(dynamodb, "control", RunQuery(PIPELINES)))
    assert rest[0].run_id == "customers-new"
    second = query_runs(dynamodb, "control", RunQuery(PIPELINES), limit=100, token=first.next_token)
    assert [r.run_id for r in first.runs + second.runs] == newest_first(runs)


def test_filters_select_by_status_trigger_and_ingest_date(dynamodb: Any) -> None:
    runs = history(300, failed_every=7)
    put_runs(dynamodb, runs)
    failed = list(all_runs(dynamodb, "control", RunQuery(PIPELINES, status=RunStatus.FAILED)))
    assert [r.run_id for r in failed] == newest_first([r for r in runs if r.status is RunStatus.FAILED])
    manual = list(all_runs(dynamodb, "control", RunQuery(["customers"], trigger=Trigger.MANUAL)))
    expected = [r for r in runs if r.trigger is Trigger.MANUAL and r.pipeline == "customers"]
    assert [r.run_id for r in manual] == newest_first(expected) and expected
    low, high = date(2026, 8, 30), date(2026, 9, 1)  # back-dated manual runs started Sep 2-3 too
    dated = list(all_runs(dynamodb, "control", RunQuery(PIPELINES, ingest_from=low, ingest_to=high)))
    expected = [r for r in runs if low.isoformat() <= r.ingest_date <= high.isoformat()]
    assert [r.run_id for r in dated] == newest_first(expected)
    assert any(r.trigger is Trigger.MANUAL and r.ingest_date < r.started_at[:10] for r in expected)


def test_a_window_reads_only_the_runs_started_inside_it(dynamodb: Any) -> None:
    """The key bounds the read: a day's runs out of weeks of history cost what the day holds."""
    runs = history(1500)
    put_runs(dynamodb, runs)
    since = datetime(2026, 9, 10, tzinfo=UTC)
    inside = [r for r in runs if r.started_at >= "2026-09-10"]
    page = query_runs(dynamodb, "control", RunQuery(PIPELINES, started_since=since), limit=1000)
    assert [r.run_id for r in page.runs] == newest_first(inside)
    assert page.examined == len(inside) < len(runs) / 2
    # An ingest-date range reads the runs started since a day before its first date, no more.
    low = date(2026, 9, 12)
    page = query_runs(dynamodb, "control", RunQuery(PIPELINES, ingest_from=low), limit=1000)
    assert page.examined == sum(r.started_at >= "2026-09-11" for r in runs) < len(runs) / 2
    assert [r.run_id for r in page.runs] == newest_first([r for r in runs if r.ingest_date >= "2026-09-12"])


def test_a_rare_filter_reads_a_bounded_number_of_runs_per_call_and_goes_on_with_the_token(
    dynamodb: Any,
) -> None:
    runs = history(1200, failed_every=400)  # three failed runs, far apart
    put_runs(dynamodb, runs)
    query = RunQuery(PIPELINES, status=RunStatus.FAILED)
    found, token, calls = [], None, 0
    while True:
        page = query_runs(dynamodb, "control", query, limit=10, token=token, max_examined=300)
        assert page.examined <= 300 + 150  # the budget, plus the page that crossed it
        found += [r.run_id for r in page.runs]
        calls += 1
        if page.next_token is None:
            break
        token = page.next_token
    assert found == newest_first([r for r in runs if r.status is RunStatus.FAILED])
    assert calls > 1


def test_a_record_from_before_the_index_is_not_listed(dynamodb: Any) -> None:
    put_runs(dynamodb, history(3))
    dynamodb.put_item(
        TableName="control",
        Item={
            **{k: {"S": v} for k, v in run_key("customers-old").items()},
            "run_id": {"S": "customers-old"},
            "pipeline": {"S": "customers"},
            "status": {"S": "SUCCEEDED"},
        },
    )
    assert "customers-old" not in [r.run_id for r in all_runs(dynamodb, "control", RunQuery(PIPELINES))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-31", "is not a date range"),
        ("2026-11-01...2026-11-03", "is not a date range"),
        ("..", "names no date"),
        ("yesterday", "is not a date range"),
    ],
)
def test_a_bad_date_range_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        date_range(text)


def test_date_ranges_read_as_written() -> None:
    assert date_range("2026-11-01..2026-11-30") == (date(2026, 11, 1), date(2026, 11, 30))
    assert date_range("2026-11-01..") == (date(2026, 11, 1), None)
    assert date_range("..2026-11-30") == (None, date(2026, 11, 30))
    assert date_range("2026-11-05") == (date(2026, 11, 5), date(2026, 11, 5))
    with pytest.raises(QueryError, match="run backwards"):
        RunQuery(PIPELINES, ingest_from=date(2026, 11, 5), ingest_to=date(2026, 11, 1))


def test_a_token_not_printed_by_a_listing_is_refused(dynamodb: Any) -> None:
    with pytest.raises(QueryError, match="not a token a listing printed"):
        query_runs(dynamodb, "control", RunQuery(PIPELINES), limit=5, token="garbage!")
    with pytest.raises(QueryError, match="lists nothing"):
        query_runs(dynamodb, "control", RunQuery(PIPELINES), limit=0)


def test_pages_inside_a_window_never_repeat_the_run_a_page_ended_with(dynamodb: Any) -> None:
    runs = history(200)
    put_runs(dynamodb, runs)
    query = RunQuery(PIPELINES, started_since=datetime(2026, 9, 1, 12, tzinfo=UTC))
    listed, token = [], None
    while True:
        page = query_runs(dynamodb, "control", query, limit=7, token=token)
        listed += [r.run_id for r in page.runs]
        if (token := page.next_token) is None:
            break
    assert listed == newest_first([r for r in runs if r.started_at >= "2026-09-01T12"])
