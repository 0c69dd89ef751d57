"""The local SQS event source mapping invokes its function as Lambda's does: when the batch size is met, the
batching window (on the local clock) ends, or the payload would pass 6 MB, whichever comes first."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gluerelay.local import patches
from gluerelay.local.clock import Clock
from gluerelay.local.events import ESM_PAYLOAD_LIMIT_BYTES, Pollers, QueueMapping
from tests.waiter import eventually

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@dataclass
class Result:
    payload: Any = None
    error: str | None = None


@dataclass
class RecordingFunction:
    """Stands in for the Lambda runtime: keeps every event it is invoked with."""

    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, name: str, event: dict[str, Any]) -> Result:
        with self.lock:
            self.events.append(event)
        return Result()

    def delivered(self) -> list[str]:
        with self.lock:
            return [r["body"] for e in self.events for r in e["Records"]]


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        patches.install()  # as in the local cloud: SQS calls cost what they carry
        yield boto3.client("sqs", region_name=REGION)
        patches.uninstall()


def mapped_queue(sqs: Any, function: RecordingFunction, clock: Clock, window: float) -> tuple[str, Pollers]:
    url = sqs.create_queue(QueueName="arrivals")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pollers = Pollers(function, lambda service: boto3.client(service, region_name=REGION), clock)  # type: ignore[arg-type]
    pollers.start_mapping(QueueMapping("on_arrival", url, 10_000, window, True, arn))
    return url, pollers


def waiting(sqs: Any, url: str) -> int:
    name = "ApproximateNumberOfMessages"
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name])


def send(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def test_a_batch_closes_at_6_mb_of_payload_before_its_window_ends(sqs: Any) -> None:
    # Given 3,000 messages of 3 KB each (about 9.5 MB as records) and a 300 s window that never ends by itself
    clock = Clock()
    function = RecordingFunction()
    url, pollers = mapped_queue(sqs, function, clock, window=300)
    bodies = [json.dumps({"n": n, "pad": "x" * 3000}) for n in range(3000)]
    try:
        send(sqs, url, bodies)
        # When the poller gathers them: the first batch goes as soon as it holds 6 MB, window or not
        eventually(lambda: function.events, what="a batch invoked before its window ended")
        eventually(lambda: waiting(sqs, url) == 0, what="the rest received into the next batch")
        clock.advance(300)  # the rest goes when its window ends
        eventually(lambda: len(function.delivered()) == len(bodies), what="every message delivered")
    finally:
        pollers.stop()
    # Then no invocation carried more than 6 MB, none was split needlessly, and each message came once
    sizes = [len(json.dumps(e).encode()) for e in function.events]
    assert max(sizes) <= ESM_PAYLOAD_LIMIT_BYTES
    assert sizes[0] > ESM_PAYLOAD_LIMIT_BYTES - 4000  # full up to the last record that fits
    assert len(function.events) == 2
    assert sorted(function.delivered()) == sorted(bodies)


def test_a_small_batch_waits_for_its_window_on_the_local_clock(sqs: Any) -> None:
    clock = Clock()
    function = RecordingFunction()
    url, pollers = mapped_queue(sqs, function, clock, window=120)
    try:
        send(sqs, url, ["a", "b", "c"])
        eventually(
            lambda: (
                sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
                )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
                == "3"
            ),
            what="the poller holding the three messages",
        )
        assert function.events == []  # 120 clock seconds have not passed
        clock.advance(120)
        eventually(lambda: function.events, what="the batch, once the window ended")
    finally:
        pollers.stop()
    assert [sorted(r["body"] for r in e["Records"]) for e in function.events] == [["a", "b", "c"]]
