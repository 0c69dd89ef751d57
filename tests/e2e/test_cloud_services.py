"""The local cloud's services behave as AWS's do where the pipeline depends on them: CloudWatch metrics and
alarms reach SNS, Lambda stops a function at its Timeout and retries asynchronous events into the OnFailure
destination, disabled rules deliver nothing, and schedules fire on a clock a test can move forward."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gluerelay.local.cloud import LocalCloud
from gluerelay.local.kms import topic_refuses
from gluerelay.local.lambdas import FunctionSpec
from gluerelay.local.report import build
from gluerelay.local.runs import land
from tests.waiter import eventually, through_retries

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def alarm_state(cloud: LocalCloud, logical_id: str) -> str:
    name = cloud.template.physical_name(logical_id)
    [alarm] = cloud.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarm["StateValue"])


def start_one_run(cloud: LocalCloud, seed: int) -> str:
    known = {e["executionArn"] for e in cloud.executions()}
    land(cloud, rows=200, files=1, seed=seed)
    [execution] = cloud.wait_for_new_executions(1, known)
    return str(execution["executionArn"])


def test_a_failed_run_sets_off_its_alarm_and_the_notification_reaches_sns(
    cloud: LocalCloud, alarm_inbox: Callable[[], list[dict[str, Any]]]
) -> None:
    job = cloud.template.physical_name("CleanseCustomersJob")
    cloud.glue.fail_jobs[job] = "ValueError: injected by the test"
    try:
        arn = start_one_run(cloud, seed=31)
        assert cloud.wait_for_execution(arn)["status"] == "FAILED"
    finally:
        cloud.glue.fail_jobs.clear()
    report = build(cloud, arn)  # evaluates the alarms as of now

    assert alarm_state(cloud, "RunsFailedAlarm") == "ALARM"
    name = cloud.template.physical_name("RunsFailedAlarm")
    assert name in report.local.alarms_in_alarm
    assert any(a.alarm == name and a.new_state == "ALARM" and a.notified for a in report.local.alarms)
    notice = eventually(
        lambda: [m for m in alarm_inbox() if m["AlarmName"] == name and m["NewStateValue"] == "ALARM"],
        what="the ALARM notification in the subscribed queue",
    )[0]
    assert notice["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    # DescribeAlarmHistory tells the same: the state change, then the action that reached the topic
    history = cloud.client("cloudwatch").describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")
    told = [(i["HistoryItemType"], i["HistorySummary"]) for i in history["AlarmHistoryItems"]]
    topic = cloud.template.ref("AlarmTopic")
    assert told[-2:] == [
        ("StateUpdate", "Alarm updated from OK to ALARM"),
        ("Action", f"Successfully executed action {topic}"),
    ] or told[-2:] == [
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"),
        ("Action", f"Successfully executed action {topic}"),
    ], told
    assert notice["Trigger"]["MetricName"] == "RunsFailed"
    assert notice["Trigger"]["Namespace"] == "gluerelay"
    assert "greater than the threshold (0.0)" in notice["NewStateReason"]
    # EMF lines the functions printed are metrics, with Powertools' dimensions: in all, and per pipeline.
    metrics = cloud.client("cloudwatch").list_metrics(Namespace="gluerelay", MetricName="RunsFailed")
    dimensions = sorted(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in metrics["Metrics"])
    assert dimensions == [
        [("Pipeline", "customers"), ("service", "gluerelay")],
        [("service", "gluerelay")],
    ]
    assert cloud.cloudwatch.rejected_lines == 0


def test_a_raising_event_handler_is_retried_then_dead_lettered_and_the_sweeper_finishes_the_run(
    cloud: LocalCloud,
) -> None:
    """Lambda's async retries (1 + 2 attempts), the OnFailure record in the DLQ, the SUM() error alarm
    and the DLQ alarm; then an hour on the clock: the sweeper repairs the step and the run succeeds."""
    function = cloud.template.physical_name("OnGlueEventFunction")
    before = len(cloud.lambdas.invocations)
    cloud.lambdas.inject(function, "raise", times=3)
    arn = start_one_run(cloud, seed=32)
    through_retries(cloud.lambdas, cloud.clock, function, retries=2)
    dlq = cloud.template.get_att("GlueEventsDeadLetterQueue", "QueueUrl")
    sqs = cloud.client("sqs")
    eventually(
        lambda: (
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
            == "1"
        ),
        what="the OnFailure record in the dead-letter queue",
    )
    cloud.cloudwatch.evaluate()
    # One function erred and the others were not all invoked in that minute: SUM([...]) still counts it.
    assert alarm_state(cloud, "FunctionErrorsAlarm") == "ALARM"
    assert alarm_state(cloud, "GlueEventDeadLettersAlarm") == "ALARM"
    [message] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])

    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail-type"] == "Glue Job State Change"
    assert record["responsePayload"]["errorType"] == "InjectedFaultError"
    attempts = [i for i in cloud.lambdas.invocations[before:] if i.function == function]
    assert [(i.attempt, i.error_type) for i in attempts[:3]] == [(n, "InjectedFaultError") for n in (1, 2, 3)]
    assert cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"

    sweeps = sum(1 for i in cloud.lambdas.invocations if "SweeperFunction" in i.function)
    repair_after = int(cloud.template.parameters["RepairAfterSeconds"])
    cloud.clock.advance(repair_after + 60)
    final = cloud.wait_for_execution(arn)

    assert final["status"] == "SUCCEEDED"
    assert sum(1 for i in cloud.lambdas.invocations if "SweeperFunction" in i.function) > sweeps
    extract = build(cloud, arn).steps[0]
    assert (extract.step, extract.status, extract.repaired_by) == ("extract", "SUCCEEDED", "sweeper")


def test_schedules_fire_once_per_period_the_clock_moves(cloud: LocalCloud) -> None:
    period = int(cloud.template.parameters["SweepIntervalMinutes"]) * 60

    def sweeps() -> int:
        return sum(1 for i in cloud.lambdas.invocations if "SweeperFunction" in i.function)

    before = sweeps()
    cloud.clock.advance(3 * period)
    eventually(lambda: sweeps() >= before + 3, what="three sweeps")
    time.sleep(1)
    assert sweeps() == before + 3
    stuck = cloud.client("cloudwatch").list_metrics(Namespace="gluerelay", MetricName="StuckSteps")
    assert stuck["Metrics"], "the sweeper's EMF StuckSteps metric"


def test_a_disabled_rule_delivers_nothing(cloud: LocalCloud) -> None:
    events, s3 = cloud.client("events"), cloud.client("s3")
    rule = cloud.template.physical_name("ArrivalRule")
    bucket = cloud.output("DataBucketName")
    known = {e["executionArn"] for e in cloud.executions()}
    delivered = len([d for d in cloud.bus.deliveries if d.rule == rule])
    events.disable_rule(Name=rule)
    try:
        s3.put_object(Bucket=bucket, Key="landing/customers/while-disabled.csv", Body=b"customer_id\n1\n")
        time.sleep(2)  # more than the arrival batching window
        assert len([d for d in cloud.bus.deliveries if d.rule == rule]) == delivered
        assert [e for e in cloud.executions() if e["executionArn"] not in known] == []
    finally:
        events.enable_rule(Name=rule)
    arn = start_one_run(cloud, seed=33)
    assert cloud.wait_for_execution(arn)["status"] == "SUCCEEDED"


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "runs from its local folder")
    return buffer.getvalue()


def test_a_function_that_outlives_its_timeout_is_stopped(cloud: LocalCloud, tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\n\n\ndef handler(event, context):\n"
        "    time.sleep(event.get('sleep', 0))\n    return 'done'\n"
    )
    name = "test-slow-function"
    arn = cloud.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=cloud.template.get_att("StartStepFunctionRole", "Arn"),
        Handler="slow.handler",
        Code={"ZipFile": _function_zip()},
        Timeout=1,
    )["FunctionArn"]
    cloud.lambdas.register(
        FunctionSpec(name, arn, "slow.handler", tmp_path, {}, timeout_seconds=1, memory_mb=128)
    )
    client = cloud.client("lambda")

    def invoke(seconds: float) -> tuple[str | None, Any]:
        response = client.invoke(FunctionName=name, Payload=json.dumps({"sleep": seconds}))
        return response.get("FunctionError"), json.loads(response["Payload"].read())

    assert invoke(0) == (None, "done")
    error, payload = invoke(10)
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    # The environment was stopped: the next invocation starts a new one.
    assert invoke(0) == (None, "done")
    calls = [i for i in cloud.lambdas.invocations if i.function == name]
    assert [(i.cold_start, i.error_type) for i in calls] == [
        (True, None),
        (False, "Sandbox.Timedout"),
        (True, None),
    ]
    cloud.lambdas.inject(name, "hang")
    assert invoke(0)[1]["errorType"] == "Sandbox.Timedout"


def test_s3_events_carry_the_objects_etag_and_version_as_s3_sends_them(cloud: LocalCloud) -> None:
    """Every Object Created the local S3 emits validates against Powertools' model of S3's EventBridge event,
    with the object's own ETag and version id (moto spells `eTag` and sends a null version)."""
    from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

    seen: list[dict[str, Any]] = []

    def capture(event: dict[str, Any]) -> int:
        if event.get("source") == "aws.s3":
            seen.append(event)
        return 0  # nothing is delivered: no run starts

    bucket = cloud.output("DataBucketName")
    s3 = cloud.client("s3")
    cloud.bus.copies = capture
    try:
        key = "landing/unrouted/event-shape.csv"  # under no pipeline's prefix
        puts = [s3.put_object(Bucket=bucket, Key=key, Body=body) for body in (b"a\n1\n", b"a\n2\n")]
        eventually(lambda: len(seen) >= 2, what="two Object Created events")
    finally:
        cloud.bus.copies = None
    models = [S3EventNotificationEventBridgeModel.model_validate(event) for event in seen]
    assert [(m.detail.object.etag, m.detail.object.version_id) for m in models] == [
        (put["ETag"].strip('"'), put["VersionId"]) for put in puts
    ]
    assert len({put["VersionId"] for put in puts}) == 2  # the template's bucket is versioned
    assert all(isinstance(event["time"], str) and event["time"].endswith("Z") for event in seen)


