"""What an operator does to a deployed pipeline, on AWS or on a local cloud: the same boto3 calls, only the
endpoint differs.

A `Target` names the stack; its resources (control table, state machine) come from the stack's outputs
through DescribeStacks, on AWS as on the local cloud (which registers its stack the same way). Every
failure an operator can meet is an `OperatorError` whose message says how to fix it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from pydantic import ValidationError
from relay.adapters.aws import DataBucketService, GlueService, StepFunctionsService
from relay.adapters.dynamodb import ControlTable
from relay.contract import (
    LANDING_PREFIX,
    RUN_ID_ARG,
    STEP_SK_PREFIX,
    ExecutionInput,
    LandedObject,
    Manifest,
    RunRecord,
    RunStatus,
    Trigger,
    backfill_key,
    manifest_key,
    manual_run_id,
    pipeline_of_state_machine,
    resolve_params,
    resume_execution_name,
    run_key,
    run_pk,
    run_sort,
    s3_uri,
)
from relay.logic import reruns
from relay.logic.reruns import Rerun
from relay.observability import logger
from relay.ports import ControlPlane

from gluerelay.pipelines.model import Pipeline
from gluerelay.records import (
    StepReport,
    TransitionReport,
    plain,
    seconds_between,
    state_transitions,
    step_report,
    transitions,
    utc_text,
)
from gluerelay.runindex import INGEST_DATE_LEAD, QueryError, RunQuery, all_runs, query_runs

RESUMABLE = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABORTED)
# An operator waits at a terminal: a few quick retries, then say what is wrong.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})


class OperatorError(Exception):
    """Something an operator asked cannot be done; the message names the problem and the fix."""


@dataclass
class Target:
    """A deployed gluerelay stack: on AWS (region, profile) or a local cloud (endpoint_url)."""

    stack: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _outputs: dict[str, str] | None = field(default=None, repr=False)
    _session: Any = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def where(self) -> str:
        return self.endpoint_url or f"region {self.region or self._region()}"

    def _region(self) -> str:
        return str(self._boto_session().region_name or "")

    def _boto_session(self) -> Any:
        if self._session is None:
            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound as e:
                raise OperatorError(f"{e}: name a profile from ~/.aws/config with --profile") from e
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = self._boto_session().client(
                    service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
                )
            except NoRegionError as e:
                raise OperatorError("no AWS region: pass --region or set AWS_REGION") from e
        return self._clients[service]

    def table(self) -> Any:
        """The control table as a boto3 Table (plain values in and out)."""
        session = self._boto_session()
        resource = session.resource("dynamodb", endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)
        return resource.Table(self.output("ControlTableName"))

    def control_plane(self) -> ControlPlane:
        """The functions' own adapters over this target's clients: an operator command that changes runs
        (a rerun) takes the same decisions, through the same conditional writes, as the functions."""
        store = ControlTable(self.table())
        return ControlPlane(
            steps=store,
            runs=store,
            leases=store,
            glue=GlueService(self.client("glue")),
            workflow=StepFunctionsService(self.client("stepfunctions"), self.output("StateMachineArnPrefix")),
            bucket=DataBucketService(self.client("s3"), self.output("DataBucketName")),
            ledger=store,
        )

    def caller(self) -> str:
        """Who is asking: the credentials' IAM principal (STS GetCallerIdentity)."""
        return str(self.call(lambda: self.client("sts").get_caller_identity())["Arn"])

    def outputs(self) -> dict[str, str]:
        """The stack's outputs (ControlTableName, StateMachineArn, ...)."""
        if self._outputs is None:
            stacks = self.call(
                lambda: self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"],
                missing=f"stack {self.stack} not found in {self.where()}: deploy it (sam deploy) "
                "or name the deployed one with --stack",
            )
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return self._outputs

    def output(self, key: str) -> str:
        outputs = self.outputs()
        if key not in outputs:
            raise OperatorError(f"stack {self.stack} has no output {key}: is it a gluerelay stack?")
        return outputs[key]

    def state_machine_arn(self, pipeline: str) -> str:
        return self.output("StateMachineArnPrefix") + pipeline

    def pipelines(self) -> list[str]:
        """The stack's pipelines: its state machines named <stack>_<pipeline> (ListStateMachines)."""
        prefix = self.output("StateMachineArnPrefix")
        sfn = self.client("stepfunctions")
        pages = self.call(lambda: list(sfn.get_paginator("list_state_machines").paginate()))
        return sorted(
            name
            for page in pages
            for machine in page["stateMachines"]
            if machine["stateMachineArn"].startswith(prefix)
            and (name := pipeline_of_state_machine(self.stack, machine["name"])) is not None
        )

    def pipeline_names(self, pipeline: str | None) -> list[str]:
        """`pipeline` checked against the stack's, or all of them."""
        found = self.pipelines()
        if pipeline is None:
            return found
        if pipeline not in found:
            raise OperatorError(
                f"stack {self.stack} has no pipeline {pipeline} (pipelines: {', '.join(found) or 'none'})"
            )
        return [pipeline]

    def call(self, request: Any, *, missing: str | None = None, conflict: str | None = None) -> Any:
        """Run one AWS request, turning what an operator can fix into an OperatorError: `missing` is the
        message for a resource that does not exist, `conflict` for one that already does."""
        try:
            return request()
        except NoCredentialsError as e:
            raise OperatorError(
                "no AWS credentials: configure a profile (aws configure, --profile) or, for a local cloud, "
                "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
            ) from e
        except EndpointConnectionError as e:
            hint = (
                "is `gluerelay local up` running?" if self.endpoint_url else "check --region and the network"
            )
            raise OperatorError(f"cannot reach {self.where()}: {hint}") from e
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            message = e.response.get("Error", {}).get("Message", "")
            if missing and (
                code in {"ResourceNotFoundException", "ExecutionDoesNotExist", "404", "NoSuchKey", "NotFound"}
                or (code == "ValidationError" and "does not exist" in message)
            ):
                raise OperatorError(missing) from e
            if conflict and code in {"ExecutionAlreadyExists", "ConditionalCheckFailedException"}:
                raise OperatorError(conflict) from e
            operation = e.operation_name or "the request"
            raise OperatorError(f"AWS refused {operation} on {self.where()}: {code}: {message}") from e


