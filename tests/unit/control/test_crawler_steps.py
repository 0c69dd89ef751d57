"""Crawler steps: one crawl at a time, coalesced across runs, never a failed crawl called success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from relay.contract import RunStatus
from relay.errors import ConditionFailedError
from relay.logic import crawls
from relay.logic.steps import Verdict, on_crawler_event, start_step, sweep
from relay.models import CrawlerStateChange, Lease, LeaseState, StepKind, StepRef, StepRequest, StepStatus

from tests.fakes import FakeCloud, load_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CRAWLER = "raw_customers"


def crawl_step(cloud: FakeCloud, run: str, at: datetime) -> StepRef:
    request = StepRequest(
        pipeline="customers",
        kind=StepKind.CRAWLER,
        name=CRAWLER,
        run_id=run,
        step="crawl_raw",
        token=f"t-{run}",
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:stack_customers:{run}",
    )
    start_step(request, cloud.plane, at)
    return StepRef(run_id=run, step="crawl_raw")


def crawl_ended(started: datetime, ended: datetime, failed: bool = False) -> CrawlerStateChange:
    name = "glue-crawler-failed" if failed else "glue-crawler-succeeded"
    detail = {**load_event(name)["detail"], "crawlerName": CRAWLER}
    if not failed:
        detail["completionDate"] = ended.isoformat().replace("+00:00", "Z")
        detail["runningTime (sec)"] = str(int((ended - started).total_seconds()))
    return CrawlerStateChange.model_validate(detail)


def test_runs_arriving_during_a_crawl_share_one_follow_up_crawl() -> None:
    # Given run a crawling, and runs b and c arriving while it crawls
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    crawl_step(cloud, "c", T0 + timedelta(seconds=20))
    assert cloud.glue.crawls_started == [CRAWLER]
    # When a's crawl ends
    cloud.glue.crawler_state[CRAWLER] = "READY"
    verdict = on_crawler_event(
        crawl_ended(T0, T0 + timedelta(minutes=1)), cloud.plane, T0 + timedelta(minutes=1)
    )
    # Then only a completes (b and c wrote data after that crawl started) and one crawl serves b and c
    assert verdict == Verdict(1, "completed 1 of 1 steps; 2 own the next crawl")
    assert set(cloud.workflow.successes) == {"t-a"}
    assert cloud.workflow.successes["t-a"]["partitions"]["created"] == 1
    assert cloud.glue.crawls_started == [CRAWLER, CRAWLER]
    # When the follow-up crawl ends
    cloud.glue.crawler_state[CRAWLER] = "READY"
    on_crawler_event(
        crawl_ended(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
        cloud.plane,
        T0 + timedelta(minutes=2),
    )
    # Then b and c complete: 3 runs, 2 crawls, and the lease is free again
    assert set(cloud.workflow.successes) == {"t-a", "t-b", "t-c"}
    assert len(cloud.glue.crawls_started) == 2
    assert cloud.store.get_lease(CRAWLER).state == LeaseState.IDLE


def test_a_failed_crawl_fails_exactly_the_steps_it_served() -> None:
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    cloud.glue.finish_crawl(CRAWLER, T0, T0 + timedelta(seconds=50), "FAILED")
    on_crawler_event(crawl_ended(T0, T0, failed=True), cloud.plane, T0 + timedelta(minutes=1))
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "GlueCrawlFailed"
    assert "Insufficient Lake Formation permission(s)" in cause
    assert "t-b" not in cloud.workflow.failures and "t-b" not in cloud.workflow.successes
    assert cloud.store.get_lease(CRAWLER).owners == [StepRef(run_id="b", step="crawl_raw")]


def test_a_crawl_someone_else_started_is_waited_for_never_taken_as_ours() -> None:
    # Given the crawler already crawling for someone else (console, schedule)
    cloud = FakeCloud()
    cloud.glue.crawler_state[CRAWLER] = "RUNNING"
    crawl_step(cloud, "a", T0)
    assert cloud.store.get_lease(CRAWLER).state == LeaseState.AWAITING_FOREIGN
    # When the foreign crawl ends
    cloud.glue.crawler_state[CRAWLER] = "READY"
    verdict = on_crawler_event(
        crawl_ended(T0, T0 + timedelta(seconds=30)), cloud.plane, T0 + timedelta(minutes=1)
    )
    # Then nothing completes, and our own crawl starts
    assert verdict == Verdict(0, "crawl started after a foreign crawl")
    assert not cloud.workflow.successes
    assert cloud.glue.crawls_started == [CRAWLER]
    assert cloud.store.get_lease(CRAWLER).state == LeaseState.CRAWLING


def test_events_of_earlier_crawls_and_of_idle_crawlers_are_ignored() -> None:
    cloud = FakeCloud()
    assert (
        on_crawler_event(crawl_ended(T0, T0), cloud.plane, T0).reason
        == "ignored: no run waits for this crawler"
    )
    crawl_step(cloud, "a", T0 + timedelta(hours=1))
    stale = crawl_ended(T0, T0 + timedelta(minutes=1))  # started an hour before our request
    assert (
        on_crawler_event(stale, cloud.plane, T0 + timedelta(hours=1)).reason
        == "ignored: event of an earlier crawl"
    )
    assert not cloud.workflow.successes


def test_a_duplicate_crawl_event_completes_nothing_twice() -> None:
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    event = crawl_ended(T0, T0 + timedelta(minutes=1))
    on_crawler_event(event, cloud.plane, T0 + timedelta(minutes=1))
    again = on_crawler_event(event, cloud.plane, T0 + timedelta(minutes=1))
    assert again == Verdict(0, "ignored: no run waits for this crawler")
    assert list(cloud.workflow.successes) == ["t-a"]


def test_the_sweeper_completes_a_crawl_step_whose_event_was_lost_and_moves_the_lease_on() -> None:
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    cloud.glue.finish_crawl(CRAWLER, T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))  # event lost
    report = sweep(cloud.plane, T0 + timedelta(minutes=20), timedelta(minutes=15), timedelta(hours=1))
    assert report.repaired[0].startswith("a/crawl_raw: crawl crawl-")
    assert cloud.workflow.successes["t-a"]["repaired_by"] == "sweeper"
    # b did not count as served by a crawl that started before its data: it owns the next crawl
    assert "t-b" not in cloud.workflow.successes
    assert cloud.glue.crawls_started == [CRAWLER, CRAWLER]
    assert cloud.store.get_lease(CRAWLER).owners == [StepRef(run_id="b", step="crawl_raw")]
    assert cloud.store.steps[StepRef(run_id="b", step="crawl_raw")].status == StepStatus.OPEN


def test_a_waiting_crawl_step_of_a_run_that_ended_leaves_the_lease_and_the_crawl_goes_on() -> None:
    # Given a crawl serving run a, and run b waiting for the next one; then b's run times out
    cloud = FakeCloud()
    a = crawl_step(cloud, "a", T0)
    b = crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    cloud.workflow.closed.add("t-b")
    cloud.store.set_run("a", RunStatus.RUNNING)
    cloud.store.set_run("b", RunStatus.TIMED_OUT)
    # When the sweeper comes by while the crawl still runs
    report = sweep(cloud.plane, T0 + timedelta(hours=2), timedelta(minutes=15), timedelta(hours=1))
    # Then b is closed and no longer waits: the crawl's end will not start a follow-up crawl for it
    assert report.repaired == ["b/crawl_raw: run b ended TIMED_OUT: step closed"]
    assert cloud.store.steps[b].status == StepStatus.CLOSED
    lease = cloud.store.get_lease(CRAWLER)
    assert (lease.owners, lease.waiters) == ([a], [])
    assert cloud.glue.crawls_started == [CRAWLER]  # a's crawl is not stopped: it serves a


def test_a_run_joining_the_waiters_while_the_crawl_ends_does_not_lose_the_event() -> None:
    # Given run a's crawl ending while run b joins the waiters at that very moment (20 runs at once)
    cloud = FakeCloud()
    a = crawl_step(cloud, "a", T0)
    put_lease = cloud.store.put_lease
    joined: list[bool] = []

    def racing_put_lease(lease: Lease, expected_version: int) -> None:
        if not joined:  # b's conditional write lands between the event's read and its write
            joined.append(True)
            crawl_step(cloud, "b", T0 + timedelta(seconds=30))
        put_lease(lease, expected_version)

    cloud.store.put_lease = racing_put_lease  # type: ignore[method-assign]
    cloud.glue.finish_crawl(CRAWLER, T0, T0 + timedelta(seconds=40))
    verdict = on_crawler_event(
        crawl_ended(T0, T0 + timedelta(seconds=40)), cloud.plane, T0 + timedelta(seconds=41)
    )
    # Then the event is applied on a second look: a completes, b owns the next crawl
    assert verdict == Verdict(1, "completed 1 of 1 steps; 1 own the next crawl")
    assert cloud.store.steps[a].status == StepStatus.SUCCEEDED
    assert cloud.store.get_lease(CRAWLER).owners == [StepRef(run_id="b", step="crawl_raw")]


def test_a_late_copy_of_a_short_crawls_event_does_not_complete_the_next_crawls_owners() -> None:
    # Given a crawl of 0.3 s (the local cloud's crawls are that short): a's crawl ends, b owns the next one
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    b = crawl_step(cloud, "b", T0 + timedelta(milliseconds=100))
    end = T0 + timedelta(milliseconds=300)
    cloud.glue.finish_crawl(CRAWLER, T0, end)
    event = crawl_ended(T0, end)
    on_crawler_event(event, cloud.plane, end + timedelta(milliseconds=10))
    assert cloud.glue.crawls_started == [CRAWLER, CRAWLER]
    # When a copy of the same event arrives while b's crawl runs
    verdict = on_crawler_event(event, cloud.plane, end + timedelta(milliseconds=50))
    # Then Glue's exact start time shows it is the earlier crawl's: b keeps waiting for its own
    assert verdict == Verdict(0, "ignored: event of an earlier crawl")
    assert cloud.store.steps[b].status == StepStatus.OPEN


def test_a_contended_lease_is_tried_again_after_growing_jittered_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a lease that three other writers win first
    cloud = FakeCloud()
    original = cloud.store.put_lease
    lost = [3]

    def put_lease(lease: Lease, expected_version: int) -> None:
        if lost[0]:
            lost[0] -= 1
            raise ConditionFailedError("lease changed")
        original(lease, expected_version)

    cloud.store.put_lease = put_lease  # type: ignore[method-assign]
    waits: list[float] = []
    monkeypatch.setattr(crawls, "sleep", waits.append)
    monkeypatch.setattr(crawls, "uniform", lambda low, high: high)  # the longest wait allowed
    # When a step asks for a crawl
    ref = crawl_step(cloud, "run-1", T0)
    # Then it waited 40, 80 and 160 ms (at most) before its second, third and fourth attempts, and won
    assert waits == [0.04, 0.08, 0.16]
    assert cloud.store.get_lease(CRAWLER).owners == [ref]


def test_a_follow_up_crawl_waits_out_a_crawler_still_stopping_after_its_last_crawl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given run a crawling and run b waiting; a's crawl ends but the crawler is still STOPPING for a while
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    cloud.glue.crawler_state[CRAWLER] = "STOPPING"
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # Glue finishes stopping during the second wait
            cloud.glue.crawler_state[CRAWLER] = "READY"

    monkeypatch.setattr(crawls, "sleep", sleep)
    # When a's crawl's event arrives
    on_crawler_event(crawl_ended(T0, T0 + timedelta(minutes=1)), cloud.plane, T0 + timedelta(minutes=1))
    # Then b's crawl started once the crawler was READY, without waiting for the sweeper
    assert waits == [1.0, 2.0]
    assert cloud.glue.crawls_started == [CRAWLER, CRAWLER]
    assert cloud.store.get_lease(CRAWLER).state == LeaseState.CRAWLING


def test_a_crawler_stopping_for_long_leaves_the_crawl_to_the_next_sweep_and_later_steps_join_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cloud = FakeCloud()
    monkeypatch.setattr(crawls, "sleep", lambda seconds: None)
    crawl_step(cloud, "a", T0)
    b = crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    cloud.glue.crawler_state[CRAWLER] = "STOPPING"  # and it stays so through every retry
    on_crawler_event(crawl_ended(T0, T0 + timedelta(minutes=1)), cloud.plane, T0 + timedelta(minutes=1))
    lease = cloud.store.get_lease(CRAWLER)
    assert (lease.state, lease.owners, cloud.glue.crawls_started) == (
        LeaseState.PENDING_START,
        [b],
        [CRAWLER],
    )
    # A run asking meanwhile joins the owners: the crawl has not started, so it will see c's data too
    c = crawl_step(cloud, "c", T0 + timedelta(minutes=2))
    assert cloud.store.get_lease(CRAWLER).owners == [b, c]
    # When the crawler is READY and the sweeper runs (before any step is overdue), it starts the crawl
    cloud.glue.crawler_state[CRAWLER] = "READY"
    report = sweep(cloud.plane, T0 + timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
    assert report.repaired == [f"crawler {CRAWLER}: crawl started for 2 waiting steps"]
    assert cloud.glue.crawls_started == [CRAWLER, CRAWLER]
    # And that crawl's event completes both
    on_crawler_event(
        crawl_ended(T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)),
        cloud.plane,
        T0 + timedelta(minutes=6),
    )
    assert {"t-b", "t-c"} <= set(cloud.workflow.successes)
    assert cloud.store.get_lease(CRAWLER).state == LeaseState.IDLE


def test_a_late_failed_event_arriving_during_the_next_crawl_fails_nothing() -> None:
    # Given a's crawl failed (Glue's record and its event, which carries no completionDate) and b's crawl
    # started after it
    cloud = FakeCloud()
    a = crawl_step(cloud, "a", T0)
    cloud.glue.finish_crawl(CRAWLER, T0, T0 + timedelta(seconds=50), "FAILED")
    failed = crawl_ended(T0, T0, failed=True)
    assert on_crawler_event(failed, cloud.plane, T0 + timedelta(minutes=1)).completed == 1
    assert cloud.store.steps[a].status != StepStatus.OPEN
    b = crawl_step(cloud, "b", T0 + timedelta(minutes=2))
    assert cloud.glue.crawler_state[CRAWLER] == "RUNNING"
    # When a copy of the Failed event arrives while b's crawl runs
    verdict = on_crawler_event(failed, cloud.plane, T0 + timedelta(minutes=3))
    # Then Glue's record shows the failed crawl started before b's request: b keeps waiting for its own
    assert verdict == Verdict(0, "ignored: event of an earlier crawl")
    assert cloud.store.steps[b].status == StepStatus.OPEN
    assert "t-b" not in cloud.workflow.failures


def test_an_event_glue_has_no_ended_crawl_for_ends_no_step() -> None:
    # Given a's crawl running, and Glue listing no ended crawl of the crawler
    cloud = FakeCloud()
    a = crawl_step(cloud, "a", T0)
    # When a Failed event without completionDate arrives (a stray copy, or one Glue has not recorded yet)
    verdict = on_crawler_event(crawl_ended(T0, T0, failed=True), cloud.plane, T0 + timedelta(minutes=1))
    # Then nothing is decided on the event's word: the sweeper reads Glue's record later
    assert verdict == Verdict(0, "ignored: Glue lists no ended crawl this event reports; the sweeper decides")
    assert cloud.store.steps[a].status == StepStatus.OPEN
    assert not cloud.workflow.failures


def test_a_succeeded_event_without_a_completion_date_does_not_end_a_crawl_still_running() -> None:
    # Given an earlier crawl that completed, then a's crawl started and still RUNNING
    cloud = FakeCloud()
    cloud.glue.finish_crawl(CRAWLER, T0, T0 + timedelta(seconds=40))
    a = crawl_step(cloud, "a", T0 + timedelta(minutes=5))
    event = crawl_ended(T0, T0 + timedelta(seconds=40))
    detail = event.model_dump(by_alias=True, exclude={"completion_date", "running_time_seconds"})
    # When a Succeeded event without completionDate or running time arrives
    verdict = on_crawler_event(
        CrawlerStateChange.model_validate(detail), cloud.plane, T0 + timedelta(minutes=6)
    )
    # Then the only ended crawl Glue lists is the earlier one: a waits for its own
    assert verdict == Verdict(0, "ignored: event of an earlier crawl")
    assert cloud.store.steps[a].status == StepStatus.OPEN
