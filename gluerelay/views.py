"""How operator commands show runs: Rich tables and a text Gantt in the terminal, and an HTML timeline."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from gluerelay.backfills import BackfillStatus
from gluerelay.operate import CostTotal, RunCost, RunDetail, RunSummary
from gluerelay.records import StepReport

STATUS_STYLE = {
    "SUCCEEDED": "green",
    "RUNNING": "cyan",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "red",
}
BAR_WIDTH = 30


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ")[:19] if stamp else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'yellow')}]{status}[/]"


def runs_table(runs: list[RunSummary], console: Console) -> None:
    table = Table(title=f"{len(runs)} run{'s' if len(runs) != 1 else ''}", title_justify="left")
    ids = [run.run_id + (f" ({run.executions} executions)" if run.executions > 1 else "") for run in runs]
    for column in ("run", "pipeline", "status", "trigger", "started (UTC)", "duration", "failing step"):
        # A run id is never cut, however narrow the terminal: the other columns give way.
        widths = {"run": max(map(len, ids), default=3), "status": 9}
        table.add_column(column, no_wrap=column != "failing step", min_width=widths.get(column))
    for run, run_id in zip(runs, ids, strict=True):
        failing = f"{run.failed_step} ({run.error})" if run.failed_step else ""
        table.add_row(
            run_id,
            run.pipeline,
            _status(run.status),
            run.trigger or "-",
            _when(run.started_at),
            _duration(run.seconds),
            failing,
        )
    console.print(table)


def _span(steps: list[StepReport]) -> tuple[datetime, datetime] | None:
    opened = [_time(s.opened_at) for s in steps if s.opened_at]
    closed = [_time(s.closed_at or s.opened_at) for s in steps if s.opened_at]
    if not opened:
        return None
    start, end = min(opened), max(closed)
    return start, max(end, start)


def _time(stamp: str | None) -> datetime:
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def gantt_bar(step: StepReport, span: tuple[datetime, datetime], width: int = BAR_WIDTH) -> str:
    """The step's place in the run as a bar of `width` characters."""
    start, end = span
    total = max((end - start).total_seconds(), 1e-9)
    began = (_time(step.opened_at) - start).total_seconds() if step.opened_at else 0.0
    ended = (_time(step.closed_at) - start).total_seconds() if step.closed_at else total
    left = min(round(began / total * width), width - 1)
    length = max(1, round((ended - began) / total * width))
    return (
        " " * left + "█" * min(length, width - left) if step.closed_at else " " * left + "▒" * (width - left)
    )