@dataclass(frozen=True)
class Resumed:
    run_id: str
    resume_from: str
    execution_arn: str
    previous_execution_arn: str


def run_record(target: Target, run_id: str) -> RunRecord:
    """The run's record in the control table, or an OperatorError naming the run."""
    table = target.output("ControlTableName")
    item = target.call(
        lambda: target.client("dynamodb").get_item(
            TableName=table, Key={k: {"S": v} for k, v in run_key(run_id).items()}, ConsistentRead=True
        )
    ).get("Item")
    if not item:
        raise OperatorError(
            f"no run {run_id} in stack {target.stack} (table {table}): see gluerelay runs list"
        )
    return RunRecord.from_item(plain(item))


def resume(target: Target, run_id: str) -> Resumed:
    """Start the run again: a new execution of its pipeline with the run's own input (same run id, same
    data partitions), named <run>-resume-<n>. Its steps that succeeded are answered at once by start_step
    (not run again); the others, in every branch, run again.

    RedriveExecution cannot do this: the workflow catches a step's failure to record it, so the execution
    fails in its own Fail state, which is where a redrive would restart.
    """
    run = run_record(target, run_id)
    if run.status not in RESUMABLE:
        raise OperatorError(
            f"run {run_id} is {run.status.value}: only a FAILED, TIMED_OUT or ABORTED run can be resumed"
            + (" (wait for it to end)" if run.status is RunStatus.RUNNING else "")
        )
    try:
        execution_input = run.execution_input()
    except ValueError as e:
        raise OperatorError(f"run {run_id} has no recorded input: start it again instead") from e
    try:
        name = resume_execution_name(run_id, run.executions)
    except ValueError as e:
        raise OperatorError(f"run {run_id} cannot be resumed again: {e}; start it again instead") from e
    machine = target.state_machine_arn(run.pipeline)
    started = target.call(
        lambda: target.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=name, input=execution_input.to_json()
        ),
        conflict=f"run {run_id} is being resumed already (execution {name})",
    )
    return Resumed(run_id, run.failed_step or "-", started["executionArn"], run.execution_arn or "-")


