"""Pipeline schedules: which minutes a rate() or cron() expression is due in.

One rule ticks every minute (the stack's PipelineClock); each tick starts the runs whose schedules are due
in that minute, named after the minute, so a duplicate or retried tick starts nothing twice. The
expressions are EventBridge's: ``rate(5 minutes)`` is due on the minutes divisible by 5 since the epoch (UTC),
``rate(1 day)`` at 00:00 UTC; ``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` with ``*``, ``?``,
lists, ranges, steps and month and weekday names. ``L``, ``W`` and ``#`` are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relay.contract import Catalog, ExecutionInput, Trigger, resolve_params, schedule_run_id
from relay.errors import ExecutionAlreadyExistsError

if TYPE_CHECKING:
    from relay.ports import Workflow

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_WEEKDAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_FieldSpec = tuple[str, int, int, dict[str, int]]  # name, lowest, highest, names
_FIELDS: tuple[_FieldSpec, ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", 1970, 2199, {}),
)


class ScheduleError(ValueError):
    """The expression is not one the pipeline clock understands; the message says what is wrong."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    every_minutes: int | None = None  # rate()
    allowed: tuple[frozenset[int] | None, ...] = ()  # cron(): per field, None = any

    def due(self, minute: datetime) -> bool:
        """Whether the schedule fires in this minute (UTC)."""
        moment = minute.astimezone(UTC)
        if self.every_minutes is not None:
            return (int(moment.timestamp()) // 60) % self.every_minutes == 0
        weekday = moment.isoweekday() % 7 + 1  # EventBridge: 1 = Sunday
        values = (moment.minute, moment.hour, moment.day, moment.month, weekday, moment.year)
        return all(
            allowed is None or value in allowed for allowed, value in zip(self.allowed, values, strict=True)
        )


def parse(expression: str) -> Schedule:
    text = expression.strip()
    if match := _RATE.fullmatch(text):
        count, unit = int(match.group(1)), match.group(2).rstrip("s")
        if count < 1:
            raise ScheduleError(f"{expression!r}: a rate must be at least 1 {unit}")
        if (count == 1) != (match.group(2) == unit):
            raise ScheduleError(f"{expression!r}: write rate(1 {unit}) or rate({max(count, 2)} {unit}s)")
        return Schedule(text, every_minutes=count * _UNIT_MINUTES[unit])
    if match := _CRON.fullmatch(text):
        fields = match.group(1).split()
        if len(fields) != len(_FIELDS):
            raise ScheduleError(
                f"{expression!r}: cron() takes six fields: minutes hours day-of-month month day-of-week year"
            )
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ScheduleError(f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
        allowed = tuple(_field(expression, value, spec) for value, spec in zip(fields, _FIELDS, strict=True))
        return Schedule(text, allowed=allowed)
    raise ScheduleError(f"{expression!r}: expected rate(N minutes|hours|days) or cron(...)")


def _field(expression: str, text: str, spec: _FieldSpec) -> frozenset[int] | None:
    name, low, high, names = spec
    if text in {"*", "?"}:
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = _number(expression, name, step_text, names) if step_text else 1
        if step < 1:
            raise ScheduleError(f"{expression!r}: {name} step must be at least 1")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(expression, name, first, names), _number(expression, name, last, names)
        else:
            start = _number(expression, name, base, names)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ScheduleError(f"{expression!r}: {name} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(expression: str, name: str, text: str, names: dict[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if "#" in upper or upper.endswith(("L", "W")):
        raise ScheduleError(f"{expression!r}: {name} {text!r}: L, W and # are not supported")
    if not text.isdigit():
        raise ScheduleError(f"{expression!r}: {name} {text!r} is not a number")
    return int(text)


@dataclass(frozen=True)
class ScheduledRun:
    pipeline: str
    run_id: str
    started: bool  # False: this tick's run had started already (a duplicate or retried tick)


def start_due_runs(catalog: Catalog, minute: datetime, workflow: Workflow) -> list[ScheduledRun]:
    """Start every pipeline run whose schedule is due in this minute, named after the minute."""
    minute = minute.astimezone(UTC).replace(second=0, microsecond=0)
    runs = []
    for pipeline in catalog.pipelines.values():
        for index, schedule in enumerate(pipeline.schedules):
            if not parse(schedule.expression).due(minute):
                continue
            run_id = schedule_run_id(pipeline.name, minute, index)
            execution_input = ExecutionInput(
                run_id=run_id,
                trigger=Trigger.SCHEDULE,
                ingest_date=minute.date().isoformat(),
                params=resolve_params(pipeline.params, schedule.params),
            )
            try:
                workflow.start_execution(pipeline.name, run_id, execution_input)
                runs.append(ScheduledRun(pipeline.name, run_id, started=True))
            except ExecutionAlreadyExistsError:
                runs.append(ScheduledRun(pipeline.name, run_id, started=False))
    return runs
