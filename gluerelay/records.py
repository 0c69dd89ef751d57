"""A run as its records tell it: the control table's items and the execution's history, read the same way
on AWS and on the local cloud (operator commands and the local report share these)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer


@dataclass
class StepReport:
    step: str
    kind: str
    resource: str
    status: str
    opened_at: str | None
    closed_at: str | None
    seconds: float | None
    glue_id: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cause: str | None = None
    repaired_by: str | None = None
    attempt: int = 1  # a resumed or retried step's later attempt


@dataclass
class TransitionReport:
    """A state the execution entered, when, and how long it stayed (billed as one transition)."""

    state: str
    type: str
    entered_at: str
    seconds: float | None


def utc_text(value: datetime) -> str:
    """A time as the operator commands write it: UTC, to the millisecond, `2026-01-31T12:00:00.000Z` (a
    naive time is taken as UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DESERIALIZE = TypeDeserializer().deserialize


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item in the client's typed form ({"S": "x"}) as plain values: a scalar as its text, a map
    or a list as Python's (boto3's deserializer: numbers inside them are Decimals)."""
    return {
        key: _DESERIALIZE(value) if value.keys() & {"M", "L"} else next(iter(value.values()))
        for key, value in item.items()
    }


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    began = datetime.fromisoformat(start.replace("Z", "+00:00"))
    return round((datetime.fromisoformat(end.replace("Z", "+00:00")) - began).total_seconds(), 3)


def step_report(item: dict[str, Any]) -> StepReport:
    """A step item (plain values) as a report row: its outcome's facts, error and cause unpacked."""
    outcome = json.loads(item["outcome_json"]) if item.get("outcome_json") else {}
    facts = outcome.get("facts") or {}
    return StepReport(
        step=str(item["step"]),
        kind=str(item["kind"]),
        resource=str(item["resource"]),
        status=str(item["status"]),
        opened_at=item.get("opened_at"),
        closed_at=item.get("closed_at"),
        seconds=seconds_between(item.get("opened_at"), item.get("closed_at")),
        # The run that ended the step (Glue's retry of the recorded run, when Glue retried it), or the crawl
        glue_id=facts.get("glue_run_id") or item.get("glue_run_id") or facts.get("crawl_id"),
        facts=facts,
        error=outcome.get("error"),
        cause=outcome.get("cause"),
        repaired_by=item.get("repaired_by"),
        attempt=int(item.get("attempt", 1)),
    )


def state_transitions(history: list[dict[str, Any]]) -> int:
    """Billed transitions: every state entered, plus every retried task attempt."""
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    scheduled = sum(1 for e in history if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))
    tasks = sum(1 for e in history if e["type"] == "TaskStateEntered")
    return entered + max(0, scheduled - tasks)


def transitions(history: list[dict[str, Any]]) -> list[TransitionReport]:
    """The states the execution entered, in order, each with the time until it exited."""
    entered: list[TransitionReport] = []
    open_at: dict[str, tuple[int, datetime]] = {}
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            open_at[name] = (len(entered), event["timestamp"])
            entered.append(
                TransitionReport(
                    name, kind.removesuffix("StateEntered"), event["timestamp"].isoformat(), None
                )
            )
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_at:
                index, at = open_at.pop(name)
                entered[index].seconds = round((event["timestamp"] - at).total_seconds(), 3)
    return entered


def run_id_of(execution: dict[str, Any]) -> str:
    """An execution's run: its input's run_id (a resumed run's executions are named <run>-resume-<n>)."""
    return str(json.loads(execution.get("input") or "{}").get("run_id") or execution["name"])