def rerun(target: Target, run_id: str, from_step: str, *, same_versions: bool = False) -> Rerun:
    """Re-execute `from_step` and everything downstream of it in a finished run (relay.logic.reruns)."""
    logger.setLevel(logging.WARNING)  # the functions' log lines are for CloudWatch, not the terminal
    plane = target.control_plane()
    by = target.caller()
    try:
        done: Rerun = target.call(
            lambda: reruns.rerun(
                plane, run_id, from_step, by=by, now=datetime.now(UTC), latest_versions=not same_versions
            )
        )
    except reruns.RerunRefusedError as e:
        raise OperatorError(str(e)) from e
    return done


# ------------------------------------------------------------------------------------------ reading runs


@dataclass
class RunSummary:
    run_id: str
    pipeline: str
    status: str
    trigger: str | None
    started_at: str | None
    ended_at: str | None
    seconds: float | None
    failed_step: str | None
    error: str | None
    executions: int


def _summary(record: RunRecord) -> RunSummary:
    return RunSummary(
        run_id=record.run_id,
        pipeline=record.pipeline,
        status=record.status.value,
        trigger=record.trigger.value if record.trigger else None,
        started_at=record.started_at,
        ended_at=record.ended_at,
        seconds=seconds_between(record.started_at, record.ended_at),
        failed_step=record.failed_step,
        error=record.error,
        executions=record.executions,
    )


@dataclass
class RunsListing:
    runs: list[RunSummary]
    next_token: str | None  # `--next` for the runs after these
    examined: int  # run-index entries read


def backfill_record(target: Target, backfill: str) -> dict[str, Any]:
    """A backfill's item in the control table; OperatorError naming the id when there is none."""
    table = target.table()
    item = target.call(lambda: table.get_item(Key=backfill_key(backfill), ConsistentRead=True)).get("Item")
    if item is None:
        raise OperatorError(
            f"no backfill {backfill} in stack {target.stack}: give the id `gluerelay backfill` printed"
        )
    return dict(item)


def list_runs(
    target: Target,
    *,
    pipeline: str | None = None,
    status: RunStatus | None = None,
    trigger: Trigger | None = None,
    ingest_dates: tuple[date | None, date | None] = (None, None),
    since: timedelta | None = None,
    limit: int = 50,
    token: str | None = None,
    backfill: str | None = None,
) -> RunsListing:
    """Runs of every pipeline (or one), newest first, from the control table's run index: the filters,
    a page of `limit` and the token for the next page (see gluerelay.runindex). With `backfill`: the runs
    that backfill reruns (from its record), newest first, every one."""
    if backfill is not None:
        found = run_records(target, [str(r) for r in backfill_record(target, backfill)["runs"]])
        listed = sorted(found.values(), key=lambda r: run_sort(r.started_at or "", r.run_id), reverse=True)
        return RunsListing([_summary(r) for r in listed], None, len(listed))
    try:
        query = _run_query(target, pipeline, status, trigger, ingest_dates, since)
        table = target.output("ControlTableName")
        dynamodb = target.client("dynamodb")
        page = target.call(lambda: query_runs(dynamodb, table, query, limit=limit, token=token))
    except QueryError as e:
        raise OperatorError(str(e)) from e
    return RunsListing([_summary(r) for r in page.runs], page.next_token, page.examined)


def every_run(
    target: Target, *, pipeline: str | None = None, since: timedelta | None = None
) -> list[RunSummary]:
    """Every run of every pipeline (or one) started within `since`, newest first (all pages)."""
    query = _run_query(target, pipeline, None, None, (None, None), since)
    table = target.output("ControlTableName")
    dynamodb = target.client("dynamodb")
    found: list[RunSummary] = target.call(lambda: [_summary(r) for r in all_runs(dynamodb, table, query)])
    return found


def _run_query(  # noqa: PLR0917 - the filters, in the order the CLI lists them
    target: Target,
    pipeline: str | None,
    status: RunStatus | None,
    trigger: Trigger | None,
    ingest_dates: tuple[date | None, date | None],
    since: timedelta | None,
) -> RunQuery:
    low, high = ingest_dates
    return RunQuery(
        pipelines=target.pipeline_names(pipeline),
        status=status,
        trigger=trigger,
        ingest_from=low,
        ingest_to=high,
        started_since=datetime.now(UTC) - since if since else None,
    )