def detail_view(detail: RunDetail, console: Console) -> None:
    run = detail.run
    console.print(
        f"[bold]run[/] {run.run_id}  {_status(run.status)}  pipeline {run.pipeline}  "
        f"trigger {run.trigger or '-'}  "
        f"started {_when(run.started_at)}  took {_duration(run.seconds)}"
        + (f"  executions {run.executions}" if run.executions > 1 else "")
    )
    for attempt in detail.attempts:
        console.print(
            f"rerun {attempt['number']} from [bold]{attempt['from_step']}[/] by {attempt['by']} "
            f"at {_when(attempt['at'])}: {', '.join(attempt['steps'])}"
            + (f"; read anew: {', '.join(attempt['replaced'])}" if attempt["replaced"] else "")
        )
    span = _span(detail.steps)
    table = Table(title="steps", title_justify="left")
    for column in ("step (attempt)", "status", "timeline", "seconds", "Glue run / crawl"):
        table.add_column(column, no_wrap=True, min_width=9 if column == "status" else None)
    for step in detail.steps:
        table.add_row(
            step.step + (f" ({step.attempt})" if step.attempt > 1 else ""),
            _status(step.status),
            gantt_bar(step, span) if span else "",
            _duration(step.seconds),
            (step.glue_id or "-")[:18],
        )
    console.print(table)
    if detail.rows:
        console.print(
            "rows: " + ", ".join(f"{k} {v:,}" for k, v in detail.rows.items() if isinstance(v, int))
        )
    if detail.quarantined_by_reason:
        console.print(
            "quarantined by reason: "
            + ", ".join(
                f"{reason} {count:,}" for reason, count in sorted(detail.quarantined_by_reason.items())
            )
        )
    if detail.tables:
        console.print(
            "tables: "
            + ", ".join(
                f"{t.database}.{t.name} ({t.run_partitions} partition{'s' if t.run_partitions != 1 else ''})"
                for t in detail.tables
            )
        )
    for step in detail.steps:  # quality steps keep each rule's result: the failed ones, warn or error
        for rule in step.facts.get("rules") or []:
            if not rule.get("passed"):
                colour = "yellow" if rule.get("severity") == "warn" else "red"
                console.print(
                    f"[{colour}]quality {step.step}: {rule.get('severity')} rule failed[/]: "
                    f"{rule.get('rule')} (measured {rule.get('measured')})"
                )
    errors = [step for step in detail.steps if step.error]
    for step in errors:
        console.print(f"[red]{step.step}: {step.error}[/]: {step.cause}")
    if run.status != "SUCCEEDED" and run.failed_step and not any(s.step == run.failed_step for s in errors):
        console.print(f"[red]failed at {run.failed_step}: {run.error}[/]: {detail.cause}")
    console.print(
        f"state transitions {detail.state_transitions}, history events {detail.history_events}, "
        f"Lambda tasks {detail.lambda_tasks}"
    )
    for name, link in detail.links.items():
        console.print(f"{name}: {link}", soft_wrap=True)


