"""Landed objects → one pipeline run per batch, each object processed by exactly one run.

The run id (and execution name) is a hash of the batch's objects, so a redelivered batch names the same
run and StartExecution's ExecutionAlreadyExists means "already started". Each object is also claimed
once (bucket/key/etag), so a duplicate S3 event in a later batch starts nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from relay.errors import ExecutionAlreadyExistsError
from relay.models import LandedObject
from relay.ports import ControlPlane

RUN_ID_PREFIX = "s3-"


def run_id_for(objects: list[LandedObject]) -> str:
    """Deterministic: the same objects (in any order) always name the same run."""
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: (o.bucket, o.key, o.etag)):
        digest.update(f"{obj.bucket}\n{obj.key}\n{obj.etag}\n".encode())
    return RUN_ID_PREFIX + digest.hexdigest()[:32]


@dataclass
class ArrivalResult:
    run_id: str | None
    started: bool
    objects: list[LandedObject] = field(default_factory=list)
    duplicates: list[LandedObject] = field(default_factory=list)
    retry: list[LandedObject] = field(default_factory=list)


def start_run_for(
    objects: list[LandedObject],
    plane: ControlPlane,
    now: datetime,
    *,
    ingest_date: str,
    orphan_after: timedelta,
) -> ArrivalResult:
    """Claim the batch's objects for one run and start it. Objects another run already holds are
    duplicates; a claim whose run never started (its starter died) is taken over after ``orphan_after``;
    a younger one is returned in ``retry`` for the queue to redeliver."""
    unique = sorted(set(objects), key=lambda o: (o.bucket, o.key, o.etag))
    if not unique:
        return ArrivalResult(run_id=None, started=False)
    run_id = run_id_for(unique)
    result = ArrivalResult(run_id=run_id, started=False)
    for obj in unique:
        holder = plane.ledger.claim(obj, run_id, now)
        if holder is None:
            result.objects.append(obj)
        elif plane.workflow.execution_exists(holder.run_id):
            result.duplicates.append(obj)
        elif now - holder.claimed_at >= orphan_after and plane.ledger.take_over(
            obj, holder.run_id, run_id, now
        ):
            result.objects.append(obj)
        else:
            result.retry.append(obj)
    if not result.objects:
        return result
    manifest = plane.bucket.write_manifest(run_id, [o.uri for o in result.objects])
    try:
        plane.workflow.start_execution(run_id, execution_input(run_id, manifest, result.objects, ingest_date))
        result.started = True
    except ExecutionAlreadyExistsError:
        result.started = False  # a redelivered batch: the run exists already
    return result


def execution_input(
    run_id: str, manifest_uri: str, objects: list[LandedObject], ingest_date: str
) -> dict[str, Any]:
    """The state machine's input for an S3-triggered run."""
    return {
        "run_id": run_id,
        "trigger": "s3",
        "ingest_date": ingest_date,
        "objects": [o.uri for o in objects],
        "extract_arguments": {"--source": "s3", "--manifest_uri": manifest_uri, "--ingest_date": ingest_date},
        "cleanse_arguments": {"--ingest_date": ingest_date},
    }
