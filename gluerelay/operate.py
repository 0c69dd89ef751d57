"""What an operator does to a deployed pipeline, on AWS or on a local cloud: the same boto3 calls, only the
endpoint differs.

A `Target` names the stack; its resources (control table, state machine) come from the stack's outputs
through DescribeStacks, on AWS as on the local cloud (which registers its stack the same way). Every
failure an operator can meet is an `OperatorError` whose message says how to fix it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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

from gluerelay.records import (
    StepReport,
    TransitionReport,
    plain,
    seconds_between,
    state_transitions,
    step_report,
    transitions,
)

RESUMABLE = ("FAILED", "TIMED_OUT")
# An operator waits at a terminal: a few quick retries, then say what is wrong.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
# What the failure path adds to the run's state; a resumed run starts from the state before it.
FAILURE_KEYS = ("failure", "failed", "record_failure", "resume_from")


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


def run_record(target: Target, run_id: str) -> dict[str, Any]:
    """The run's record in the control table (plain values), or an OperatorError naming the run."""
    table = target.output("ControlTableName")
    item = target.call(
        lambda: target.client("dynamodb").get_item(
            TableName=table, Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}, ConsistentRead=True
        )
    ).get("Item")
    if not item:
        raise OperatorError(f"no run {run_id} in stack {target.stack} (table {table})")
    return {key: next(iter(value.values())) for key, value in item.items()}


def failed_state(target: Target, execution_arn: str) -> dict[str, Any]:
    """The run's state as the failed execution entered its Fail state: its input plus the outputs of
    the steps that succeeded."""
    sfn = target.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, reverseOrder=True, includeExecutionData=True
    )
    for page in target.call(lambda: list(pages), missing=f"execution {execution_arn} no longer exists"):
        for event in page["events"]:
            if event["type"] == "FailStateEntered":
                state: dict[str, Any] = json.loads(event["stateEnteredEventDetails"]["input"])
                return state
    raise OperatorError(f"execution {execution_arn} did not end in a Fail state: nothing to resume from")


def resume(target: Target, run_id: str) -> Resumed:
    """Start the run again at its failed step, with the outputs of the steps that succeeded: a new
    execution of the same run (same run id, same data partitions), named <run>-resume-<n>.

    RedriveExecution cannot do this here: the workflow catches a step's failure to record it, so the
    execution fails in its Fail state, which is where a redrive would restart.
    """
    run = run_record(target, run_id)
    status = run.get("status")
    if status not in RESUMABLE:
        raise OperatorError(
            f"run {run_id} is {status}: only a FAILED or TIMED_OUT run can be resumed"
            + (" (wait for it to end)" if status == "RUNNING" else "")
        )
    step = run.get("failed_step")
    previous = run.get("execution_arn")
    if not step or not previous:
        raise OperatorError(f"run {run_id} has no failed step or execution recorded: start it again instead")
    state = {k: v for k, v in failed_state(target, previous).items() if k not in FAILURE_KEYS}
    state["resume_from"] = step
    name = f"{run_id}-resume-{int(run.get('resumes', 0)) + 1}"
    machine = target.output("StateMachineArn")
    started = target.call(
        lambda: target.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(state)
        ),
        conflict=f"run {run_id} is being resumed already (execution {name})",
    )
    return Resumed(run_id, step, started["executionArn"], previous)


# ------------------------------------------------------------------------------------------ reading runs

RESUME_MARK = "-resume-"


@dataclass
class RunSummary:
    run_id: str
    status: str
    trigger: str | None
    started_at: str | None
    ended_at: str | None
    seconds: float | None
    failed_step: str | None
    error: str | None
    executions: int


def _summary(record: dict[str, Any], executions: int) -> RunSummary:
    return RunSummary(
        run_id=str(record["run_id"]),
        status=str(record.get("status", "UNKNOWN")),
        trigger=record.get("trigger"),
        started_at=record.get("started_at"),
        ended_at=record.get("ended_at"),
        seconds=seconds_between(record.get("started_at"), record.get("ended_at")),
        failed_step=record.get("failed_step"),
        error=record.get("error"),
        executions=executions,
    )


