"""on_arrival: a batch of S3 "Object Created" events (via SQS) → runs of the pipelines they land for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from relay.adapters.wiring import control_plane
from relay.contract import catalog
from relay.errors import RelayError
from relay.logic.arrivals import ArrivalResult, route, start_runs
from relay.models import LandedObject
from relay.observability import count, logger, metrics, tracer
from relay.settings import ArrivalSettings

processor = BatchProcessor(event_type=EventType.SQS)


class ClaimPendingError(RelayError):
    """Another invocation claimed this object moments ago and has not started its run yet."""


def landed_object(body: str) -> LandedObject:
    event = S3EventNotificationEventBridgeModel.model_validate_json(body)
    detail = event.detail
    if not detail.object.etag:  # S3 always sends it; an object is claimed by its content, never by ""
        raise ValueError(f"the Object Created event for {detail.object.key!r} carries no etag")
    return LandedObject(
        bucket=detail.bucket.name,
        key=detail.object.key,
        etag=detail.object.etag,
        version_id=detail.object.version_id,
        size=None if detail.object.size is None else int(detail.object.size),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    settings = ArrivalSettings.from_env()
    now = datetime.now(UTC)
    objects: dict[str, LandedObject] = {}
    for raw in event.get("Records", []):
        record = SQSRecord(raw)
        try:
            objects[record.message_id] = landed_object(record.body)
        except ValueError as e:  # pydantic's ValidationError included
            logger.warning(
                "not an S3 Object Created event; skipped",
                extra={"message_id": record.message_id, "reason": str(e)[:500]},
            )
            metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
    routed = route(list(objects.values()), catalog())
    for obj in routed.unrouted:
        logger.warning("object under no pipeline's prefix; left as it is", extra={"uri": obj.uri})
    for obj in routed.folders:
        logger.info("folder marker (a key ending in /), not a file; ignored", extra={"uri": obj.uri})
    count("ObjectsUnrouted", len(routed.unrouted))
    count("FolderMarkersIgnored", len(routed.folders))
    plane = control_plane(settings)
    results: list[ArrivalResult] = []
    for name, landed in routed.by_pipeline.items():
        results += start_runs(
            catalog().pipelines[name],
            landed,
            plane,
            now,
            ingest_date=now.strftime("%Y-%m-%d"),
            orphan_after=timedelta(seconds=settings.orphan_claim_seconds),
        )
    for result in results:
        logger.info(
            "arrivals processed",
            extra={
                "pipeline": result.pipeline,
                "run_id": result.run_id,
                "started": result.started,
                "objects": len(result.objects),
                "duplicates": len(result.duplicates),
                "retry": len(result.retry),
            },
        )
        count("ObjectsAccepted", len(result.objects), pipeline=result.pipeline)
        count("DuplicateObjects", len(result.duplicates), pipeline=result.pipeline)
        count("RunsStarted", int(result.started), pipeline=result.pipeline)
    retry = {obj for result in results for obj in result.retry}

    def record_handler(record: SQSRecord) -> None:
        if objects.get(record.message_id) in retry:
            raise ClaimPendingError(f"{objects[record.message_id].uri} is claimed by a run not started yet")

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
