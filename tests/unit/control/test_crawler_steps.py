"""Crawler steps: one crawl at a time, coalesced across runs, never a failed crawl called success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.logic.steps import on_crawler_event, start_step, sweep
from relay.models import CrawlerStateChange, LeaseState, StepKind, StepRef, StepRequest, StepStatus

from tests.fakes import FakeCloud, load_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CRAWLER = "raw_customers"


def crawl_step(cloud: FakeCloud, run: str, at: datetime) -> StepRef:
    request = StepRequest(
        kind=StepKind.CRAWLER, name=CRAWLER, run_id=run, step="02-crawl-raw", token=f"t-{run}"
    )
    start_step(request, cloud.plane, at)
    return StepRef(run_id=run, step="02-crawl-raw")


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
    assert verdict == "completed 1 of 1 steps; 2 own the next crawl"
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
    cloud.glue.crawler_state[CRAWLER] = "READY"
    on_crawler_event(crawl_ended(T0, T0, failed=True), cloud.plane, T0 + timedelta(minutes=1))
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "GlueCrawlFailed"
    assert "Insufficient Lake Formation permission(s)" in cause
    assert "t-b" not in cloud.workflow.failures and "t-b" not in cloud.workflow.successes
    assert cloud.store.get_lease(CRAWLER).owners == [StepRef(run_id="b", step="02-crawl-raw")]


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
    assert verdict == "crawl started after a foreign crawl"
    assert not cloud.workflow.successes
    assert cloud.glue.crawls_started == [CRAWLER]
    assert cloud.store.get_lease(CRAWLER).state == LeaseState.CRAWLING


def test_events_of_earlier_crawls_and_of_idle_crawlers_are_ignored() -> None:
    cloud = FakeCloud()
    assert on_crawler_event(crawl_ended(T0, T0), cloud.plane, T0) == "ignored: no run waits for this crawler"
    crawl_step(cloud, "a", T0 + timedelta(hours=1))
    stale = crawl_ended(T0, T0 + timedelta(minutes=1))  # started an hour before our request
    assert (
        on_crawler_event(stale, cloud.plane, T0 + timedelta(hours=1)) == "ignored: event of an earlier crawl"
    )
    assert not cloud.workflow.successes


def test_a_duplicate_crawl_event_completes_nothing_twice() -> None:
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    event = crawl_ended(T0, T0 + timedelta(minutes=1))
    on_crawler_event(event, cloud.plane, T0 + timedelta(minutes=1))
    again = on_crawler_event(event, cloud.plane, T0 + timedelta(minutes=1))
    assert again == "ignored: no run waits for this crawler"
    assert list(cloud.workflow.successes) == ["t-a"]


def test_the_sweeper_completes_a_crawl_step_whose_event_was_lost_and_moves_the_lease_on() -> None:
    cloud = FakeCloud()
    crawl_step(cloud, "a", T0)
    crawl_step(cloud, "b", T0 + timedelta(seconds=10))
    cloud.glue.finish_crawl(CRAWLER, T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))  # event lost
    report = sweep(cloud.plane, T0 + timedelta(minutes=20), timedelta(minutes=15), timedelta(hours=1))
    assert report.repaired[0].startswith("a/02-crawl-raw: crawl crawl-")
    assert cloud.workflow.successes["t-a"]["repaired_by"] == "sweeper"
    # b did not count as served by a crawl that started before its data: it owns the next crawl
    assert "t-b" not in cloud.workflow.successes
    assert cloud.glue.crawls_started == [CRAWLER, CRAWLER]
    assert cloud.store.get_lease(CRAWLER).owners == [StepRef(run_id="b", step="02-crawl-raw")]
    assert cloud.store.steps[StepRef(run_id="b", step="02-crawl-raw")].status == StepStatus.OPEN