def list_runs(
    target: Target, *, status: str | None = None, since: timedelta | None = None, limit: int = 50
) -> list[RunSummary]:
    """The most recent runs, newest first: the state machine's executions (ListExecutions, newest first)
    grouped by run, each described by its run record (BatchGetItem)."""
    machine = target.output("StateMachineArn")
    table = target.output("ControlTableName")
    oldest = datetime.now(UTC) - since if since else None
    sfn = target.client("stepfunctions")
    counts: dict[str, int] = {}
    # Page by page, newest first, only as far back as needed: a busy state machine has many executions.
    # Without a status filter, twice the limit is enough (a resumed run has several executions).
    request: dict[str, Any] = {"stateMachineArn": machine, "maxResults": 100}
    while True:
        page = target.call(lambda r=request: sfn.list_executions(**r))
        executions = page["executions"]
        for execution in executions:
            if oldest and execution["startDate"] < oldest:
                break
            name = str(execution["name"])
            run = name.rsplit(RESUME_MARK, 1)[0] if RESUME_MARK in name else name
            counts[run] = counts.get(run, 0) + 1
        done = (oldest and executions and executions[-1]["startDate"] < oldest) or (
            status is None and len(counts) >= 2 * limit
        )
        if done or not page.get("nextToken"):
            break
        request = {**request, "nextToken": page["nextToken"]}
    records = _run_records(target, table, list(counts))
    runs = [_summary(records[run], counts[run]) for run in counts if run in records]
    runs = [r for r in runs if status is None or r.status == status.upper()]
    runs.sort(key=lambda r: r.started_at or "", reverse=True)
    return runs[:limit]


def _run_records(target: Target, table: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    dynamodb = target.client("dynamodb")
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(run_ids), 100):  # BatchGetItem takes 100 keys at most
        keys = [{"pk": {"S": f"RUN#{run}"}, "sk": {"S": "RUN"}} for run in run_ids[start : start + 100]]
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = target.call(lambda r=request: dynamodb.batch_get_item(RequestItems=r))
            for item in answer["Responses"].get(table, []):
                record = plain(item)
                found[str(record["run_id"])] = record
            request = answer.get("UnprocessedKeys") or {}
    return found


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
    tables: list[str]
    cause: str | None
    lambda_tasks: int  # Lambda invocations the workflow made (start_step), retries included
    links: dict[str, str] = field(default_factory=dict)


def run_detail(target: Target, run_id: str, *, catalog: bool = True) -> RunDetail:
    """Everything about one run: its record, its steps, its executions' histories, and (with `catalog`)
    the tables holding its partitions, which take a GetPartitions call per table."""
    table = target.output("ControlTableName")
    dynamodb = target.client("dynamodb")
    items = [
        plain(i)
        for i in target.call(
            lambda: dynamodb.query(
                TableName=table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": f"RUN#{run_id}"}},
                ConsistentRead=True,
            )
        )["Items"]
    ]
    record = next((i for i in items if i["sk"] == "RUN"), None)
    if record is None:
        raise OperatorError(
            f"no run {run_id} in stack {target.stack} (table {table}): see gluerelay runs list"
        )
    steps = sorted((step_report(i) for i in items if str(i["sk"]).startswith("STEP#")), key=lambda s: s.step)
    history = _histories(target, run_id)
    rows: dict[str, Any] = {}
    for step in steps:
        rows.update(step.facts.get("rows", {}))
    quarantined = {str(k): int(v) for k, v in (rows.pop("quarantined_by_reason", None) or {}).items()}
    arn = record.get("execution_arn")
    return RunDetail(
        run=_summary(record, max(1, sum(1 for _ in history))),
        execution_arn=arn,
        steps=steps,
        transitions=[t for events in history for t in transitions(events)],
        state_transitions=sum(state_transitions(events) for events in history),
        history_events=sum(len(events) for events in history),
        rows=rows,
        quarantined_by_reason=quarantined,
        tables=_tables_of(target, run_id) if catalog else [],
        cause=record.get("cause"),
        lambda_tasks=sum(
            1
            for events in history
            for e in events
            if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"].get("resourceType") == "lambda"
        ),
        links=_links(target, arn) if arn else {},
    )


def _executions_of(target: Target, run_id: str) -> list[str]:
    """The run's executions, oldest first: the run itself, then <run>-resume-1, -2, ..."""
    machine = target.output("StateMachineArn")
    base = machine.replace(":stateMachine:", ":execution:")
    sfn = target.client("stepfunctions")
    arns = []
    for attempt in range(100):
        arn = f"{base}:{run_id}" + (f"{RESUME_MARK}{attempt}" if attempt else "")
        try:
            sfn.describe_execution(executionArn=arn)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                raise OperatorError(f"cannot read execution {arn}: {e}") from e
            if attempt:  # resumes are numbered without gaps; the first may have expired (90 days)
                break
            continue
        arns.append(arn)
    return arns


def _histories(target: Target, run_id: str) -> list[list[dict[str, Any]]]:
    sfn = target.client("stepfunctions")
    histories = []
    for arn in _executions_of(target, run_id):
        pages = target.call(
            lambda a=arn: list(sfn.get_paginator("get_execution_history").paginate(executionArn=a))
        )
        histories.append([event for page in pages for event in page["events"]])
    return histories


def _tables_of(target: Target, run_id: str) -> list[str]:
    """The catalog tables holding a partition of this run."""
    glue = target.client("glue")
    database = target.output("CatalogDatabaseName")
    names = [
        t["Name"]
        for page in target.call(
            lambda: list(glue.get_paginator("get_tables").paginate(DatabaseName=database))
        )
        for t in page["TableList"]
    ]
    touched = []
    for name in names:
        partitions = target.call(
            lambda n=name: glue.get_partitions(
                DatabaseName=database, TableName=n, Expression=f"run_id = '{run_id}'"
            )
        )["Partitions"]
        if partitions:
            touched.append(
                f"{database}.{name} ({len(partitions)} partition{'s' if len(partitions) > 1 else ''})"
            )
    return touched


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
    execution_arn: str
    source: str
    objects: list[str]


