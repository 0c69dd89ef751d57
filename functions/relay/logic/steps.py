"""The control plane's three moments for a step: it starts, Glue reports its end, or the sweeper finds it.

Every function returns a short verdict string: it is logged and makes tests and metrics readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from relay.errors import ConditionFailedError, NotFoundError
from relay.logic import crawls, jobs
from relay.logic.completion import complete, deliver
from relay.models import (
    CrawlerStateChange,
    JobRun,
    JobStateChange,
    LeaseState,
    Outcome,
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
RUN_RUNNING = "RUNNING"  # the run record's status while its execution runs


def start_step(request: StepRequest, plane: ControlPlane, now: datetime) -> dict[str, Any]:
    """Record the step and its token, then start Glue (in this order: an instant job's event must find
    its token)."""
    step = plane.steps.open_step(request, now)
    if request.kind == StepKind.JOB:
        glue_run_id = jobs.start_job(step, request.arguments, plane.steps, plane.glue, now)
        return {"run_id": step.run_id, "step": step.step, "attempt": step.attempt, "glue_run_id": glue_run_id}
    lease = crawls.request_crawl(step.ref, request.name, plane.leases, plane.glue, now)
    role = "owner" if step.ref in lease.owners else "waiter"
    return {"run_id": step.run_id, "step": step.step, "attempt": step.attempt, "crawl": role}


def on_job_event(detail: JobStateChange, plane: ControlPlane, now: datetime) -> str:
    try:
        run = plane.glue.get_job_run(detail.job_name, detail.job_run_id)
    except NotFoundError:
        return "ignored: unknown job run"
    located = jobs.step_of(run)
    if located is None:
        return "ignored: job run not started by gluerelay"
    ref, attempt = located
    step = plane.steps.get_step(ref)
    if step is None or step.kind != StepKind.JOB:
        return "ignored: no such step"
    if step.attempt != attempt or step.status != StepStatus.OPEN:
        return "ignored: step already completed or retried"
    summary = plane.bucket.read_summary(step.run_id, detail.job_name) if detail.state == "SUCCEEDED" else None
    outcome = jobs.job_outcome(detail.state, run, detail.message, summary)
    return "completed" if complete(step, outcome, plane.steps, plane.workflow, now) else "duplicate"


def on_crawler_event(detail: CrawlerStateChange, plane: ControlPlane, now: datetime) -> str:
    crawl = crawls.ended_crawl(detail, plane.glue)
    # A version conflict means the lease moved meanwhile: a run joined the waiters (common when many
    # runs share a crawler), or a duplicate of this event settled it. Look again rather than drop the
    # event: the second look tells a settled lease (an earlier crawl's event now) from a busy one.
    for _ in range(crawls.MAX_LEASE_ATTEMPTS):
        lease = plane.leases.get_lease(detail.crawler_name)
        if lease.state == LeaseState.IDLE:
            return "ignored: no run waits for this crawler"
        try:
            if lease.state == LeaseState.AWAITING_FOREIGN:
                crawls.promote_after_foreign(lease, plane.leases, plane.glue, now)
                return "crawl started after a foreign crawl"
            if crawls.is_earlier_crawl(detail, crawl, lease):
                return "ignored: event of an earlier crawl"
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
    return f"completed {completed} of {len(owners)} steps; {len(following.owners)} own the next crawl"


@dataclass
class SweepReport:
    examined: int = 0
    repaired: list[str] = field(default_factory=list)
    stuck_steps: int = 0
    oldest_open_seconds: float = 0.0


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
    for step in plane.steps.active_steps(opened_before=reference - repair_after):
        report.examined += 1
        verdict = _reconcile(step, plane, now)
        if verdict:
            report.repaired.append(f"{step.run_id}/{step.step}: {verdict}")
            continue
        age = (reference - step.opened_at).total_seconds()
        report.oldest_open_seconds = max(report.oldest_open_seconds, age)
        if age >= stuck_after.total_seconds():
            report.stuck_steps += 1
    return report


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
    run_status = plane.steps.run_status(step.run_id)
    if run_status not in (None, RUN_RUNNING):
        return _abandon(step, run_status, plane, now)
    if step.kind == StepKind.JOB:
        return _reconcile_job(step, plane, now)
    return _reconcile_crawler(step, plane, now)


def _job_run_of(step: Step, plane: ControlPlane) -> JobRun | None:
    try:
        if step.glue_run_id:
            return plane.glue.get_job_run(step.resource, step.glue_run_id)
        # start_step stopped between StartJobRun and recording its id
        return plane.glue.find_job_run(
            step.resource, {jobs.STEP_ARG: step.step, jobs.RUN_ID_ARG: step.run_id}
        )
    except NotFoundError:
        return None


def _abandon(step: Step, run_status: str, plane: ControlPlane, now: datetime) -> str:
    """The run ended (its step timed out, another branch failed, an operator stopped it) while this step
    was open: nothing waits for the step any more. Stop its job run, which no one else needs (a crawl may
    serve other runs, so it goes on), and close the step."""
    stopped = ""
    run = _job_run_of(step, plane) if step.kind == StepKind.JOB else None
    if run is not None and not run.terminal:
        plane.glue.stop_job_run(step.resource, run.run_id)
        stopped = f"; job run {run.run_id} stopped"
    outcome = Outcome(
        succeeded=False,
        error="RunEnded",
        cause=f"run {step.run_id} ended {run_status} while step {step.step} was open{stopped}",
    )
    complete(step, outcome, plane.steps, plane.workflow, now, repaired_by="sweeper")
    if step.kind == StepKind.CRAWLER:
        _release(step, plane, now)
    return f"run ended {run_status}: step closed{stopped}"


def _reconcile_job(step: Step, plane: ControlPlane, now: datetime) -> str | None:
    run = _job_run_of(step, plane)
    if run is None or not run.terminal:
        return None
    state = run.state if run.state in {"SUCCEEDED", *jobs.FAILED_STATES} else "FAILED"
    summary = plane.bucket.read_summary(step.run_id, step.resource) if state == "SUCCEEDED" else None
    outcome = jobs.job_outcome(state, run, run.error_message, summary)
    if complete(step, outcome, plane.steps, plane.workflow, now, repaired_by="sweeper"):
        return f"job run {run.run_id} {state}, event lost"
    return None


def _reconcile_crawler(step: Step, plane: ControlPlane, now: datetime) -> str | None:
    # The crawler's state first, then its crawls: a crawl that ends between the two reads is then seen
    # as finished below, not taken for a lost lease that needs another crawl.
    idle = plane.glue.get_crawler(step.resource).state == "READY"
    # A finished crawl that started after the step opened (its data was written by then) serves it.
    for crawl in plane.glue.recent_crawls(step.resource):
        if crawl.state in {"RUNNING", "CANCELLING"} or crawl.started_on is None:
            continue
        if crawl.started_on >= step.opened_at:
            outcome = crawls.crawl_outcome(step.resource, crawl)
            if complete(step, outcome, plane.steps, plane.workflow, now, repaired_by="sweeper"):
                _release(step, plane, now)
                return f"crawl {crawl.crawl_id} {crawl.state}, event lost"
            return None
    return _restart_stale_lease(step, plane, now) if idle else None


def _release(step: Step, plane: ControlPlane, now: datetime) -> None:
    """Drop a step the sweeper completed from its lease; settle the lease when no owner is left."""
    try:
        lease = plane.leases.get_lease(step.resource)
        if step.ref in lease.waiters:
            waiters = [w for w in lease.waiters if w != step.ref]
            plane.leases.put_lease(
                lease.model_copy(update={"waiters": waiters, "version": lease.version + 1}), lease.version
            )
            return
        if step.ref not in lease.owners:
            return
        owners = [o for o in lease.owners if o != step.ref]
        if owners:
            plane.leases.put_lease(
                lease.model_copy(update={"owners": owners, "version": lease.version + 1}), lease.version
            )
            return
        _, following = crawls.settle(lease, plane.leases, now)
        crawls.follow_up(following, plane.leases, plane.glue)
    except ConditionFailedError:
        logger.info("lease changed while releasing a repaired step", extra={"crawler": step.resource})


def _restart_stale_lease(step: Step, plane: ControlPlane, now: datetime) -> str | None:
    """No crawl served the step yet and the crawler is idle while the lease says otherwise: the event
    that would have moved the lease on was lost. Start the crawl the lease promises."""
    lease = plane.leases.get_lease(step.resource)
    try:
        if lease.state == LeaseState.AWAITING_FOREIGN:
            crawls.promote_after_foreign(lease, plane.leases, plane.glue, now)
            return "foreign crawl ended without an event; crawl started"
        if step.ref not in lease.owners and step.ref not in lease.waiters:
            crawls.request_crawl(step.ref, step.resource, plane.leases, plane.glue, now)
            return "step missing from the lease; crawl requested"
        if lease.state == LeaseState.CRAWLING and step.ref in lease.owners:
            crawls.start_crawl(lease, plane.leases, plane.glue)
            return "lease crawling but crawler idle; crawl restarted"
    except ConditionFailedError:
        return None
    return None