@pytest.mark.parametrize("key", ["managed", "without-cloudwatch"])
def test_an_alarm_whose_topic_key_shuts_out_cloudwatch_delivers_nothing_and_says_why(
    cloud: LocalCloud, key: str
) -> None:
    """On AWS a topic encrypted with alias/aws/sns (or a customer key whose policy leaves CloudWatch out)
    receives nothing from alarms: CloudWatch cannot use the key. The local cloud refuses the same way."""
    sqs, sns, kms = cloud.client("sqs"), cloud.client("sns"), cloud.client("kms")
    if key == "managed":
        key_id = "alias/aws/sns"
    else:
        root = f"arn:aws:iam::{cloud.env.account}:root"
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}
            ],
        }
        key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    topic = sns.create_topic(Name=f"test-{key}-key", Attributes={"KmsMasterKeyId": key_id})["TopicArn"]
    url = sqs.create_queue(QueueName=f"test-{key}-inbox")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
    cloudwatch = cloud.client("cloudwatch")
    name = f"test-{key}-alarm"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="test",
        MetricName="Broken",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
    )
    cloudwatch.put_metric_data(
        Namespace="test",
        MetricData=[{"MetricName": "Broken", "Value": 1, "Timestamp": cloud.clock.datetime()}],
    )

    cloud.cloudwatch.evaluate()  # now (the local cloud's own periodic evaluation may get there first)
    [change] = eventually(
        lambda: [n for n in cloud.cloudwatch.notifications if n.alarm == name], what=f"{name}'s state change"
    )

    assert change.new_state == "ALARM"  # the alarm itself still fires...
    assert change.topics == []  # ...but its action reaches nobody
    assert list(change.failed) == [topic]
    expected = (
        "AWS managed key alias/aws/sns" if key == "managed" else "does not allow cloudwatch.amazonaws.com"
    )
    assert expected in change.failed[topic]
    [action] = cloudwatch.describe_alarm_history(AlarmName=name, HistoryItemType="Action")[
        "AlarmHistoryItems"
    ]
    assert action["HistorySummary"].startswith(f"Failed to execute action {topic}: ")
    assert json.loads(action["HistoryData"])["actionState"] == "Failed"
    sns.publish(TopicArn=topic, Message="marker")  # a publisher the key does allow: the queue works
    bodies = [json.loads(m["Body"])["Message"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])]
    assert bodies == ["marker"]