MANIFEST_PREFIX = "manifests"  # where on_arrival writes a run's manifest (the functions' MANIFEST_PREFIX)


def start_run(target: Target, *, source: str, keys: list[str], ingest_date: str | None = None) -> Started:
    """Start a run by hand: `s3` over landed objects (given by key), or `jdbc` over the relational source.

    A manual run claims nothing: objects already processed by another run are processed again (that is
    what starting by hand is for: reprocessing after a fix)."""
    run_id = f"manual-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    execution_input = run_input(target, run_id=run_id, source=source, keys=keys, ingest_date=ingest_date)
    machine = target.output("StateMachineArn")
    started = target.call(
        lambda: target.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=run_id, input=json.dumps(execution_input)
        )
    )
    return Started(run_id, started["executionArn"], source, execution_input["objects"])


def run_input(
    target: Target,
    *,
    run_id: str,
    source: str,
    keys: list[str],
    ingest_date: str | None = None,
    trigger: str = "manual",
) -> dict[str, Any]:
    """The execution input of a run over landed objects (its manifest written) or the relational source:
    what on_arrival gives a run it starts."""
    day = ingest_date or datetime.now(UTC).date().isoformat()
    extract: dict[str, str] = {"--ingest_date": day}
    uris: list[str] = []
    if source == "s3":
        if not keys:
            raise OperatorError("--source s3 needs --keys: the landed objects to process (landing/...)")
        bucket = target.output("DataBucketName")
        s3 = target.client("s3")
        for key in keys:
            target.call(
                lambda k=key: s3.head_object(Bucket=bucket, Key=k),
                missing=f"no object s3://{bucket}/{key}: list them with aws s3 ls s3://{bucket}/landing/",
            )
        uris = [f"s3://{bucket}/{key}" for key in keys]
        manifest = f"{MANIFEST_PREFIX}/{run_id}.json"
        body = json.dumps({"run_id": run_id, "uris": uris}).encode()
        target.call(
            lambda: s3.put_object(Bucket=bucket, Key=manifest, Body=body, ContentType="application/json")
        )
        extract |= {"--source": "s3", "--manifest_uri": f"s3://{bucket}/{manifest}"}
    elif source == "jdbc":
        if keys:
            raise OperatorError("--keys names landed objects: it goes with --source s3")
        connection = target.outputs().get("SourceConnectionName")
        if not connection:
            raise OperatorError(
                f"stack {target.stack} has no relational source: deploy it with the SourceJdbcUrl parameter "
                "(README: The relational source), or start from landed files with --source s3 --keys"
            )
        extract |= {"--source": "jdbc", "--connection_name": connection}
    else:
        raise OperatorError(f"--source must be s3 or jdbc, not {source!r}")
    return {
        "run_id": run_id,
        "trigger": trigger,
        "ingest_date": day,
        "objects": uris,
        "extract_arguments": extract,
        "cleanse_arguments": {"--ingest_date": day},
    }


# ------------------------------------------------------------------------------------------ cost

# AWS list prices (us-east-1; DESIGN.md §7).
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
    job_runs = [
        run
        for output in ("ExtractJobName", "CleanseJobName")
        for run in _job_runs_since(target, target.output(output), oldest)
    ]
    crawls = _CrawlPrices(target)
    return [_run_cost(detail, job_runs, crawls) for detail in details]


def _run_cost(detail: RunDetail, job_runs: list[dict[str, Any]], prices: _CrawlPrices) -> RunCost:
    run_id = detail.run.run_id
    mine = [run for run in job_runs if run.get("Arguments", {}).get("--run_id") == run_id]
    job_hours = sum(_job_dpu_seconds(run) for run in mine) / 3600
    crawls: dict[str, float] = {}
    estimated = False
    for step in detail.steps:
        if step.kind == "crawler" and step.facts.get("completed_on"):
            priced = prices.of(step)
            if priced is not None:
                crawl_id, hours, guessed = priced
                crawls[crawl_id] = hours
                estimated = estimated or guessed
    crawl_hours = sum(crawls.values())
    # start_step once per step attempt (the history's Lambda tasks), on_glue_event once per finished step,
    # on_arrival once for a landing (its batch's one invocation).
    finished = sum(1 for s in detail.steps if s.status in {"SUCCEEDED", "FAILED", "CLOSED"})
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
        key = (step.resource, str(crawl_id or step.facts["completed_on"]))
        if key not in self._seen:
            self._seen[key] = self._find(step.resource, crawl_id, str(step.facts["completed_on"]))
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
