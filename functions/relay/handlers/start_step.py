"""start_step: the Lambda behind every ``waitForTaskToken`` step. Records the step, then starts Glue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from relay.adapters.wiring import control_plane
from relay.logic.steps import start_step
from relay.models import StepRequest
from relay.observability import count, logger, metrics, tracer
from relay.settings import StartStepSettings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=StepRequest)
def handler(event: StepRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(pipeline=event.pipeline, run_id=event.run_id, step=event.step, resource=event.name)
    result = start_step(event, control_plane(StartStepSettings.from_env()), datetime.now(UTC))
    count("StepsReused" if result.get("reused") else "StepsStarted", 1, pipeline=event.pipeline)
    logger.info(
        "step reused: it succeeded in an earlier execution" if result.get("reused") else "step started",
        extra=result,
    )
    return result
