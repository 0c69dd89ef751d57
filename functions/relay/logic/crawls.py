"""Crawler steps: one crawl at a time per crawler, shared by every run that needs it.

Crawlers carry no run id, allow one crawl at a time and bill 10 minutes per crawl. Each crawler has a
lease (DynamoDB, versioned conditional writes): the running crawl's *owners* complete when it ends; runs
that arrive meanwhile *wait* and become the owners of one follow-up crawl. A crawler step therefore
completes only after a crawl that started after its data was written, and a failed crawl fails exactly
the steps it served.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from random import uniform
from time import sleep
from typing import Any

from relay.errors import ConditionFailedError, CrawlerRunningError
from relay.models import Crawl, CrawlerStateChange, Lease, LeaseState, Outcome, StepRef
from relay.observability import logger
from relay.ports import Glue, LeaseStore

MAX_LEASE_ATTEMPTS = 10
# A lost conditional write on a busy lease waits this long before it looks again, doubling each time up to
# the cap, with full jitter (so runs colliding on one lease do not collide again in step).
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 1.0
# Glue keeps a crawler STOPPING for a while after its crawl's event; a follow-up crawl tries again after
# these waits (within on_glue_event's timeout) before it leaves the start to the sweeper.
STOPPING_RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0)
# When a crawl's start is only estimated from its event (completionDate to the second, running time
# rounded), a crawl that started this long before our request belongs to an earlier crawl.
CLOCK_SKEW = timedelta(seconds=5)
_ENDED = {"Succeeded": {"COMPLETED"}, "Failed": {"FAILED", "CANCELLED"}}


def back_off(attempt: int) -> None:
    """Wait before the next attempt at a contended lease: exponential, capped, fully jittered."""
    if attempt > 0:
        sleep(uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))


def request_crawl(ref: StepRef, crawler: str, leases: LeaseStore, glue: Glue, now: datetime) -> Lease:
    """Own the next crawl of ``crawler`` for this step: start one if the crawler is ours to start, else
    wait for the running one to end."""
    for attempt in range(MAX_LEASE_ATTEMPTS):
        back_off(attempt)
        lease = leases.get_lease(crawler)
        if ref in lease.owners or ref in lease.waiters:
            return lease  # a retried invocation: already registered
        if lease.state == LeaseState.IDLE:
            taken = lease.model_copy(
                update={
                    "state": LeaseState.CRAWLING,
                    "owners": [ref],
                    "waiters": [],
                    "crawl_requested_at": now,
                    "version": lease.version + 1,
                }
            )
            try:
                leases.put_lease(taken, lease.version)
            except ConditionFailedError:
                continue
            return start_crawl(taken, leases, glue)
        if lease.state == LeaseState.PENDING_START:  # its crawl has not started: it will see our data
            update: dict[str, Any] = {"owners": [*lease.owners, ref]}
        else:
            update = {"waiters": [*lease.waiters, ref]}
        joined = lease.model_copy(update={**update, "version": lease.version + 1})
        try:
            leases.put_lease(joined, lease.version)
        except ConditionFailedError:
            continue
        return joined
    raise ConditionFailedError(f"lease of crawler {crawler} is contended; retry")


def start_crawl(lease: Lease, leases: LeaseStore, glue: Glue) -> Lease:
    """Start the crawl a CRAWLING lease promises. If the crawler is still STOPPING after our previous crawl
    (Glue sends the crawl's event before the crawler is READY), try again shortly, then leave the lease
    PENDING_START for the sweeper; if someone else's crawl runs, await its end instead."""
    for wait in (*STOPPING_RETRY_SECONDS, None):
        try:
            glue.start_crawler(lease.crawler)
        except CrawlerRunningError:
            if glue.get_crawler(lease.crawler).state not in {"STOPPING", "READY"}:
                awaiting = lease.model_copy(
                    update={"state": LeaseState.AWAITING_FOREIGN, "version": lease.version + 1}
                )
                leases.put_lease(awaiting, lease.version)
                logger.info(
                    "crawler busy with a crawl we did not start; ours follows",
                    extra={"crawler": lease.crawler},
                )
                return awaiting
        else:
            return lease
        if wait is not None:
            sleep(wait)
    pending = lease.model_copy(update={"state": LeaseState.PENDING_START, "version": lease.version + 1})
    leases.put_lease(pending, lease.version)
    logger.warning(
        "crawler still stopping after its last crawl; the sweeper starts the next one",
        extra={"crawler": lease.crawler},
    )
    return pending


def start_pending(crawler: str, leases: LeaseStore, glue: Glue, now: datetime) -> Lease | None:
    """Start the crawl a PENDING_START lease waits for (the sweeper's job); None if it no longer waits."""
    lease = leases.get_lease(crawler)
    if lease.state != LeaseState.PENDING_START:
        return None
    due = lease.model_copy(
        update={"state": LeaseState.CRAWLING, "crawl_requested_at": now, "version": lease.version + 1}
    )
    leases.put_lease(due, lease.version)
    return start_crawl(due, leases, glue)


def ended_crawl(detail: CrawlerStateChange, glue: Glue) -> Crawl | None:
    """The crawl an event reports, as ListCrawls knows it (exact start and end). With a completionDate
    (Succeeded events carry one): the latest-started ended crawl whose end falls in that second. Without
    one (Glue's Failed event has neither completionDate nor running time): the crawler's newest ended crawl
    in the event's state, the only one a current event can report. None when Glue lists none."""
    ended = [
        crawl
        for crawl in glue.recent_crawls(detail.crawler_name)
        if crawl.state in _ENDED[detail.state]
        and crawl.started_on is not None
        and crawl.completed_on is not None
    ]
    if not detail.completion_date:
        return max(ended, key=_started_on, default=None)
    try:
        second = datetime.fromisoformat(detail.completion_date.replace("Z", "+00:00")).replace(microsecond=0)
    except ValueError:
        return None
    matching = [
        c for c in ended if c.completed_on is not None and c.completed_on.replace(microsecond=0) == second
    ]
    return max(matching, key=_started_on, default=None)


def _started_on(crawl: Crawl) -> datetime:
    assert crawl.started_on is not None  # ended crawls are filtered on it
    return crawl.started_on


def unidentified(detail: CrawlerStateChange, crawl: Crawl | None) -> bool:
    """Whether nothing ties the event to a crawl: Glue lists no ended crawl it can report, and the event
    has no completionDate to estimate one from. Such an event (a late Failed event, or one Glue has not
    recorded yet) must not end whichever crawl is running now; the sweeper decides from Glue's record."""
    return crawl is None and crawl_started_at(detail) is None


def is_earlier_crawl(detail: CrawlerStateChange, crawl: Crawl | None, lease: Lease) -> bool:
    """Whether the crawl an event reports started before the lease's crawl was requested, so it is not
    the crawl the lease's owners wait for (a late or duplicate event, or the crawl before theirs).

    The owners' crawl starts after the request (the request time is taken before StartCrawler), so with
    ListCrawls' exact start the comparison needs no margin, however short the crawls. Without it, the
    start estimated from the event is up to 1.5 s early: CLOCK_SKEW absorbs that, which is safe because
    real crawls run a minute or more."""
    requested = lease.crawl_requested_at
    if requested is None:
        return False
    if crawl is not None and crawl.started_on is not None:
        return crawl.started_on < requested
    started = crawl_started_at(detail)
    return started is not None and started < requested - CLOCK_SKEW


def crawl_started_at(detail: CrawlerStateChange) -> datetime | None:
    """When the crawl an event reports started: completionDate minus its running time."""
    if not detail.completion_date or not detail.running_time_seconds:
        return None
    try:
        completed = datetime.fromisoformat(detail.completion_date.replace("Z", "+00:00"))
        return completed - timedelta(seconds=float(detail.running_time_seconds))
    except ValueError:
        return None


def event_outcome(detail: CrawlerStateChange, crawl: Crawl | None = None) -> Outcome:
    """The outcome an event reports; `crawl` (ListCrawls' record of it, when found) adds its id."""
    identity = {"crawl_id": crawl.crawl_id} if crawl is not None and crawl.crawl_id else {}
    if detail.state == "Succeeded":
        return Outcome(
            succeeded=True,
            facts={
                "crawler": detail.crawler_name,
                **identity,
                "crawl_state": "SUCCEEDED",
                "completed_on": detail.completion_date,
                "duration_seconds": _number(detail.running_time_seconds),
                "tables": {
                    "created": _number(detail.tables_created),
                    "updated": _number(detail.tables_updated),
                    "deleted": _number(detail.tables_deleted),
                },
                "partitions": {
                    "created": _number(detail.partitions_created),
                    "updated": _number(detail.partitions_updated),
                    "deleted": _number(detail.partitions_deleted),
                },
                "warning": detail.warning_message
                if detail.warning_message not in (None, "", "N/A")
                else None,
            },
        )
    return Outcome(
        succeeded=False,
        facts={"crawler": detail.crawler_name, **identity, "crawl_state": "FAILED"},
        error="GlueCrawlFailed",
        cause=f"crawler {detail.crawler_name} failed: "
        f"{detail.error_message or detail.message or 'no message'}",
    )


def crawl_outcome(crawler: str, crawl: Crawl) -> Outcome:
    """The outcome of a finished crawl as ListCrawls reports it (the sweeper's view)."""
    facts = {
        "crawler": crawler,
        "crawl_id": crawl.crawl_id,
        "crawl_state": crawl.state,
        "completed_on": crawl.completed_on.isoformat() if crawl.completed_on else None,
    }
    if crawl.state == "COMPLETED":
        return Outcome(succeeded=True, facts={**facts, "crawl_state": "SUCCEEDED"})
    return Outcome(
        succeeded=False,
        facts=facts,
        error="GlueCrawlFailed",
        cause=f"crawler {crawler} crawl {crawl.crawl_id} {crawl.state}: "
        f"{crawl.error_message or 'no message'}",
    )


def settle(lease: Lease, leases: LeaseStore, now: datetime) -> tuple[list[StepRef], Lease]:
    """The crawl of a CRAWLING lease ended: its owners are released and the waiters own the next crawl,
    requested now. Returns the released owners and the new lease (CRAWLING if anyone waits, else IDLE)."""
    if lease.waiters:
        following = lease.model_copy(
            update={
                "owners": lease.waiters,
                "waiters": [],
                "state": LeaseState.CRAWLING,
                "crawl_requested_at": now,
                "version": lease.version + 1,
            }
        )
    else:
        following = Lease(crawler=lease.crawler, version=lease.version + 1)
    leases.put_lease(following, lease.version)
    return lease.owners, following


def follow_up(lease: Lease, leases: LeaseStore, glue: Glue) -> Lease:
    """Start the crawl a settled lease's new owners wait for (no-op when the lease is IDLE)."""
    if lease.state != LeaseState.CRAWLING or not lease.owners:
        return lease
    return start_crawl(lease, leases, glue)


def promote_after_foreign(lease: Lease, leases: LeaseStore, glue: Glue, now: datetime) -> Lease:
    """The crawl we were waiting behind ended: owners and waiters share one crawl now."""
    ours = lease.model_copy(
        update={
            "state": LeaseState.CRAWLING,
            "owners": [*lease.owners, *lease.waiters],
            "waiters": [],
            "crawl_requested_at": now,
            "version": lease.version + 1,
        }
    )
    leases.put_lease(ours, lease.version)
    return start_crawl(ours, leases, glue)


def release(ref: StepRef, crawler: str, leases: LeaseStore, glue: Glue, now: datetime) -> None:
    """Drop a step that no longer waits (completed by the sweeper, or its run ended) from the crawler's
    lease; settle the lease when its crawl then serves no one. ConditionFailedError when the lease moved."""
    lease = leases.get_lease(crawler)
    if ref in lease.waiters:
        waiters = [w for w in lease.waiters if w != ref]
        leases.put_lease(
            lease.model_copy(update={"waiters": waiters, "version": lease.version + 1}), lease.version
        )
        return
    if ref not in lease.owners:
        return
    owners = [o for o in lease.owners if o != ref]
    if owners:
        leases.put_lease(
            lease.model_copy(update={"owners": owners, "version": lease.version + 1}), lease.version
        )
        return
    _, following = settle(lease, leases, now)
    follow_up(following, leases, glue)


def _number(value: str | None) -> int | float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number
