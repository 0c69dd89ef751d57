"""Job steps through the control-plane logic, on in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from relay.contract import RunStatus
from relay.errors import ConcurrentRunsExceededException, RelayError
from relay.logic.steps import Verdict, on_job_event, start_step, sweep
from relay.models import JobRun, JobStateChange, Outcome, StepKind, StepRef, StepRequest, StepStatus

from tests.fakes import FakeCloud, load_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REF = StepRef(run_id="run-1", step="extract")
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:stack_customers:run-1"


def request(token: str = "token-1") -> StepRequest:
    return StepRequest(
        pipeline="customers",
        kind=StepKind.JOB,
        name="extract_customers",
        run_id=REF.run_id,
        step=REF.step,
        token=token,
        execution_arn=EXECUTION,
        arguments={"--source": "s3"},
    )


def job_event(cloud: FakeCloud, state: str, message: str = "Job run succeeded") -> JobStateChange:
    detail = load_event("glue-job-succeeded")["detail"]
    run_id = next(iter(cloud.glue.job_runs))
    return JobStateChange.model_validate({**detail, "jobRunId": run_id, "state": state, "message": message})


def test_the_step_and_token_are_recorded_before_glue_starts() -> None:
    # Given a Glue that looks for the step at the moment it is asked to start the job
    cloud = FakeCloud()
    seen_at_start: list[StepStatus | None] = []
    original = cloud.glue.start_job_run

    def start_job_run(job_name: str, arguments: dict[str, str]) -> str:
        step = cloud.store.get_step(REF)
        seen_at_start.append(step.status if step else None)
        return original(job_name, arguments)

    cloud.glue.start_job_run = start_job_run  # type: ignore[method-assign]
    # When the step starts
    result = start_step(request(), cloud.plane, T0)
    # Then the step was OPEN with its token before the run existed, and the run carries its step
    assert seen_at_start == [StepStatus.OPEN]
    run = cloud.glue.job_runs[result["glue_run_id"]]
    assert run.arguments == {
        "--source": "s3",
        "--run_id": "run-1",
        "--gluerelay_step": "extract",
        "--gluerelay_attempt": "1",
        "--summary_uri": "s3://bucket/summaries/run-1/extract.json",
        "--staging_uri": "s3://bucket/staging/run-1/extract/1/",
    }
    assert cloud.store.steps[REF].glue_run_id == result["glue_run_id"]


def test_a_succeeded_job_completes_the_token_once_with_its_facts() -> None:
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.bucket.summaries[("run-1", "extract")] = {"rows_read": 10, "rows_written": 10, "job": "x"}
    cloud.glue.finish_job_run(next(iter(cloud.glue.job_runs)), "SUCCEEDED")
    event = job_event(cloud, "SUCCEEDED")
    # When the event arrives twice
    first = on_job_event(event, cloud.plane, T0 + timedelta(minutes=2))
    second = on_job_event(event, cloud.plane, T0 + timedelta(minutes=3))
    # Then the token completed once, with the run's facts and the job's row counts
    assert (first, second) == (
        Verdict(1, "completed"),
        Verdict(0, "ignored: step already completed or retried"),
    )
    output = cloud.workflow.successes["token-1"]
    assert output["glue_run_id"] == "jr_0001"
    assert output["rows"] == {"rows_read": 10, "rows_written": 10}
    assert output["duration_seconds"] == 42
    assert cloud.store.steps[REF].status == StepStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("state", "error"),
    [("FAILED", "GlueJobFailed"), ("TIMEOUT", "GlueJobTimeout"), ("STOPPED", "GlueJobStopped")],
)
def test_a_failed_job_fails_the_step_with_glues_message(state: str, error: str) -> None:
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.glue.finish_job_run(
        next(iter(cloud.glue.job_runs)), state, "ExtractError: landing/a.csv is missing"
    )
    on_job_event(job_event(cloud, state, "Job failed"), cloud.plane, T0)
    failure_error, cause = cloud.workflow.failures["token-1"]
    assert failure_error == error
    assert "ExtractError: landing/a.csv is missing" in cause
    assert cloud.store.steps[REF].status == StepStatus.FAILED
    assert not cloud.workflow.successes


def test_events_of_runs_gluerelay_did_not_start_are_ignored() -> None:
    cloud = FakeCloud()
    foreign = cloud.glue.start_job_run("extract_customers", {"--source": "jdbc"})
    event = JobStateChange.model_validate({**load_event("glue-job-succeeded")["detail"], "jobRunId": foreign})
    assert on_job_event(event, cloud.plane, T0) == Verdict(0, "ignored: job run not started by gluerelay")
    unknown = event.model_copy(update={"job_run_id": "jr_unknown"})
    assert on_job_event(unknown, cloud.plane, T0) == Verdict(0, "ignored: unknown job run")
    assert not cloud.workflow.successes


def test_a_late_event_of_an_earlier_attempt_changes_nothing() -> None:
    # Given attempt 1 refused by Glue, then attempt 2 started
    cloud = FakeCloud()
    cloud.glue.refuse_job_runs = True
    with pytest.raises(ConcurrentRunsExceededException):
        start_step(request("token-1"), cloud.plane, T0)
    assert cloud.store.steps[REF].status == StepStatus.START_FAILED
    cloud.glue.refuse_job_runs = False
    start_step(request("token-2"), cloud.plane, T0 + timedelta(seconds=30))
    run = cloud.glue.finish_job_run(next(iter(cloud.glue.job_runs)), "SUCCEEDED")
    # When an event claims to be attempt 1
    run.arguments["--gluerelay_attempt"] = "1"
    verdict = on_job_event(job_event(cloud, "SUCCEEDED"), cloud.plane, T0 + timedelta(minutes=1))
    # Then nothing completes
    assert verdict == Verdict(0, "ignored: step already completed or retried")
    assert cloud.store.steps[REF].attempt == 2
    assert not cloud.workflow.successes


def test_an_event_after_the_task_timed_out_closes_the_step_quietly() -> None:
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.workflow.closed.add("token-1")  # Step Functions gave up waiting
    cloud.glue.finish_job_run(next(iter(cloud.glue.job_runs)), "SUCCEEDED")
    assert on_job_event(job_event(cloud, "SUCCEEDED"), cloud.plane, T0) == Verdict(1, "completed")
    assert cloud.store.steps[REF].status == StepStatus.CLOSED


def test_the_sweeper_completes_a_job_step_whose_event_was_lost() -> None:
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.glue.finish_job_run(next(iter(cloud.glue.job_runs)), "SUCCEEDED")
    # Before the threshold the sweeper leaves the step alone; after it, it asks Glue
    early = sweep(cloud.plane, T0 + timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
    late = sweep(cloud.plane, T0 + timedelta(minutes=16), timedelta(minutes=15), timedelta(hours=1))
    assert (early.examined, early.repaired) == (0, [])
    assert late.repaired == ["run-1/extract: job run jr_0001 SUCCEEDED, event lost"]
    assert cloud.workflow.successes["token-1"]["repaired_by"] == "sweeper"
    assert cloud.store.steps[REF].repaired_by == "sweeper"


def test_a_step_the_sweeper_cannot_reconcile_does_not_stop_the_repair_of_the_others() -> None:
    # Given two steps whose events were lost; Glue errors on the older one's job run (say, a deleted job)
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    other = request("token-2").model_copy(update={"run_id": "run-2"})
    start_step(other, cloud.plane, T0 + timedelta(minutes=1))
    first, second = list(cloud.glue.job_runs)
    cloud.glue.finish_job_run(second, "SUCCEEDED")
    original = cloud.glue.get_job_run

    def get_job_run(job_name: str, run_id: str) -> JobRun:
        if run_id == first:
            raise RelayError("EntityNotFoundException: the job was deleted")
        return original(job_name, run_id)

    cloud.glue.get_job_run = get_job_run  # type: ignore[method-assign]
    # When the sweeper runs past both thresholds
    report = sweep(cloud.plane, T0 + timedelta(hours=2), timedelta(minutes=15), timedelta(hours=1))
    # Then the younger step is repaired, the older one is counted as an error and as stuck
    assert report.repaired == ["run-2/extract: job run jr_0002 SUCCEEDED, event lost"]
    assert report.errors == ["run-1/extract: RelayError: EntityNotFoundException: the job was deleted"]
    assert (report.examined, report.stuck_steps) == (2, 1)


def test_the_sweeper_counts_steps_open_past_the_stuck_threshold() -> None:
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)  # the job never finishes
    report = sweep(cloud.plane, T0 + timedelta(hours=2), timedelta(minutes=15), timedelta(hours=1))
    assert (report.stuck_steps, report.oldest_open_seconds, report.repaired) == (1, 7200.0, [])


def test_the_sweeper_leaves_an_outcome_being_delivered_to_its_completer() -> None:
    # Given an outcome decided a moment ago: its completer is sending it right now
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    from relay.models import Outcome

    decided_at = T0 + timedelta(hours=1)
    cloud.store.begin_completion(cloud.store.steps[REF], Outcome(succeeded=True, facts={}), decided_at)
    report = sweep(cloud.plane, decided_at + timedelta(seconds=5), timedelta(minutes=15), timedelta(hours=2))
    assert report.repaired == []
    assert cloud.workflow.successes == {}
    # When the completer finishes, a later close cannot overturn it
    cloud.store.finish_completion(cloud.store.steps[REF], StepStatus.SUCCEEDED, decided_at)
    cloud.store.finish_completion(
        cloud.store.steps[REF], StepStatus.CLOSED, decided_at + timedelta(seconds=1)
    )
    assert cloud.store.steps[REF].status == StepStatus.SUCCEEDED


def test_the_sweeper_delivers_an_outcome_decided_before_a_crash() -> None:
    # Given an outcome decided (COMPLETING) whose SendTaskSuccess never happened
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    step = cloud.store.steps[REF]
    from relay.models import Outcome

    cloud.store.begin_completion(step, Outcome(succeeded=True, facts={"glue_run_id": "jr_0001"}), T0)
    report = sweep(cloud.plane, T0 + timedelta(hours=1), timedelta(minutes=15), timedelta(hours=2))
    assert report.repaired == ["run-1/extract: delivered a decided outcome"]
    assert cloud.workflow.successes["token-1"]["glue_run_id"] == "jr_0001"
    assert cloud.store.steps[REF].status == StepStatus.SUCCEEDED


def test_the_sweeper_stops_the_job_run_of_a_run_that_ended_and_closes_its_step() -> None:
    # Given a job that never finishes, and a run that ended TIMED_OUT meanwhile (its task's TimeoutSeconds)
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.workflow.closed.add("token-1")  # Step Functions no longer waits
    cloud.store.set_run(REF.run_id, RunStatus.TIMED_OUT)
    # When the sweeper comes by
    report = sweep(cloud.plane, T0 + timedelta(hours=2), timedelta(minutes=15), timedelta(hours=1))
    # Then the job run is stopped (not billed until Glue's own timeout) and the step no longer counts as stuck
    assert cloud.glue.stopped == ["jr_0001"]
    assert report.repaired == [
        "run-1/extract: run run-1 ended TIMED_OUT: step closed; job run jr_0001 stopped"
    ]
    assert (report.stuck_steps, cloud.store.steps[REF].status) == (0, StepStatus.CLOSED)
    outcome = cloud.store.steps[REF].outcome
    assert outcome is not None and "ended TIMED_OUT while step extract was open" in str(outcome.cause)
    # And the next sweep has nothing left to do
    again = sweep(cloud.plane, T0 + timedelta(hours=3), timedelta(minutes=15), timedelta(hours=1))
    assert (again.examined, cloud.glue.stopped) == (0, ["jr_0001"])


def test_the_sweeper_leaves_the_steps_of_running_runs_to_glue() -> None:
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.store.set_run(REF.run_id, RunStatus.RUNNING)
    report = sweep(cloud.plane, T0 + timedelta(hours=2), timedelta(minutes=15), timedelta(hours=1))
    assert (report.repaired, report.stuck_steps, cloud.glue.stopped) == ([], 1, [])


def test_a_sweep_ages_steps_as_of_its_tick_but_writes_the_time_it_runs() -> None:
    # Given a local cloud whose clock was moved two hours ahead: the tick says T0+2h, the function's clock T0
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    cloud.glue.finish_job_run(next(iter(cloud.glue.job_runs)), "SUCCEEDED")
    now, tick = T0 + timedelta(seconds=5), T0 + timedelta(hours=2)
    report = sweep(cloud.plane, now, timedelta(minutes=15), timedelta(hours=1), as_of=tick)
    # Then the step is overdue as of the tick, and the decision carries the time it was taken
    assert report.repaired == ["run-1/extract: job run jr_0001 SUCCEEDED, event lost"]
    assert (cloud.store.steps[REF].decided_at, cloud.store.steps[REF].closed_at) == (now, now)


def test_a_completer_holding_an_earlier_attempt_cannot_close_the_step_opened_again() -> None:
    # Given a sweep that read attempt 1 while it was COMPLETING (its completer had crashed)
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    decided = cloud.store.begin_completion(cloud.store.steps[REF], Outcome(succeeded=True), T0)
    stale = decided.model_copy(deep=True)
    # And the step opened again meanwhile (attempt 2), now being completed by its own completer
    start_step(request("token-2"), cloud.plane, T0 + timedelta(minutes=1))
    current = cloud.store.begin_completion(cloud.store.steps[REF], Outcome(succeeded=True), T0)
    # When the sweep closes what it read
    cloud.store.finish_completion(stale, StepStatus.CLOSED, T0 + timedelta(minutes=2))
    # Then attempt 2 is untouched
    step = cloud.store.steps[REF]
    assert (step.attempt, step.token, step.status) == (2, "token-2", StepStatus.COMPLETING)
    assert current.attempt == 2


def test_the_same_task_invoked_again_adopts_the_job_run_it_started_and_starts_no_other() -> None:
    # Given start_step that started the job run, then failed before it returned (so the task is invoked
    # again with the same token), once after recording the run and once before
    cloud = FakeCloud()
    first = start_step(request(), cloud.plane, T0)
    again = start_step(request(), cloud.plane, T0 + timedelta(seconds=5))
    cloud.store.steps[REF].glue_run_id = None  # as if it had crashed between StartJobRun and the record
    third = start_step(request(), cloud.plane, T0 + timedelta(seconds=10))
    # Then one job run exists, the step's, and the attempt did not change
    assert list(cloud.glue.job_runs) == [first["glue_run_id"]]
    assert again == third == {**first, "adopted": True}
    assert (cloud.store.steps[REF].attempt, cloud.store.steps[REF].glue_run_id) == (1, first["glue_run_id"])


def test_a_new_attempt_stops_the_job_run_an_earlier_attempt_left_running() -> None:
    cloud = FakeCloud()
    first = start_step(request("token-1"), cloud.plane, T0)
    second = start_step(request("token-2"), cloud.plane, T0 + timedelta(minutes=1))
    assert cloud.glue.stopped == [first["glue_run_id"]]
    assert cloud.glue.job_runs[first["glue_run_id"]].state == "STOPPED"
    assert cloud.glue.job_runs[second["glue_run_id"]].state == "RUNNING"
    assert cloud.store.steps[REF].attempt == 2


def test_a_run_glue_retries_is_not_the_steps_end_and_its_retry_completes_the_step() -> None:
    # Given a job Glue retries once (MaxRetries 1) whose first run fails
    cloud = FakeCloud()
    cloud.glue.max_retries["extract_customers"] = 1
    start_step(request(), cloud.plane, T0)
    failed = cloud.glue.finish_job_run("jr_0001", "FAILED", "OOM on the driver")
    event = JobStateChange.model_validate(
        {**load_event("glue-job-succeeded")["detail"], "jobRunId": failed.run_id, "state": "FAILED"}
    )
    # When its FAILED event arrives, then the sweeper looks, then Glue's retry succeeds
    assert on_job_event(event, cloud.plane, T0) == Verdict(
        0, "ignored: Glue starts the run again (the job's MaxRetries)"
    )
    late = T0 + timedelta(hours=2)
    assert sweep(cloud.plane, late, timedelta(minutes=15), timedelta(hours=3)).repaired == []
    retry = cloud.glue.retry_job_run(failed.run_id)
    cloud.glue.finish_job_run(retry, "SUCCEEDED")
    done = event.model_copy(update={"job_run_id": retry, "state": "SUCCEEDED"})
    # Then the retry's success completes the step, with the retry's run id
    assert on_job_event(done, cloud.plane, late) == Verdict(1, "completed")
    assert cloud.workflow.successes["token-1"]["glue_run_id"] == retry
    assert not cloud.workflow.failures


def test_the_sweeper_completes_a_step_from_glues_retry_when_its_events_were_lost() -> None:
    cloud = FakeCloud()
    cloud.glue.max_retries["extract_customers"] = 2
    start_step(request(), cloud.plane, T0)
    cloud.glue.finish_job_run("jr_0001", "FAILED", "first")
    second = cloud.glue.retry_job_run("jr_0001")
    cloud.glue.finish_job_run(second, "FAILED", "second")
    third = cloud.glue.retry_job_run(second)
    cloud.glue.finish_job_run(third, "FAILED", "third and last")
    report = sweep(cloud.plane, T0 + timedelta(hours=1), timedelta(minutes=15), timedelta(hours=3))
    assert report.repaired == [f"run-1/extract: job run {third} FAILED, event lost"]
    assert "third and last" in cloud.workflow.failures["token-1"][1]


def test_an_event_of_a_run_the_attempt_did_not_start_changes_nothing() -> None:
    # Given a second run carrying the step's arguments that is not the step's run nor Glue's retry of it
    cloud = FakeCloud()
    start_step(request(), cloud.plane, T0)
    stray = cloud.glue.start_job_run("extract_customers", dict(cloud.glue.job_runs["jr_0001"].arguments))
    cloud.glue.finish_job_run(stray, "FAILED", "someone else's run")
    event = JobStateChange.model_validate(
        {**load_event("glue-job-succeeded")["detail"], "jobRunId": stray, "state": "FAILED"}
    )
    assert on_job_event(event, cloud.plane, T0) == Verdict(
        0, "ignored: a job run this step's attempt did not start"
    )
    assert cloud.store.steps[REF].status == StepStatus.OPEN


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("--extra-py-files", "not a script argument"),
        ("--TempDir", "not a script argument"),
        ("--summary_uri", "set by gluerelay"),
        ("--staging_uri", "set by gluerelay"),
        ("--conf", "reserved by Glue"),
    ],
)
def test_a_step_request_carrying_glues_or_gluerelays_own_arguments_is_refused(name: str, why: str) -> None:
    """Whoever can start an execution or edit its state machine cannot reach StartJobRun with them."""
    with pytest.raises(ValidationError) as refused:
        StepRequest.model_validate(
            {**request().model_dump(), "arguments": {"--source": "s3", name: "s3://elsewhere/x.py"}}
        )
    assert name in str(refused.value) and why in str(refused.value)
