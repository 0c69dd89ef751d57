"""The DynamoDB adapter on moto, with the table built from template.yaml (so they cannot drift)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from relay.adapters.dynamodb import ControlTable
from relay.contract import RunAttempt, RunStatus, run_key
from relay.errors import ConditionFailedError
from relay.models import (
    Claim,
    LandedObject,
    Lease,
    LeaseState,
    Outcome,
    StepKind,
    StepRef,
    StepRequest,
    StepStatus,
)

from tests.template import resource

T0 = datetime(2026, 1, 1, tzinfo=UTC)
pytestmark = pytest.mark.integration


@pytest.fixture
def table() -> Iterator[ControlTable]:
    properties = resource("ControlTable")["Properties"]
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        created: Any = dynamodb.create_table(
            TableName="control",
            BillingMode=properties["BillingMode"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        )
        yield ControlTable(created)


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:stack_customers:r1"


def request(token: str, execution: str = EXECUTION) -> StepRequest:
    return StepRequest(
        pipeline="customers",
        kind=StepKind.JOB,
        name="extract_customers",
        run_id="r1",
        step="extract",
        token=token,
        execution_arn=execution,
        timeout_seconds=600,
    )


def test_a_completer_holding_an_earlier_attempt_cannot_close_the_next_one(table: ControlTable) -> None:
    first = table.open_step(request("t1"), T0)
    stale = table.begin_completion(first, Outcome(succeeded=True), T0)  # its completer then crashed
    second = table.open_step(request("t2"), T0 + timedelta(minutes=1))  # the step opened again
    table.begin_completion(second, Outcome(succeeded=True), T0 + timedelta(minutes=1))
    table.finish_completion(stale, StepStatus.CLOSED, T0 + timedelta(minutes=2))  # a stale sweep's close
    stored = table.get_step(first.ref)
    assert stored is not None
    assert (stored.attempt, stored.token, stored.status) == (2, "t2", StepStatus.COMPLETING)


def test_a_step_is_completed_once_and_leaves_the_active_index(table: ControlTable) -> None:
    step = table.open_step(request("t1"), T0)
    table.record_glue_run(step.ref, 1, "jr_1")
    assert [s.step for s in table.active_steps(T0 + timedelta(seconds=1))] == ["extract"]
    assert table.active_steps(T0) == []  # opened_before is exclusive
    decided = table.begin_completion(step, Outcome(succeeded=True, facts={"rows": {"rows_read": 3}}), T0)
    assert decided.status == StepStatus.COMPLETING and decided.glue_run_id == "jr_1"
    with pytest.raises(ConditionFailedError):
        table.begin_completion(step, Outcome(succeeded=False), T0)
    assert [s.status for s in table.active_steps(T0 + timedelta(seconds=1))] == [StepStatus.COMPLETING]
    table.finish_completion(step, StepStatus.SUCCEEDED, T0)
    table.finish_completion(step, StepStatus.CLOSED, T0)  # a racing completer's late close: no effect
    stored = table.get_step(step.ref)
    assert stored is not None and stored.status == StepStatus.SUCCEEDED
    assert stored.decided_at == T0
    assert stored.outcome is not None and stored.outcome.facts == {"rows": {"rows_read": 3}}
    assert table.active_steps(T0 + timedelta(seconds=1)) == []


def test_a_retry_opens_a_new_attempt_and_fences_the_old_one(table: ControlTable) -> None:
    first = table.open_step(request("t1"), T0)
    table.mark_start_failed(first.ref, 1, "ConcurrentRunsExceededException: busy", T0)
    second = table.open_step(request("t2"), T0 + timedelta(seconds=30))
    assert (second.attempt, second.status, second.token) == (2, StepStatus.OPEN, "t2")
    with pytest.raises(ConditionFailedError):
        table.record_glue_run(first.ref, 1, "jr_late")
    with pytest.raises(ConditionFailedError):  # the old token can no longer complete the step
        table.begin_completion(first, Outcome(succeeded=True), T0)


def test_lease_writes_are_versioned(table: ControlTable) -> None:
    assert table.get_lease("raw_customers") == Lease(crawler="raw_customers")
    owner = StepRef(run_id="r1", step="crawl_raw")
    taken = Lease(
        crawler="raw_customers", state=LeaseState.CRAWLING, owners=[owner], crawl_requested_at=T0, version=1
    )
    table.put_lease(taken, 0)
    with pytest.raises(ConditionFailedError):
        table.put_lease(taken.model_copy(update={"version": 2}), 0)  # a racer that read version 0
    assert table.get_lease("raw_customers") == taken


def test_an_object_is_claimed_by_one_run(table: ControlTable) -> None:
    obj = LandedObject(bucket="data", key="landing/customers/a.csv", etag="e1")
    assert table.claim(obj, "s3-a", T0) is None
    assert table.claim(obj, "s3-a", T0) is None  # the same run again (a redelivery)
    assert table.claim(obj, "s3-b", T0 + timedelta(minutes=1)) == Claim(run_id="s3-a", claimed_at=T0)
    assert not table.take_over(obj, "s3-x", "s3-b", T0)
    assert table.take_over(obj, "s3-a", "s3-b", T0 + timedelta(minutes=2))
    assert table.claim(obj, "s3-a", T0) == Claim(run_id="s3-b", claimed_at=T0 + timedelta(minutes=2))


def test_a_step_that_succeeded_stays_succeeded_when_its_run_is_resumed(table: ControlTable) -> None:
    step = table.open_step(request("t1"), T0)
    table.begin_completion(step, Outcome(succeeded=True, facts={"glue_run_id": "jr_1"}), T0)
    table.finish_completion(step, StepStatus.SUCCEEDED, T0)
    again = table.open_step(request("t2", EXECUTION + "-resume-1"), T0 + timedelta(hours=1))
    assert (again.status, again.attempt, again.token, again.execution_arn) == (
        StepStatus.SUCCEEDED,
        1,
        "t1",
        EXECUTION,
    )
    assert again.outcome is not None and again.outcome.facts == {"glue_run_id": "jr_1"}
    assert [s.step for s in table.run_steps("r1")] == ["extract"]


def test_a_run_is_ended_once_and_only_by_its_current_execution(table: ControlTable) -> None:
    assert table.get_run("r1") is None
    # what "Record the run as started" writes (gluerelay.pipelines.asl)
    table._table.put_item(
        Item={
            "pk": "RUN#r1",
            "sk": "RUN",
            "run_id": "r1",
            "pipeline": "customers",
            "status": "RUNNING",
            "trigger": "s3",
            "execution_arn": EXECUTION,
            "executions": 1,
        }
    )
    record = table.get_run("r1")
    assert record is not None and (record.status, record.pipeline, record.executions) == (
        RunStatus.RUNNING,
        "customers",
        1,
    )
    ended = {"failed_step": "extract", "error": "GlueJobFailed", "cause": "boom"}
    assert not table.end_run(
        "r1", EXECUTION + "-resume-9", RunStatus.FAILED, T0, **ended
    )  # not its execution
    assert table.end_run("r1", EXECUTION, RunStatus.FAILED, T0, **ended)
    assert not table.end_run("r1", EXECUTION, RunStatus.ABORTED, T0, failed_step=None, error="x", cause="y")
    record = table.get_run("r1")
    assert record is not None
    assert (record.status, record.failed_step, record.error, record.cause, record.ended_at) == (
        RunStatus.FAILED,
        "extract",
        "GlueJobFailed",
        "boom",
        T0.isoformat(),
    )


def test_a_lease_waiting_for_its_crawler_to_stop_is_found_by_the_sweeper_and_by_nothing_else(
    table: ControlTable,
) -> None:
    step = table.open_step(request("t1"), T0)
    pending = Lease(
        crawler="raw", state=LeaseState.PENDING_START, owners=[step.ref], crawl_requested_at=T0, version=1
    )
    table.put_lease(pending, 0)
    assert table.pending_crawls() == ["raw"]
    assert [s.step for s in table.active_steps(T0 + timedelta(seconds=1))] == ["extract"]  # steps only
    table.put_lease(pending.model_copy(update={"state": LeaseState.CRAWLING, "version": 2}), 1)
    assert table.pending_crawls() == []


def test_a_rerun_is_claimed_once_per_number_and_kept_in_the_runs_attempts(table: ControlTable) -> None:
    table._table.put_item(
        Item={
            **run_key("r1"),
            "run_id": "r1",
            "pipeline": "customers",
            "status": "SUCCEEDED",
            "executions": 1,
        }
    )
    first = RunAttempt(
        number=1, from_step="cleanse", steps=["cleanse"], by="ada", at=T0.isoformat(), execution="r1-rerun-1"
    )
    table.claim_rerun("r1", first, previous=0)
    with pytest.raises(ConditionFailedError):  # a second asker who read the run before the first claimed
        table.claim_rerun("r1", first.model_copy(update={"by": "grace"}), previous=0)
    record = table.get_run("r1")
    assert record is not None and (record.reruns, record.attempts) == (1, [first])
    table._table.update_item(
        Key=run_key("r1"),
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": "RUNNING"},
    )
    second = first.model_copy(update={"number": 2, "execution": "r1-rerun-2"})
    with pytest.raises(ConditionFailedError):  # a running run is not rerun
        table.claim_rerun("r1", second, previous=1)
    with pytest.raises(ConditionFailedError):  # nor one that does not exist
        table.claim_rerun("r2", first, previous=0)
    assert table.get_run("r2") is None


def test_a_superseded_step_is_opened_again_by_the_next_execution(table: ControlTable) -> None:
    step = table.open_step(request("t1"), T0)
    with pytest.raises(ConditionFailedError):  # still open: its Glue run may still complete it
        table.supersede_step("r1", "extract", 1, T0)
    table.begin_completion(step, Outcome(succeeded=True, facts={"glue_run_id": "jr_1"}), T0)
    table.finish_completion(step, StepStatus.SUCCEEDED, T0)
    table.supersede_step("r1", "extract", 1, T0 + timedelta(hours=1))
    stored = table.get_step(StepRef(run_id="r1", step="extract"))
    assert stored is not None and stored.status is StepStatus.SUPERSEDED
    again = table.open_step(request("t2", EXECUTION + "-rerun-1"), T0 + timedelta(hours=2))
    assert (again.status, again.attempt, again.token) == (StepStatus.OPEN, 2, "t2")
    table.supersede_step("r1", "cleanse", 1, T0)  # never reached: nothing to supersede, nothing written
    assert [s.step for s in table.run_steps("r1")] == ["extract"]