def test_the_stacks_alarm_topic_key_lets_cloudwatch_in_and_only_for_this_stacks_alarms(
    cloud: LocalCloud,
) -> None:
    """The AlarmTopic's customer managed key grants CloudWatch exactly what publishing needs, scoped to this
    account and this stack's alarms; another account's alarm (or a differently named one) is refused."""
    topic = cloud.template.ref("AlarmTopic")
    name = cloud.template.physical_name("RunsFailedAlarm")
    [described] = cloud.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    alarm = described["AlarmArn"]
    ours = {"aws:SourceAccount": cloud.env.account, "aws:SourceArn": alarm}
    assert topic_refuses(cloud.client, topic, "cloudwatch.amazonaws.com", ours) is None
    elsewhere = {
        "aws:SourceAccount": "999999999999",
        "aws:SourceArn": alarm.replace(cloud.env.account, "999999999999"),
    }
    assert topic_refuses(cloud.client, topic, "cloudwatch.amazonaws.com", elsewhere) is not None
    other = {
        **ours,
        "aws:SourceArn": f"arn:aws:cloudwatch:{cloud.env.region}:{cloud.env.account}:alarm:someone-else",
    }
    assert topic_refuses(cloud.client, topic, "cloudwatch.amazonaws.com", other) is not None
    keys = cloud.client("kms").describe_key(KeyId=cloud.template.ref("AlarmKey"))["KeyMetadata"]
    assert keys["KeyManager"] == "CUSTOMER"
    assert cloud.client("kms").get_key_rotation_status(KeyId=keys["KeyId"])["KeyRotationEnabled"] is True


