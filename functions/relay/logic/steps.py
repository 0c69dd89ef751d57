"""The control plane's three moments for a step: it starts, Glue reports its end, or the sweeper finds it.

Each returns a typed result: what the handler logs and counts (metrics) and what tests assert on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from relay.contract import RunStatus
from relay.errors import (
    CatalogError,
    ConditionFailedError,
    NotFoundError,
    QualityError,
    TaskAlreadyClosedError,
)
from relay.logic import catalog, crawls, jobs, quality
from relay.logic.completion import complete, deliver, step_output
from relay.logic.runs import close_step
from relay.models import (
    CatalogRequest,
    Crawl,
    CrawlerStateChange,
    JobRun,
    JobStateChange,
    LeaseState,
    Outcome,
    QualityRequest,
    QualityResultsAvailable,
    Step,
    StepKind,
    StepRequest,
    StepStatus,
)
from relay.observability import logger
from relay.ports import ControlPlane

# How long a decided outcome (COMPLETING) may wait for its completer's delivery before the sweeper
# takes it for abandoned and delivers it itself.
DELIVERY_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Verdict:
    """What an event did: how many steps it completed, and why (for the log)."""

    completed: int
    reason: str
    files_set_aside: int = 0  # landed files the completed extract step set aside unread
    pipeline: str | None = field(default=None, compare=False)  # for the metric's pipeline dimension


def start_step(request: StepRequest, plane: ControlPlane, now: datetime) -> dict[str, Any]:
    """Record the step and its token, then start Glue (in this order: an instant job's event must find
    its token). A step that already succeeded in this run (a resumed run) is answered at once.

    The same task invoked again (Step Functions retries a failed Lambda invocation with the same token)
    carries on with its attempt: a job run it already started is adopted, never started twice. A new
    attempt (a new token) first stops a job run an earlier attempt may have left running, so two runs
    never write the step's partition at once."""
    earlier = plane.steps.get_step(request.ref)
    again = (
        earlier is not None
        and earlier.token == request.token
        and earlier.status != StepStatus.START_FAILED  # Glue refused it: open a new attempt and try again
    )
    step = earlier if again and earlier is not None else plane.steps.open_step(request, now)
    facts: dict[str, Any] = {"run_id": step.run_id, "step": step.step, "attempt": step.attempt}
    if step.status == StepStatus.SUCCEEDED and step.outcome is not None:
        try:
            plane.workflow.send_success(request.token, {**step_output(step, step.outcome), "reused": True})
        except TaskAlreadyClosedError:
            logger.warning("the resumed execution stopped waiting for a step that had succeeded")
        return {**facts, "reused": True}
    if step.status != StepStatus.OPEN:
        return {**facts, "already": step.status.value}  # decided meanwhile: its completer answers
    if request.kind == StepKind.JOB:
        return {**facts, **_job_step(step, request, plane, now, earlier=earlier, again=again)}
    if request.catalog is not None:  # StepRequest._kind_payload: only a catalog step carries it
        return {**facts, **_catalog_step(step, request.catalog, plane, now)}
    if request.quality is not None:
        return {**facts, **_quality_step(step, request.quality, plane, now)}
    lease = crawls.request_crawl(step.ref, request.name, plane.leases, plane.glue, now)
    return {**facts, "crawl": "owner" if step.ref in lease.owners else "waiter"}


def _job_step(
    step: Step, request: StepRequest, plane: ControlPlane, now: datetime, *, earlier: Step | None, again: bool
) -> dict[str, Any]:
    """Start the step's job run: adopt the one a retried invocation of this attempt started; a new attempt
    first stops a run an earlier attempt may have left running."""
    if again:
        adopted = jobs.started_run(step, plane.glue)
        if adopted is not None:
            if step.glue_run_id != adopted.run_id:
                plane.steps.record_glue_run(step.ref, step.attempt, adopted.run_id)
            return {"glue_run_id": adopted.run_id, "adopted": True}
    elif earlier is not None and earlier.kind == StepKind.JOB:
        _stop_earlier_attempt(earlier, plane)
    uris = plane.bucket.job_uris(step.run_id, step.step, step.attempt)
    glue_run_id = jobs.start_job(
        step, request.job_arguments(), uris=uris, store=plane.steps, glue=plane.glue, now=now
    )
    _stop_if_run_ended(step.model_copy(update={"glue_run_id": glue_run_id}), plane, now)
    return {"glue_run_id": glue_run_id}


