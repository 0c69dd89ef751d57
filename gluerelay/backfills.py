"""Backfills as an operator drives them: choose runs from the run index, start the stack's backfill state
machine over them, read how far it got, cancel it.

A backfill is named by what it does: `<pipeline>-bf-<hash of its step and runs>`. Its record
(BACKFILL#<id> / BACKFILL) holds the runs, the step, the concurrency, who started it, `cancelled` and the
runs prepare_rerun refused; its execution of the backfill state machine has the same name. So asking for
the same backfill again starts nothing: Step Functions returns the running execution, or refuses a name
already used (a finished backfill, for 90 days), and the record is written only if absent.

How far it got is read from the runs' own records: a run whose attempts hold one keyed by the backfill's id
has been claimed by it, and its status is that rerun's while its execution is the run's latest.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from relay.contract import (
    MAX_BACKFILL_CONCURRENCY,
    MAX_BACKFILL_RUNS,
    BackfillInput,
    RunRecord,
    RunStatus,
    backfill_id,
    backfill_key,
    catalog,
)
from relay.logic.reruns import downstream, in_run_order

from gluerelay.operate import OperatorError, Target, backfill_record, run_records
from gluerelay.records import seconds_between
from gluerelay.runindex import QueryError, RunQuery, all_runs

NOT_STARTED = "NOT_STARTED"


@dataclass
class BackfillPlan:
    backfill_id: str
    pipeline: str
    from_step: str | None  # None: every step
    steps: list[str]
    runs: list[str]
    max_concurrent: int
    not_ended: list[str] = field(default_factory=list)  # selected runs left out: still running


@dataclass
class BackfillStarted:
    plan: BackfillPlan
    execution_arn: str
    started: bool  # False: the same backfill exists already; nothing new started


class RunState(StrEnum):
    """Where one of a backfill's runs is."""

    PENDING = "pending"  # its rerun not started yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # its rerun failed, timed out or was stopped
    REFUSED = "refused"  # prepare_rerun would not rerun it (the record says why)
    CANCELLED = "cancelled"  # the backfill ended (or was cancelled) before its rerun started


@dataclass
class BackfillRun:
    run_id: str
    state: str
    seconds: float | None = None
    cause: str | None = None


@dataclass
class BackfillStatus:
    backfill_id: str
    pipeline: str
    from_step: str | None
    max_concurrent: int
    by: str
    created_at: str
    cancelled: bool
    execution_status: str  # the backfill's own execution: RUNNING, SUCCEEDED, ABORTED, ...
    counts: dict[str, int]
    eta_seconds: float | None
    runs: list[BackfillRun]

    @property
    def done(self) -> bool:
        return self.execution_status not in {"RUNNING", NOT_STARTED}


def plan(
    target: Target,
    pipeline: str,
    *,
    from_step: str | None,
    run_ids: list[str],
    ingest_dates: tuple[date | None, date | None],
    since: timedelta | None,
    max_concurrent: int,
) -> BackfillPlan:
    """Which runs the backfill reruns and from where, checked before anything starts."""
    if not 1 <= max_concurrent <= MAX_BACKFILL_CONCURRENCY:
        raise OperatorError(
            f"--max-concurrent {max_concurrent}: give 1 to {MAX_BACKFILL_CONCURRENCY} "
            "(Step Functions runs an inline Map's iterations at most 40 at once)"
        )
    target.pipeline_names(pipeline)
    spec = catalog().pipelines.get(pipeline)
    if spec is None:
        raise OperatorError(f"pipeline {pipeline} is not in this project's pipeline files")
    graph = {step: s.needs for step, s in spec.steps.items()}
    if from_step is not None and from_step not in graph:
        raise OperatorError(
            f"pipeline {pipeline} has no step {from_step}: "
            f"backfill from one of {', '.join(in_run_order(graph, set(graph)))}"
        )
    steps = downstream(graph, from_step) if from_step else in_run_order(graph, set(graph))
    selected = _select(target, pipeline, run_ids, ingest_dates, since)
    ended = sorted(r.run_id for r in selected if r.status.ended)
    if not ended:
        raise OperatorError(f"every selected run of {pipeline} is still running: wait for them to end")
    if len(ended) > MAX_BACKFILL_RUNS:
        raise OperatorError(
            f"{len(ended)} runs: a backfill takes at most {MAX_BACKFILL_RUNS} (Step Functions' history of "
            "one execution holds 25,000 events); split the dates into smaller backfills"
        )
    return BackfillPlan(
        backfill_id=backfill_id(pipeline, from_step, ended),
        pipeline=pipeline,
        from_step=from_step,
        steps=steps,
        runs=ended,
        max_concurrent=max_concurrent,
        not_ended=sorted(r.run_id for r in selected if not r.status.ended),
    )


