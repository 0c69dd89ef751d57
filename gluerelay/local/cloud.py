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
from typing import TYPE_CHECKING, Any

import boto3
from moto import mock_aws
from moto.awslambda import models as lambda_models
from moto.events import models as events_models
from moto.server import ThreadedMotoServer
from relay.contract import pipeline_of_run, pipeline_of_state_machine

from gluerelay.local import patches
from gluerelay.local.clock import Clock
from gluerelay.local.cloudwatch import LocalCloudWatch, check_alarm
from gluerelay.local.events import (
    EventBus,
    Pollers,
    QueueMapping,
    queue_url,
    schedule_period,
    sqs_mapping_problem,
)
from gluerelay.local.glue import GlueTiming, LocalGlue
from gluerelay.local.journal import Journal
from gluerelay.local.kms import log_group_refuses
from gluerelay.local.lambdas import (
    ASYNC_RETRY_DELAYS_SECONDS,
    FunctionSpec,
    LambdaRuntime,
    endpoint_env,
    worker_base_env,
)
from gluerelay.local.logs import LogDelivery
from gluerelay.local.quality import LocalDataQuality
from gluerelay.local.states import ExecutionEvents
from gluerelay.local.template import Environment, Template, TemplateError, state_machine_definition

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
if TYPE_CHECKING:
    from gluerelay.operate import Target
    from gluerelay.pipelines.project import Project
# The Glue job and crawler another team's stack owns, which the orders example runs as external steps.
ERP_STACK = ROOT / "examples" / "erp-stack" / "template.yaml"
# What a laptop run wants instead of the production defaults: gather a landing for 1 s, not 60.
LOCAL_PARAMETERS = {"ArrivalBatchingWindowSeconds": "1"}
GLUE_TYPES = {"AWS::Glue::Job": "job", "AWS::Glue::Crawler": "crawler"}
NOT_EMULATED = {
    # Access control and packaging are not enforced locally; these resources are recorded, not created.
    "AWS::Lambda::Permission",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::LayerVersion",
    "AWS::IAM::ManagedPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
}


@dataclass
class LogLine:
    at: float
    function: str
    request_id: str | None
    line: str


@dataclass(frozen=True)
class ExternalStack:
    """Another stack deployed beside gluerelay's (after it: it may take gluerelay's outputs as parameters).
    Its Glue jobs and crawlers become gluerelay's ExternalGlueArns."""

    template: Path
    name: str
    # Its parameters, each the value of one of gluerelay's outputs: parameter -> output key.
    from_outputs: dict[str, str] = field(default_factory=dict)


ERP = ExternalStack(ERP_STACK, "erp-orders", {"DataBucket": "DataBucketName"})