def run_records(target: Target, run_ids: list[str]) -> dict[str, RunRecord]:
    """The runs' records (BatchGetItem, 100 keys a request); a run without one is left out."""
    table = target.output("ControlTableName")
    dynamodb = target.client("dynamodb")
    found: dict[str, RunRecord] = {}
    unique = list(dict.fromkeys(run_ids))
    for first in range(0, len(unique), 100):
        keys = [{k: {"S": v} for k, v in run_key(run).items()} for run in unique[first : first + 100]]
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = target.call(lambda r=request: dynamodb.batch_get_item(RequestItems=r))
            for item in answer["Responses"].get(table, []):
                record = RunRecord.from_item(plain(item))
                found[record.run_id] = record
            request = answer.get("UnprocessedKeys") or {}
    return found


@dataclass
class TableReport:
    """A catalog table that holds the run's data: its columns and how many of its partitions are the run's."""

    database: str
    name: str
    columns: list[tuple[str, str]]
    partition_keys: list[str]
    run_partitions: int
    location: str


@dataclass
class RunDetail:
    run: RunSummary
    execution_arn: str | None
    steps: list[StepReport]
    transitions: list[TransitionReport]
    state_transitions: int
    history_events: int
    rows: dict[str, Any]
    quarantined_by_reason: dict[str, int]
    tables: list[TableReport]
    cause: str | None
    lambda_tasks: int  # Lambda invocations the workflow made (start_step, close_run), retries included
    links: dict[str, str] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # its reruns: who, when, from which step


def run_steps(target: Target, run_id: str) -> tuple[RunRecord, list[StepReport]]:
    """One run's record and its steps in the order they ran (one DynamoDB query)."""
    table = target.output("ControlTableName")
    dynamodb = target.client("dynamodb")
    items = [
        plain(i)
        for i in target.call(
            lambda: dynamodb.query(
                TableName=table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": run_pk(run_id)}},
                ConsistentRead=True,
            )
        )["Items"]
    ]
    found = next((i for i in items if i["sk"] == "RUN"), None)
    if found is None:
        raise OperatorError(
            f"no run {run_id} in stack {target.stack} (table {table}): see gluerelay runs list"
        )
    record = RunRecord.from_item(found)
    steps = sorted(
        (step_report(i) for i in items if str(i["sk"]).startswith(STEP_SK_PREFIX)),
        key=lambda s: (s.opened_at or "", s.step),
    )
    return record, steps


def run_detail(target: Target, run_id: str, *, catalog: bool = True) -> RunDetail:
    """Everything about one run: its record, its steps, its executions' histories, and (with `catalog`)
    the tables holding its partitions, which take a GetPartitions call per table."""
    record, steps = run_steps(target, run_id)
    history = _histories(target, record)
    rows: dict[str, Any] = {}
    for step in steps:  # in the order they ran: the last job's figures are the run's
        rows.update(step.facts.get("rows", {}))
    quarantined = {str(k): int(v) for k, v in (rows.pop("quarantined_by_reason", None) or {}).items()}
    return RunDetail(
        run=_summary(record),
        execution_arn=record.execution_arn,
        steps=steps,
        transitions=[t for events in history for t in transitions(events)],
        state_transitions=sum(state_transitions(events) for events in history),
        history_events=sum(len(events) for events in history),
        rows=rows,
        quarantined_by_reason=quarantined,
        tables=_tables_of(target, run_id) if catalog else [],
        cause=record.cause,
        lambda_tasks=sum(
            1
            for events in history
            for e in events
            if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"].get("resourceType") == "lambda"
        ),
        links=_links(target, record.execution_arn) if record.execution_arn else {},
        attempts=[attempt.model_dump() for attempt in record.attempts],
    )


