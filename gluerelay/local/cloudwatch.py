"""CloudWatch in the local cloud: metrics in, alarms evaluated, alarm actions out to SNS.

Metrics reach moto's CloudWatch the way they reach CloudWatch on AWS:
- the functions' embedded metric format (EMF) lines, printed by Powertools into the log stream;
- the services' own metrics: ``AWS/Lambda`` Invocations, Errors and Duration per function, ``AWS/States``
  ExecutionsStarted / Succeeded / Failed / TimedOut / Aborted per state machine, and ``AWS/SQS``
  ApproximateNumberOfMessagesVisible per queue.

moto stores alarms but never evaluates them. Here every alarm from the template is evaluated on the local
clock over its own window (EvaluationPeriods periods of Period seconds, DatapointsToAlarm, TreatMissingData,
metric math); a state change is written back with SetAlarmState and the alarm's actions for the new state
receive the notification CloudWatch sends to SNS.
"""

from __future__ import annotations

import ast
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session

from gluerelay.local.clock import Clock
from gluerelay.local.journal import Journal
from gluerelay.local.kms import topic_refuses
from gluerelay.local.lambdas import LambdaRuntime

log = logging.getLogger(__name__)
MAX_DATUMS_PER_CALL = 1000  # PutMetricData's limit
QUEUE_SAMPLE_SECONDS = 60.0  # SQS publishes queue depth once a minute (and here whenever it changes)
_TERMINAL = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}
_COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}


@dataclass
class AlarmNotification:
    """One alarm state change and where its notification went."""

    at: datetime
    alarm: str
    old_state: str
    new_state: str
    reason: str
    topics: list[str]  # the topics the notification reached
    # The actions that delivered nothing, and why (CloudWatch records "Failed to execute action" instead)
    failed: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- EMF


