"""The operator views' arithmetic: timeline bars and cost totals (the commands themselves: tests/e2e)."""

from __future__ import annotations

from datetime import UTC, datetime

from gluerelay.operate import PRICE_DPU_HOUR, RunCost, total_cost
from gluerelay.records import StepReport
from gluerelay.views import gantt_bar

SPAN = (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 10, tzinfo=UTC))


def step(opened: str, closed: str | None) -> StepReport:
    return StepReport(
        "extract", "job", "job", "OPEN" if closed is None else "SUCCEEDED", opened, closed, None, None
    )


def test_a_bar_sits_where_the_step_ran_in_the_run() -> None:
    assert (
        gantt_bar(step("2026-01-01T00:00:00+00:00", "2026-01-01T00:05:00+00:00"), SPAN, width=10) == "█" * 5
    )
    assert gantt_bar(step("2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00"), SPAN, width=10) == (
        " " * 5 + "█" * 5
    )


def test_a_step_still_open_is_shaded_to_the_end_and_an_instant_one_still_shows() -> None:
    assert gantt_bar(step("2026-01-01T00:08:00+00:00", None), SPAN, width=10) == " " * 8 + "▒" * 2
    instant = gantt_bar(step("2026-01-01T00:10:00+00:00", "2026-01-01T00:10:00+00:00"), SPAN, width=10)
    assert instant == " " * 9 + "█"


def cost(run: str, crawls: dict[str, float]) -> RunCost:
    return RunCost(run, 1, 0.1, crawls, sum(crawls.values()), False, 8, 9, 0.0, 0.0, 0.0)


def test_a_crawl_shared_by_two_runs_is_counted_once_in_the_total() -> None:
    total = total_cost([cost("a", {"crawl-1": 0.5}), cost("b", {"crawl-1": 0.5, "crawl-2": 0.25})])
    assert (total.runs, total.crawl_dpu_hours, total.job_dpu_hours) == (2, 0.75, 0.2)
    assert total.usd == round((0.2 + 0.75) * PRICE_DPU_HOUR + 16 * 0.025 / 1000 + 18 * 0.2 / 1e6, 6)