def _histories(target: Target, record: RunRecord) -> list[list[dict[str, Any]]]:
    """The histories of the run's executions, oldest first: the run itself, its reruns (from its record)
    and its resumes (<run>-resume-<n>, n below the executions its record counts). One that does not exist
    (an expired one, after Step Functions' retention, or a number no resume took) is skipped."""
    sfn = target.client("stepfunctions")
    base = target.state_machine_arn(record.pipeline).replace(":stateMachine:", ":execution:")
    names = [
        record.run_id,
        *(attempt.execution for attempt in record.attempts),
        *(resume_execution_name(record.run_id, n) for n in range(1, record.executions)),
    ]
    histories = []
    for name in names:
        arn = f"{base}:{name}"
        try:
            pages = list(sfn.get_paginator("get_execution_history").paginate(executionArn=arn))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                continue
            raise OperatorError(f"cannot read execution {arn}: {e}") from e
        histories.append([event for page in pages for event in page["events"]])
    return sorted((events for events in histories if events), key=lambda events: events[0]["timestamp"])


def _tables_of(target: Target, run_id: str) -> list[TableReport]:
    """The catalog tables holding a partition of this run (the stack's database)."""
    glue = target.client("glue")
    database = target.output("CatalogDatabaseName")
    tables = [
        t
        for page in target.call(
            lambda: list(glue.get_paginator("get_tables").paginate(DatabaseName=database))
        )
        for t in page["TableList"]
    ]
    touched = []
    for found in tables:
        keys = [k["Name"] for k in found.get("PartitionKeys", [])]
        if "run_id" not in keys:
            continue
        partitions = target.call(
            lambda t=found: glue.get_partitions(
                DatabaseName=database, TableName=t["Name"], Expression=f"run_id = '{run_id}'"
            )
        )["Partitions"]
        if partitions:
            descriptor = found["StorageDescriptor"]
            touched.append(
                TableReport(
                    database=database,
                    name=found["Name"],
                    columns=[(c["Name"], c["Type"]) for c in descriptor["Columns"]],
                    partition_keys=keys,
                    run_partitions=len(partitions),
                    location=descriptor.get("Location", ""),
                )
            )
    return sorted(touched, key=lambda t: t.name)


def _links(target: Target, execution_arn: str) -> dict[str, str]:
    if target.endpoint_url:
        return {}  # a local cloud has no console
    region = execution_arn.split(":")[3]
    console = f"https://{region}.console.aws.amazon.com"
    return {
        "execution": f"{console}/states/home?region={region}#/v2/executions/details/{execution_arn}",
        "logs": f"{console}/cloudwatch/home?region={region}#logsV2:log-groups",
        "glue job runs": f"{console}/gluestudio/home?region={region}#/monitoring",
    }


# ------------------------------------------------------------------------------------------ starting runs


@dataclass(frozen=True)
class Started:
    run_id: str
    pipeline: str
    execution_arn: str
    params: dict[str, Any]
    objects: list[str]


def start_run(
    target: Target,
    pipeline: Pipeline,
    *,
    keys: list[str],
    params: dict[str, str],
    ingest_date: str | None = None,
) -> Started:
    """Start a run of `pipeline` by hand, over the landed objects named by key (if any), with its
    parameters checked against the pipeline's declaration before anything starts.

    A manual run claims nothing: objects already processed by another run are processed again (that is
    what starting by hand is for: reprocessing after a fix)."""
    name = pipeline.pipeline
    if not pipeline.triggers.manual:
        raise OperatorError(f"pipeline {name} does not take runs started by hand (triggers.manual: false)")
    machine = target.state_machine_arn(target.pipeline_names(name)[0])
    try:
        values = resolve_params(pipeline.params, params)
    except ValueError as e:
        raise OperatorError(f"{e}: see gluerelay pipelines show {name}") from e
    now = datetime.now(UTC)
    run_id = manual_run_id(name, now, secrets.token_hex(3))
    manifest = write_manifest(target, run_id, name, keys) if keys else ""
    try:
        execution_input = ExecutionInput(
            run_id=run_id,
            trigger=Trigger.MANUAL,
            ingest_date=ingest_date or now.date().isoformat(),
            manifest_uri=manifest,
            params=values,
        )
    except ValidationError as e:
        raise OperatorError(f"--ingest-date {ingest_date!r} is not a date (YYYY-MM-DD)") from e
    latest = now.date() + INGEST_DATE_LEAD
    if execution_input.ingest_date > latest.isoformat():
        raise OperatorError(
            f"--ingest-date {execution_input.ingest_date} is after {latest}: a run writes the partition of "
            "its day or an earlier one (the run index finds runs of a date among those started since)"
        )
    started = target.call(
        lambda: target.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=run_id, input=execution_input.to_json()
        )
    )
    return Started(run_id, name, started["executionArn"], dict(values), keys)


