"""EventBridge delivery and SQS event source mappings of the local cloud (schedules tick on `clock`).

Rules and targets live in moto (created from the template); matching is moto's own EventPattern, which
agrees with AWS on the operators the template uses. Delivery is ours, because moto's cannot reach Lambda
or Step Functions targets and delivers for DISABLED rules: ENABLED rules only, Lambda targets invoked
asynchronously (Lambda's retries, then the function's OnFailure destination), SQS targets sent, state
machines started. Every S3 "Object Created" (buckets with EventBridge on) and every `PutEvents` goes
through here.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.events import models as events_models

from gluerelay.local.clock import Clock
from gluerelay.local.journal import Journal
from gluerelay.local.lambdas import LambdaRuntime


@dataclass
class Delivery:
    """One event and what it reached, for the report and the tests."""

    at: float
    source: str
    detail_type: str
    rule: str
    target: str
    event: dict[str, Any] = field(default_factory=dict, repr=False)  # what was delivered


@dataclass
class EventBus:
    region: str
    account: str
    lambdas: LambdaRuntime
    clients: Callable[[str], Any]
    deliveries: Journal[Delivery] = field(default_factory=Journal)
    # The local clock: the time events carry, and the one a held event waits on (tests can advance it).
    clock: Clock = field(default_factory=Clock)
    # Fault injection for tests, each asked per matching rule: drop the event (True); deliver it this
    # many times (EventBridge delivers at least once: copies share the event id); hold it this many
    # clock seconds first (so a later event can overtake it).
    drop: Callable[[dict[str, Any]], bool] | None = None
    copies: Callable[[dict[str, Any]], int] | None = None
    delay: Callable[[dict[str, Any]], float] | None = None
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        original = events_models.Rule.send_to_targets
        bus = self

        def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
            bus.deliver_to_rule(rule, bus.normalise(event))

        events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(events_models.Rule, "send_to_targets", original))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    @staticmethod
    def normalise(event: dict[str, Any]) -> dict[str, Any]:
        """The event as AWS delivers it. moto's S3 notifications put a unix float in `time`, spell the
        object's `etag` as `eTag` and send `version-id: null` from an unversioned bucket; S3 sends an ISO
        time, `etag`, and a `version-id` only for a versioned object (Amazon S3 User Guide, "EventBridge
        event message structure")."""
        event = dict(event)
        stamp = event.get("time")
        if isinstance(stamp, (int, float)):
            event["time"] = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event.setdefault("id", str(uuid.uuid4()))
        event.setdefault("version", "0")
        if event.get("source") == "aws.s3" and isinstance(event.get("detail"), dict):
            detail = dict(event["detail"])
            obj = dict(detail.get("object") or {})
            if "eTag" in obj:
                obj["etag"] = obj.pop("eTag")
            if obj.get("version-id") in (None, "null"):
                obj.pop("version-id", None)
            detail["object"] = obj
            event["detail"] = detail
        return event

    def publish(
        self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None
    ) -> None:
        """A service event on the default bus (Glue's state changes)."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.account,
            "time": self.clock.datetime().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": resources or [],
            "detail": detail,
        }
        for rule in self._rules():
            self.deliver_to_rule(rule, event)

    def redeliver(self, event: dict[str, Any]) -> None:
        """An event delivered again, as it was (its id included): EventBridge's at-least-once delivery,
        or a copy arriving late, after later events."""
        for rule in self._rules():
            self.deliver_to_rule(rule, event)

    def _rules(self) -> list[Any]:
        backend = events_models.events_backends[self.account][self.region]
        return [r for bus in backend.event_buses.values() for r in bus.rules.values()]

    def deliver_to_rule(self, rule: Any, event: dict[str, Any]) -> None:
        if rule.state != "ENABLED" or rule.scheduled_expression or not rule.event_pattern:
            return
        if not rule.event_pattern.matches_event(event):
            return
        if self.drop is not None and self.drop(event):
            return
        times = self.copies(event) if self.copies is not None else 1
        for _ in range(times):
            hold = self.delay(event) if self.delay is not None else 0.0  # asked per copy
            if hold > 0:
                threading.Thread(target=self._send_later, args=(hold, rule, event), daemon=True).start()
            else:
                self._send_to_targets(rule, event)

    def _send_later(self, hold: float, rule: Any, event: dict[str, Any]) -> None:
        self.clock.sleep(hold)
        self._send_to_targets(rule, event)

    def _send_to_targets(self, rule: Any, event: dict[str, Any]) -> None:
        for target in rule.targets:
            self._send(rule.name, target, event)

    def fire_schedule(self, rule: Any, tick: float) -> None:
        """A scheduled rule's tick: its targets receive the "Scheduled Event", carrying the tick's own time
        (a tick fired late, after the clock was moved on, still says when it was due). ENABLED rules only."""
        if rule.state != "ENABLED":
            return
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [rule.arn],
            "detail": {},
        }
        # Ticks that a moved clock fires back to back run one after another, as ticks minutes apart
        # would: each Lambda target's event invocation (with its retries) ends before the next tick.
        for target in rule.targets:
            self._send(rule.name, target, event, wait=True)

    def _send(self, rule: str, target: dict[str, Any], event: dict[str, Any], *, wait: bool = False) -> None:
        arn = str(target["Arn"])
        payload = json.loads(target["Input"]) if target.get("Input") else event
        service = arn.split(":")[2]
        if service == "lambda" and wait:
            self.lambdas.invoke_event_now(arn, payload)
        elif service == "lambda":
            self.lambdas.invoke_async(arn, payload)
        elif service == "sqs":
            self.clients("sqs").send_message(QueueUrl=queue_url(arn), MessageBody=json.dumps(payload))
        elif service == "states":
            self.clients("stepfunctions").start_execution(stateMachineArn=arn, input=json.dumps(payload))
        else:
            return
        with self._lock:
            self.deliveries.append(
                Delivery(
                    time.time(), str(event.get("source")), str(event.get("detail-type")), rule, arn, event
                )
            )


def sqs_mapping_problem(batch_size: int, window_seconds: float) -> str | None:
    """What Lambda's CreateEventSourceMapping refuses for a standard SQS queue, None when it accepts it."""
    if not 1 <= batch_size <= 10_000:
        return f"BatchSize {batch_size} is outside 1 to 10000"
    if not 0 <= window_seconds <= 300:
        return f"MaximumBatchingWindowInSeconds {window_seconds:g} is outside 0 to 300"
    if batch_size > 10 and window_seconds < 1:
        return f"BatchSize {batch_size} (more than 10) needs MaximumBatchingWindowInSeconds of at least 1"
    return None


# An event source mapping invokes its function when the batch size is met, the batching window ends, or the
# payload reaches 6 MB, which cannot be changed (Lambda Developer Guide, "Lambda event source mappings").
ESM_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024


@dataclass
class QueueMapping:
    """An SQS event source mapping: batches of up to BatchSize and 6 MB of payload, gathered for up to the
    batching window (on the local clock).

    The poller reads `batch_size` and `window_seconds` at every batch, so changing them takes effect from the
    next batch, as UpdateEventSourceMapping does on AWS.
    """

    function: str
    queue_url: str
    batch_size: int
    window_seconds: float
    report_item_failures: bool
    queue_arn: str


@dataclass
class Pollers:
    """The threads that poll queues for their event source mappings."""

    lambdas: LambdaRuntime
    clients: Callable[[str], Any]
    clock: Clock = field(default_factory=Clock)  # the batching window counts on it
    mappings: dict[str, QueueMapping] = field(default_factory=dict)  # by function name
    batches: Journal[tuple[str, int, int]] = field(
        default_factory=Journal
    )  # (function, records, payload bytes)
    _stop: threading.Event = field(default_factory=threading.Event)
    _paused: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def pause(self) -> None:
        """Receive nothing until `resume` (as disabling the mappings would): a test fills a queue first."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def start_mapping(self, mapping: QueueMapping) -> None:
        self.mappings[mapping.function] = mapping
        thread = threading.Thread(
            target=self._poll, args=(mapping,), daemon=True, name=f"esm-{mapping.function}"
        )
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self, mapping: QueueMapping) -> None:
        sqs = self.clients("sqs")
        held: list[dict[str, Any]] = []  # received, but past the last batch's 6 MB: they open the next
        while not self._stop.is_set():
            batch, held = held, []
            size = sum(_record_bytes(m, mapping.queue_arn) for m in batch) + len('{"Records": []}')
            first_at: float | None = self.clock.now() if batch else None
            full = False
            while not self._stop.is_set() and not full and len(batch) < mapping.batch_size:
                if self._paused.is_set():
                    self._stop.wait(0.05)
                    continue
                wanted = min(10, mapping.batch_size - len(batch))
                received = sqs.receive_message(
                    QueueUrl=mapping.queue_url,
                    MaxNumberOfMessages=wanted,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                for message in received:
                    grown = size + _record_bytes(message, mapping.queue_arn) + 2  # and ", "
                    if full or (batch and grown > ESM_PAYLOAD_LIMIT_BYTES):
                        full = True
                        held.append(message)
                    else:
                        batch.append(message)
                        size = grown
                if received and first_at is None:
                    first_at = self.clock.now()
                if first_at is not None and self.clock.now() - first_at >= mapping.window_seconds:
                    break
                if not received:
                    self._stop.wait(0.05)
            if batch:
                self._invoke(mapping, batch, sqs)

    def _invoke(self, mapping: QueueMapping, batch: list[dict[str, Any]], sqs: Any) -> None:
        event = {"Records": [_record(m, mapping.queue_arn) for m in batch]}
        self.batches.append((mapping.function, len(batch), len(json.dumps(event).encode())))
        result = self.lambdas.invoke(mapping.function, event)
        if result.error is not None:
            return  # every message becomes visible again after the visibility timeout
        failed: set[str] = set()
        if mapping.report_item_failures and isinstance(result.payload, dict):
            failed = {f["itemIdentifier"] for f in result.payload.get("batchItemFailures", [])}
        done = [m for m in batch if m["MessageId"] not in failed]
        for chunk in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[chunk : chunk + 10])
            ]
            sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=entries)


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda passes it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def _record_bytes(message: dict[str, Any], queue_arn: str) -> int:
    return len(json.dumps(_record(message, queue_arn)).encode())


def queue_url(arn: str) -> str:
    """The URL of the SQS queue with this ARN (the form moto's in-process endpoint uses)."""
    _, _, _, region, account, name = arn.split(":", 5)
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


def schedule_period(expression: str) -> float:
    """Seconds between ticks of a rate() schedule (cron schedules are not emulated)."""
    match = _RATE.fullmatch(expression.strip())
    if not match:
        raise ValueError(f"schedule {expression!r}: the local cloud runs rate() schedules only")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * float(unit)
