"""on_schedule: the pipeline clock's tick (every minute) starts the runs whose schedules are due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from relay.adapters.wiring import control_plane
from relay.contract import catalog
from relay.logic.schedules import start_due_runs
from relay.observability import count, logger, metrics, tracer
from relay.settings import ScheduleSettings


def tick_time(event: dict[str, Any], now: datetime) -> datetime:
    """The minute the tick is for: the Scheduled Event's own time (a retried tick keeps it), else now."""
    try:
        tick = datetime.fromisoformat(str(event.get("time")).replace("Z", "+00:00"))
    except ValueError:
        logger.warning(
            "scheduled event without a readable time; ticking for now", extra={"time": event.get("time")}
        )
        return now
    return tick if tick.tzinfo else now


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    minute = tick_time(event, datetime.now(UTC))
    runs = start_due_runs(catalog(), minute, control_plane(ScheduleSettings.from_env()).workflow)
    count("SchedulesDue", len(runs))
    for run in runs:
        count("RunsStarted", int(run.started), pipeline=run.pipeline)
        logger.info(
            "scheduled run started" if run.started else "scheduled run had started already",
            extra={"pipeline": run.pipeline, "run_id": run.run_id},
        )
    return {"minute": minute.isoformat(), "runs": [run.run_id for run in runs if run.started]}