def _catalog_step(step: Step, request: CatalogRequest, plane: ControlPlane, now: datetime) -> dict[str, Any]:
    """A catalog step completes here, through the same path as any step (decided, then sent): the catalog
    answers in milliseconds. Drift fails the step, or (on_drift: crawl) hands it to its crawler's lease,
    whose crawl's event completes it like a crawler step."""
    if step.crawler is not None:  # a retried invocation of an attempt that already fell back
        lease = crawls.request_crawl(step.ref, step.crawler, plane.leases, plane.glue, now)
        return {"drift": step.drift, "crawl": "owner" if step.ref in lease.owners else "waiter"}
    try:
        done = catalog.register(step, request, plane.glue, plane.bucket)
    except CatalogError as e:
        complete(step, catalog.refused_outcome(step, e), plane.steps, plane.workflow, now)
        return {"catalog": f"refused: {e}"}
    if isinstance(done, catalog.Drift):
        if request.on_drift == "crawl" and request.crawler:
            plane.steps.record_fallback(step.ref, step.attempt, request.crawler, done.facts())
            logger.warning("schema drift: the crawler catalogs this run", extra={"drift": done.describe()})
            lease = crawls.request_crawl(step.ref, request.crawler, plane.leases, plane.glue, now)
            return {"drift": done.facts(), "crawl": "owner" if step.ref in lease.owners else "waiter"}
        complete(step, catalog.drift_outcome(done), plane.steps, plane.workflow, now)
        return {"drift": done.facts(), "catalog": "failed"}
    complete(step, done.outcome(), plane.steps, plane.workflow, now)
    return {"catalog": "registered", "partitions_created": done.partitions_created}


def _quality_step(step: Step, request: QualityRequest, plane: ControlPlane, now: datetime) -> dict[str, Any]:
    """A summary gate completes here; a ruleset's evaluation run is started (the same ClientToken for the
    attempt: a retried invocation adopts the run it started) and Glue Data Quality's event completes it."""
    if step.glue_run_id is not None:
        return {"evaluation_run_id": step.glue_run_id, "adopted": True}
    try:
        judged, run_id = quality.start_quality(step, request, plane)
    except QualityError as e:
        refused = Outcome(
            succeeded=False,
            facts={"table": step.resource},
            error="GlueQualityFailed",
            cause=f"quality step {step.step}: {e.code}: {e.message}",
        )
        complete(step, refused, plane.steps, plane.workflow, now)
        return {"quality": f"refused: {e}"}
    if judged is not None:
        complete(step, judged, plane.steps, plane.workflow, now)
        return {"quality": "passed" if judged.succeeded else "failed"}
    return {"evaluation_run_id": run_id}


def on_quality_event(detail: QualityResultsAvailable, plane: ControlPlane, now: datetime) -> Verdict:
    """Glue Data Quality's results are available: the step its run served completes with its rules."""
    located = plane.steps.quality_run_step(detail.context.run_id)
    if located is None:
        return Verdict(0, "ignored: an evaluation run gluerelay did not start (or not yet recorded)")
    ref, attempt = located
    step = plane.steps.get_step(ref)
    if step is None or step.kind != StepKind.QUALITY:
        return Verdict(0, "ignored: no such step")
    if step.attempt != attempt or step.status != StepStatus.OPEN or step.glue_run_id != detail.context.run_id:
        return Verdict(0, "ignored: step already completed or retried")
    outcome = quality.run_outcome(step, plane.glue)
    if outcome is None:
        return Verdict(0, f"ignored: Glue reports evaluation run {step.glue_run_id} not ended")
    if complete(step, outcome, plane.steps, plane.workflow, now):
        return Verdict(1, "completed", pipeline=step.pipeline)
    return Verdict(0, "ignored: a duplicate completed the step first")


def _stop_earlier_attempt(earlier: Step, plane: ControlPlane) -> None:
    run = jobs.job_run_of(earlier, plane.glue)
    if run is not None and not run.terminal:
        plane.glue.stop_job_run(earlier.resource, run.run_id)
        logger.warning(
            "stopped the job run an earlier attempt left running",
            extra={"run_id": earlier.run_id, "step": earlier.step, "glue_run_id": run.run_id},
        )


