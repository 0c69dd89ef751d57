"""Rerun a finished run from one of its steps: that step and every step downstream of it in the pipeline's
graph run again, in a new execution of the same run (same run id, same partitions, which the jobs
overwrite); the steps upstream are not re-executed.

How, in order:
1. the run record claims the rerun (a conditional write on its `reruns` count: one rerun at a time,
   numbered 1, 2, ...) and keeps it in `attempts` (who, when, from which step, which steps);
2. the run's manifest is refreshed when a redone step reads it: each landed object at its current version,
   so a file replaced since is read as corrected. A new version is claimed for the run in the object
   ledger (an arrival that comes later skips it); a version another run has processed is refused, naming
   that run, since its rows would be written twice;
3. the steps to redo are marked SUPERSEDED: start_step opens any step that has not SUCCEEDED, and answers
   a SUCCEEDED one at once, so the new execution re-executes exactly those (and a later resume of the
   rerun does too, should it fail);
4. the execution <run>-rerun-<n> starts with the run's input.

A rerun with a `key` (a backfill's id) is idempotent: asked again, it finds its attempt in the record and
starts (or finds) the same execution instead of claiming another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from relay.contract import (
    ExecutionInput,
    Manifest,
    RunAttempt,
    RunRecord,
    catalog,
    rerun_execution_name,
)
from relay.errors import ConditionFailedError, ExecutionAlreadyExistsError
from relay.models import LandedObject
from relay.observability import logger
from relay.ports import ControlPlane


class RerunRefusedError(Exception):
    """The rerun cannot be done; the message names the problem and the fix."""


@dataclass(frozen=True)
class Rerun:
    run_id: str
    pipeline: str
    from_step: str | None  # None: every step
    steps: list[str]  # re-executed, in an order they can run in
    attempt: int
    execution_name: str
    execution_arn: str | None  # None when the execution had already ended (an idempotent repeat)
    replaced: list[str] = field(default_factory=list)  # landed objects read at a newer version


@dataclass(frozen=True)
class Prepared:
    """A claimed rerun, ready to start: its attempt and the execution's input."""

    attempt: RunAttempt
    execution_input: ExecutionInput
    pipeline: str


def downstream(needs: Mapping[str, Sequence[str]], start: str) -> list[str]:
    """`start` and every step that needs it, directly or not, in an order they can run in (a step after
    the steps it needs; steps that may run at once by name)."""
    redo = {start}
    grew = True
    while grew:
        grew = False
        for step, required in needs.items():
            if step not in redo and redo.intersection(required):
                redo.add(step)
                grew = True
    return in_run_order(needs, redo)


def in_run_order(needs: Mapping[str, Sequence[str]], steps: set[str]) -> list[str]:
    """`steps` in an order they can run in: each after the steps it needs, those at once by name."""
    ordered: list[str] = []
    while len(ordered) < len(steps):
        ready = sorted(s for s in steps - set(ordered) if steps.intersection(needs[s]) <= set(ordered))
        if not ready:
            raise ValueError(f"the steps {sorted(steps - set(ordered))} need each other (a cycle)")
        ordered += ready
    return ordered


def rerun(
    plane: ControlPlane,
    run_id: str,
    from_step: str | None,
    *,
    by: str,
    now: datetime,
    key: str | None = None,
    latest_versions: bool = True,
) -> Rerun:
    """Rerun `run_id` from `from_step` (None: every step) and start its execution (see the module
    docstring); RerunRefusedError says why not. `latest_versions=False` reads exactly the object versions
    the run read first."""
    prepared = prepare(plane, run_id, from_step, by=by, now=now, key=key, latest_versions=latest_versions)
    attempt = prepared.attempt
    try:
        arn: str | None = plane.workflow.start_execution(
            prepared.pipeline, attempt.execution, prepared.execution_input
        )
    except ExecutionAlreadyExistsError:
        arn = None  # it ran already (a repeated request): nothing new starts
    logger.info("rerun started", extra={"run_id": run_id, "attempt": attempt.number, "steps": attempt.steps})
    return Rerun(
        run_id=run_id,
        pipeline=prepared.pipeline,
        from_step=attempt.from_step,
        steps=attempt.steps,
        attempt=attempt.number,
        execution_name=attempt.execution,
        execution_arn=arn,
        replaced=attempt.replaced,
    )


