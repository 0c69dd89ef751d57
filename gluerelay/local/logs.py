"""CloudWatch Logs delivery: what the functions and Glue job runs print lands in their log groups.

On AWS a function's lines go to `/aws/lambda/<function>` (one stream per execution environment, named
`YYYY/MM/DD/[$LATEST]<id>`, between Lambda's own START and REPORT lines) and a Glue job run's driver
output to `<prefix>/output`, its error to `<prefix>/error` (stream: the job run id; the prefix is the
job's `--custom-logGroup-prefix`, else `/aws-glue/jobs`). The local cloud does the same through the
CloudWatch Logs API, so `aws logs tail`, FilterLogEvents and `gluerelay logs` read them as on AWS.

Lines are buffered and sent by one thread (PutLogEvents per stream, in order, at most 10,000 events or
1 MB per call, as the API allows), stamped with the wall clock: CloudWatch Logs refuses events more than
2 hours ahead, which a test's advanced local clock would be. Empty lines are not sent (PutLogEvents needs
at least one character), as the Lambda and Glue agents skip them. A group the template does not declare is
created on first use, as Lambda and Glue do with their default groups. Delivery never fails the code
that logs: a line CloudWatch Logs refuses is counted and reported in the local cloud's own log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.5  # real seconds between deliveries
MAX_EVENTS_PER_CALL = 10_000  # PutLogEvents' limits
MAX_BYTES_PER_CALL = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES  # a longer line is truncated, as the agent does
GLUE_DEFAULT_PREFIX = "/aws-glue/jobs"


def glue_log_groups(default_arguments: dict[str, str] | None) -> tuple[str, str]:
    """A Glue job's (output, error) log groups: its `--custom-logGroup-prefix`, else Glue's defaults."""
    prefix = (default_arguments or {}).get("--custom-logGroup-prefix") or GLUE_DEFAULT_PREFIX
    prefix = prefix.rstrip("/")
    return f"{prefix}/output", f"{prefix}/error"


@dataclass
class LogDelivery:
    clients: Callable[[str], Any]
    delivered: int = 0  # events accepted by PutLogEvents
    refused: int = 0  # events PutLogEvents (or delivery) refused
    _pending: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _streams: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sending: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def put(self, group: str, stream: str, message: str) -> None:
        """One line for `group`/`stream`, stamped now; sent within FLUSH_SECONDS."""
        if not message.strip():
            return
        event = {"timestamp": int(time.time() * 1000), "message": _fit(message)}
        with self._lock:
            self._pending.setdefault((group, stream), []).append(event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="local-logs")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        """Send everything buffered (one caller at a time, so each stream's events stay in order)."""
        with self._sending:
            with self._lock:
                pending, self._pending = self._pending, {}
            for (group, stream), events in pending.items():
                for batch in _batches(events):
                    self._send(group, stream, batch)

    def _send(self, group: str, stream: str, batch: list[dict[str, Any]]) -> None:
        try:
            logs = self.clients("logs")
            self._ensure(logs, group, stream)
            answer = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        except Exception:  # delivery must never fail the function or job that logged
            self.refused += len(batch)
            log.exception(
                "local CloudWatch Logs: %d lines for %s/%s not delivered", len(batch), group, stream
            )
            return
        if answer.get("rejectedLogEventsInfo"):
            self.refused += len(batch)  # an upper bound: the answer gives index ranges
            log.warning(
                "local CloudWatch Logs refused lines for %s/%s: %s",
                group,
                stream,
                answer["rejectedLogEventsInfo"],
            )
            return
        self.delivered += len(batch)

    def _ensure(self, logs: Any, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._streams.add((group, stream))


def _fit(message: str) -> str:
    data = message.encode()
    return message if len(data) <= MAX_EVENT_BYTES else data[:MAX_EVENT_BYTES].decode(errors="ignore")


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in sorted(events, key=lambda e: e["timestamp"]):  # PutLogEvents wants them in order
        cost = len(event["message"].encode()) + EVENT_OVERHEAD_BYTES
        if batches[-1] and (len(batches[-1]) >= MAX_EVENTS_PER_CALL or size + cost > MAX_BYTES_PER_CALL):
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += cost
    return [b for b in batches if b]