def write_manifest(target: Target, run_id: str, pipeline: str, keys: list[str]) -> str:
    """The run's manifest over exactly these object versions (HeadObject: etag and version id)."""
    bucket = target.output("DataBucketName")
    s3 = target.client("s3")
    objects = []
    for key in keys:
        if not key.startswith(LANDING_PREFIX):
            raise OperatorError(f"{key}: jobs read landed objects only, under {LANDING_PREFIX}")
        head = target.call(
            lambda k=key: s3.head_object(Bucket=bucket, Key=k),
            missing=f"no object s3://{bucket}/{key}: list them with aws s3 ls s3://{bucket}/{LANDING_PREFIX}",
        )
        objects.append(
            LandedObject(
                bucket=bucket,
                key=key,
                etag=str(head.get("ETag", "")).strip('"'),
                version_id=head.get("VersionId"),
                size=head.get("ContentLength"),
            )
        )
    body = Manifest(run_id=run_id, pipeline=pipeline, objects=objects).model_dump_json(exclude_none=True)
    key = manifest_key(run_id)
    target.call(
        lambda: s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json")
    )
    return s3_uri(bucket, key)


# ------------------------------------------------------------------------------------------ cost

# AWS list prices (us-east-1; the README prints them under `runs cost`).
PRICE_TRANSITION = 0.025 / 1000
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_DPU_HOUR = 0.44
JOB_MINIMUM_SECONDS = 60  # Glue 2.0+ jobs: billed per second, one-minute minimum
CRAWL_MINIMUM_SECONDS = 600  # crawls: ten-minute minimum
WORKER_DPU = {"G.025X": 0.25, "G.1X": 1.0, "G.2X": 2.0, "G.4X": 4.0, "G.8X": 8.0, "Z.2X": 2.0}


@dataclass
class RunCost:
    run_id: str
    job_runs: int
    job_dpu_hours: float
    crawls: dict[str, float]  # crawl id -> DPU-hours (a crawl shared by runs is in each run, once in a total)
    crawl_dpu_hours: float
    crawl_dpu_estimated: bool  # Glue gave no DPUHour: priced as 1 DPU while it ran
    state_transitions: int
    lambda_invocations: int
    glue_usd: float
    step_functions_usd: float
    lambda_usd: float

    @property
    def total_usd(self) -> float:
        return self.glue_usd + self.step_functions_usd + self.lambda_usd


def _job_dpu_seconds(run: dict[str, Any]) -> float:
    if run.get("DPUSeconds"):
        return float(run["DPUSeconds"])
    seconds = max(float(run.get("ExecutionTime") or 0), JOB_MINIMUM_SECONDS)
    workers = run.get("NumberOfWorkers")
    capacity = (
        float(workers) * WORKER_DPU.get(str(run.get("WorkerType")), 1.0)
        if workers
        else float(run.get("MaxCapacity") or 1)
    )
    return seconds * capacity


def run_costs(target: Target, run_ids: list[str]) -> list[RunCost]:
    """What runs cost at list prices: every job run they started (all attempts, GetJobRuns), the crawls
    that completed their crawler steps (ListCrawls), their state transitions and their Lambda requests.

    Each job's runs are read once for all the runs priced (back to the oldest run's start), and each
    crawl once however many runs it served."""
    details = [run_detail(target, run_id, catalog=False) for run_id in run_ids]
    starts = [d.run.started_at for d in details if d.run.started_at]
    oldest = min(starts) if starts and len(starts) == len(details) else None
    jobs = sorted({step.resource for detail in details for step in detail.steps if step.kind == "job"})
    job_runs = [run for job in jobs for run in _job_runs_since(target, job, oldest)]
    crawls = _CrawlPrices(target)
    return [_run_cost(detail, job_runs, crawls) for detail in details]