def test_every_log_group_of_the_stack_expires_and_is_encrypted_with_the_stacks_logs_key(
    cloud: LocalCloud,
) -> None:
    """The functions', the state machines' and the Glue jobs' log groups (Glue 5.0 writes to
    <--custom-logGroup-prefix>/error and /output) all keep LogRetentionDays and use LogsKey."""
    key = cloud.template.get_att("LogsKey", "Arn")
    groups = {g["logGroupName"]: g for g in cloud.client("logs").describe_log_groups()["logGroups"]}
    ours = [cloud.template.physical_name(n) for n in cloud.template.of_type("AWS::Logs::LogGroup")]
    prefix = f"/aws-glue/{cloud.env.stack}"
    assert {f"{prefix}/error", f"{prefix}/output"} <= set(ours)
    retention = int(cloud.template.parameters["LogRetentionDays"])
    assert {g: (groups[g].get("kmsKeyId"), groups[g].get("retentionInDays")) for g in ours} == {
        g: (key, retention) for g in ours
    }
    jobs = [cloud.template.physical_name(n) for n in cloud.template.of_type("AWS::Glue::Job")]
    glue = cloud.client("glue")
    assert {
        j: glue.get_job(JobName=j)["Job"]["DefaultArguments"].get("--custom-logGroup-prefix") for j in jobs
    } == {j: prefix for j in jobs}
