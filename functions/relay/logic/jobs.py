"""Job steps: start a Glue job run that carries its step, and turn its end into the step's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relay.contract import ATTEMPT_ARG, RUN_ID_ARG, STEP_ARG
from relay.errors import NotFoundError, RelayError
from relay.models import JobRun, Outcome, Step, StepRef
from relay.ports import Glue, StepStore

MAX_GLUE_RETRIES = 10  # Glue's MaxRetries is at most 10
FAILED_STATES = {"FAILED": "GlueJobFailed", "TIMEOUT": "GlueJobTimeout", "STOPPED": "GlueJobStopped"}
SUMMARY_FIGURES = (
    "rows_read",
    "rows_written",
    "rows_quarantined",
    "quarantined_by_reason",
    "duplicates_removed",
    "files_read",  # landed files read, and set aside as unusable (extract steps)
    "files_set_aside",
)


def job_arguments(step: Step, arguments: dict[str, str], uris: dict[str, str]) -> dict[str, str]:
    """The step's arguments and gluerelay's own (which win: a pipeline cannot set them)."""
    return {**arguments, **step_arguments(step), **uris}


def start_job(
    step: Step,
    arguments: dict[str, str],
    *,
    uris: dict[str, str],
    store: StepStore,
    glue: Glue,
    now: datetime,
) -> str:
    """Start the job run for an OPEN step (already recorded, so an instant run's event finds its token).
    `uris`: where the run writes (contract.job_uris)."""
    try:
        glue_run_id = glue.start_job_run(step.resource, job_arguments(step, arguments, uris))
    except RelayError as e:  # ConcurrentRunsExceededException included: the state machine retries it
        store.mark_start_failed(step.ref, step.attempt, f"{type(e).__name__}: {e}", now)
        raise
    store.record_glue_run(step.ref, step.attempt, glue_run_id)
    return glue_run_id


def step_arguments(step: Step) -> dict[str, str]:
    """The arguments that tie a job run to the step's attempt (every Glue retry of it carries them too)."""
    return {STEP_ARG: step.step, RUN_ID_ARG: step.run_id, ATTEMPT_ARG: str(step.attempt)}


def started_run(step: Step, glue: Glue) -> JobRun | None:
    """The job run start_step started for the step's attempt: the recorded one, or (when start_step stopped
    before recording it) the one carrying the attempt's arguments."""
    try:
        if step.glue_run_id:
            return glue.get_job_run(step.resource, step.glue_run_id)
        return glue.find_job_run(step.resource, step_arguments(step))
    except NotFoundError:
        return None


def will_retry(run: JobRun, glue: Glue) -> bool:
    """Glue itself starts a FAILED run again while its attempts are below the job's MaxRetries."""
    return run.state == "FAILED" and run.attempt < glue.job_max_retries(run.job_name)


def descends_from(run: JobRun, ancestor: str, glue: Glue) -> bool:
    """Whether `run` is the run `ancestor` or one of Glue's retries of it (PreviousRunId, one by one)."""
    for _ in range(MAX_GLUE_RETRIES + 1):
        if run.run_id == ancestor:
            return True
        if not run.previous_run_id:
            return False
        try:
            run = glue.get_job_run(run.job_name, run.previous_run_id)
        except NotFoundError:
            return False
    return False


def job_run_of(step: Step, glue: Glue) -> JobRun | None:
    """The run Glue is on for the step's attempt: the run start_step started or Glue's latest retry of it
    (a FAILED run that Glue retries is not the step's end). None when there is none."""
    started = started_run(step, glue)
    if started is None or not will_retry(started, glue):
        return started
    latest = glue.find_job_run(step.resource, step_arguments(step))
    if latest is not None and descends_from(latest, started.run_id, glue):
        return latest
    return started  # Glue has not started the retry yet: the failed run, which will_retry still marks


def step_of(run: JobRun) -> tuple[StepRef, int] | None:
    """The step and attempt a job run was started for, or None when gluerelay did not start it."""
    run_id, step, attempt = (run.arguments.get(k) for k in (RUN_ID_ARG, STEP_ARG, ATTEMPT_ARG))
    if not run_id or not step or not attempt or not attempt.isdigit():
        return None
    return StepRef(run_id=run_id, step=step), int(attempt)


def job_outcome(state: str, run: JobRun, message: str | None, summary: dict[str, Any] | None) -> Outcome:
    """SUCCEEDED → the run's facts and the job's row counts; anything else → a failure whose cause is
    Glue's own message."""
    facts: dict[str, Any] = {
        "glue_run_id": run.run_id,
        "job_state": state,
        "started_on": run.started_on.isoformat() if run.started_on else None,
        "completed_on": run.completed_on.isoformat() if run.completed_on else None,
        "duration_seconds": run.execution_time_seconds,
        "dpu_seconds": run.dpu_seconds,
    }
    if state == "SUCCEEDED":
        if summary:
            facts["rows"] = {k: summary[k] for k in SUMMARY_FIGURES if k in summary}
        return Outcome(succeeded=True, facts=facts)
    cause = run.error_message or message or f"Glue job run {run.run_id} ended {state}"
    return Outcome(
        succeeded=False,
        facts=facts,
        error=FAILED_STATES.get(state, "GlueJobFailed"),
        cause=f"{run.job_name} {run.run_id} {state}: {cause}",
    )
