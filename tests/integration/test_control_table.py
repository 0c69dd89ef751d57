"""The DynamoDB adapter on moto, with the table built from template.yaml (so they cannot drift)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from relay.adapters.dynamodb import ControlTable
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


def request(token: str) -> StepRequest:
    return StepRequest(
        kind=StepKind.JOB, name="extract_customers", run_id="r1", step="01-extract", token=token
    )


def test_a_step_is_completed_once_and_leaves_the_active_index(table: ControlTable) -> None:
    step = table.open_step(request("t1"), T0)
    table.record_glue_run(step.ref, 1, "jr_1")
    assert [s.step for s in table.active_steps(T0 + timedelta(seconds=1))] == ["01-extract"]
    assert table.active_steps(T0) == []  # opened_before is exclusive
    decided = table.begin_completion(step, Outcome(succeeded=True, facts={"rows": {"rows_read": 3}}), T0)
    assert decided.status == StepStatus.COMPLETING and decided.glue_run_id == "jr_1"
    with pytest.raises(ConditionFailedError):
        table.begin_completion(step, Outcome(succeeded=False), T0)
    assert [s.status for s in table.active_steps(T0 + timedelta(seconds=1))] == [StepStatus.COMPLETING]
    table.finish_completion(step.ref, StepStatus.SUCCEEDED, T0)
    table.finish_completion(step.ref, StepStatus.CLOSED, T0)  # a racing completer's late close: no effect
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
    owner = StepRef(run_id="r1", step="02-crawl-raw")
    taken = Lease(
        crawler="raw_customers", state=LeaseState.CRAWLING, owners=[owner], crawl_requested_at=T0, version=1
    )
    table.put_lease(taken, 0)
    with pytest.raises(ConditionFailedError):
        table.put_lease(taken.model_copy(update={"version": 2}), 0)  # a racer that read version 0
    assert table.get_lease("raw_customers") == taken


def test_an_object_is_claimed_by_one_run(table: ControlTable) -> None:
    obj = LandedObject(bucket="data", key="landing/a.csv", etag="e1")
    assert table.claim(obj, "s3-a", T0) is None
    assert table.claim(obj, "s3-a", T0) is None  # the same run again (a redelivery)
    assert table.claim(obj, "s3-b", T0 + timedelta(minutes=1)) == Claim(run_id="s3-a", claimed_at=T0)
    assert not table.take_over(obj, "s3-x", "s3-b", T0)
    assert table.take_over(obj, "s3-a", "s3-b", T0 + timedelta(minutes=2))
    assert table.claim(obj, "s3-a", T0) == Claim(run_id="s3-b", claimed_at=T0 + timedelta(minutes=2))


def test_the_run_status_is_read_from_the_run_record_the_state_machine_writes(table: ControlTable) -> None:
    assert table.run_status("run-1") is None
    # the item "Record the run as started" / "Record the run as failed" write (statemachine/pipeline.asl.json)
    table._table.put_item(Item={"pk": "RUN#run-1", "sk": "RUN", "run_id": "run-1", "status": "RUNNING"})
    assert table.run_status("run-1") == "RUNNING"
    table._table.update_item(
        Key={"pk": "RUN#run-1", "sk": "RUN"},
        UpdateExpression="SET #status = :s",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":s": "TIMED_OUT"},
    )
    assert table.run_status("run-1") == "TIMED_OUT"