def emf_metrics(line: str) -> list[tuple[str, dict[str, Any]]]:
    """The (namespace, MetricDatum) pairs in one log line, empty when the line is not EMF.

    A line that claims to be EMF (an `_aws` member) but breaks the format raises ValueError or TypeError
    naming the fault.
    """
    if not line.startswith("{") or '"_aws"' not in line:
        return []
    record = json.loads(line)
    aws = record.get("_aws")
    if not isinstance(aws, dict) or not isinstance(aws.get("CloudWatchMetrics"), list):
        raise TypeError("EMF record without an _aws.CloudWatchMetrics list")
    try:
        stamp = datetime.fromtimestamp(float(aws["Timestamp"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"EMF record with a bad _aws.Timestamp: {aws.get('Timestamp')!r}") from e
    found: list[tuple[str, dict[str, Any]]] = []
    for directive in aws["CloudWatchMetrics"]:
        namespace = directive.get("Namespace")
        if not namespace:
            raise ValueError("EMF directive without a Namespace")
        for dimension_set in directive.get("Dimensions") or [[]]:
            missing = [d for d in dimension_set if d not in record]
            if missing:
                raise ValueError(f"EMF dimension(s) {missing} have no value in the record")
            dimensions = [{"Name": d, "Value": str(record[d])} for d in dimension_set]
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                if name not in record:
                    raise ValueError(f"EMF metric {name} has no value in the record")
                value = record[name]
                datum: dict[str, Any] = {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": stamp,
                    "Values": [float(v) for v in value] if isinstance(value, list) else [float(value)],
                }
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                found.append((namespace, datum))
    return found


# ---------------------------------------------------------------------------------------------- metric math

_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum,
    "AVG": lambda v: sum(v) / len(v),
    "MIN": min,
    "MAX": max,
}
_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def metric_math(expression: str, values: dict[str, float | None]) -> float | None:
    """One period's value of a metric math expression; None is a missing datapoint.

    As in CloudWatch, arithmetic on a missing datapoint is missing, while SUM/AVG/MIN/MAX over an array
    use the datapoints that exist, and FILL(id, n) stands n in for a missing one. Anything else raises
    ValueError naming what the local cloud does not emulate.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"metric math {expression!r} does not parse: {e.msg}") from e
    return _value(tree.body, values, expression)


def _value(node: ast.AST, values: dict[str, float | None], expression: str) -> float | None:  # noqa: PLR0911
    match node:
        case ast.Constant(value=float() | int() as number) if not isinstance(number, bool):
            return float(number)
        case ast.Name(id=name):
            if name not in values:
                raise ValueError(f"metric math {expression!r}: no metric or expression with id {name}")
            return values[name]
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            inner = _value(operand, values, expression)
            return None if inner is None else -inner
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPERATORS:
            a, b = _value(left, values, expression), _value(right, values, expression)
            if a is None or b is None or (isinstance(op, ast.Div) and b == 0):
                return None
            return _OPERATORS[type(op)](a, b)
        case ast.Call(func=ast.Name(id=function), args=[ast.List(elts=items)]) if function in _AGGREGATES:
            present = [v for v in (_value(i, values, expression) for i in items) if v is not None]
            return _AGGREGATES[function](present) if present else None
        case ast.Call(func=ast.Name(id="FILL"), args=[series, filler]):
            inner = _value(series, values, expression)
            return _value(filler, values, expression) if inner is None else inner
    raise ValueError(
        f"metric math {expression!r}: {ast.unparse(node)!r} is not emulated locally "
        "(+ - * /, SUM/AVG/MIN/MAX([...]) and FILL(id, n) are)"
    )


def check_alarm(alarm: dict[str, Any]) -> None:
    """Refuse, at deploy time, an alarm the local cloud could not evaluate."""
    if alarm.get("ComparisonOperator") not in _COMPARISONS:
        raise ValueError(f"comparison {alarm.get('ComparisonOperator')} is not emulated locally")
    queries = alarm.get("Metrics") or []
    ids: dict[str, float | None] = {q["Id"]: 1.0 for q in queries}
    for query in queries:
        if "Expression" in query:
            metric_math(query["Expression"], ids)
        elif "MetricStat" not in query:
            raise ValueError(f"alarm query {query['Id']} has neither MetricStat nor Expression")


# ---------------------------------------------------------------------------------------------- the service


@dataclass
class LocalCloudWatch:
    clients: Callable[[str], Any]
    clock: Clock
    lambdas: LambdaRuntime
    region: str
    account: str
    state_machines: list[str] = field(default_factory=list)
    queues: dict[str, str] = field(default_factory=dict)  # queue name -> URL
    notifications: Journal[AlarmNotification] = field(default_factory=Journal)
    rejected_lines: int = 0
    _lambda_seen: int = 0
    _executions: dict[str, str] = field(default_factory=dict)
    _queue_depth: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (value, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ metrics in

    def ingest_log(self, function: str, line: str) -> None:
        """A function's log line: its EMF metrics, if any, go to CloudWatch; a broken record is logged."""
        try:
            found = emf_metrics(line)
        except (ValueError, KeyError, TypeError) as e:  # json.JSONDecodeError is a ValueError
            self.rejected_lines += 1
            log.warning("%s: log line skipped, not valid EMF (%s): %.200s", function, e, line)
            return
        shift = timedelta(seconds=self.clock.offset)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in found:
            by_namespace.setdefault(namespace, []).append({**datum, "Timestamp": datum["Timestamp"] + shift})
        for namespace, data in by_namespace.items():
            self._put(namespace, data)

    def _put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        cloudwatch = self.clients("cloudwatch")
        for start in range(0, len(data), MAX_DATUMS_PER_CALL):
            cloudwatch.put_metric_data(
                Namespace=namespace, MetricData=data[start : start + MAX_DATUMS_PER_CALL]
            )

    def collect(self) -> None:
        """The services' own metrics since the last collection."""
        self._collect_lambda()
        self._collect_states()
        self._collect_queues()

    def _collect_lambda(self) -> None:
        fresh = self.lambdas.invocations_since(self._lambda_seen)
        self._lambda_seen += len(fresh)
        data: list[dict[str, Any]] = []
        for invocation in fresh:
            at = datetime.fromtimestamp(invocation.started + self.clock.offset, UTC)
            dimensions = [{"Name": "FunctionName", "Value": invocation.function}]
            data += [
                {"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": at, "Value": 1.0},
                {
                    "MetricName": "Errors",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": 1.0 if invocation.error_type else 0.0,
                },
                {
                    "MetricName": "Duration",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": round(invocation.duration * 1000, 2),
                    "Unit": "Milliseconds",
                },
            ]
        if data:
            self._put("AWS/Lambda", data)

    def _collect_states(self) -> None:
        sfn = self.clients("stepfunctions")
        shift = timedelta(seconds=self.clock.offset)
        data: list[dict[str, Any]] = []
        for machine in self.state_machines:
            dimensions = [{"Name": "StateMachineArn", "Value": machine}]
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                for execution in page["executions"]:
                    arn, status = execution["executionArn"], execution["status"]
                    before = self._executions.get(arn)
                    if before == status:
                        continue
                    self._executions[arn] = status
                    if before is None:
                        data.append(_count("ExecutionsStarted", dimensions, execution["startDate"] + shift))
                    if status in _TERMINAL:
                        stopped = execution.get("stopDate") or execution["startDate"]
                        data.append(_count(_TERMINAL[status], dimensions, stopped + shift))
        if data:
            self._put("AWS/States", data)

    def _collect_queues(self) -> None:
        sqs = self.clients("sqs")
        now = self.clock.now()
        data: list[dict[str, Any]] = []
        for name, url in self.queues.items():
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            depth = float(attributes["ApproximateNumberOfMessages"])
            last = self._queue_depth.get(name)
            if last is not None and last[0] == depth and now - last[1] < QUEUE_SAMPLE_SECONDS:
                continue
            self._queue_depth[name] = (depth, now)
            data.append(
                {
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{"Name": "QueueName", "Value": name}],
                    "Timestamp": datetime.fromtimestamp(now, UTC),
                    "Value": depth,
                }
            )
        if data:
            self._put("AWS/SQS", data)

    # ------------------------------------------------------------------ alarms

    def evaluate(self) -> list[AlarmNotification]:
        """Collect the services' metrics, then evaluate every alarm at the clock's time; the changes."""
        with self._lock:
            self.collect()
            changes = []
            cloudwatch = self.clients("cloudwatch")
            for alarm in _alarms(cloudwatch):
                change = self._evaluate(alarm, cloudwatch)
                if change is not None:
                    changes.append(change)
            return changes

    def _evaluate(self, alarm: dict[str, Any], cloudwatch: Any) -> AlarmNotification | None:
        queries = _queries(alarm)
        period = int(next(q["MetricStat"]["Period"] for q in queries if "MetricStat" in q))
        periods = int(alarm["EvaluationPeriods"])
        # Up to the end of this second: a datapoint stamped a moment ago is in the window.
        end = (self.clock.datetime() + timedelta(seconds=1)).replace(microsecond=0)
        start = end - timedelta(seconds=period * periods)
        series = _series(cloudwatch, queries, start=start, period=period, periods=periods)
        state, reason = _decide(alarm, series, start, period)
        if state is None or state == alarm["StateValue"]:
            return None
        cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"],
            StateValue=state,
            StateReason=reason,
            StateReasonData=json.dumps(
                {
                    "version": "1.0",
                    "queryDate": end.isoformat(),
                    "recentDatapoints": [v for v in series if v is not None],
                }
            ),
        )
        actions = {
            "ALARM": alarm.get("AlarmActions", []),
            "OK": alarm.get("OKActions", []),
            "INSUFFICIENT_DATA": alarm.get("InsufficientDataActions", []),
        }[state]
        topics = [a for a in actions if a.split(":")[2] == "sns"] if alarm.get("ActionsEnabled", True) else []
        context = {"aws:SourceAccount": self.account, "aws:SourceArn": alarm["AlarmArn"]}
        failed = {}
        for topic in topics:
            refused = topic_refuses(self.clients, topic, "cloudwatch.amazonaws.com", context)
            if refused:
                failed[topic] = f"Failed to execute action {topic}: {refused}"
        delivered = [t for t in topics if t not in failed]
        change = AlarmNotification(
            end, alarm["AlarmName"], alarm["StateValue"], state, reason, delivered, failed
        )
        for topic in delivered:
            self._notify(topic, alarm, change)
        for message in failed.values():
            log.warning("alarm action failed: %s: %s", alarm["AlarmName"], message)
        self.notifications.append(change)
        return change

    def install_history(self) -> Callable[[], None]:
        """Answer DescribeAlarmHistory from this CloudWatch's record; returns the undo."""
        from moto.cloudwatch.responses import CloudWatchResponse
        from moto.core.responses import ActionResult

        local = self
        names = (
            "AlarmName",
            "AlarmTypes",
            "HistoryItemType",
            "StartDate",
            "EndDate",
            "MaxRecords",
            "NextToken",
            "ScanBy",
        )

        def describe_alarm_history(response: Any) -> ActionResult:
            return ActionResult(local.history({name: response._get_param(name) for name in names}))

        CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]
        return lambda: delattr(CloudWatchResponse, "describe_alarm_history")

    def history(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """DescribeAlarmHistory (moto has none): each state change the local CloudWatch made (StateUpdate)
        and each of its SNS actions (Action: executed, or failed and why), filtered and paged as CloudWatch
        does; newest first unless ScanBy is TimestampAscending."""
        items: list[dict[str, Any]] = []
        for change in self.notifications:
            base = {"AlarmName": change.alarm, "AlarmType": "MetricAlarm", "Timestamp": change.at}
            data = {
                "version": "1.0",
                "oldState": {"stateValue": change.old_state},
                "newState": {"stateValue": change.new_state, "stateReason": change.reason},
            }
            summary = f"Alarm updated from {change.old_state} to {change.new_state}"
            items.append(
                {
                    **base,
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": summary,
                    "HistoryData": json.dumps(data),
                }
            )
            actions = [(t, "Succeeded", f"Successfully executed action {t}") for t in change.topics]
            actions += [(t, "Failed", message) for t, message in change.failed.items()]
            for topic, state, message in actions:
                data = {
                    "actionState": state,
                    "notificationResource": topic,
                    "stateUpdateTimestamp": _stamp(change.at),
                }
                items.append(
                    {
                        **base,
                        "HistoryItemType": "Action",
                        "HistorySummary": message,
                        "HistoryData": json.dumps(data),
                    }
                )
        wanted = {
            "AlarmName": parameters.get("AlarmName"),
            "HistoryItemType": parameters.get("HistoryItemType"),
        }
        items = [i for i in items if all(v is None or i[k] == v for k, v in wanted.items())]
        if types := parameters.get("AlarmTypes"):
            items = [i for i in items if i["AlarmType"] in types]
        if start := _when(parameters.get("StartDate")):
            items = [i for i in items if i["Timestamp"] >= start]
        if end := _when(parameters.get("EndDate")):
            items = [i for i in items if i["Timestamp"] <= end]
        items.sort(key=lambda i: i["Timestamp"], reverse=parameters.get("ScanBy") != "TimestampAscending")
        first = int(parameters.get("NextToken") or 0)
        size = int(parameters.get("MaxRecords") or 100)
        answer: dict[str, Any] = {"AlarmHistoryItems": items[first : first + size]}
        if first + size < len(items):
            answer["NextToken"] = str(first + size)
        return answer

    def _notify(self, topic: str, alarm: dict[str, Any], change: AlarmNotification) -> None:
        """The message CloudWatch publishes to an alarm's SNS action."""
        region = _region_name(self.region)
        trigger: dict[str, Any] = {
            "Period": alarm.get("Period"),
            "EvaluationPeriods": alarm["EvaluationPeriods"],
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": alarm["Threshold"],
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": "",
        }
        if alarm.get("Metrics"):
            trigger["Metrics"] = alarm["Metrics"]
        else:
            trigger.update(
                MetricName=alarm["MetricName"],
                Namespace=alarm["Namespace"],
                StatisticType="Statistic",
                Statistic=str(alarm["Statistic"]).upper(),
                Unit=None,
                Dimensions=[{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            )
        message = {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": self.account,
            "AlarmConfigurationUpdatedTimestamp": _stamp(alarm["AlarmConfigurationUpdatedTimestamp"]),
            "NewStateValue": change.new_state,
            "NewStateReason": change.reason,
            "StateChangeTime": _stamp(change.at),
            "Region": region,
            "AlarmArn": alarm["AlarmArn"],
            "OldStateValue": change.old_state,
            "OKActions": alarm.get("OKActions", []),
            "AlarmActions": alarm.get("AlarmActions", []),
            "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
            "Trigger": trigger,
        }
        subject = f'{change.new_state}: "{alarm["AlarmName"]}" in {region}'
        self.clients("sns").publish(
            TopicArn=topic, Subject=subject[:100], Message=json.dumps(message, default=str)
        )


def _count(name: str, dimensions: list[dict[str, str]], at: datetime) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": 1.0, "Unit": "Count"}


def _alarms(cloudwatch: Any) -> Iterable[dict[str, Any]]:
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        yield from page["MetricAlarms"]


def _queries(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """An alarm as metric data queries: its own for metric math alarms, one MetricStat otherwise."""
    if alarm.get("Metrics"):
        return list(alarm["Metrics"])
    metric = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"]}
    if alarm.get("Dimensions"):
        metric["Dimensions"] = alarm["Dimensions"]
    return [
        {"Id": "m", "MetricStat": {"Metric": metric, "Period": alarm["Period"], "Stat": alarm["Statistic"]}}
    ]


def _series(
    cloudwatch: Any, queries: list[dict[str, Any]], *, start: datetime, period: int, periods: int
) -> list[float | None]:
    """The alarm's value in each evaluation period, oldest first; None where no datapoint exists."""
    end = start + timedelta(seconds=period * periods)
    stats = [
        {"Id": q["Id"], "MetricStat": q["MetricStat"], "ReturnData": True}
        for q in queries
        if "MetricStat" in q
    ]
    results = cloudwatch.get_metric_data(MetricDataQueries=stats, StartTime=start, EndTime=end)[
        "MetricDataResults"
    ]
    by_id: dict[str, list[float | None]] = {q["Id"]: [None] * periods for q in stats}
    for result in results:
        for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
            index = int((stamp - start).total_seconds() // period)
            if 0 <= index < periods:
                by_id[result["Id"]][index] = float(value)
    expressions = [q for q in queries if "Expression" in q]
    returned = next((q["Id"] for q in queries if q.get("ReturnData", True)), queries[0]["Id"])
    series: list[float | None] = []
    for index in range(periods):
        values = {name: points[index] for name, points in by_id.items()}
        for query in expressions:
            values[query["Id"]] = metric_math(query["Expression"], values)
        series.append(values[returned])
    return series


def _decide(
    alarm: dict[str, Any], series: list[float | None], start: datetime, period: int
) -> tuple[str | None, str]:
    """The alarm's state for these datapoints (None: keep the current one) and CloudWatch's reason."""
    words, compare = _COMPARISONS[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    treat = alarm.get("TreatMissingData") or "missing"
    needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
    present = [(i, v) for i, v in enumerate(series) if v is not None]
    missing = len(series) - len(present)
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None, ""
        return "INSUFFICIENT_DATA", f"Insufficient Data: {missing} datapoint(s) were unknown."
    breaching = sum(1 for _, v in present if compare(v, threshold)) + (missing if treat == "breaching" else 0)
    state = "ALARM" if breaching >= needed else "OK"
    shown = ", ".join(
        f"{v} ({(start + timedelta(seconds=period * i)).strftime('%d/%m/%y %H:%M:%S')})"
        for i, v in reversed(present)
    )
    verb = words if state == "ALARM" else f"not {words}"
    if present:
        reason = (
            f"Threshold Crossed: {len(present)} datapoint(s) [{shown}] was {verb} "
            f"the threshold ({threshold})."
        )
    else:
        treated = "Breaching" if treat == "breaching" else "NonBreaching"
        reason = (
            f"Threshold Crossed: no datapoints were received for {missing} period(s) and {missing} missing "
            f"datapoint(s) were treated as [{treated}]."
        )
    return state, reason


def _when(value: Any) -> datetime | None:
    """A DescribeAlarmHistory date parameter (a datetime, or ISO 8601 text), in UTC."""
    if value in (None, ""):
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _region_name(region: str) -> str:
    """The region's long name, as alarm notifications give it (botocore's endpoint data knows them)."""
    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        if region in partition["regions"]:
            return str(partition["regions"][region].get("description", region))
    return region
