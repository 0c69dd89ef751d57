"""What a local run did, read back from the emulated services: the run record and its steps (DynamoDB), the
execution history (Step Functions), the catalog (Glue), and the Lambda invocations and deliveries."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from gluerelay.local.cloud import LocalCloud
from gluerelay.records import (
    StepReport,
    TransitionReport,
    plain,
    run_id_of,
    state_transitions,
    step_report,
    transitions,
)


@dataclass
class TableReport:
    name: str
    columns: list[tuple[str, str]]
    partition_keys: list[str]
    partitions: list[list[str]]
    location: str


@dataclass
class AlarmReport:
    """An alarm state change while the run was going (or at its end) and the topics notified."""

    alarm: str
    old_state: str
    new_state: str
    at: str
    reason: str
    notified: list[str]


@dataclass
class RunReport:
    run_id: str
    status: str
    execution_status: str
    trigger: str | None
    started_at: str | None
    ended_at: str | None
    seconds: float | None
    steps: list[StepReport]
    rows: dict[str, Any]
    tables: list[TableReport]
    state_transitions: int
    transitions: list[TransitionReport]
    history_events: int
    lambda_invocations: dict[str, int]
    cold_starts: int
    failed_step: dict[str, Any] | None
    alarms: list[AlarmReport] = field(default_factory=list)
    alarms_in_alarm: list[str] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def build(cloud: LocalCloud, execution_arn: str) -> RunReport:
    """The run's report, with CloudWatch's alarms evaluated as of now."""
    cloud.cloudwatch.evaluate()
    sfn = cloud.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=execution_arn)
    run_id = run_id_of(execution)
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    items = _run_items(cloud, run_id, settled=execution["status"] != "RUNNING")
    run = next((i for i in items if i["sk"] == "RUN"), {})
    steps = [step_report(i) for i in items if str(i["sk"]).startswith("STEP#")]
    rows: dict[str, Any] = {}
    for step in steps:
        rows.update(step.facts.get("rows", {}))
    started = execution["startDate"].timestamp()
    stopped = execution.get("stopDate")
    ended = stopped.timestamp() if stopped else None
    window = [
        i
        for i in cloud.lambdas.invocations
        if i.started >= started - 5 and (ended is None or i.started <= ended + 1)
    ]
    counts: dict[str, int] = {}
    for invocation in window:
        short = invocation.function.split("-")[-2] if "-" in invocation.function else invocation.function
        counts[short] = counts.get(short, 0) + 1
    alarms = [
        AlarmReport(n.alarm, n.old_state, n.new_state, n.at.isoformat(), n.reason, n.topics)
        for n in cloud.cloudwatch.notifications
        # Into or out of ALARM since the run started (the first OKs after deploy are not news).
        if n.at.timestamp() >= started and "ALARM" in (n.new_state, n.old_state)
    ]
    in_alarm = [
        a["AlarmName"] for a in cloud.client("cloudwatch").describe_alarms(StateValue="ALARM")["MetricAlarms"]
    ]
    failed = (
        {"step": run["failed_step"], "error": run.get("error"), "cause": run.get("cause")}
        if run.get("failed_step")
        else None
    )
    return RunReport(
        run_id=run_id,
        status=str(run.get("status", execution["status"])),
        execution_status=execution["status"],
        trigger=run.get("trigger"),
        started_at=run.get("started_at"),
        ended_at=run.get("ended_at"),
        seconds=round(ended - started, 3) if ended else None,
        steps=sorted(steps, key=lambda s: s.step),
        rows=rows,
        tables=_tables(cloud),
        state_transitions=state_transitions(history),
        transitions=transitions(history),
        history_events=len(history),
        lambda_invocations=counts,
        cold_starts=sum(1 for i in window if i.cold_start),
        failed_step=failed,
        alarms=alarms,
        alarms_in_alarm=sorted(in_alarm),
        error=execution.get("error"),
        cause=execution.get("cause"),
    )


def _run_items(cloud: LocalCloud, run_id: str, *, settled: bool, timeout: float = 10) -> list[dict[str, Any]]:
    """The run's items in the control table. Once the execution has ended, wait (briefly) for its steps'
    closing writes: on_glue_event and the sweeper mark a step SUCCEEDED or FAILED just after they answer
    Step Functions, so the workflow can end a moment before its last step leaves COMPLETING."""
    deadline = time.monotonic() + timeout
    while True:
        items = cloud.client("dynamodb").query(
            TableName=cloud.output("ControlTableName"),
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"RUN#{run_id}"}},
        )["Items"]
        found = [plain(item) for item in items]
        closing = [i for i in found if str(i["sk"]).startswith("STEP#") and i.get("status") == "COMPLETING"]
        if not settled or not closing or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _tables(cloud: LocalCloud) -> list[TableReport]:
    glue = cloud.client("glue")
    database = cloud.output("CatalogDatabaseName")
    found = []
    for table in glue.get_tables(DatabaseName=database)["TableList"]:
        partitions = glue.get_partitions(DatabaseName=database, TableName=table["Name"])["Partitions"]
        found.append(
            TableReport(
                name=table["Name"],
                columns=[(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]],
                partition_keys=[k["Name"] for k in table.get("PartitionKeys", [])],
                partitions=sorted(p["Values"] for p in partitions),
                location=table["StorageDescriptor"]["Location"],
            )
        )
    return sorted(found, key=lambda t: t.name)


def render(report: RunReport, console: Console) -> None:  # noqa: PLR0912 - one table after another
    colour = "green" if report.succeeded else "red"
    console.print(
        f"\n[bold]run[/] {report.run_id}  [bold {colour}]{report.status}[/]  "
        f"trigger {report.trigger or '-'}  {report.seconds or 0:.1f} s"
    )
    timeline = Table(title="steps", title_justify="left")
    for column in ("step", "kind", "status", "opened", "seconds", "Glue run / crawl", "what happened"):
        timeline.add_column(column)
    for step in report.steps:
        facts = step.facts
        if step.kind == "job":
            rows = facts.get("rows", {})
            what = ", ".join(
                f"{k.removeprefix('rows_')} {v:,}" for k, v in rows.items() if isinstance(v, int)
            )
        else:
            tables, partitions = facts.get("tables", {}), facts.get("partitions", {})
            what = (
                f"tables +{tables.get('created', 0)} ~{tables.get('updated', 0)}, "
                f"partitions +{partitions.get('created', 0)} ~{partitions.get('updated', 0)}"
            )
        if step.error:
            what = f"[red]{step.error}: {step.cause or ''}[/]"
        if step.repaired_by:
            what += f" [yellow](completed by the {step.repaired_by}: its Glue event was lost)[/]"
        timeline.add_row(
            step.step,
            step.kind,
            step.status,
            (step.opened_at or "")[11:23],
            f"{step.seconds:.2f}" if step.seconds is not None else "-",
            (step.glue_id or "-")[:20],
            what,
        )
    console.print(timeline)
    if report.rows:
        rows = Table(title="rows", title_justify="left")
        rows.add_column("measure")
        rows.add_column("value", justify="right")
        for key, value in report.rows.items():
            if isinstance(value, dict):
                for reason, count in value.items():
                    rows.add_row(f"  quarantined: {reason}", f"{count:,}")
            else:
                rows.add_row(key, f"{value:,}")
        console.print(rows)
    catalog = Table(title="catalog", title_justify="left")
    for column in ("table", "columns", "partitioned by", "partitions"):
        catalog.add_column(column)
    for table in report.tables:
        columns = ", ".join(f"{n} {t}" for n, t in table.columns)
        catalog.add_row(table.name, columns, ", ".join(table.partition_keys), str(len(table.partitions)))
    console.print(catalog)
    flow = Table(title=f"state transitions ({report.state_transitions})", title_justify="left")
    for column in ("state", "type", "entered", "seconds"):
        flow.add_column(column)
    for transition in report.transitions:
        seconds = f"{transition.seconds:.3f}" if transition.seconds is not None else "-"
        flow.add_row(transition.state, transition.type, transition.entered_at[11:23], seconds)
    console.print(flow)
    invocations = ", ".join(f"{k} {v}" for k, v in sorted(report.lambda_invocations.items()))
    console.print(
        f"history events {report.history_events}; "
        f"Lambda invocations: {invocations} ({report.cold_starts} cold starts)"
    )
    for change in report.alarms:
        colour = "red" if change.new_state == "ALARM" else "green"
        topics = ", ".join(t.rsplit(":", 1)[-1] for t in change.notified) or "no action"
        console.print(
            f"alarm [bold {colour}]{change.new_state}[/] {change.alarm} (was {change.old_state}) "
            f"at {change.at[11:19]} -> {topics}: {change.reason}"
        )
    if not report.alarms_in_alarm:
        console.print("alarms: none in ALARM")
    if not report.succeeded:
        where = (report.failed_step or {}).get("step", "?")
        console.print(f"[bold red]failed at {where}[/]: {report.error}: {report.cause}")