def _run_cost(detail: RunDetail, job_runs: list[dict[str, Any]], prices: _CrawlPrices) -> RunCost:
    run_id = detail.run.run_id
    mine = [run for run in job_runs if run.get("Arguments", {}).get(RUN_ID_ARG) == run_id]
    job_hours = sum(_job_dpu_seconds(run) for run in mine) / 3600
    crawls: dict[str, float] = {}
    estimated = False
    for step in detail.steps:
        # A crawler step's crawl, or the crawl a drifted catalog step fell back to (its facts name it).
        if (
            step.kind in {"crawler", "catalog"}
            and step.facts.get("crawler")
            and step.facts.get("completed_on")
        ):
            priced = prices.of(step)
            if priced is not None:
                crawl_id, hours, guessed = priced
                crawls[crawl_id] = hours
                estimated = estimated or guessed
    crawl_hours = sum(crawls.values())
    # start_step once per step attempt (the history's Lambda tasks), on_glue_event once per finished step
    # that Glue reported (a catalog step that crawled nothing completes within start_step), on_arrival once
    # for a landing (its batch's one invocation).
    finished = sum(1 for s in detail.steps if s.status in {"SUCCEEDED", "FAILED", "CLOSED"} and _reported(s))
    invocations = detail.lambda_tasks + finished + (1 if detail.run.trigger == "s3" else 0)
    return RunCost(
        run_id=run_id,
        job_runs=len(mine),
        job_dpu_hours=round(job_hours, 4),
        crawls=crawls,
        crawl_dpu_hours=round(crawl_hours, 4),
        crawl_dpu_estimated=estimated,
        state_transitions=detail.state_transitions,
        lambda_invocations=invocations,
        glue_usd=round((job_hours + crawl_hours) * PRICE_DPU_HOUR, 6),
        step_functions_usd=round(detail.state_transitions * PRICE_TRANSITION, 6),
        lambda_usd=round(invocations * PRICE_LAMBDA_REQUEST, 8),
    )


def _reported(step: StepReport) -> bool:
    """Whether an event (Glue's, or Glue Data Quality's) completed the step: not a catalog step that crawled
    nothing, nor a quality step's summary gate, which complete within start_step."""
    if step.kind == "catalog":
        return bool(step.facts.get("crawler"))
    if step.kind == "quality":
        return "summary_of" not in step.facts
    return True


def _job_runs_since(target: Target, job: str, started_at: str | None) -> list[dict[str, Any]]:
    """The job's runs (GetJobRuns, newest first) back to `started_at`: a long history is not read."""
    since = datetime.fromisoformat(started_at.replace("Z", "+00:00")) if started_at else None
    glue = target.client("glue")
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"JobName": job, "MaxResults": 200}
    while True:
        page = target.call(lambda r=request: glue.get_job_runs(**r))
        runs = page.get("JobRuns", [])
        found += runs
        older = since is not None and any(r.get("StartedOn") and r["StartedOn"] < since for r in runs)
        if older or not page.get("NextToken"):
            return found
        request = {**request, "NextToken": page["NextToken"]}


