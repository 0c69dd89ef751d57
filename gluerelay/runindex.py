"""Reading runs from the control table's run index (`Runs`), never from ListExecutions: a run stays listed
for as long as its record lives, long after Step Functions forgets its executions (90 days).

Each pipeline's runs are one partition of the index, sorted by `<started_at>#<run_id>`, newest first. A
listing reads each asked pipeline's partition a page at a time and merges them newest first; a time window
(`--since`) or an ingest-date range bounds the key, so it reads only the runs started inside it; status,
trigger and ingest date are filters, which DynamoDB applies after reading. A call reads at most
`max_examined` index entries: when filters match rarely it returns what it found with a token to go on,
instead of reading a pipeline's whole history. The token is the run-sort key below which the next page
starts, so pages never repeat or skip a run, whatever lands meanwhile (new runs sort above it).

Ingest dates: a run writes the partition of its ingest date, which is never more than a day after the day
it started (arrivals and schedules use the start's date; `gluerelay start --ingest-date` refuses later
ones). So every run of ingest dates A..B started on or after A - 1 day, and an ingest-date range reads only
the runs started since.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from relay.contract import RUN_SORT_SEPARATOR, RUNS_INDEX, RunRecord, RunStatus, Trigger, run_sort, runs_pk

from gluerelay.records import plain, utc_text

# How far an ingest date may be ahead of the start of its run (see the module docstring).
INGEST_DATE_LEAD = timedelta(days=1)
PAGE_UNFILTERED_SLACK = 1  # an unfiltered page reads one entry past the limit, to know if more follow
FILTERED_PAGE = 500  # entries read per request when a filter drops some
MAX_EXAMINED = 10_000  # index entries one call reads (~3 MB of projected records), give or take a page
UNREAD = "\uffff"  # the frontier of a partition not read yet: above every key


class QueryError(ValueError):
    """A run query that cannot mean anything (the message names the option and the fix)."""


@dataclass(frozen=True)
class RunQuery:
    """Which runs: of these pipelines, optionally with this status or trigger, of these ingest dates,
    started since a moment."""

    pipelines: list[str]
    status: RunStatus | None = None
    trigger: Trigger | None = None
    ingest_from: date | None = None
    ingest_to: date | None = None
    started_since: datetime | None = None

    def __post_init__(self) -> None:
        _in_order(self.ingest_from, self.ingest_to)

    def lowest_key(self) -> str | None:
        """The lowest run-sort key a matching run can have (run-sort keys start with the start time)."""
        bounds = []
        if self.started_since is not None:
            bounds.append(utc_text(self.started_since))  # as Step Functions writes a start: ms, Z
        if self.ingest_from is not None:
            bounds.append((self.ingest_from - INGEST_DATE_LEAD).isoformat())
        return max(bounds) if bounds else None

    def filtered(self) -> bool:
        return bool(self.status or self.trigger or self.ingest_from or self.ingest_to)


@dataclass
class RunsPage:
    runs: list[RunRecord]
    next_token: str | None  # pass it back for the runs after these; None when there are no more
    examined: int  # index entries read (what DynamoDB bills and what a filter cost)
    requests: int  # Query requests made


def encode_token(before: str) -> str:
    return base64.urlsafe_b64encode(before.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise QueryError(f"{token!r} is not a token a listing printed: copy it from the last page") from e
    if RUN_SORT_SEPARATOR not in text:
        raise QueryError(f"{token!r} is not a token a listing printed: copy it from the last page")
    return text


@dataclass
class _Stream:
    """One pipeline's partition, read page by page, newest first."""

    pipeline: str
    start_key: dict[str, Any] | None = None
    frontier: str | None = None  # the lowest key read so far; None before the first page
    done: bool = False
    found: list[RunRecord] = field(default_factory=list)


