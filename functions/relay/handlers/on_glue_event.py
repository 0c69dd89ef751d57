"""on_glue_event: Glue's job and crawler state changes, and Glue Data Quality's results, complete the waiting
steps' tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from relay.adapters.wiring import control_plane
from relay.logic.steps import on_crawler_event, on_job_event, on_quality_event
from relay.models import CrawlerStateChange, JobStateChange, QualityResultsAvailable
from relay.observability import count, logger, metrics, tracer
from relay.settings import GlueEventSettings

JOB_STATE_CHANGE = "Glue Job State Change"
CRAWLER_STATE_CHANGE = "Glue Crawler State Change"
QUALITY_SOURCE = "aws.glue-dataquality"
QUALITY_RESULTS = "Data Quality Evaluation Results Available"
Change = JobStateChange | CrawlerStateChange | QualityResultsAvailable


def parse_change(event: dict[str, Any]) -> Change:
    """The Glue state change an EventBridge event carries; ValueError names what is wrong with it."""
    envelope = EventBridgeModel.model_validate(event)
    if envelope.source == QUALITY_SOURCE:
        if envelope.detail_type != QUALITY_RESULTS:
            raise ValueError(f"detail-type {envelope.detail_type!r} is not {QUALITY_RESULTS!r}")
        return QualityResultsAvailable.model_validate(envelope.detail)
    if envelope.source != "aws.glue":
        raise ValueError(f"source {envelope.source!r} is not aws.glue or {QUALITY_SOURCE}")
    if envelope.detail_type == JOB_STATE_CHANGE:
        return JobStateChange.model_validate(envelope.detail)
    if envelope.detail_type == CRAWLER_STATE_CHANGE:
        return CrawlerStateChange.model_validate(envelope.detail)
    raise ValueError(f"detail-type {envelope.detail_type!r} is not a Glue state change")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        change = parse_change(event)
    except (ValidationError, ValueError) as e:  # ValidationError is a ValueError; named for the reader
        # A malformed event will not parse on a retry either: log it and let it go.
        logger.warning("malformed event skipped", extra={"reason": str(e)[:1000]})
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
        return {"verdict": "rejected: malformed event"}
    plane = control_plane(GlueEventSettings.from_env())
    now = datetime.now(UTC)
    if isinstance(change, JobStateChange):
        logger.append_keys(job=change.job_name, job_run_id=change.job_run_id, state=change.state)
        verdict = on_job_event(change, plane, now)
    elif isinstance(change, QualityResultsAvailable):
        logger.append_keys(evaluation_run_id=change.context.run_id, state=change.state)
        verdict = on_quality_event(change, plane, now)
    else:
        logger.append_keys(crawler=change.crawler_name, state=change.state)
        verdict = on_crawler_event(change, plane, now)
    count("StepsCompleted", verdict.completed)
    count("EventsIgnored", int(verdict.completed == 0))
    if verdict.files_set_aside:
        count("LandedFilesSetAside", verdict.files_set_aside, pipeline=verdict.pipeline)
        logger.warning(
            "landed files set aside unread; the step's summary names each and why",
            extra={"files_set_aside": verdict.files_set_aside},
        )
    logger.info(verdict.reason, extra={"completed": verdict.completed})
    return {"completed": verdict.completed, "verdict": verdict.reason}