class _CrawlPrices:
    """The DPU-hours of the crawl that served a crawler step, each crawl read from ListCrawls once."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._seen: dict[tuple[str, str], dict[str, Any] | None] = {}

    def of(self, step: StepReport) -> tuple[str, float, bool] | None:
        """(crawl id, billed DPU-hours, whether they are estimated), or None when Glue lists no such crawl."""
        crawl_id = step.facts.get("crawl_id")
        crawler = str(step.facts.get("crawler") or step.resource)
        key = (crawler, str(crawl_id or step.facts["completed_on"]))
        if key not in self._seen:
            self._seen[key] = self._find(crawler, crawl_id, str(step.facts["completed_on"]))
        crawl = self._seen[key]
        if crawl is None:
            return None
        minimum = CRAWL_MINIMUM_SECONDS / 3600  # at one DPU, the least a crawl is billed
        if crawl.get("DPUHour") is not None:
            return str(crawl["CrawlId"]), max(float(crawl["DPUHour"]), minimum), False
        ran = (crawl["EndTime"] - crawl["StartTime"]).total_seconds() / 3600
        return str(crawl["CrawlId"]), max(ran, minimum), True

    def _find(self, crawler: str, crawl_id: str | None, completed_on: str) -> dict[str, Any] | None:
        glue = self._target.client("glue")
        if crawl_id:  # recorded on the step by the event (or the sweeper) that completed it
            filters = [{"FieldName": "CRAWL_ID", "FilterOperator": "EQ", "FieldValue": crawl_id}]
            found = self._target.call(lambda: glue.list_crawls(CrawlerName=crawler, Filters=filters))[
                "Crawls"
            ]
            return found[0] if found else None
        # Steps completed before crawl ids were recorded: the crawl that ended in the step's second.
        second = datetime.fromisoformat(completed_on.replace("Z", "+00:00")).replace(microsecond=0)
        crawls = self._target.call(lambda: glue.list_crawls(CrawlerName=crawler, MaxResults=100))["Crawls"]
        return next(
            (c for c in crawls if c.get("EndTime") and c["EndTime"].replace(microsecond=0) == second), None
        )


@dataclass
class CostTotal:
    runs: int
    job_dpu_hours: float
    crawl_dpu_hours: float  # each crawl once, however many runs it served
    state_transitions: int
    lambda_invocations: int
    usd: float


def total_cost(costs: list[RunCost]) -> CostTotal:
    crawls = {crawl: hours for cost in costs for crawl, hours in cost.crawls.items()}
    job_hours = sum(c.job_dpu_hours for c in costs)
    transitions_ = sum(c.state_transitions for c in costs)
    invocations = sum(c.lambda_invocations for c in costs)
    usd = (
        (job_hours + sum(crawls.values())) * PRICE_DPU_HOUR
        + transitions_ * PRICE_TRANSITION
        + invocations * PRICE_LAMBDA_REQUEST
    )
    return CostTotal(
        len(costs),
        round(job_hours, 4),
        round(sum(crawls.values()), 4),
        transitions_,
        invocations,
        round(usd, 6),
    )


# ---------------------------------------------------------------------------------------------- logs


@dataclass
class LogEvent:
    timestamp: int  # milliseconds since the epoch, as CloudWatch Logs stamps it
    at: str  # the same, UTC ISO 8601
    group: str
    stream: str
    message: str
    event_id: str  # CloudWatch Logs' id: a follower prints each event once


def log_events(
    target: Target,
    *,
    run_id: str | None = None,
    since: timedelta = timedelta(hours=1),
    after_ms: int | None = None,
) -> list[LogEvent]:
    """The stack's log lines (its functions', Glue jobs' and state machines' groups: output LogGroupNames)
    since `since` ago, or after `after_ms` (a follower's cursor), oldest first. With `run_id`: the
    functions' lines that name the run, and the whole output and error of the run's Glue job runs."""
    groups = [g for g in target.output("LogGroupNames").split(",") if g]
    logs = target.client("logs")
    start = after_ms + 1 if after_ms is not None else int((datetime.now(UTC) - since).timestamp() * 1000)
    job_runs = (
        [s.glue_id for s in run_steps(target, run_id)[1] if s.kind == "job" and s.glue_id] if run_id else []
    )
    found: list[LogEvent] = []
    for group in groups:
        query: dict[str, Any] = {"logGroupName": group, "startTime": start}
        if run_id and group.startswith("/aws-glue/"):
            if not job_runs:
                continue
            query["logStreamNames"] = job_runs  # Glue names a run's streams after it
        elif run_id:
            query["filterPattern"] = f'"{run_id}"'

        def pages(query: dict[str, Any] = query) -> list[dict[str, Any]]:
            try:
                return list(logs.get_paginator("filter_log_events").paginate(**query))
            except logs.exceptions.ResourceNotFoundException:
                return []  # a group (or a run's stream) nothing has written to yet

        for page in target.call(pages):
            for event in page.get("events", []):
                stamp = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
                found.append(
                    LogEvent(
                        event["timestamp"],
                        utc_text(stamp),
                        group,
                        event["logStreamName"],
                        event["message"],
                        event["eventId"],
                    )
                )
    return sorted(found, key=lambda e: e.timestamp)