def _stop_if_run_ended(step: Step, plane: ControlPlane, now: datetime) -> None:
    """The run may have ended (another branch failed) while this job was being started: close_run ends the
    record before it looks for open steps, so either it saw this step or this look sees the ended run."""
    run = plane.runs.get_run(step.run_id)
    if run is None or (run.status is RunStatus.RUNNING and run.execution_arn in (None, step.execution_arn)):
        return
    close_step(step, f"run {step.run_id} ended {run.status.value}", plane, now, closed_by="start_step")


def on_job_event(detail: JobStateChange, plane: ControlPlane, now: datetime) -> Verdict:
    try:
        run = plane.glue.get_job_run(detail.job_name, detail.job_run_id)
    except NotFoundError:
        return Verdict(0, "ignored: unknown job run")
    located = jobs.step_of(run)
    if located is None:
        return Verdict(0, "ignored: job run not started by gluerelay")
    ref, attempt = located
    step = plane.steps.get_step(ref)
    if step is None or step.kind != StepKind.JOB:
        return Verdict(0, "ignored: no such step")
    ignored = _not_the_steps_end(step, attempt, run, detail, plane)
    if ignored:
        return Verdict(0, f"ignored: {ignored}")
    if run.state != detail.state:  # a late or mistaken event: Glue's own record of the run decides
        logger.warning(
            "job event disagrees with Glue's record; Glue's state used",
            extra={"event_state": detail.state, "glue_state": run.state, "glue_run_id": run.run_id},
        )
    summary = plane.bucket.read_summary(step.run_id, step.step) if run.state == "SUCCEEDED" else None
    message = detail.message if run.state == detail.state else None
    outcome = jobs.job_outcome(run.state, run, message, summary)
    if complete(step, outcome, plane.steps, plane.workflow, now):
        set_aside = int((outcome.facts.get("rows") or {}).get("files_set_aside") or 0)
        return Verdict(1, "completed", set_aside, step.pipeline)
    return Verdict(0, "ignored: a duplicate completed the step first")


def _not_the_steps_end(
    step: Step, attempt: int, run: JobRun, detail: JobStateChange, plane: ControlPlane
) -> str | None:
    """Why a job event does not end the step (None when it does)."""
    if step.attempt != attempt or step.status != StepStatus.OPEN:
        return "step already completed or retried"
    if step.glue_run_id and not jobs.descends_from(run, step.glue_run_id, plane.glue):
        return "a job run this step's attempt did not start"
    if not run.terminal:
        return f"Glue reports job run {run.run_id} {run.state}, not ended: the event is not its end"
    if run.state == "FAILED" and jobs.will_retry(run, plane.glue):
        return "Glue starts the run again (the job's MaxRetries)"
    return None


def on_crawler_event(detail: CrawlerStateChange, plane: ControlPlane, now: datetime) -> Verdict:
    crawl: Crawl | None = None
    looked = False  # Glue is asked once, and only when a run waits for the crawler
    # A version conflict means the lease moved meanwhile: a run joined the waiters (common when many
    # runs share a crawler), or a duplicate of this event settled it. Look again rather than drop the
    # event: the second look tells a settled lease (an earlier crawl's event now) from a busy one.
    for attempt in range(crawls.MAX_LEASE_ATTEMPTS):
        crawls.back_off(attempt)
        lease = plane.leases.get_lease(detail.crawler_name)
        if lease.state == LeaseState.IDLE:
            return Verdict(0, "ignored: no run waits for this crawler")
        try:
            if lease.state == LeaseState.AWAITING_FOREIGN:
                crawls.promote_after_foreign(lease, plane.leases, plane.glue, now)
                return Verdict(0, "crawl started after a foreign crawl")
            if not looked:
                crawl, looked = crawls.ended_crawl(detail, plane.glue), True
            if crawls.unidentified(detail, crawl):
                return Verdict(
                    0, "ignored: Glue lists no ended crawl this event reports; the sweeper decides"
                )
            if crawls.is_earlier_crawl(detail, crawl, lease):
                return Verdict(0, "ignored: event of an earlier crawl")
            owners, following = crawls.settle(lease, plane.leases, now)
            break
        except ConditionFailedError:
            continue
    else:
        # Raised, the event is retried by EventBridge; the sweeper repairs it if every retry loses too.
        raise ConditionFailedError(f"lease of crawler {detail.crawler_name} is contended; retry the event")
    outcome = crawls.event_outcome(detail, crawl)
    completed = 0
    for ref in owners:
        step = plane.steps.get_step(ref)
        if step is not None and step.status == StepStatus.OPEN:
            completed += complete(step, outcome, plane.steps, plane.workflow, now)
    crawls.follow_up(following, plane.leases, plane.glue)
    return Verdict(
        completed, f"completed {completed} of {len(owners)} steps; {len(following.owners)} own the next crawl"
    )


