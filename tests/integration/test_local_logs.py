"""The local cloud's CloudWatch Logs delivery (gluerelay/local/logs.py) against moto's Logs API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gluerelay.local.logs import MAX_EVENTS_PER_CALL, LogDelivery, glue_log_groups

REGION = "us-east-1"


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


def test_lines_reach_their_stream_in_order_and_blank_lines_are_not_sent(logs: Any) -> None:
    delivery = LogDelivery(lambda service: logs)
    for n in range(MAX_EVENTS_PER_CALL + 5):  # more than one PutLogEvents call can take
        delivery.put("/aws/lambda/f", "2026/01/01/[$LATEST]abc", f"line {n}")
    delivery.put("/aws/lambda/f", "2026/01/01/[$LATEST]abc", "   ")  # PutLogEvents refuses empty messages
    delivery.flush()
    events = [
        e["message"]
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName="/aws/lambda/f")
        for e in page["events"]
    ]
    assert events == [f"line {n}" for n in range(MAX_EVENTS_PER_CALL + 5)]
    assert (delivery.delivered, delivery.refused) == (MAX_EVENTS_PER_CALL + 5, 0)


def test_a_refused_delivery_is_counted_and_never_raised_to_the_code_that_logged(logs: Any) -> None:
    class Broken:
        exceptions = logs.exceptions

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("the endpoint is gone")

    delivery = LogDelivery(lambda service: Broken())
    delivery.put("/aws-glue/jobs/output", "jr_1", "hello")
    delivery.flush()  # does not raise
    assert (delivery.delivered, delivery.refused) == (0, 1)


def test_glue_jobs_log_to_their_custom_prefix_or_glues_default_groups() -> None:
    assert glue_log_groups({"--custom-logGroup-prefix": "/aws-glue/stack/"}) == (
        "/aws-glue/stack/output",
        "/aws-glue/stack/error",
    )
    assert glue_log_groups(None) == ("/aws-glue/jobs/output", "/aws-glue/jobs/error")
