"""What a local run did: the run as the operator commands read it (`operate.run_detail`, the same code as
`gluerelay runs show`), plus what only the local cloud can observe: its Lambda invocations and cold starts,
and the alarms that changed state."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from relay.contract import STEP_SK_PREFIX, run_id_of_execution, run_pk
from rich.console import Console

from gluerelay.local.cloud import LocalCloud
from gluerelay.operate import RunDetail, run_detail
from gluerelay.records import StepReport, TransitionReport, plain
from gluerelay.views import detail_view


@dataclass
class AlarmReport:
    """An alarm state change while the run was going (or at its end) and the topics notified."""

    alarm: str
    old_state: str
    new_state: str
    at: str
    reason: str
    notified: list[str]
    failed: dict[str, str] = field(default_factory=dict)  # actions that delivered nothing, and why


@dataclass
class LocalFacts:
    """What the local cloud saw of a run beyond its records."""

    execution_arn: str
    execution_status: str
    error: str | None  # the execution's own error and cause (DescribeExecution)
    cause: str | None
    lambda_invocations: dict[str, int]
    cold_starts: int
    alarms: list[AlarmReport] = field(default_factory=list)
    alarms_in_alarm: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    detail: RunDetail
    local: LocalFacts

    @property
    def run_id(self) -> str:
        return self.detail.run.run_id

    @property
    def pipeline(self) -> str:
        return self.detail.run.pipeline

    @property
    def status(self) -> str:
        return self.detail.run.status

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def trigger(self) -> str | None:
        return self.detail.run.trigger

    @property
    def steps(self) -> list[StepReport]:
        return self.detail.steps

    @property
    def rows(self) -> dict[str, Any]:
        return {
            **self.detail.rows,
            **(
                {"quarantined_by_reason": self.detail.quarantined_by_reason}
                if self.detail.quarantined_by_reason
                else {}
            ),
        }

    @property
    def failed_step(self) -> str | None:
        return self.detail.run.failed_step

    @property
    def error(self) -> str | None:
        return self.detail.run.error or self.local.error

    @property
    def cause(self) -> str | None:
        return self.detail.cause or self.local.cause

    @property
    def state_transitions(self) -> int:
        return self.detail.state_transitions

    @property
    def transitions(self) -> list[TransitionReport]:
        return self.detail.transitions

    def step(self, step_id: str) -> StepReport:
        found = next((s for s in self.steps if s.step == step_id), None)
        if found is None:
            raise KeyError(f"run {self.run_id} has no step {step_id} (steps: {[s.step for s in self.steps]})")
        return found

    def to_dict(self) -> dict[str, Any]:
        """The run as `gluerelay runs show --json` prints it, the local cloud's own facts under "local"."""
        return {**asdict(self.detail), "local": asdict(self.local)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def build(cloud: LocalCloud, execution_arn: str) -> RunReport:
    """The run's report, with CloudWatch's alarms evaluated as of now."""
    cloud.cloudwatch.evaluate()
    execution = cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    run_id = run_id_of_execution(execution["name"])
    _settle(cloud, run_id, settled=execution["status"] != "RUNNING")
    detail = run_detail(cloud.target(), run_id)
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
        AlarmReport(n.alarm, n.old_state, n.new_state, n.at.isoformat(), n.reason, n.topics, n.failed)
        for n in cloud.cloudwatch.notifications
        # Into or out of ALARM since the run started (the first OKs after deploy are not news).
        if n.at.timestamp() >= started and "ALARM" in (n.new_state, n.old_state)
    ]
    in_alarm = [
        a["AlarmName"] for a in cloud.client("cloudwatch").describe_alarms(StateValue="ALARM")["MetricAlarms"]
    ]
    return RunReport(
        detail,
        LocalFacts(
            execution_arn=execution_arn,
            execution_status=execution["status"],
            error=execution.get("error"),
            cause=execution.get("cause"),
            lambda_invocations=counts,
            cold_starts=sum(1 for i in window if i.cold_start),
            alarms=alarms,
            alarms_in_alarm=sorted(in_alarm),
        ),
    )


def _settle(cloud: LocalCloud, run_id: str, *, settled: bool, timeout: float = 10) -> None:
    """Once the execution has ended, wait (briefly) for its steps' closing writes: on_glue_event and the
    sweeper mark a step SUCCEEDED or FAILED just after they answer Step Functions, so the workflow can end a
    moment before its last step leaves COMPLETING."""
    deadline = time.monotonic() + timeout
    while settled:
        items = cloud.client("dynamodb").query(
            TableName=cloud.output("ControlTableName"),
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": run_pk(run_id)}},
        )["Items"]
        closing = [
            i
            for i in map(plain, items)
            if str(i["sk"]).startswith(STEP_SK_PREFIX) and i.get("status") == "COMPLETING"
        ]
        if not closing or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def render(report: RunReport, console: Console) -> None:
    """The run as `gluerelay runs show` draws it, then what the local cloud saw."""
    console.print()
    detail_view(report.detail, console)
    local = report.local
    invocations = ", ".join(f"{k} {v}" for k, v in sorted(local.lambda_invocations.items()))
    console.print(f"Lambda invocations: {invocations} ({local.cold_starts} cold starts)")
    for change in local.alarms:
        colour = "red" if change.new_state == "ALARM" else "green"
        topics = ", ".join(t.rsplit(":", 1)[-1] for t in change.notified) or "no action"
        console.print(
            f"alarm [bold {colour}]{change.new_state}[/] {change.alarm} (was {change.old_state}) "
            f"at {change.at[11:19]} -> {topics}: {change.reason}"
        )
        for why in change.failed.values():
            console.print(f"  [red]{why}[/]")
    if not local.alarms_in_alarm:
        console.print("alarms: none in ALARM")