@dataclass
class CloudOptions:
    template: Path = TEMPLATE
    parameters: dict[str, str] = field(default_factory=dict)
    external_stacks: tuple[ExternalStack, ...] = (ERP,)
    environment: Environment = field(default_factory=Environment)
    timing: GlueTiming = field(default_factory=GlueTiming)
    async_retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS_SECONDS  # on the clock: tests advance it
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
        self.externals = {
            stack.name: Template.load(
                stack.template,
                Environment(env.region, env.account, stack.name, env.partition),
                {name: "placeholder" for name in stack.from_outputs},
            )
            for stack in self.options.external_stacks
        }
        external_arns = ",".join(
            f"arn:{env.partition}:glue:{env.region}:{env.account}:{GLUE_TYPES[res['Type']]}/{t.physical_name(n)}"
            for t in self.externals.values()
            for n, res in t.of_type(*GLUE_TYPES).items()
        )
        parameters = {**LOCAL_PARAMETERS, "ExternalGlueArns": external_arns, **self.options.parameters}
        self.template = Template.load(self.options.template, env, parameters)
        # Seconds spent getting ready: loading the template, starting the services, deploying.
        self.timings: dict[str, float] = {"template": round(time.perf_counter() - began, 3)}
        self.work_dir = self.options.work_dir or Path(tempfile.mkdtemp(prefix="gluerelay-local-"))
        self.logs: Journal[LogLine] = Journal()
        self.skipped: list[str] = []
        self.outputs: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.endpoint = ""
        self.clock = Clock(rate=self.options.clock_rate)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalCloud:
        try:
            self.start()
        except BaseException:
            self.stop()  # a deploy that fails half way must not leave moto mocked for whatever runs next
            raise
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
        self.log_delivery = LogDelivery(self.client)
        self.log_delivery.start()
        self._undo.append(self.log_delivery.stop)
        self.lambdas = LambdaRuntime(
            worker_base_env(self.endpoint, self.env.region),
            self._log,
            self.clock,
            self.options.async_retry_delays,
        )
        self._undo.append(self.lambdas.shutdown)
        self._install_lambda_hook()  # undone just before the runtime stops, after the services that invoke it
        self._undo.append(self.clock.stop)
        self.cloudwatch = LocalCloudWatch(
            self.client, self.clock, self.lambdas, self.env.region, self.env.account
        )
        self._undo.append(self.cloudwatch.install_history())
        self.bus = EventBus(self.env.region, self.env.account, self.lambdas, self.client, clock=self.clock)
        self.bus.install()
        self._undo.append(self.bus.uninstall)
        self.execution_events = ExecutionEvents(self.bus.publish)
        self.execution_events.install()
        self._undo.append(self.execution_events.uninstall)
        self.glue = LocalGlue(
            root=self.template.root,
            publish=self.bus.publish,
            job_env=functools.partial(endpoint_env, self.endpoint, self.env.region),
            s3=self.client("s3"),
            timing=self.options.timing,
            log_dir=self.work_dir / "glue-logs",
            logs=self.log_delivery,
            clock=self.clock,
        )
        self.glue.install()
        self._undo.append(self.glue.uninstall)
        self.quality = LocalDataQuality(
            publish=self.bus.publish,
            s3=self.client("s3"),
            glue=self.client("glue"),
            account=self.env.account,
            clock=self.clock,
        )
        self.quality.install()
        self._undo.append(self.quality.uninstall)
        self.pollers = Pollers(self.lambdas, self.client, self.clock)
        self._undo.append(self.pollers.stop)
        self.timings["services"] = round(time.perf_counter() - began, 3)
        began = time.perf_counter()
        self.deploy()
        self.timings["deploy"] = round(time.perf_counter() - began, 3)
        self.clock.every(
            "cloudwatch alarms",
            self.options.alarm_evaluation_seconds,
            lambda _tick: self.cloudwatch.evaluate(),
            catch_up=False,
        )

    def stop(self) -> None:
        # Executions still running would go on invoking functions while the services stop under them.
        with contextlib.suppress(Exception):
            self._stop_executions()
        while self._undo:
            with contextlib.suppress(Exception):  # stopping must go on; moto resets anyway
                self._undo.pop()()

    def _stop_executions(self) -> None:
        if not self.outputs:
            return
        self.execution_events.uninstall()  # nothing is left to hear about them
        sfn = self.client("stepfunctions")
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                sfn.stop_execution(
                    executionArn=execution["executionArn"], cause="the local cloud is stopping"
                )

    def client(self, service: str) -> Any:
        """An in-process boto3 client (goes straight to moto's backends)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.env.region)
            return self._clients[service]

    def _log(self, function: str, request_id: str | None, line: str, stream: str) -> None:
        self.logs.append(LogLine(time.time(), function, request_id, line))
        self.log_delivery.put(f"/aws/lambda/{function}", stream, line)
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
        """gluerelay's template, then the external stacks beside it (with gluerelay's outputs)."""
        self.outputs = self._deploy(self.template)
        self._register_stack(self.env.stack, self.outputs)
        for stack in self.options.external_stacks:
            given = {parameter: self.outputs[output] for parameter, output in stack.from_outputs.items()}
            external = Template.load(stack.template, self.externals[stack.name].env, given)
            self.externals[stack.name] = external
            self._register_stack(stack.name, self._deploy(external))

    def _deploy(self, t: Template) -> dict[str, str]:
        """Every resource of `t`, in dependency order; its outputs."""
        creators: dict[str, Callable[[Template, str, dict[str, Any]], None]] = {
            "AWS::KMS::Key": self._create_kms_key,  # first: its Ref is the id KMS gives it
            "AWS::IAM::Role": self._create_iam_role,
            "AWS::S3::Bucket": self._create_s3_bucket,
            "AWS::DynamoDB::Table": self._create_dynamodb_table,
            "AWS::SQS::Queue": self._create_sqs_queue,
            "AWS::SNS::Topic": self._create_sns_topic,
            "AWS::Logs::LogGroup": self._create_log_group,
            "AWS::Glue::Database": self._create_glue_database,
            "AWS::Glue::SecurityConfiguration": self._create_glue_security_configuration,
            "AWS::Glue::Connection": self._create_glue_connection,
            "AWS::Glue::Job": self._create_glue_job,
            "AWS::Glue::Crawler": self._create_glue_crawler,
            "AWS::Lambda::Function": self._create_lambda_function,
            "AWS::StepFunctions::StateMachine": self._create_state_machine,
            "AWS::Lambda::EventSourceMapping": self._create_event_source_mapping,
            "AWS::Events::Rule": self._create_events_rule,
            "AWS::CloudWatch::Alarm": self._create_alarm,
            "AWS::CloudWatch::Dashboard": self._create_dashboard,
        }
        active = t.active()
        for name, res in active.items():
            if res["Type"] in creators or res["Type"] == "AWS::Lambda::EventInvokeConfig":
                continue  # an EventInvokeConfig is applied with its function (retries, OnFailure destination)
            if res["Type"] not in NOT_EMULATED:
                raise TemplateError(f"{name}: the local cloud cannot create a {res['Type']}")
            self.skipped.append(f"{name} ({res['Type']})")
        for kind, creator in creators.items():
            # Dead-letter queues before the queues that redrive to them.
            names = sorted(t.of_type(kind), key=lambda n: "RedrivePolicy" in active[n].get("Properties", {}))
            for name in names:
                try:
                    creator(t, name, t.properties(name))
                except TemplateError:
                    raise
                except Exception as e:
                    raise TemplateError(f"{name} ({kind}) could not be created locally: {e}") from e
        outputs = {}
        for key, output in t.outputs.items():
            if "Condition" in output and not t.conditions[output["Condition"]]:
                continue
            outputs[key] = str(t.resolve(output["Value"]))
        return outputs

    def _register_stack(self, stack: str, outputs: dict[str, str]) -> None:
        """A CloudFormation stack named like the deployed one, holding the template's outputs: operator
        commands (`gluerelay runs … --stack NAME`) read a local cloud's resources exactly as a real
        stack's, with DescribeStacks."""
        body = {
            "Description": "gluerelay local cloud: the outputs of a template as deployed locally",
            "Resources": {"LocalCloud": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto: WaitConditionHandle is not modelled (it needs nothing)
            self.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(body))

    def _create_iam_role(self, t: Template, name: str, p: dict[str, Any]) -> None:
        role = t.physical_name(name)
        iam = self.client("iam")
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]))
        for policy in p.get("Policies", []):
            # SAM's generated policies (destinations, policy templates) leave Version out; IAM defaults it.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=role, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )

    def _create_s3_bucket(self, t: Template, name: str, p: dict[str, Any]) -> None:
        bucket = t.physical_name(name)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        if "EventBridgeConfiguration" in p.get("NotificationConfiguration", {}):
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        versioning = p.get("VersioningConfiguration", {}).get("Status")
        if versioning:  # an overwritten object keeps its earlier versions, each with its own event
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
        if "BucketEncryption" in p:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [
                {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                for r in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                if "ServerSideEncryptionByDefault" in r
            ]
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})

    def _create_dynamodb_table(self, t: Template, name: str, p: dict[str, Any]) -> None:
        table = t.physical_name(name)
        keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(TableName=table, **{k: p[k] for k in keys if k in p})
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") in (True, "true"):
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _create_sqs_queue(self, t: Template, name: str, p: dict[str, Any]) -> None:
        attributes = {
            k: json.dumps(v) if isinstance(v, dict) else str(v)
            for k, v in p.items()
            if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds")
        }
        queue = t.physical_name(name)
        url = self.client("sqs").create_queue(QueueName=queue, Attributes=attributes)["QueueUrl"]
        self.cloudwatch.queues[queue] = url

    def _create_kms_key(self, t: Template, name: str, p: dict[str, Any]) -> None:
        kms = self.client("kms")
        key = kms.create_key(
            Description=str(p.get("Description", "")),
            Policy=json.dumps(p["KeyPolicy"]),
            KeyUsage=str(p.get("KeyUsage", "ENCRYPT_DECRYPT")),
            KeySpec=str(p.get("KeySpec", "SYMMETRIC_DEFAULT")),
        )["KeyMetadata"]
        if p.get("EnableKeyRotation") in (True, "true"):
            kms.enable_key_rotation(KeyId=key["KeyId"])
        t.bind(name, key["KeyId"])

    def _create_sns_topic(self, t: Template, name: str, p: dict[str, Any]) -> None:
        attributes = {"KmsMasterKeyId": str(p["KmsMasterKeyId"])} if "KmsMasterKeyId" in p else {}
        self.client("sns").create_topic(Name=t.physical_name(name), Attributes=attributes)

    def _create_log_group(self, t: Template, name: str, p: dict[str, Any]) -> None:
        group = t.physical_name(name)
        key = str(p["KmsKeyId"]) if p.get("KmsKeyId") else None
        if key is not None:
            e = self.env
            arn = f"arn:{e.partition}:logs:{e.region}:{e.account}:log-group:{group}"
            refused = log_group_refuses(self.client, key, arn, e.region)
            if refused:
                raise TemplateError(f"{name}: CloudWatch Logs cannot encrypt log group {group}: {refused}")
        self.client("logs").create_log_group(logGroupName=group, **({"kmsKeyId": key} if key else {}))
        if "RetentionInDays" in p:
            self.client("logs").put_retention_policy(
                logGroupName=group, retentionInDays=int(p["RetentionInDays"])
            )

    def _create_glue_database(self, t: Template, name: str, p: dict[str, Any]) -> None:
        self.client("glue").create_database(DatabaseInput=p["DatabaseInput"])

    def _create_glue_security_configuration(self, t: Template, name: str, p: dict[str, Any]) -> None:
        configuration = dict(p["EncryptionConfiguration"])
        if "S3Encryptions" in configuration:  # CloudFormation's list is the API's S3Encryption
            configuration["S3Encryption"] = configuration.pop("S3Encryptions")
        self.client("glue").create_security_configuration(
            Name=t.physical_name(name), EncryptionConfiguration=configuration
        )

    def _create_glue_connection(self, t: Template, name: str, p: dict[str, Any]) -> None:
        self.client("glue").create_connection(ConnectionInput=p["ConnectionInput"])

    def _create_glue_job(self, t: Template, name: str, p: dict[str, Any]) -> None:
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
        for key in ("NumberOfWorkers", "Timeout", "MaxRetries"):
            if key in p:
                given[key] = int(p[key])
        if "ExecutionProperty" in given:
            given["ExecutionProperty"] = {
                "MaxConcurrentRuns": int(given["ExecutionProperty"]["MaxConcurrentRuns"])
            }
        if "NotificationProperty" in given:
            delay = int(given["NotificationProperty"]["NotifyDelayAfter"])
            given["NotificationProperty"] = {"NotifyDelayAfter": delay}
        script = Path(str(given["Command"]["ScriptLocation"]))
        if not script.is_absolute():  # `sam deploy` uploads it from beside its template
            given["Command"] = {**given["Command"], "ScriptLocation": str(t.root / script)}
        self.client("glue").create_job(Name=t.physical_name(name), Role=p["Role"], **given)

    def _create_glue_crawler(self, t: Template, name: str, p: dict[str, Any]) -> None:
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
        self.client("glue").create_crawler(Name=t.physical_name(name), Role=p["Role"], **given)

    def _create_lambda_function(self, t: Template, name: str, p: dict[str, Any]) -> None:
        function = t.physical_name(name)
        invoke_config = next(
            (
                t.properties(n)
                for n, r in t.of_type("AWS::Lambda::EventInvokeConfig").items()
                if r["Properties"].get("FunctionName", {}).get("Ref") == name
            ),
            {},
        )
        destination = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        self.add_function(
            function,
            p["Handler"],
            t.local_path(p["Code"]["S3Key"]),
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

    def _create_state_machine(self, t: Template, name: str, p: dict[str, Any]) -> None:
        machine = self.client("stepfunctions").create_state_machine(
            name=t.physical_name(name),
            definition=state_machine_definition(t, name),
            roleArn=p["RoleArn"],
            type=p.get("StateMachineType", "STANDARD"),
        )
        self.cloudwatch.state_machines.append(machine["stateMachineArn"])

    def _create_event_source_mapping(self, t: Template, name: str, p: dict[str, Any]) -> None:
        arn = str(p["EventSourceArn"])
        if arn.split(":")[2] != "sqs":
            raise TemplateError(f"event source {arn}: the local cloud maps SQS queues only")
        batch_size = int(p.get("BatchSize", 10))
        window = float(p.get("MaximumBatchingWindowInSeconds", 0))
        problem = sqs_mapping_problem(batch_size, window)
        if problem:
            raise TemplateError(f"{name}: {problem}")
        self.pollers.start_mapping(
            QueueMapping(
                function=str(p["FunctionName"]),
                queue_url=queue_url(arn),
                batch_size=batch_size,
                window_seconds=window,
                report_item_failures="ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
                queue_arn=arn,
            )
        )

    def _create_events_rule(self, t: Template, name: str, p: dict[str, Any]) -> None:
        rule = t.physical_name(name)
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

    def _create_alarm(self, t: Template, name: str, p: dict[str, Any]) -> None:
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
        alarm = t.physical_name(name)
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(AlarmName=alarm, **given)
        # CloudWatch starts an alarm in INSUFFICIENT_DATA until its first evaluation.
        cloudwatch.set_alarm_state(
            AlarmName=alarm, StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation"
        )

    def _create_dashboard(self, t: Template, name: str, p: dict[str, Any]) -> None:
        self.client("cloudwatch").put_dashboard(
            DashboardName=t.physical_name(name), DashboardBody=p["DashboardBody"]
        )

    # ------------------------------------------------------------------ using it

    def output(self, key: str) -> str:
        return self.outputs[key]

    def target(self) -> Target:
        """The stack as the operator commands reach it, through the local cloud's endpoint."""
        from gluerelay.operate import Target

        return Target(self.env.stack, self.env.region, endpoint_url=self.endpoint)

    @functools.cached_property
    def project(self) -> Project:
        """The project the template belongs to: its pipeline files (their parameters, prefixes, samples)."""
        from gluerelay.pipelines.project import Project

        return Project(self.options.template.resolve().parent)

    @property
    def pipelines(self) -> list[str]:
        """The pipelines deployed: the template's state machines named <stack>_<pipeline>."""
        found = []
        for name in self.template.of_type("AWS::StepFunctions::StateMachine"):
            pipeline = pipeline_of_state_machine(self.env.stack, self.template.physical_name(name))
            if pipeline is not None:
                found.append(pipeline)
        return sorted(found)

    def state_machine_arn(self, pipeline: str) -> str:
        return self.output("StateMachineArnPrefix") + pipeline

    def execution_arn(self, run_id: str) -> str:
        """The run's first execution (executions are named by their run id; a resumed run adds others)."""
        machine = self.state_machine_arn(pipeline_of_run(run_id))
        return machine.replace(":stateMachine:", ":execution:") + f":{run_id}"

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
        """The execution once it has ended (it may not have started yet: on_arrival writes a run's
        manifest just before it starts the run)."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                execution = {"status": "NOT STARTED"}
            if execution["status"] not in {"RUNNING", "NOT STARTED"}:
                return execution
            time.sleep(0.05)
        raise TimeoutError(f"execution {arn} still {execution['status']} after {timeout:.0f} s")

    def executions(self, pipeline: str | None = None) -> Iterator[dict[str, Any]]:
        """The executions of one pipeline, or of all."""
        sfn = self.client("stepfunctions")
        for name in [pipeline] if pipeline else self.pipelines:
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn(name)
            )
            for page in pages:
                yield from page["executions"]

    def wait_for_new_executions(
        self, count: int, known: set[str], timeout: float = 120, pipeline: str | None = None
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [e for e in self.executions(pipeline) if e["executionArn"] not in known]
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
