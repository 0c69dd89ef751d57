"""The local cloud's Step Functions events: an execution's end is published in the shape AWS documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gluerelay.local import patches
from gluerelay.local.states import STATUS_CHANGE, ExecutionEvents
from tests.fakes import load_event
from tests.waiter import eventually

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture
def published() -> Iterator[list[tuple[str, str, dict[str, Any], list[str]]]]:
    seen: list[tuple[str, str, dict[str, Any], list[str]]] = []
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        undo = patches.install()
        events = ExecutionEvents(lambda *event: seen.append(event))
        events.install()
        try:
            yield seen
        finally:
            events.uninstall()
            undo()


def test_an_ended_execution_publishes_its_status_change_with_the_documented_fields(
    published: list[tuple[str, str, dict[str, Any], list[str]]],
) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    definition = {"StartAt": "boom", "States": {"boom": {"Type": "Fail", "Error": "Boom", "Cause": "why"}}}
    machine = sfn.create_state_machine(
        name="stack_demo", definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="run-1", input='{"run_id": "run-1"}')[
        "executionArn"
    ]

    # (only this execution's: an execution another test started may end while this one runs)
    [(source, detail_type, detail, resources)] = eventually(
        lambda: [e for e in published if e[3] == [arn]], 10, "the status change event"
    )

    documented = load_event("sfn-execution-aborted")
    assert (source, detail_type, resources) == (documented["source"], documented["detail-type"], [arn])
    assert detail_type == STATUS_CHANGE
    assert set(detail) == set(documented["detail"])
    assert (detail["executionArn"], detail["stateMachineArn"], detail["name"]) == (arn, machine, "run-1")
    assert (detail["status"], detail["error"], detail["cause"]) == ("FAILED", "Boom", "why")
    assert json.loads(detail["input"]) == {"run_id": "run-1"}
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
