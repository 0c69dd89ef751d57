"""Landed objects → runs of the pipelines whose prefixes they land under, each object in exactly one run.

A batch's objects go to their pipelines by prefix (prefixes never overlap); each pipeline's share is split
into runs of at most its batch_size objects. A run's id (and execution name) is a hash of its objects, so a
redelivered batch names the same run and StartExecution's ExecutionAlreadyExists means "already started".
Each object is also claimed once (bucket/key/etag), so a duplicate S3 event in a later batch starts nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from relay.contract import (
    Catalog,
    CatalogPipeline,
    ExecutionInput,
    LandedObject,
    Manifest,
    Trigger,
    arrival_run_id,
    resolve_params,
)
from relay.errors import ExecutionAlreadyExistsError
from relay.ports import ControlPlane

CLAIM_CONCURRENCY = 16  # claims written at once (each is one conditional PutItem)


@dataclass
class ArrivalResult:
    pipeline: str
    run_id: str | None
    started: bool
    objects: list[LandedObject] = field(default_factory=list)
    duplicates: list[LandedObject] = field(default_factory=list)
    retry: list[LandedObject] = field(default_factory=list)


@dataclass
class Routed:
    """A batch's objects by pipeline, and what no pipeline takes."""

    by_pipeline: dict[str, list[LandedObject]] = field(default_factory=dict)
    unrouted: list[LandedObject] = field(default_factory=list)  # under no pipeline's prefix
    folders: list[LandedObject] = field(default_factory=list)  # "folder" markers (keys ending in /)


def route(objects: list[LandedObject], catalog: Catalog) -> Routed:
    routed = Routed()
    for obj in sorted(set(objects), key=_order):
        if obj.key.endswith("/"):
            routed.folders.append(obj)
        elif (pipeline := catalog.for_key(obj.key)) is None:
            routed.unrouted.append(obj)
        else:
            routed.by_pipeline.setdefault(pipeline.name, []).append(obj)
    return routed


def _order(obj: LandedObject) -> tuple[str, str, str, str]:
    return (obj.bucket, obj.key, obj.etag, obj.version_id or "")


def start_runs(
    pipeline: CatalogPipeline,
    objects: list[LandedObject],
    plane: ControlPlane,
    now: datetime,
    *,
    ingest_date: str,
    orphan_after: timedelta,
) -> list[ArrivalResult]:
    """The pipeline's share of a batch, as runs of at most its batch_size objects."""
    size = pipeline.s3.batch_size if pipeline.s3 else len(objects)
    unique = sorted(set(objects), key=_order)
    return [
        start_run_for(
            pipeline, unique[i : i + size], plane, now, ingest_date=ingest_date, orphan_after=orphan_after
        )
        for i in range(0, len(unique), size)
    ]


def start_run_for(
    pipeline: CatalogPipeline,
    objects: list[LandedObject],
    plane: ControlPlane,
    now: datetime,
    *,
    ingest_date: str,
    orphan_after: timedelta,
) -> ArrivalResult:
    """Claim the objects for one run and start it. Objects another run already holds are duplicates; a
    claim whose run never started (its starter died) is taken over after ``orphan_after``; a younger one
    is returned in ``retry`` for the queue to redeliver."""
    unique = sorted(set(objects), key=_order)
    if not unique:
        return ArrivalResult(pipeline.name, run_id=None, started=False)
    run_id = arrival_run_id(pipeline.name, unique)
    result = ArrivalResult(pipeline.name, run_id=run_id, started=False)
    # One conditional write per object, several at a time: a batch of 4,424 objects (Lambda's 6 MB of
    # S3 events) claimed one by one takes most of the function's timeout; in parallel, a few seconds.
    with ThreadPoolExecutor(min(CLAIM_CONCURRENCY, len(unique))) as pool:
        holders = list(pool.map(lambda obj: plane.ledger.claim(obj, run_id, now), unique))
    for obj, holder in zip(unique, holders, strict=True):
        if holder is None:
            result.objects.append(obj)
        elif plane.workflow.execution_exists(pipeline.name, holder.run_id):
            result.duplicates.append(obj)
        elif now - holder.claimed_at >= orphan_after and plane.ledger.take_over(
            obj, holder.run_id, run_id, now
        ):
            result.objects.append(obj)
        else:
            result.retry.append(obj)
    if not result.objects:
        return result
    manifest = plane.bucket.write_manifest(
        Manifest(run_id=run_id, pipeline=pipeline.name, objects=result.objects)
    )
    execution_input = ExecutionInput(
        run_id=run_id,
        trigger=Trigger.S3,
        ingest_date=ingest_date,
        manifest_uri=manifest,
        params=resolve_params(pipeline.params, {}),
    )
    try:
        plane.workflow.start_execution(pipeline.name, run_id, execution_input)
        result.started = True
    except ExecutionAlreadyExistsError:
        result.started = False  # a redelivered batch: the run exists already
    return result
