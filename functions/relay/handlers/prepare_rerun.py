"""prepare_rerun: a backfill's step for one run. It claims the run's rerun for the backfill (idempotently:
asked again, it returns the same attempt), marks the steps to redo and refreshes the manifest
(relay.logic.reruns), and answers with the execution's name and input; the backfill's state machine starts
that execution itself (`states:startExecution.sync:2`) and waits for it, which is what bounds how many run
at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from relay.adapters.wiring import control_plane
from relay.contract import BACKFILL_ID_PATTERN, RUN_ID_PATTERN, STEP_ID_PATTERN
from relay.logic.reruns import RerunRefusedError, prepare
from relay.observability import count, logger, metrics, tracer
from relay.settings import PrepareRerunSettings


class RerunRefused(Exception):  # noqa: N818 - the error name the state machine's Catch records
    """The run cannot be rerun (RerunRefusedError's message is the cause)."""


class PrepareRerunRequest(BaseModel):
    """What the backfill's "Prepare the rerun" state sends."""

    model_config = ConfigDict(extra="forbid")

    backfill_id: str = Field(pattern=BACKFILL_ID_PATTERN)
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    from_step: str | None = Field(default=None, pattern=STEP_ID_PATTERN)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PrepareRerunRequest.model_validate(event)
    logger.append_keys(run_id=request.run_id, backfill_id=request.backfill_id)
    try:
        prepared = prepare(
            control_plane(PrepareRerunSettings.from_env()),
            request.run_id,
            request.from_step,
            by=f"backfill {request.backfill_id}",
            now=datetime.now(UTC),
            key=request.backfill_id,
        )
    except RerunRefusedError as e:
        count("RerunsRefused", 1)
        logger.warning("rerun refused", extra={"cause": str(e)})
        raise RerunRefused(str(e)) from e
    count("RerunsPrepared", 1)
    return {
        "execution_name": prepared.attempt.execution,
        "input": prepared.execution_input.model_dump(mode="json"),
        "steps": prepared.attempt.steps,
    }