def detail_html(detail: RunDetail) -> str:
    """A self-contained HTML page: the run and its steps as a timeline."""
    span = _span(detail.steps)
    rows = []
    for step in detail.steps:
        left = width = 0.0
        if span and step.opened_at:
            total = max((span[1] - span[0]).total_seconds(), 1e-9)
            left = (_time(step.opened_at) - span[0]).total_seconds() / total * 100
            end = _time(step.closed_at) if step.closed_at else span[1]
            width = max((end - _time(step.opened_at)).total_seconds() / total * 100, 0.5)
        colour = {"SUCCEEDED": "#2e7d32", "FAILED": "#c62828", "OPEN": "#0277bd"}.get(step.status, "#757575")
        rows.append(
            f"<tr><td>{html.escape(step.step)}</td><td>{html.escape(step.status)}</td>"
            f'<td class="lane"><div class="bar" '
            f'style="left:{left:.2f}%;width:{width:.2f}%;background:{colour}"></div></td>'
            f"<td>{_duration(step.seconds)}</td><td>{html.escape(step.glue_id or '-')}</td></tr>"
        )
    run = detail.run
    facts = "".join(
        f"<li>{html.escape(k)}: {html.escape(str(v))}</li>"
        for k, v in {
            **detail.rows,
            **{f"quarantined: {r}": c for r, c in detail.quarantined_by_reason.items()},
        }.items()
    )
    failure = (
        f"<p>failed at {html.escape(run.failed_step)}: {html.escape(str(detail.cause))}</p>"
        if run.failed_step
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>gluerelay run {html.escape(run.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }}
td.lane {{ position: relative; width: 50%; }}
div.bar {{ position: absolute; top: 6px; height: 14px; border-radius: 3px; }}
</style></head><body>
<h1>run {html.escape(run.run_id)}: {html.escape(run.status)}</h1>
<p>trigger {html.escape(run.trigger or "-")}, started {html.escape(_when(run.started_at))},
took {_duration(run.seconds)}; {detail.state_transitions} state transitions</p>
<table><tr><th>step</th><th>status</th><th>timeline</th><th>duration</th><th>Glue run / crawl</th></tr>
{"".join(rows)}
</table>
<ul>{facts}</ul>
{failure}
</body></html>
"""


def costs_table(costs: list[RunCost], total: CostTotal, console: Console) -> None:
    table = Table(title="cost at AWS list prices (USD)", title_justify="left")
    for column in ("run", "job runs", "job DPU-h", "crawls", "crawl DPU-h", "transitions", "Lambda", "total"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=column == "run")
    for cost in costs:
        table.add_row(
            cost.run_id,
            str(cost.job_runs),
            f"{cost.job_dpu_hours:.4f}",
            str(len(cost.crawls)),
            f"{cost.crawl_dpu_hours:.4f}" + ("*" if cost.crawl_dpu_estimated else ""),
            str(cost.state_transitions),
            str(cost.lambda_invocations),
            f"{cost.total_usd:.4f}",
        )
    if len(costs) > 1:
        table.add_section()
        table.add_row(
            f"total ({total.runs} runs)",
            "",
            f"{total.job_dpu_hours:.4f}",
            "",
            f"{total.crawl_dpu_hours:.4f}",
            str(total.state_transitions),
            str(total.lambda_invocations),
            f"{total.usd:.4f}",
        )
    console.print(table)
    if any(c.crawl_dpu_estimated for c in costs):
        console.print(
            "* Glue reported no DPUHour for a crawl: priced as 1 DPU while it ran (10-minute minimum)"
        )


def detail_png(detail: RunDetail, path: Path) -> None:
    """The run's timeline as a PNG picture (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    span = _span(detail.steps)
    steps = list(reversed(detail.steps))  # the first step on top
    figure, axes = pyplot.subplots(figsize=(9, 0.6 * len(steps) + 1.4))
    for row, step in enumerate(steps):
        if span is None or not step.opened_at:
            continue
        began = (_time(step.opened_at) - span[0]).total_seconds()
        ended = (_time(step.closed_at) - span[0]).total_seconds() if step.closed_at else None
        length = (ended if ended is not None else (span[1] - span[0]).total_seconds()) - began
        colour = {"SUCCEEDED": "#2e7d32", "FAILED": "#c62828", "OPEN": "#0277bd"}.get(step.status, "#757575")
        axes.barh(row, max(length, 0.01), left=began, color=colour, hatch=None if ended is not None else "//")
        axes.text(began, row + 0.3, f"{step.status} {_duration(step.seconds)}", fontsize=8)
    axes.set_yticks(range(len(steps)), [s.step for s in steps])
    axes.set_xlabel("seconds since the first step opened")
    axes.set_title(f"run {detail.run.run_id}: {detail.run.status}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


BACKFILL_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "refused": "magenta",
    "cancelled": "dim",
}


def backfill_view(status: BackfillStatus) -> Group:
    """A backfill at a glance: a bar of its runs by state, the counts, the time left, and the runs that did
    not succeed with why."""
    total = max(1, len(status.runs))
    bar = Text()
    for state, style in BACKFILL_STYLE.items():
        width = round(status.counts.get(state, 0) / total * BAR_WIDTH)
        bar.append("█" * width, style=style)
    head = (
        f"[bold]backfill[/] {status.backfill_id}  {_status(status.execution_status)}  "
        f"pipeline {status.pipeline}  from {status.from_step or 'the start'}  {status.max_concurrent} at once"
        + ("  [bold red]cancelled[/]" if status.cancelled else "")
    )
    counts = "  ".join(
        f"[{style}]{state} {status.counts.get(state, 0)}[/]" for state, style in BACKFILL_STYLE.items()
    )
    left = (
        "done"
        if status.done
        else f"about {_duration(status.eta_seconds)} left"
        if status.eta_seconds is not None
        else "time left: once a rerun has finished"
    )
    problems = Table(show_header=True, title="runs that did not succeed", title_justify="left")
    problems.add_column("run", no_wrap=True)
    problems.add_column("state")
    problems.add_column("why")
    for run in status.runs:
        if run.state in {"failed", "refused"}:
            problems.add_row(run.run_id, f"[{BACKFILL_STYLE[run.state]}]{run.state}[/]", run.cause or "-")
    parts: list[Any] = [head, bar, f"{counts}  ({len(status.runs)} runs; {left})"]
    if problems.row_count:
        parts.append(problems)
    return Group(*parts)
