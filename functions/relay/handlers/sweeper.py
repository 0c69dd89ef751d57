"""sweeper: on a schedule, repairs steps whose Glue event was lost and measures the stuck ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from relay.adapters.wiring import control_plane
from relay.logic.steps import sweep
from relay.observability import logger, metrics, of_pipeline, tracer
from relay.settings import SweeperSettings


def as_of(event: dict[str, Any], now: datetime) -> datetime:
    """The sweep's reference time: the schedule's tick time when it is later than the clock here.

    On AWS the tick is a moment in the past, so this is `now`. The local cloud's clock can be moved forward
    (an hour passes in a test); its Scheduled Event then carries the later time, and steps age with it.
    """
    stamp = event.get("time") if isinstance(event, dict) else None
    try:
        tick = datetime.fromisoformat(str(stamp)) if stamp else None
    except ValueError:
        logger.warning("scheduled event with an unreadable time; sweeping as of now", extra={"time": stamp})
        return now
    if tick is None or tick.tzinfo is None:
        return now
    return max(now, tick)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = SweeperSettings.from_env()
    now = datetime.now(UTC)
    report = sweep(
        control_plane(settings),
        now,
        repair_after=timedelta(seconds=settings.repair_after_seconds),
        stuck_after=timedelta(seconds=settings.stuck_after_seconds),
        as_of=as_of(event, now),
    )
    metrics.add_metric(name="StuckSteps", unit=MetricUnit.Count, value=report.stuck_steps)
    for pipeline, stuck in report.stuck_by_pipeline.items():
        of_pipeline("StuckSteps", stuck, pipeline)
    metrics.add_metric(
        name="OldestOpenStepAgeSeconds", unit=MetricUnit.Seconds, value=report.oldest_open_seconds
    )
    metrics.add_metric(name="StepsRepaired", unit=MetricUnit.Count, value=len(report.repaired))
    metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=len(report.errors))
    for repair in report.repaired:
        logger.warning("step repaired", extra={"repair": repair})
    result = {
        "examined": report.examined,
        "repaired": report.repaired,
        "errors": report.errors,
        "stuck_steps": report.stuck_steps,
        "oldest_open_seconds": report.oldest_open_seconds,
    }
    logger.info("sweep done", extra=result)
    return result
