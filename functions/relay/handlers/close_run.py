"""close_run: a run that did not succeed is named, its other Glue job runs stopped, its record ended.

Two callers: the workflow's failure path (a step failed or timed out: `$.failed` names it), and Step
Functions' own "Execution Status Change" event for executions that ended elsewhere (aborted by someone, or
failed outside any step). Both may arrive for one run; the second changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relay.adapters.wiring import control_plane
from relay.contract import (
    PIPELINE_NAME_PATTERN,
    RUN_ID_PATTERN,
    ExecutionInput,
    RunStatus,
    run_id_of_execution,
)
from relay.logic.runs import Failure, close_run, failure_from, named
from relay.observability import count, logger, metrics, tracer
from relay.settings import CloseRunSettings

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
RUN_METRICS = {
    RunStatus.FAILED: "RunsFailed",
    RunStatus.TIMED_OUT: "RunsTimedOut",
    RunStatus.ABORTED: "RunsAborted",
}


class CloseRunRequest(BaseModel):
    """What the workflow's "Close the failed run" state sends."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(pattern=PIPELINE_NAME_PATTERN)
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    execution_arn: str
    failed: dict[str, Any]


class ExecutionStatusChange(BaseModel):
    """The detail of Step Functions' "Execution Status Change" event."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    input: str | None = None
    error: str | None = None
    cause: str | None = None

    def run_id(self) -> str:
        """The run: the input's run_id (the input is left out when it is large), else from the name."""
        if self.input:
            try:
                return ExecutionInput.model_validate_json(self.input).run_id
            except ValidationError:
                logger.info("execution input is not gluerelay's; run id taken from the name")
        return run_id_of_execution(self.name)

    def failure(self) -> Failure:
        if self.status == "ABORTED":
            why = f": {self.error}: {self.cause}" if self.error or self.cause else ""
            return Failure(None, "RunAborted", f"execution {self.name} was stopped{why}", RunStatus.ABORTED)
        if self.status == "TIMED_OUT":
            return Failure(None, "RunTimedOut", f"execution {self.name} timed out", RunStatus.TIMED_OUT)
        return named(None, self.error or "RunFailed", self.cause or f"execution {self.name} failed")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        change = ExecutionStatusChange.model_validate(EventBridgeModel.model_validate(event).detail)
        if change.status in ("RUNNING", "SUCCEEDED"):
            return {"ignored": f"execution {change.status}"}
        run_id, execution_arn, failure = change.run_id(), change.execution_arn, change.failure()
        pipeline = change.state_machine_arn.rsplit(":", 1)[-1].partition("_")[2]
    else:
        request = CloseRunRequest.model_validate(event)
        run_id, execution_arn, pipeline = request.run_id, request.execution_arn, request.pipeline
        failure = failure_from(request.failed)
    logger.append_keys(pipeline=pipeline, run_id=run_id, step=failure.step)
    closed = close_run(
        run_id, execution_arn, failure, control_plane(CloseRunSettings.from_env()), datetime.now(UTC)
    )
    count("RunsClosed", int(closed.recorded))
    if closed.recorded:
        count(RUN_METRICS[closed.failure.status], 1, pipeline=pipeline)
    logger.info(
        "run closed" if closed.recorded else "run was closed already",
        extra={
            "status": closed.failure.status.value,
            "error": closed.failure.error,
            "closed_steps": closed.closed_steps,
        },
    )
    return {
        "status": closed.failure.status.value,
        "step": closed.failure.step,
        "error": closed.failure.error,
        "cause": closed.failure.cause[:32_000],
        "closed_steps": closed.closed_steps,
    }
