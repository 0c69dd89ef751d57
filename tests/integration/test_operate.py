"""Operator commands' errors on moto: each names the problem and its fix (the happy path is scenario 12)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from gluerelay.operate import OperatorError, Target, resume

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """A stack named `ops` whose outputs name a control table holding one run of each status."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="control",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        for run, status in {"running": "RUNNING", "done": "SUCCEEDED", "broken": "FAILED"}.items():
            dynamodb.put_item(
                TableName="control",
                Item={
                    "pk": {"S": f"RUN#{run}"},
                    "sk": {"S": "RUN"},
                    "run_id": {"S": run},
                    "pipeline": {"S": "customers"},
                    "status": {"S": status},
                },
            )
        body = {
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {
                "ControlTableName": {"Value": "control"},
                "StateMachineArnPrefix": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:ops_"},
            },
        }
        with pytest.warns(UserWarning):  # moto does not model the handle; the outputs are what matter
            boto3.client("cloudformation", region_name=REGION).create_stack(
                StackName="ops", TemplateBody=json.dumps(body)
            )
        yield Target("ops", region=REGION)


def test_a_missing_stack_is_named_with_the_fix(stack: Target) -> None:
    with pytest.raises(OperatorError, match=r"stack nope not found in region us-east-1: deploy it"):
        Target("nope", region=REGION).outputs()


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("unknown", "no run unknown in stack ops"),
        ("running", "run running is RUNNING: only a FAILED, TIMED_OUT or ABORTED run can be resumed \\(wait"),
        ("done", "run done is SUCCEEDED: only a FAILED, TIMED_OUT or ABORTED run"),
        ("broken", "run broken has no recorded input: start it again instead"),
    ],
)
def test_only_a_failed_run_with_its_input_recorded_can_be_resumed(
    stack: Target, run: str, message: str
) -> None:
    with pytest.raises(OperatorError, match=message):
        resume(stack, run)


def test_missing_credentials_say_how_to_provide_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(OperatorError, match="no AWS credentials: configure a profile"):
        Target("ops", region=REGION, endpoint_url="http://127.0.0.1:9").outputs()


def test_an_unreachable_endpoint_says_to_start_the_local_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    target = Target("gluerelay-local", region=REGION, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(
        OperatorError, match=r"cannot reach http://127.0.0.1:9: is `gluerelay local up` running"
    ):
        target.outputs()


def test_any_other_refusal_is_reported_in_aws_words() -> None:
    def refused() -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Query")

    with pytest.raises(OperatorError, match="AWS refused Query on region us-east-1: AccessDeniedException"):
        Target("ops", region=REGION).call(refused)