@dataclass
class SweepReport:
    examined: int = 0
    repaired: list[str] = field(default_factory=list)
    # Steps the sweep could not reconcile this time (an API error, a deleted crawler): the others are
    # still repaired and counted; these are retried at the next sweep.
    errors: list[str] = field(default_factory=list)
    stuck_steps: int = 0
    oldest_open_seconds: float = 0.0
    stuck_by_pipeline: dict[str, int] = field(default_factory=dict)


def sweep(
    plane: ControlPlane,
    now: datetime,
    repair_after: timedelta,
    stuck_after: timedelta,
    *,
    as_of: datetime | None = None,
) -> SweepReport:
    """Reconcile steps whose Glue event has not arrived within ``repair_after`` against Glue's own
    record, and count the ones still open after ``stuck_after``.

    Steps are aged ``as_of`` the schedule's tick (default ``now``); what the sweep writes (decisions,
    lease requests) carries ``now``, the time it is written, like every other function's records: a lease
    request must not look later than the crawl it starts."""
    reference = as_of or now
    report = SweepReport()
    _start_pending_crawls(plane, now, report)
    for step in plane.steps.active_steps(opened_before=reference - repair_after):
        report.examined += 1
        try:
            verdict = _reconcile(step, plane, now)
        except Exception as e:  # noqa: BLE001 - one step's failure must not stop the repair of the others
            logger.exception("step not reconciled", extra={"run_id": step.run_id, "step": step.step})
            report.errors.append(f"{step.run_id}/{step.step}: {type(e).__name__}: {e}")
            verdict = None
        if verdict:
            report.repaired.append(f"{step.run_id}/{step.step}: {verdict}")
            continue
        age = (reference - step.opened_at).total_seconds()
        report.oldest_open_seconds = max(report.oldest_open_seconds, age)
        if age >= stuck_after.total_seconds():
            report.stuck_steps += 1
            pipeline = step.pipeline or "unknown"
            report.stuck_by_pipeline[pipeline] = report.stuck_by_pipeline.get(pipeline, 0) + 1
    return report


def _start_pending_crawls(plane: ControlPlane, now: datetime, report: SweepReport) -> None:
    """Start the crawls that waited for their crawler to finish STOPPING (see crawls.start_crawl)."""
    for crawler in plane.leases.pending_crawls():
        try:
            lease = crawls.start_pending(crawler, plane.leases, plane.glue, now)
        except ConditionFailedError:
            continue  # the lease moved meanwhile: whoever moved it carries on
        except Exception as e:  # noqa: BLE001 - one crawler's failure must not stop the sweep
            logger.exception("pending crawl not started", extra={"crawler": crawler})
            report.errors.append(f"crawler {crawler}: {type(e).__name__}: {e}")
            continue
        if lease is not None and lease.state != LeaseState.PENDING_START:
            report.repaired.append(f"crawler {crawler}: crawl started for {len(lease.owners)} waiting steps")