def _select(
    target: Target,
    pipeline: str,
    run_ids: list[str],
    ingest_dates: tuple[date | None, date | None],
    since: timedelta | None,
) -> list[RunRecord]:
    """The runs chosen one way: by id, or from the run index by ingest date or start."""
    chosen = [bool(run_ids), ingest_dates != (None, None), since is not None]
    if sum(chosen) != 1:
        raise OperatorError("choose the runs one way: --runs ID..., --ingest-date A..B or --since 30d")
    if run_ids:
        records = run_records(target, run_ids)
        for run_id in run_ids:
            if run_id not in records:
                raise OperatorError(f"no run {run_id} in stack {target.stack}: see gluerelay runs list")
            if records[run_id].pipeline != pipeline:
                raise OperatorError(
                    f"run {run_id} is of pipeline {records[run_id].pipeline}, not {pipeline}: "
                    f"backfill it with --pipeline {records[run_id].pipeline}"
                )
        return [records[r] for r in dict.fromkeys(run_ids)]
    low, high = ingest_dates
    try:
        query = RunQuery(
            [pipeline],
            ingest_from=low,
            ingest_to=high,
            started_since=datetime.now(UTC) - since if since else None,
        )
    except QueryError as e:
        raise OperatorError(str(e)) from e
    table = target.output("ControlTableName")
    dynamodb = target.client("dynamodb")
    selected: list[RunRecord] = target.call(lambda: list(all_runs(dynamodb, table, query)))
    if not selected:
        what = (
            f"with ingest dates {low or ''}..{high or ''}" if since is None else f"started since {since} ago"
        )
        raise OperatorError(f"no runs of {pipeline} {what}: see gluerelay runs list --pipeline {pipeline}")
    return selected


