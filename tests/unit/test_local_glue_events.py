"""The local Glue's crawler events have exactly the keys of the events Glue documents (events/ holds the
documented samples): a Failed event carries no completionDate, running time or table counts."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from gluerelay.local.glue import CrawlRecord, crawl_event
from tests.fakes import load_event

BACKEND = SimpleNamespace(account_id="123456789012", region_name="us-east-1")


@pytest.mark.parametrize(
    ("error", "sample"), [(None, "glue-crawler-succeeded"), ("boom", "glue-crawler-failed")]
)
def test_crawler_events_have_the_documented_keys(error: str | None, sample: str) -> None:
    record = CrawlRecord(
        "raw_customers", "c-1", "FAILED" if error else "COMPLETED", 0.0, 1.0, error, 1, 0, 2, 0
    )
    detail = crawl_event("raw_customers", BACKEND, record, 61.4, datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    assert sorted(detail) == sorted(load_event(sample)["detail"])
    assert detail["state"] == ("Failed" if error else "Succeeded")
    if error:
        assert (detail["errorMessage"], detail["message"]) == ("boom", "Crawler Failed")
    else:
        assert (detail["completionDate"], detail["runningTime (sec)"]) == ("2026-01-01T00:07:00Z", "61")
