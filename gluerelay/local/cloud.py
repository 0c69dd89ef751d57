"""The local cloud: template.yaml deployed into emulated AWS on this machine, everything running for real.

One process owns moto's backends (in-process `mock_aws`, plus a `ThreadedMotoServer` on the same state for
the Lambda and Glue child processes and for the AWS CLI). The hooks in `patches`, `lambdas`, `glue` and
`events` make moto run the real state machine, handlers, Glue scripts and crawls.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import socket
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.awslambda import models as lambda_models
from moto.events import models as events_models
from moto.server import ThreadedMotoServer

from gluerelay.local import patches
from gluerelay.local.clock import Clock
from gluerelay.local.cloudwatch import LocalCloudWatch, check_alarm
from gluerelay.local.events import EventBus, Pollers, QueueMapping, queue_url, schedule_period
from gluerelay.local.glue import GlueTiming, LocalGlue
from gluerelay.local.lambdas import FunctionSpec, LambdaRuntime, endpoint_env, worker_base_env
from gluerelay.local.template import Environment, Template, TemplateError, state_machine_definition

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# What a laptop run wants instead of the production defaults: gather a landing for 1 s, not 60.
LOCAL_PARAMETERS = {"ArrivalBatchingWindowSeconds": "1"}
NOT_EMULATED = {
    # Access control and packaging are not enforced locally; these resources are recorded, not created.
    "AWS::Lambda::Permission",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::LayerVersion",
    "AWS::IAM::ManagedPolicy",
    "AWS::SNS::Subscription",
}


@dataclass
class LogLine:
    at: float
    function: str
    request_id: str | None
    line: str


@dataclass
class CloudOptions:
    template: Path = TEMPLATE
    parameters: dict[str, str] = field(default_factory=dict)
    environment: Environment = field(default_factory=Environment)
    timing: GlueTiming = field(default_factory=GlueTiming)
    async_retry_delays: tuple[float, ...] = (1.0, 2.0)  # Lambda waits ~1 and ~2 minutes; tests cannot
    # CloudWatch evaluates alarms every minute; locally every second of clock time (and on clock.advance).
    alarm_evaluation_seconds: float = 1.0
    # Clock seconds per real second (see clock.Clock.rate): > 1 emulates long Glue runs and waits quickly.
    clock_rate: float = 1.0
    work_dir: Path | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "the local cloud runs this function from its CodeUri folder")
    return buffer.getvalue()


class LocalCloud:
    """Start with `with LocalCloud(options) as cloud:`; everything stops and moto resets on exit."""

    def __init__(self, options: CloudOptions | None = None) -> None:
        began = time.perf_counter()
        self.options = options or CloudOptions()
        env = self.options.environment
        self.env = env
        self.template = Template.load(
            self.options.template, env, {**LOCAL_PARAMETERS, **self.options.parameters}
        )
        # Seconds spent getting ready: loading the template, starting the services, deploying.
        self.timings: dict[str, float] = {"template": round(time.perf_counter() - began, 3)}
        self.work_dir = self.options.work_dir or Path(tempfile.mkdtemp(prefix="gluerelay-local-"))
        self.logs: list[LogLine] = []
        self.skipped: list[str] = []
        self.outputs: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.endpoint = ""
        self.clock = Clock(rate=self.options.clock_rate)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        began = time.perf_counter()
        saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "MOTO_PORT", "AWS_ENDPOINT_URL")}
        self._undo.append(functools.partial(_restore_all, saved))
        os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process clients go to the mock, not over HTTP
        os.environ["AWS_DEFAULT_REGION"] = self.env.region
        mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        mock.start()
        self._undo.append(mock.stop)
        self._undo.append(patches.install())
        self._undo.append(patches.use_clock(self.clock))
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        self._undo.append(server.stop)
        os.environ["MOTO_PORT"] = str(port)  # the ASL interpreter's clients when no mock is active
        self.endpoint = f"http://127.0.0.1:{port}"
        self.lambdas = LambdaRuntime(
            worker_base_env(self.endpoint, self.env.region), self._log, self.options.async_retry_delays
        )
        self._undo.append(self.lambdas.shutdown)
        self._undo.append(self.clock.stop)
        self.cloudwatch = LocalCloudWatch(
            self.client, self.clock, self.lambdas, self.env.region, self.env.account
        )
        self.bus = EventBus(
            self.env.region, self.env.account, self.lambdas, self.client, now=self.clock.datetime
        )
        self.bus.install()
        self._undo.append(self.bus.uninstall)
        self._install_lambda_hook()
        self.glue = LocalGlue(
            root=self.template.root,
            publish=self.bus.publish,
            job_env=functools.partial(endpoint_env, self.endpoint, self.env.region),
            s3=self.client("s3"),
            timing=self.options.timing,
            log_dir=self.work_dir / "glue-logs",
            clock=self.clock,
        )
        self.glue.install()
        self._undo.append(self.glue.uninstall)
        self.pollers = Pollers(self.lambdas, self.client)
        self._undo.append(self.pollers.stop)
        self.timings["services"] = round(time.perf_counter() - began, 3)
        began = time.perf_counter()
        self.deploy()
        self.timings["deploy"] = round(time.perf_counter() - began, 3)
        self.clock.every(
            "cloudwatch alarms",
            self.options.alarm_evaluation_seconds,
            self.cloudwatch.evaluate,
            catch_up=False,
        )

    def stop(self) -> None:
        while self._undo:
            with contextlib.suppress(Exception):  # stopping must go on; moto resets anyway
                self._undo.pop()()

    def client(self, service: str) -> Any:
        """An in-process boto3 client (goes straight to moto's backends)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.env.region)
            return self._clients[service]

    def _log(self, function: str, request_id: str | None, line: str) -> None:
        self.logs.append(LogLine(time.time(), function, request_id, line))
        self.cloudwatch.ingest_log(function, line)

    def _install_lambda_hook(self) -> None:
        original = lambda_models.LambdaBackend.invoke
        runtime = self.lambdas

        def invoke(  # noqa: PLR0917 - moto's signature
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            if runtime.spec_for(function_name) is None:
                return original(backend, function_name, qualifier, body, headers, response_headers)
            event = json.loads(body) if body else {}
            if headers.get("x-amz-invocation-type") == "Event":
                runtime.invoke_async(function_name, event)
                return b""
            result = runtime.invoke(function_name, event)
            if result.error is not None:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(result.error).encode()
            return json.dumps(result.payload).encode()

        lambda_models.LambdaBackend.invoke = invoke  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(lambda_models.LambdaBackend, "invoke", original))

    # ------------------------------------------------------------------ deploy

    def deploy(self) -> None:
        t = self.template
        order = [
            "AWS::IAM::Role",
            "AWS::S3::Bucket",
            "AWS::DynamoDB::Table",
            "AWS::SQS::Queue",
            "AWS::SNS::Topic",
            "AWS::Logs::LogGroup",
            "AWS::Glue::Database",
            "AWS::Glue::SecurityConfiguration",
            "AWS::Glue::Connection",
            "AWS::Glue::Job",
            "AWS::Glue::Crawler",
            "AWS::Lambda::Function",
            "AWS::StepFunctions::StateMachine",
            "AWS::Lambda::EventSourceMapping",
            "AWS::Events::Rule",
            "AWS::CloudWatch::Alarm",
            "AWS::CloudWatch::Dashboard",
        ]
        active = t.active()
        for name, res in active.items():
            if res["Type"] not in order:
                if res["Type"] in NOT_EMULATED:
                    self.skipped.append(f"{name} ({res['Type']})")
                    continue
                if res["Type"] == "AWS::Lambda::EventInvokeConfig":
                    continue  # applied with its function (retries, OnFailure destination)
                raise TemplateError(f"{name}: the local cloud cannot create a {res['Type']}")
        for kind in order:
            # Dead-letter queues before the queues that redrive to them.
            names = sorted(t.of_type(kind), key=lambda n: "RedrivePolicy" in active[n].get("Properties", {}))
            for name in names:
                creator = getattr(self, "_create_" + kind.split("::", 1)[1].replace("::", "_").lower())
                try:
                    creator(name, t.properties(name))
                except TemplateError:
                    raise
                except Exception as e:
                    raise TemplateError(f"{name} ({kind}) could not be created locally: {e}") from e
        for key, output in t.outputs.items():
            if "Condition" in output and not t.conditions[output["Condition"]]:
                continue
            self.outputs[key] = str(t.resolve(output["Value"]))
        self._register_stack()

    def _register_stack(self) -> None:
        """A CloudFormation stack named like the deployed one, holding the template's outputs: operator
        commands (`gluerelay runs … --stack NAME`) read a local cloud's resources exactly as a real
        stack's, with DescribeStacks."""
        body = {
            "Description": "gluerelay local cloud: the outputs of template.yaml as deployed locally",
            "Resources": {"LocalCloud": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in self.outputs.items()},
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto: WaitConditionHandle is not modelled (it needs nothing)
            self.client("cloudformation").create_stack(
                StackName=self.env.stack, TemplateBody=json.dumps(body)
            )

    def _create_iam_role(self, name: str, p: dict[str, Any]) -> None:
        role = self.template.physical_name(name)
        iam = self.client("iam")
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]))
        for policy in p.get("Policies", []):
            # SAM's generated policies (destinations, policy templates) leave Version out; IAM defaults it.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=role, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )

    def _create_s3_bucket(self, name: str, p: dict[str, Any]) -> None:
        bucket = self.template.physical_name(name)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        if "EventBridgeConfiguration" in p.get("NotificationConfiguration", {}):
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        if "BucketEncryption" in p:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [
                {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                for r in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                if "ServerSideEncryptionByDefault" in r
            ]
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})

    def _create_dynamodb_table(self, name: str, p: dict[str, Any]) -> None:
        table = self.template.physical_name(name)
        keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(TableName=table, **{k: p[k] for k in keys if k in p})
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") in (True, "true"):
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _create_sqs_queue(self, name: str, p: dict[str, Any]) -> None:
        attributes = {
            k: json.dumps(v) if isinstance(v, dict) else str(v)
            for k, v in p.items()
            if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds")
        }
        queue = self.template.physical_name(name)
        url = self.client("sqs").create_queue(QueueName=queue, Attributes=attributes)["QueueUrl"]
        self.cloudwatch.queues[queue] = url

    def _create_sns_topic(self, name: str, p: dict[str, Any]) -> None:
        self.client("sns").create_topic(Name=self.template.physical_name(name))

    def _create_logs_loggroup(self, name: str, p: dict[str, Any]) -> None:
        group = self.template.physical_name(name)
        self.client("logs").create_log_group(logGroupName=group)
        if "RetentionInDays" in p:
            self.client("logs").put_retention_policy(
                logGroupName=group, retentionInDays=int(p["RetentionInDays"])
            )

    def _create_glue_database(self, name: str, p: dict[str, Any]) -> None:
        self.client("glue").create_database(DatabaseInput=p["DatabaseInput"])

    def _create_glue_securityconfiguration(self, name: str, p: dict[str, Any]) -> None:
        configuration = dict(p["EncryptionConfiguration"])
        if "S3Encryptions" in configuration:  # CloudFormation's list is the API's S3Encryption
            configuration["S3Encryption"] = configuration.pop("S3Encryptions")
        self.client("glue").create_security_configuration(
            Name=self.template.physical_name(name), EncryptionConfiguration=configuration
        )

    def _create_glue_connection(self, name: str, p: dict[str, Any]) -> None:
        self.client("glue").create_connection(ConnectionInput=p["ConnectionInput"])

    def _create_glue_job(self, name: str, p: dict[str, Any]) -> None:
        given: dict[str, Any] = {
            k: p[k]
            for k in (
                "Description",
                "Command",
                "DefaultArguments",
                "GlueVersion",
                "WorkerType",
                "ExecutionProperty",
                "NotificationProperty",
                "Connections",
                "SecurityConfiguration",
            )
            if k in p
        }
        for key in ("NumberOfWorkers", "Timeout"):
            if key in p:
                given[key] = int(p[key])
        if "ExecutionProperty" in given:
            given["ExecutionProperty"] = {
                "MaxConcurrentRuns": int(given["ExecutionProperty"]["MaxConcurrentRuns"])
            }
        if "NotificationProperty" in given:
            delay = int(given["NotificationProperty"]["NotifyDelayAfter"])
            given["NotificationProperty"] = {"NotifyDelayAfter": delay}
        self.client("glue").create_job(Name=self.template.physical_name(name), Role=p["Role"], **given)

    def _create_glue_crawler(self, name: str, p: dict[str, Any]) -> None:
        keys = (
            "Description",
            "DatabaseName",
            "Targets",
            "TablePrefix",
            "SchemaChangePolicy",
            "RecrawlPolicy",
            "Configuration",
            "CrawlerSecurityConfiguration",
        )
        given = {k: p[k] for k in keys if k in p}
        if "Schedule" in p:
            given["Schedule"] = p["Schedule"]["ScheduleExpression"]
        self.client("glue").create_crawler(Name=self.template.physical_name(name), Role=p["Role"], **given)

    def _create_lambda_function(self, name: str, p: dict[str, Any]) -> None:
        function = self.template.physical_name(name)
        invoke_config = next(
            (
                self.template.properties(n)
                for n, r in self.template.of_type("AWS::Lambda::EventInvokeConfig").items()
                if r["Properties"].get("FunctionName", {}).get("Ref") == name
            ),
            {},
        )
        destination = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        self.add_function(
            function,
            p["Handler"],
            self.template.local_path(p["Code"]["S3Key"]),
            role_arn=p["Role"],
            runtime=p.get("Runtime", "python3.11"),
            timeout_seconds=int(p.get("Timeout", 3)),
            memory_mb=int(p.get("MemorySize", 128)),
            environment={k: str(v) for k, v in p.get("Environment", {}).get("Variables", {}).items()},
            max_async_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
            on_failure=self._failure_destination(function, destination) if destination else None,
        )

    def add_function(
        self,
        function: str,
        handler: str,
        code_dir: Path,
        *,
        role_arn: str,
        runtime: str = "python3.11",
        timeout_seconds: int = 3,
        memory_mb: int = 128,
        environment: dict[str, str] | None = None,
        max_async_retries: int = 2,
        on_failure: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    ) -> str:
        """A Lambda function: created in moto, run by the local Lambda runtime from `code_dir`. The
        template's functions come here, and so can others (the benchmarks' baseline). Returns its ARN."""
        arn: str = self.client("lambda").create_function(
            FunctionName=function,
            Runtime=runtime,
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _placeholder_zip()},
            Timeout=timeout_seconds,
            MemorySize=memory_mb,
            Environment={"Variables": environment or {}},
        )["FunctionArn"]
        self.lambdas.register(
            FunctionSpec(
                name=function,
                arn=arn,
                handler=handler,
                code_dir=code_dir,
                environment=environment or {},
                timeout_seconds=float(timeout_seconds),
                memory_mb=memory_mb,
                max_async_retries=max_async_retries,
                on_failure=on_failure,
            )
        )
        return arn

    def _failure_destination(
        self, function: str, arn: str
    ) -> Callable[[dict[str, Any], dict[str, Any]], None]:
        """Lambda's OnFailure record, sent to an SQS destination once an async event's retries are spent."""

        def send(event: dict[str, Any], error: dict[str, Any]) -> None:
            record = {
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat(),
                "requestContext": {
                    "functionArn": f"arn:aws:lambda:{self.env.region}:{self.env.account}:function:{function}",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": 1 + self.lambdas.specs[function].max_async_retries,
                },
                "requestPayload": event,
                "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
                "responsePayload": error,
            }
            self.client("sqs").send_message(QueueUrl=queue_url(arn), MessageBody=json.dumps(record))

        return send

    def _create_stepfunctions_statemachine(self, name: str, p: dict[str, Any]) -> None:
        machine = self.client("stepfunctions").create_state_machine(
            name=self.template.physical_name(name),
            definition=state_machine_definition(self.template, name),
            roleArn=p["RoleArn"],
            type=p.get("StateMachineType", "STANDARD"),
        )
        self.cloudwatch.state_machines.append(machine["stateMachineArn"])

    def _create_lambda_eventsourcemapping(self, name: str, p: dict[str, Any]) -> None:
        arn = str(p["EventSourceArn"])
        if arn.split(":")[2] != "sqs":
            raise TemplateError(f"event source {arn}: the local cloud maps SQS queues only")
        self.pollers.start_mapping(
            QueueMapping(
                function=str(p["FunctionName"]),
                queue_url=queue_url(arn),
                batch_size=int(p.get("BatchSize", 10)),
                window_seconds=float(p.get("MaximumBatchingWindowInSeconds", 0)),
                report_item_failures="ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
                queue_arn=arn,
            )
        )

    def _create_events_rule(self, name: str, p: dict[str, Any]) -> None:
        rule = self.template.physical_name(name)
        events = self.client("events")
        kwargs: dict[str, Any] = {"Name": rule, "State": p.get("State", "ENABLED")}
        if "EventPattern" in p:
            kwargs["EventPattern"] = json.dumps(p["EventPattern"])
        if "ScheduleExpression" in p:
            kwargs["ScheduleExpression"] = p["ScheduleExpression"]
        events.put_rule(**kwargs)
        targets = []
        for target in p.get("Targets", []):
            given = {
                k: target[k] for k in ("Id", "Arn", "Input", "InputPath", "DeadLetterConfig") if k in target
            }
            if "RetryPolicy" in target:
                given["RetryPolicy"] = {k: int(v) for k, v in target["RetryPolicy"].items()}
            targets.append(given)
        if targets:
            events.put_targets(Rule=rule, Targets=targets)
        if "ScheduleExpression" in p:
            model = events_models.events_backends[self.env.account][self.env.region].event_buses["default"]
            period = schedule_period(p["ScheduleExpression"])
            tick = functools.partial(self.bus.fire_schedule, model.rules[rule])
            self.clock.every(f"schedule {rule}", period, tick, catch_up=True)

    def _create_cloudwatch_alarm(self, name: str, p: dict[str, Any]) -> None:
        given = {k: v for k, v in p.items() if k != "AlarmName"}
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in given:
                given[key] = int(given[key])
        if "Threshold" in given:
            given["Threshold"] = float(given["Threshold"])
        for metric in given.get("Metrics", []):
            stat = metric.get("MetricStat")
            if stat:
                stat["Period"] = int(stat["Period"])
        try:
            check_alarm(given)
        except ValueError as e:
            raise TemplateError(f"{name}: {e}") from e
        alarm = self.template.physical_name(name)
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(AlarmName=alarm, **given)
        # CloudWatch starts an alarm in INSUFFICIENT_DATA until its first evaluation.
        cloudwatch.set_alarm_state(
            AlarmName=alarm, StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation"
        )

    def _create_cloudwatch_dashboard(self, name: str, p: dict[str, Any]) -> None:
        self.client("cloudwatch").put_dashboard(
            DashboardName=self.template.physical_name(name), DashboardBody=p["DashboardBody"]
        )

    # ------------------------------------------------------------------ using it

    def output(self, key: str) -> str:
        return self.outputs[key]

    def execution_arn(self, run_id: str) -> str:
        """The pipeline execution of a run (runs are executions named by their run id)."""
        return self.output("StateMachineArn").replace(":stateMachine:", ":execution:") + f":{run_id}"

    def download_bucket(self, folder: Path) -> int:
        """Copy the data bucket's objects into `folder` (keys become relative paths)."""
        s3 = self.client("s3")
        bucket = self.output("DataBucketName")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                target = folder / obj["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                count += 1
        return count

    def wait_for_execution(self, arn: str, timeout: float = 300) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.05)
        raise TimeoutError(f"execution {arn} still RUNNING after {timeout:.0f} s")

    def executions(self) -> Iterator[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        machine = self.output("StateMachineArn")
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
            yield from page["executions"]

    def wait_for_new_executions(
        self, count: int, known: set[str], timeout: float = 120
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [e for e in self.executions() if e["executionArn"] not in known]
            if len(new) >= count:
                return new
            time.sleep(0.05)
        raise TimeoutError(f"{count} execution(s) did not start within {timeout:.0f} s")


def _restore_all(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