def query_runs(
    dynamodb: Any,
    table: str,
    query: RunQuery,
    *,
    limit: int,
    token: str | None = None,
    max_examined: int = MAX_EXAMINED,
) -> RunsPage:
    """Up to `limit` runs matching `query`, newest first, after the runs `token`'s page ended with."""
    if limit < 1:
        raise QueryError(f"a limit of {limit} lists nothing: give 1 or more")
    before = decode_token(token) if token else None
    lowest = query.lowest_key()
    streams = [_Stream(p) for p in query.pipelines]
    page_size = (
        min(FILTERED_PAGE, max(1, max_examined // max(1, len(streams))))
        if query.filtered()
        else limit + PAGE_UNFILTERED_SLACK
    )
    examined = requests = 0
    while True:
        live = [s for s in streams if not s.done]
        # Every run above the highest live frontier has been read in every partition: those are known.
        known_down_to = max((s.frontier or UNREAD for s in live), default="")
        ready = sorted(
            (r for s in streams for r in s.found if _key(r) >= known_down_to), key=_key, reverse=True
        )
        if len(ready) >= limit:
            chosen = ready[:limit]
            return RunsPage(chosen, encode_token(_key(chosen[-1])), examined, requests)
        if not live:
            return RunsPage(ready, None, examined, requests)
        if examined >= max_examined and known_down_to != UNREAD:  # every partition has moved on
            return RunsPage(ready, encode_token(known_down_to), examined, requests)
        stream = max(live, key=lambda s: s.frontier or UNREAD)  # the one holding the others back
        request = _request(table, query, stream, before=before, lowest=lowest, size=page_size)
        page = dynamodb.query(**request)
        requests += 1
        examined += int(page.get("ScannedCount", 0))
        for item in page.get("Items", []):
            record = RunRecord.from_item(plain(item))
            if _key(record) != before:  # a BETWEEN bound includes the previous page's last run
                stream.found.append(record)
        stream.start_key = page.get("LastEvaluatedKey")
        if stream.start_key is None:
            stream.done = True
        else:
            stream.frontier = str(plain(stream.start_key)["run_sort"])


def all_runs(dynamodb: Any, table: str, query: RunQuery, *, page: int = 1000) -> Iterator[RunRecord]:
    """Every run matching `query`, newest first, page after page."""
    token: str | None = None
    while True:
        found = query_runs(dynamodb, table, query, limit=page, token=token)
        yield from found.runs
        if found.next_token is None:
            return
        token = found.next_token


def _key(record: RunRecord) -> str:
    return run_sort(record.started_at or "", record.run_id)


def _request(
    table: str, query: RunQuery, stream: _Stream, *, before: str | None, lowest: str | None, size: int
) -> dict[str, Any]:
    names = {"#pk": "runs_pk"}
    values: dict[str, Any] = {":pk": {"S": runs_pk(stream.pipeline)}}
    condition = "#pk = :pk"
    if before is not None and lowest is not None:
        condition += " AND #sort BETWEEN :lowest AND :before"
        values[":lowest"], values[":before"] = {"S": lowest}, {"S": before}
    elif before is not None:
        condition += " AND #sort < :before"
        values[":before"] = {"S": before}
    elif lowest is not None:
        condition += " AND #sort >= :lowest"
        values[":lowest"] = {"S": lowest}
    if before is not None or lowest is not None:
        names["#sort"] = "run_sort"
    filters = []
    if query.status is not None:
        filters.append("#status = :status")
        names["#status"], values[":status"] = "status", {"S": query.status.value}
    if query.trigger is not None:
        filters.append("#trigger = :trigger")
        names["#trigger"], values[":trigger"] = "trigger", {"S": query.trigger.value}
    if query.ingest_from is not None:
        filters.append("ingest_date >= :ingest_from")
        values[":ingest_from"] = {"S": query.ingest_from.isoformat()}
    if query.ingest_to is not None:
        filters.append("ingest_date <= :ingest_to")
        values[":ingest_to"] = {"S": query.ingest_to.isoformat()}
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": RUNS_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "Limit": size,
    }
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
    if stream.start_key is not None:
        request["ExclusiveStartKey"] = stream.start_key
    return request


def date_range(text: str) -> tuple[date | None, date | None]:
    """`A..B`, `A..`, `..B` or one date `A` (YYYY-MM-DD) as (from, to), both inclusive."""
    low, dots, high = text.partition("..")
    if not dots:
        high = low
    forms = "write 2026-11-01..2026-11-30, 2026-11-01.., ..2026-11-30 or one date"
    try:
        first, last = (date.fromisoformat(part) if part else None for part in (low.strip(), high.strip()))
    except ValueError as e:
        raise QueryError(f"{text!r} is not a date range: {forms}") from e
    if first is None and last is None:
        raise QueryError(f"{text!r} names no date: {forms}")
    _in_order(first, last)
    return first, last


def _in_order(first: date | None, last: date | None) -> None:
    if first and last and first > last:
        raise QueryError(f"ingest dates {first}..{last} run backwards: write the earlier date first")
