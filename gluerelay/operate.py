"""What an operator does to a deployed pipeline, on AWS or on a local cloud: the same boto3 calls, only the
endpoint differs.

A `Target` names the stack; its resources (control table, state machine) come from the stack's outputs
through DescribeStacks, on AWS as on the local cloud (which registers its stack the same way). Every
failure an operator can meet is an `OperatorError` whose message says how to fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

RESUMABLE = ("FAILED", "TIMED_OUT")
# An operator waits at a terminal: a few quick retries, then say what is wrong.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
# What the failure path adds to the run's state; a resumed run starts from the state before it.
FAILURE_KEYS = ("failure", "failed", "record_failure", "resume_from")


class OperatorError(Exception):
    """Something an operator asked cannot be done; the message names the problem and the fix."""


@dataclass
class Target:
    """A deployed gluerelay stack: on AWS (region, profile) or a local cloud (endpoint_url)."""

    stack: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _outputs: dict[str, str] | None = field(default=None, repr=False)
    _session: Any = field(default=None, repr=False)

    def where(self) -> str:
        return self.endpoint_url or f"region {self.region or self._region()}"

    def _region(self) -> str:
        return str(self._boto_session().region_name or "")

    def _boto_session(self) -> Any:
        if self._session is None:
            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound as e:
                raise OperatorError(f"{e}: name a profile from ~/.aws/config with --profile") from e
        return self._session

    def client(self, service: str) -> Any:
        try:
            return self._boto_session().client(service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)
        except NoRegionError as e:
            raise OperatorError("no AWS region: pass --region or set AWS_REGION") from e

    def outputs(self) -> dict[str, str]:
        """The stack's outputs (ControlTableName, StateMachineArn, ...)."""
        if self._outputs is None:
            stacks = self.call(
                lambda: self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"],
                missing=f"stack {self.stack} not found in {self.where()}: deploy it (sam deploy) "
                "or name the deployed one with --stack",
            )
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return self._outputs

    def output(self, key: str) -> str:
        outputs = self.outputs()
        if key not in outputs:
            raise OperatorError(f"stack {self.stack} has no output {key}: is it a gluerelay stack?")
        return outputs[key]

    def call(self, request: Any, *, missing: str | None = None) -> Any:
        """Run one AWS request, turning what an operator can fix into an OperatorError."""
        try:
            return request()
        except NoCredentialsError as e:
            raise OperatorError(
                "no AWS credentials: configure a profile (aws configure, --profile) or, for a local cloud, "
                "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
            ) from e
        except EndpointConnectionError as e:
            hint = (
                "is `gluerelay local up` running?" if self.endpoint_url else "check --region and the network"
            )
            raise OperatorError(f"cannot reach {self.where()}: {hint}") from e
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            message = e.response.get("Error", {}).get("Message", "")
            if missing and (
                code in {"ResourceNotFoundException", "ExecutionDoesNotExist"}
                or (code == "ValidationError" and "does not exist" in message)
            ):
                raise OperatorError(missing) from e
            raise


@dataclass(frozen=True)
class Resumed:
    run_id: str
    resume_from: str
    execution_arn: str
    previous_execution_arn: str


def run_record(target: Target, run_id: str) -> dict[str, Any]:
    """The run's record in the control table (plain values), or an OperatorError naming the run."""
    table = target.output("ControlTableName")
    item = target.call(
        lambda: target.client("dynamodb").get_item(
            TableName=table, Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}, ConsistentRead=True
        )
    ).get("Item")
    if not item:
        raise OperatorError(f"no run {run_id} in stack {target.stack} (table {table})")
    return {key: next(iter(value.values())) for key, value in item.items()}


def failed_state(target: Target, execution_arn: str) -> dict[str, Any]:
    """The run's state as the failed execution entered its Fail state: its input plus the outputs of
    the steps that succeeded."""
    sfn = target.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, reverseOrder=True, includeExecutionData=True
    )
    for page in target.call(lambda: list(pages), missing=f"execution {execution_arn} no longer exists"):
        for event in page["events"]:
            if event["type"] == "FailStateEntered":
                state: dict[str, Any] = json.loads(event["stateEnteredEventDetails"]["input"])
                return state
    raise OperatorError(f"execution {execution_arn} did not end in a Fail state: nothing to resume from")


def resume(target: Target, run_id: str) -> Resumed:
    """Start the run again at its failed step, with the outputs of the steps that succeeded: a new
    execution of the same run (same run id, same data partitions), named <run>-resume-<n>.

    RedriveExecution cannot do this here: the workflow catches a step's failure to record it, so the
    execution fails in its Fail state, which is where a redrive would restart.
    """
    run = run_record(target, run_id)
    status = run.get("status")
    if status not in RESUMABLE:
        raise OperatorError(
            f"run {run_id} is {status}: only a FAILED or TIMED_OUT run can be resumed"
            + (" (wait for it to end)" if status == "RUNNING" else "")
        )
    step = run.get("failed_step")
    previous = run.get("execution_arn")
    if not step or not previous:
        raise OperatorError(f"run {run_id} has no failed step or execution recorded: start it again instead")
    state = {k: v for k, v in failed_state(target, previous).items() if k not in FAILURE_KEYS}
    state["resume_from"] = step
    name = f"{run_id}-resume-{int(run.get('resumes', 0)) + 1}"
    machine = target.output("StateMachineArn")
    try:
        started = target.call(
            lambda: target.client("stepfunctions").start_execution(
                stateMachineArn=machine, name=name, input=json.dumps(state)
            )
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            raise OperatorError(f"run {run_id} is being resumed already (execution {name})") from e
        raise
    return Resumed(run_id, step, started["executionArn"], previous)
