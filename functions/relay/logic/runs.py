"""A run's end when it does not succeed: the failed step named, the run's other steps closed (their Glue job
runs stopped, their places in crawler leases given up), the run record ended.

The workflow's Catch collects a failure under ``$.failed.<step id>``; a failure inside a Parallel branch
arrives as the branch's own ``failed`` object in the Cause of a ``StepFailed`` error (``$.failed.branches``),
however deep. An execution that ends without reaching close_run (aborted by someone, or a failure outside
any step) arrives as Step Functions' own status-change event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay.contract import RunStatus
from relay.errors import ConditionFailedError
from relay.logic import crawls, jobs
from relay.logic.completion import deliver
from relay.models import Outcome, Step, StepKind, StepStatus
from relay.observability import logger
from relay.ports import ControlPlane

STEP_FAILED = "StepFailed"  # a Parallel branch's Fail state (gluerelay.pipelines.asl.STEP_FAILED_ERROR)
BRANCHES = "branches"  # where a Parallel's Catch puts a failed branch (gluerelay.pipelines.asl.BRANCHES_KEY)
TIMEOUTS = {"States.Timeout", "States.HeartbeatTimeout"}


@dataclass(frozen=True)
class Failure:
    """Why a run did not succeed: the step (None when no step failed), an error name a Fail state may
    raise (never States.*), and a cause a person can act on."""

    step: str | None
    error: str
    cause: str
    status: RunStatus = RunStatus.FAILED


def failure_from(failed: Mapping[str, Any]) -> Failure:
    """The failure the workflow collected under ``$.failed``."""
    for key, reported in failed.items():
        if not isinstance(reported, Mapping):
            continue
        error = str(reported.get("Error") or "States.Unknown")
        cause = str(reported.get("Cause") or "")
        if key == BRANCHES:
            inner = _json(cause) if error == STEP_FAILED else None
            if isinstance(inner, Mapping) and inner:
                return failure_from(inner)
            return named(None, error, cause)
        return named(key, error, cause)
    return Failure(None, "RunFailed", "the workflow failed without a step's error")


def named(step: str | None, error: str, cause: str) -> Failure:
    """A step's error as the run's: a timeout ends the run TIMED_OUT; Step Functions' own errors (States.*,
    which a Fail state may not raise) become StepFailed with the original kept in the cause."""
    readable = _readable(cause)
    if error in TIMEOUTS:
        return Failure(
            step, "StepTimedOut", f"{error}: step {step} did not finish in time", RunStatus.TIMED_OUT
        )
    if error.startswith("States."):
        return Failure(step, STEP_FAILED, f"{error}: {readable}" if readable else error)
    return Failure(step, error, readable or error)


def _readable(cause: str) -> str:
    """A Lambda error's cause is JSON ({errorMessage, errorType, stackTrace}): its message is what matters."""
    parsed = _json(cause)
    if isinstance(parsed, Mapping) and "errorMessage" in parsed:
        kind = parsed.get("errorType")
        return f"{kind}: {parsed['errorMessage']}" if kind else str(parsed["errorMessage"])
    return cause


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class ClosedRun:
    run_id: str
    failure: Failure
    recorded: bool  # False: the run was already ended (a duplicate) or a later execution runs it now
    closed_steps: list[str] = field(default_factory=list)


def close_run(
    run_id: str, execution_arn: str, failure: Failure, plane: ControlPlane, now: datetime
) -> ClosedRun:
    """End the run as `failure` says, then close every step this execution left open.

    The record is ended first: start_step looks at it after starting a job, so a step whose start races
    this close stops its own job run (see steps.start_step)."""
    steps = {step.step: step for step in plane.steps.run_steps(run_id)}
    failed = steps.get(failure.step) if failure.step else None
    if failure.status is RunStatus.TIMED_OUT and failed is not None and failed.timeout_seconds:
        failure = Failure(
            failure.step,
            failure.error,
            f"{failure.cause}: still unfinished after {failed.timeout_seconds} s (its timeout_seconds); "
            "its Glue job run is stopped",
            failure.status,
        )
    recorded = plane.runs.end_run(
        run_id,
        execution_arn,
        failure.status,
        now,
        failed_step=failure.step,
        error=failure.error,
        cause=failure.cause,
    )
    closed = []
    for step in steps.values():
        mine = step.execution_arn is None or step.execution_arn == execution_arn
        if step.status == StepStatus.OPEN and mine:
            close_step(step, f"run {run_id} ended {failure.status.value}", plane, now, closed_by="close_run")
            closed.append(step.step)
    return ClosedRun(run_id, failure, recorded, closed)


def close_step(step: Step, why: str, plane: ControlPlane, now: datetime, *, closed_by: str) -> str:
    """Nothing waits for this step any more (its run ended): stop its job run, which nobody else needs
    (a crawl may serve other runs, so it goes on), close it, and give up its place in its crawler's lease.
    Returns what was done.

    The step is decided before its job run is stopped: stopping makes Glue send a STOPPED event, and the
    event (or a sweep) finding the step still open would close it first, with Glue's words instead of
    why the run ended."""
    run = jobs.job_run_of(step, plane.glue) if step.kind == StepKind.JOB else None
    running = run if run is not None and not run.terminal else None
    stopped = f"; job run {running.run_id} stopped" if running is not None else ""
    outcome = Outcome(
        succeeded=False, error="RunEnded", cause=f"{why} while step {step.step} was open{stopped}"
    )
    try:
        decided: Step | None = plane.steps.begin_completion(step, outcome, now, closed_by)
    except ConditionFailedError:
        logger.info("step already completed; not closed", extra={"run_id": step.run_id, "step": step.step})
        decided = None
    if running is not None:
        plane.glue.stop_job_run(step.resource, running.run_id)
    if decided is not None:
        deliver(decided, plane.steps, plane.workflow, now)
    crawler = step.waits_for_crawler
    if crawler is not None:
        try:
            crawls.release(step.ref, crawler, plane.leases, plane.glue, now)
        except ConditionFailedError:
            logger.info("lease changed while releasing a closed step", extra={"crawler": crawler})
    return f"{why}: step closed{stopped}"