def prepare(
    plane: ControlPlane,
    run_id: str,
    from_step: str | None,
    *,
    by: str,
    now: datetime,
    key: str | None = None,
    latest_versions: bool = True,
) -> Prepared:
    """Steps 1-3 of a rerun: claimed, steps superseded, manifest refreshed; the execution not started."""
    run = plane.runs.get_run(run_id)
    if run is None:
        raise RerunRefusedError(f"no run {run_id}: see gluerelay runs list")
    pipeline = catalog().pipelines.get(run.pipeline)
    if pipeline is None:
        raise RerunRefusedError(
            f"run {run_id} is of pipeline {run.pipeline}, which this stack no longer has: it cannot be rerun"
        )
    graph = {step: spec.needs for step, spec in pipeline.steps.items()}
    if from_step is not None and from_step not in graph:
        raise RerunRefusedError(
            f"pipeline {run.pipeline} (run {run_id}'s) has no step {from_step}: "
            f"rerun from one of {', '.join(in_run_order(graph, set(graph)))}"
        )
    try:
        execution_input = run.execution_input()
    except ValueError as e:
        raise RerunRefusedError(f"run {run_id} has no recorded input: start a new run instead") from e
    done = next((a for a in run.attempts if key is not None and a.key == key), None)
    if done is not None:
        logger.info("rerun already claimed", extra={"run_id": run_id, "attempt": done.number, "key": key})
        _finish_marking(plane, run, done, now)
        return Prepared(done, execution_input, run.pipeline)
    if not run.status.ended:
        raise RerunRefusedError(
            f"run {run_id} is {run.status.value}: wait for it to end (or stop it) before rerunning it"
        )
    steps = downstream(graph, from_step) if from_step else in_run_order(graph, set(graph))
    number = run.reruns + 1
    try:
        name = rerun_execution_name(run_id, number)
    except ValueError as e:
        raise RerunRefusedError(f"run {run_id} cannot be rerun: {e}; start a new run instead") from e
    manifest: Manifest | None = None
    replaced: list[str] = []
    reads = any(pipeline.steps[s].reads_manifest for s in steps)
    if latest_versions and reads and execution_input.manifest_uri:
        manifest, replaced = _current_versions(plane, run, now)
    attempt = RunAttempt(
        number=number,
        from_step=from_step,
        steps=steps,
        by=by,
        at=now.isoformat(),
        execution=name,
        key=key,
        replaced=replaced,
    )
    try:
        plane.runs.claim_rerun(run_id, attempt, previous=run.reruns)
    except ConditionFailedError as e:
        raise RerunRefusedError(
            f"run {run_id} is being rerun or resumed by someone else right now: "
            f"see gluerelay runs show {run_id}"
        ) from e
    if manifest is not None and replaced:
        plane.bucket.write_manifest(manifest)
    for step in steps:
        plane.steps.supersede_step(run_id, step, number, now)
    return Prepared(attempt, execution_input, run.pipeline)


def _finish_marking(plane: ControlPlane, run: RunRecord, attempt: RunAttempt, now: datetime) -> None:
    """A claimed rerun whose execution has not run yet: an earlier call may have stopped before writing the
    manifest or marking every step, so do both again (each is idempotent). Once it has run (its execution
    is the run's latest), its steps' records are its own and stay as they are."""
    if (run.execution_arn or "").endswith(f":{attempt.execution}"):
        return
    if attempt.replaced:
        manifest, _ = _current_versions(plane, run, now)
        plane.bucket.write_manifest(manifest)
    for step in attempt.steps:
        plane.steps.supersede_step(run.run_id, step, attempt.number, now)


def _current_versions(plane: ControlPlane, run: RunRecord, now: datetime) -> tuple[Manifest, list[str]]:
    """The run's manifest with each object at its current version, and the keys that changed."""
    manifest = plane.bucket.read_manifest(run.run_id)
    if manifest is None:
        raise RerunRefusedError(
            f"run {run.run_id}'s manifest is gone: start a new run over its files instead"
        )
    current: list[LandedObject] = []
    replaced: list[str] = []
    for obj in manifest.objects:
        latest = plane.bucket.current_version(obj.bucket, obj.key)
        if latest is None:
            raise RerunRefusedError(
                f"{obj.uri} no longer exists: restore it, or rerun from a step after the ones that read it"
            )
        if (latest.etag, latest.version_id) != (obj.etag, obj.version_id):
            holder = plane.ledger.claim(latest, run.run_id, now)
            if holder is not None:
                raise RerunRefusedError(
                    f"{obj.uri} was replaced and its new version was processed by run {holder.run_id}: "
                    f"rerunning {run.run_id} would write its rows twice; rerun {holder.run_id} instead"
                )
            replaced.append(obj.key)
        current.append(latest)
    return Manifest(run_id=run.run_id, pipeline=run.pipeline, objects=current), replaced
