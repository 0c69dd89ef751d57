"""A run's end and its resumption, on in-memory fakes: the failed step named from any depth, the run's other
steps closed, and a resumed run running only what did not succeed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from relay.contract import RunStatus
from relay.logic.runs import Failure, close_run, failure_from
from relay.logic.steps import start_step
from relay.models import Outcome, StepKind, StepRef, StepRequest, StepStatus

from tests.fakes import FakeCloud

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "orders-s3-1"
FIRST = "arn:aws:states:us-east-1:123456789012:execution:stack_orders:orders-s3-1"
RESUMED = FIRST + "-resume-1"


def request(step: str, token: str, execution: str = FIRST, kind: StepKind = StepKind.JOB) -> StepRequest:
    return StepRequest(
        pipeline="orders",
        kind=kind,
        name=f"stack_{step}" if kind == StepKind.JOB else "stack_raw_orders",
        run_id=RUN,
        step=step,
        token=token,
        execution_arn=execution,
        timeout_seconds=3600,
    )


def branch_failure(inner: dict[str, object]) -> dict[str, object]:
    """What a Parallel's Catch holds: the branch's Fail state carries its own `failed` object as Cause."""
    return {"branches": {"Error": "StepFailed", "Cause": json.dumps(inner)}}


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        (
            {"cleanse": {"Error": "GlueJobFailed", "Cause": "cleanse_orders jr_1 FAILED: boom"}},
            Failure("cleanse", "GlueJobFailed", "cleanse_orders jr_1 FAILED: boom"),
        ),
        (
            branch_failure({"extract_headers": {"Error": "GlueJobFailed", "Cause": "erp job: no file"}}),
            Failure("extract_headers", "GlueJobFailed", "erp job: no file"),
        ),
        (  # a branch inside a branch
            branch_failure(branch_failure({"deep": {"Error": "GlueCrawlFailed", "Cause": "no access"}})),
            Failure("deep", "GlueCrawlFailed", "no access"),
        ),
        (
            {"crawl_raw": {"Error": "States.Timeout"}},
            Failure(
                "crawl_raw",
                "StepTimedOut",
                "States.Timeout: step crawl_raw did not finish in time",
                RunStatus.TIMED_OUT,
            ),
        ),
        (  # start_step itself failed: the Lambda error's message, not its JSON
            {
                "extract_lines": {
                    "Error": "NotFoundError",
                    "Cause": json.dumps(
                        {"errorMessage": "Glue job stack_x does not exist", "errorType": "NotFoundError"}
                    ),
                }
            },
            Failure("extract_lines", "NotFoundError", "NotFoundError: Glue job stack_x does not exist"),
        ),
        (
            {"publish": {"Error": "States.Runtime", "Cause": "path $.x not found"}},
            Failure("publish", "StepFailed", "States.Runtime: path $.x not found"),
        ),
    ],
)
def test_the_failed_step_and_its_error_are_read_from_the_workflows_failure(
    failed: dict[str, object], expected: Failure
) -> None:
    assert failure_from(failed) == expected


def test_closing_a_failed_run_stops_the_other_branchs_job_and_records_the_run() -> None:
    # Given two branches running, and one of them failed
    cloud = FakeCloud()
    cloud.store.set_run(RUN, RunStatus.RUNNING, FIRST)
    start_step(request("extract_lines", "t-lines"), cloud.plane, T0)
    start_step(request("extract_headers", "t-headers"), cloud.plane, T0)
    lines = cloud.store.steps[StepRef(run_id=RUN, step="extract_lines")]
    cloud.store.begin_completion(lines, Outcome(succeeded=False, error="GlueJobFailed", cause="bad"), T0)
    cloud.store.finish_completion(lines, StepStatus.FAILED, T0)
    cloud.workflow.closed.add("t-headers")  # Step Functions stopped the sibling branch
    failure = failure_from(branch_failure({"extract_lines": {"Error": "GlueJobFailed", "Cause": "bad"}}))
    # When the run is closed
    closed = close_run(RUN, FIRST, failure, cloud.plane, T0 + timedelta(seconds=1))
    # Then the sibling's job run is stopped and its step closed; the run names the failed step
    headers = cloud.store.steps[StepRef(run_id=RUN, step="extract_headers")]
    assert closed.closed_steps == ["extract_headers"] and closed.recorded
    assert cloud.glue.stopped == [headers.glue_run_id]
    assert headers.status == StepStatus.CLOSED
    run = cloud.store.runs[RUN]
    assert (run.status, run.failed_step, run.error, run.cause) == (
        RunStatus.FAILED,
        "extract_lines",
        "GlueJobFailed",
        "bad",
    )
    # And a second close (Step Functions' own event for the same end) changes nothing
    again = close_run(RUN, FIRST, failure, cloud.plane, T0 + timedelta(seconds=2))
    assert (again.recorded, again.closed_steps, cloud.glue.stopped) == (False, [], [headers.glue_run_id])


def test_a_late_close_of_an_earlier_execution_leaves_the_resumed_execution_alone() -> None:
    # Given a run resumed after its first execution was aborted: the resumed execution's step is running
    cloud = FakeCloud()
    cloud.store.set_run(RUN, RunStatus.RUNNING, RESUMED)
    start_step(request("cleanse", "t-resumed", RESUMED), cloud.plane, T0)
    # When the first execution's ABORTED event arrives late
    closed = close_run(RUN, FIRST, Failure(None, "RunAborted", "stopped", RunStatus.ABORTED), cloud.plane, T0)
    # Then nothing of the resumed execution is touched
    assert (closed.recorded, closed.closed_steps, cloud.glue.stopped) == (False, [], [])
    assert cloud.store.runs[RUN].status is RunStatus.RUNNING


def test_a_timed_out_step_says_how_long_it_was_given() -> None:
    cloud = FakeCloud()
    cloud.store.set_run(RUN, RunStatus.RUNNING, FIRST)
    start_step(request("cleanse", "t-1"), cloud.plane, T0)
    cloud.workflow.closed.add("t-1")
    closed = close_run(RUN, FIRST, failure_from({"cleanse": {"Error": "States.Timeout"}}), cloud.plane, T0)
    run = cloud.store.runs[RUN]
    assert (run.status, run.error) == (RunStatus.TIMED_OUT, "StepTimedOut")
    assert "still unfinished after 3600 s" in (run.cause or "")
    assert closed.closed_steps == ["cleanse"] and len(cloud.glue.stopped) == 1


def test_a_resumed_run_answers_at_once_for_a_step_that_succeeded_and_starts_nothing() -> None:
    # Given a step that succeeded in the run's first execution
    cloud = FakeCloud()
    start_step(request("extract_lines", "t-1"), cloud.plane, T0)
    step = cloud.store.steps[StepRef(run_id=RUN, step="extract_lines")]
    facts = {"glue_run_id": step.glue_run_id, "rows": {"rows_read": 7}}
    cloud.store.begin_completion(step, Outcome(succeeded=True, facts=facts), T0)
    cloud.store.finish_completion(step, StepStatus.SUCCEEDED, T0)
    runs_before = len(cloud.glue.job_runs)
    # When the resumed execution reaches it
    result = start_step(request("extract_lines", "t-2", RESUMED), cloud.plane, T0 + timedelta(hours=1))
    # Then its token gets the recorded outcome, and Glue starts nothing
    assert result["reused"] is True
    assert cloud.workflow.successes["t-2"]["rows"] == {"rows_read": 7}
    assert cloud.workflow.successes["t-2"]["reused"] is True
    assert len(cloud.glue.job_runs) == runs_before
    assert cloud.store.steps[step.ref].attempt == 1


def test_a_failed_step_runs_again_when_its_run_is_resumed() -> None:
    cloud = FakeCloud()
    start_step(request("cleanse", "t-1"), cloud.plane, T0)
    step = cloud.store.steps[StepRef(run_id=RUN, step="cleanse")]
    cloud.store.begin_completion(step, Outcome(succeeded=False, error="GlueJobFailed", cause="x"), T0)
    cloud.store.finish_completion(step, StepStatus.FAILED, T0)
    start_step(request("cleanse", "t-2", RESUMED), cloud.plane, T0 + timedelta(hours=1))
    again = cloud.store.steps[step.ref]
    assert (again.status, again.attempt, len(cloud.glue.job_runs)) == (StepStatus.OPEN, 2, 2)


def test_a_job_started_after_its_run_ended_is_stopped_at_once() -> None:
    # Given a run another branch has just failed (close_run ended the record first)
    cloud = FakeCloud()
    cloud.store.set_run(RUN, RunStatus.FAILED, FIRST)
    cloud.workflow.closed.add("t-late")  # and Step Functions stopped the sibling's branch
    # When the sibling's start_step, already on its way, starts its job
    start_step(request("extract_headers", "t-late"), cloud.plane, T0)
    # Then it stops the job run itself and closes the step
    step = cloud.store.steps[StepRef(run_id=RUN, step="extract_headers")]
    assert cloud.glue.stopped == [step.glue_run_id]
    assert step.status == StepStatus.CLOSED


def test_a_closed_steps_job_stop_event_arriving_first_does_not_take_the_close() -> None:
    """Stopping a job run makes Glue send a STOPPED event at once; were the step still open when it is
    handled (close_run used to stop the job first), the event would close it in Glue's words and the run's
    close would find it taken. The step is decided before its job run is stopped."""
    from relay.logic.completion import complete

    cloud = FakeCloud()
    cloud.store.set_run(RUN, RunStatus.RUNNING, FIRST)
    start_step(request("extract_lines", "t-lines"), cloud.plane, T0)
    step = cloud.store.steps[StepRef(run_id=RUN, step="extract_lines")]
    stop = cloud.glue.stop_job_run

    def stop_and_report(job_name: str, run_id: str) -> None:  # the STOPPED event, handled at once
        stop(job_name, run_id)
        stopped = Outcome(succeeded=False, error="GlueJobStopped", cause=f"{job_name} {run_id} STOPPED")
        complete(cloud.store.steps[step.ref], stopped, cloud.store, cloud.workflow, T0)

    cloud.glue.stop_job_run = stop_and_report  # type: ignore[method-assign]
    cloud.workflow.closed.add("t-lines")  # Step Functions timed the task out
    failure = failure_from({"extract_lines": {"Error": "States.Timeout"}})
    closed = close_run(RUN, FIRST, failure, cloud.plane, T0 + timedelta(seconds=1))
    closed_step = cloud.store.steps[step.ref]
    assert closed.closed_steps == ["extract_lines"]
    assert cloud.glue.stopped == [closed_step.glue_run_id]
    assert (closed_step.status, closed_step.repaired_by) == (StepStatus.CLOSED, "close_run")
    assert f"job run {closed_step.glue_run_id} stopped" in str(
        closed_step.outcome and closed_step.outcome.cause
    )