def start(target: Target, chosen: BackfillPlan) -> BackfillStarted:
    """Record the backfill (if new) and start its execution (if it has none yet)."""
    sfn = target.client("stepfunctions")
    machine = target.output("BackfillStateMachineArn")
    arn = machine.replace(":stateMachine:", ":execution:") + ":" + chosen.backfill_id
    if target.call(lambda: _execution_status(target, arn)) != NOT_STARTED:
        return BackfillStarted(chosen, arn, started=False)
    table = target.table()
    with contextlib.suppress(table.meta.client.exceptions.ConditionalCheckFailedException):
        # already there when an earlier attempt recorded it and did not get to start it
        table.put_item(
            Item={
                **backfill_key(chosen.backfill_id),
                "backfill_id": chosen.backfill_id,
                "pipeline": chosen.pipeline,
                "from_step": chosen.from_step,
                "steps": chosen.steps,
                "runs": chosen.runs,
                "max_concurrent": chosen.max_concurrent,
                "by": target.caller(),
                "created_at": datetime.now(UTC).isoformat(),
                "cancelled": False,
                "refused": {},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    execution_input = BackfillInput(
        backfill_id=chosen.backfill_id,
        pipeline=chosen.pipeline,
        from_step=chosen.from_step,
        max_concurrent=chosen.max_concurrent,
        runs=chosen.runs,
    )

    def start_once() -> bool:
        try:
            sfn.start_execution(
                stateMachineArn=machine, name=chosen.backfill_id, input=execution_input.model_dump_json()
            )
        except sfn.exceptions.ExecutionAlreadyExists:
            return False  # started meanwhile by the same request
        return True

    return BackfillStarted(chosen, arn, started=bool(target.call(start_once)))


def _execution_status(target: Target, execution_arn: str) -> str:
    """The backfill execution's status; NOT_STARTED when its record was written and the start was lost
    (asking for the same backfill again starts it)."""
    sfn = target.client("stepfunctions")
    try:
        return str(sfn.describe_execution(executionArn=execution_arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return NOT_STARTED


def status(target: Target, backfill: str) -> BackfillStatus:
    """How far the backfill got: each of its runs pending, running, succeeded, failed, refused or
    cancelled, from the runs' records; and an estimate of the time left."""
    record = backfill_record(target, backfill)
    machine = target.output("BackfillStateMachineArn")
    arn = machine.replace(":stateMachine:", ":execution:") + ":" + backfill
    execution_status = target.call(lambda: _execution_status(target, arn))
    ended = execution_status not in {"RUNNING", NOT_STARTED}
    refused: dict[str, str] = dict(record.get("refused") or {})
    runs = [str(r) for r in record["runs"]]
    records = run_records(target, runs)
    found = [
        _state(backfill, run, records.get(run), refused, ended=ended, cancelled=bool(record["cancelled"]))
        for run in runs
    ]
    counts = {state.value: 0 for state in RunState}
    for run in found:
        counts[run.state] += 1
    concurrency = int(record["max_concurrent"])
    took = [
        r.seconds for r in found if r.seconds is not None and r.state in {RunState.SUCCEEDED, RunState.FAILED}
    ]
    left = counts[RunState.PENDING] + counts[RunState.RUNNING]
    eta = (
        sum(took) / len(took) * math.ceil(left / concurrency)
        if took and left and not ended
        else (0.0 if ended else None)
    )
    return BackfillStatus(
        backfill_id=backfill,
        pipeline=str(record["pipeline"]),
        from_step=record.get("from_step"),
        max_concurrent=concurrency,
        by=str(record["by"]),
        created_at=str(record["created_at"]),
        cancelled=bool(record["cancelled"]),
        execution_status=execution_status,
        counts=counts,
        eta_seconds=eta,
        runs=found,
    )


def _state(
    backfill: str,
    run_id: str,
    record: RunRecord | None,
    refused: dict[str, str],
    *,
    ended: bool,
    cancelled: bool,
) -> BackfillRun:
    if run_id in refused:
        return BackfillRun(run_id, RunState.REFUSED, cause=refused[run_id])
    attempt = next((a for a in (record.attempts if record else []) if a.key == backfill), None)
    if record is None or attempt is None:
        return BackfillRun(run_id, RunState.CANCELLED if (cancelled or ended) else RunState.PENDING)
    current = (record.execution_arn or "").endswith(":" + attempt.execution)
    if record.status is RunStatus.RUNNING or (not current and not ended):
        return BackfillRun(run_id, RunState.RUNNING)
    seconds = seconds_between(attempt.at, record.ended_at)
    state = RunState.SUCCEEDED if record.status is RunStatus.SUCCEEDED else RunState.FAILED
    return BackfillRun(run_id, state, seconds=seconds, cause=record.error)


def cancel(target: Target, backfill: str, *, now: bool) -> list[str]:
    """Start no more of the backfill's reruns; with `now`, stop the running ones too (their runs end
    ABORTED). The executions stopped."""
    table = target.table()
    backfill_record(target, backfill)
    target.call(
        lambda: table.update_item(
            Key=backfill_key(backfill),
            UpdateExpression="SET cancelled = :yes, cancelled_at = :now",
            ExpressionAttributeValues={":yes": True, ":now": datetime.now(UTC).isoformat()},
        )
    )
    if not now:
        return []
    sfn = target.client("stepfunctions")
    stopped = []
    for run in status(target, backfill).runs:
        if run.state != RunState.RUNNING:
            continue
        record = run_records(target, [run.run_id])[run.run_id]
        attempt = next(a for a in record.attempts if a.key == backfill)
        arn = target.state_machine_arn(record.pipeline).replace(":stateMachine:", ":execution:")
        execution = f"{arn}:{attempt.execution}"
        target.call(
            lambda e=execution: sfn.stop_execution(
                executionArn=e, error="BackfillCancelled", cause=f"gluerelay backfill cancel {backfill} --now"
            )
        )
        stopped.append(execution)
    return stopped