def _reconcile(step: Step, plane: ControlPlane, now: datetime) -> str | None:
    """What the sweeper did for this step, or None when Glue is still working on it."""
    if step.status == StepStatus.COMPLETING:
        # A completer normally delivers within milliseconds of deciding; redeliver only what it left
        # behind (it crashed). Redelivering a delivery in flight would find the task closed and could
        # mark a step CLOSED that was in fact delivered.
        if step.decided_at is not None and now - step.decided_at < DELIVERY_GRACE:
            return None
        deliver(step, plane.steps, plane.workflow, now)
        return "delivered a decided outcome"
    run = plane.runs.get_run(step.run_id)
    if run is not None and run.status.ended:
        return close_step(
            step, f"run {step.run_id} ended {run.status.value}", plane, now, closed_by="sweeper"
        )
    if step.kind == StepKind.JOB:
        return _reconcile_job(step, plane, now)
    if step.kind == StepKind.QUALITY:
        return _reconcile_quality(step, plane, now)
    crawler = step.waits_for_crawler
    # A catalog step that did not fall back to a crawl is answered by start_step itself, within the
    # invocation: Step Functions sees that invocation fail if it cannot, so there is no event to lose.
    return _reconcile_crawler(step, crawler, plane, now) if crawler is not None else None


def _reconcile_job(step: Step, plane: ControlPlane, now: datetime) -> str | None:
    run = jobs.job_run_of(step, plane.glue)
    if run is None or not run.terminal or jobs.will_retry(run, plane.glue):
        return None
    state = run.state if run.state in {"SUCCEEDED", *jobs.FAILED_STATES} else "FAILED"
    summary = plane.bucket.read_summary(step.run_id, step.step) if state == "SUCCEEDED" else None
    outcome = jobs.job_outcome(state, run, run.error_message, summary)
    if complete(step, outcome, plane.steps, plane.workflow, now, repaired_by="sweeper"):
        return f"job run {run.run_id} {state}, event lost"
    return None


def _reconcile_quality(step: Step, plane: ControlPlane, now: datetime) -> str | None:
    """Glue Data Quality delivers its events best effort: the evaluation run's own record decides."""
    if step.glue_run_id is None:
        return None  # a summary gate, answered within start_step; or no run started yet
    outcome = quality.run_outcome(step, plane.glue)
    if outcome is None:
        return None
    if complete(step, outcome, plane.steps, plane.workflow, now, repaired_by="sweeper"):
        return f"evaluation run {step.glue_run_id} {outcome.facts.get('evaluation_state')}, event lost"
    return None


def _reconcile_crawler(step: Step, crawler: str, plane: ControlPlane, now: datetime) -> str | None:
    # The crawler's state first, then its crawls: a crawl that ends between the two reads is then seen
    # as finished below, not taken for a lost lease that needs another crawl.
    idle = plane.glue.get_crawler(crawler).state == "READY"
    # A finished crawl that started after the step opened (its data was written by then) serves it.
    for crawl in plane.glue.recent_crawls(crawler):
        if crawl.state in {"RUNNING", "CANCELLING"} or crawl.started_on is None:
            continue
        if crawl.started_on >= step.opened_at:
            outcome = crawls.crawl_outcome(crawler, crawl)
            if complete(step, outcome, plane.steps, plane.workflow, now, repaired_by="sweeper"):
                try:
                    crawls.release(step.ref, crawler, plane.leases, plane.glue, now)
                except ConditionFailedError:
                    logger.info("lease changed while releasing a repaired step", extra={"crawler": crawler})
                return f"crawl {crawl.crawl_id} {crawl.state}, event lost"
            return None
    return _restart_stale_lease(step, crawler, plane, now) if idle else None


def _restart_stale_lease(step: Step, crawler: str, plane: ControlPlane, now: datetime) -> str | None:
    """No crawl served the step yet and the crawler is idle while the lease says otherwise: the event
    that would have moved the lease on was lost. Start the crawl the lease promises."""
    lease = plane.leases.get_lease(crawler)
    try:
        if lease.state == LeaseState.AWAITING_FOREIGN:
            crawls.promote_after_foreign(lease, plane.leases, plane.glue, now)
            return "foreign crawl ended without an event; crawl started"
        if step.ref not in lease.owners and step.ref not in lease.waiters:
            crawls.request_crawl(step.ref, crawler, plane.leases, plane.glue, now)
            return "step missing from the lease; crawl requested"
        if lease.state == LeaseState.CRAWLING and step.ref in lease.owners:
            crawls.start_crawl(lease, plane.leases, plane.glue)
            return "lease crawling but crawler idle; crawl restarted"
    except ConditionFailedError:
        return None
    return None
