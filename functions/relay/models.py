"""The control plane's data: step requests from the state machine, step and lease records, Glue events.

Pydantic models at every boundary: what the state machine sends, what EventBridge delivers, what DynamoDB
holds. Event shapes follow AWS's documentation (see ``events/`` for samples).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relay.contract import (
    PIPELINE_NAME_PATTERN,
    RUN_ID_PATTERN,
    STEP_ID_PATTERN,
    LandedObject,
    ParamValue,
    argument_problem,
)

__all__ = ["LandedObject"]  # defined by the contract; most of the functions import it from here


class StepKind(StrEnum):
    JOB = "job"
    CRAWLER = "crawler"
    CATALOG = "catalog"  # registers the run's partitions in the Data Catalog itself: no crawl
    QUALITY = "quality"  # a gate: a job summary's checks, or a DQDL ruleset Glue Data Quality evaluates


TableFormat = Literal["parquet", "csv", "json"]
OnDrift = Literal["fail", "crawl"]
Severity = Literal["error", "warn"]  # a quality rule's failure fails the run, or is recorded only


class StepStatus(StrEnum):
    OPEN = "OPEN"  # waiting for Glue; the token is live
    COMPLETING = "COMPLETING"  # outcome decided and stored, token being sent (the sweeper finishes it)
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    START_FAILED = "START_FAILED"  # Glue refused to start; the state machine retries or fails the run
    CLOSED = "CLOSED"  # Step Functions stopped waiting (task timed out, execution ended)
    SUPERSEDED = "SUPERSEDED"  # a rerun of its run re-executes it (start_step opens it again)


class StepRequest(BaseModel):
    """The payload a ``waitForTaskToken`` state sends to start_step (compiled from the pipeline file)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(pattern=PIPELINE_NAME_PATTERN)
    kind: StepKind
    name: str = Field(min_length=1, max_length=255, description="Glue job or crawler name")
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    step: str = Field(pattern=STEP_ID_PATTERN, description="the step's id in its pipeline")
    token: str = Field(min_length=1, max_length=1024)
    execution_arn: str = Field(min_length=1, description="the execution the step belongs to")
    timeout_seconds: int | None = Field(default=None, ge=1, description="the state's TimeoutSeconds")
    arguments: dict[str, ParamValue] = Field(default_factory=dict, description="job arguments of this run")
    catalog: CatalogRequest | None = Field(default=None, description="what a catalog step registers")
    quality: QualityRequest | None = Field(default=None, description="what a quality step judges")

    @model_validator(mode="after")
    def _kind_payload(self) -> StepRequest:
        if (self.kind == StepKind.CATALOG) != (self.catalog is not None):
            raise ValueError("a catalog step, and only a catalog step, carries `catalog`")
        if (self.kind == StepKind.QUALITY) != (self.quality is not None):
            raise ValueError("a quality step, and only a quality step, carries `quality`")
        return self

    @field_validator("arguments")
    @classmethod
    def _as_glue_strings(cls, arguments: dict[str, ParamValue]) -> dict[str, ParamValue]:
        # Checked again here, not only when the pipeline compiles: whoever can start an execution or edit a
        # state machine must not reach StartJobRun with Glue's own arguments (--extra-py-files s3://... runs
        # code as the Glue role) or gluerelay's (--run_id, --summary_uri: another run's output).
        problems = [p for name in arguments if (p := argument_problem(name))]
        if problems:
            raise ValueError("job arguments refused: " + "; ".join(problems))
        # Glue takes strings; an argument that renders empty is left out, so the job's default applies.
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in arguments.items()
            if str(v) != ""
        }

    def job_arguments(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.arguments.items()}

    @property
    def ref(self) -> StepRef:
        return StepRef(run_id=self.run_id, step=self.step)


class TableColumn(BaseModel):
    """A Data Catalog column: its name and its Hive type (string, bigint, decimal(10,2), array<string>...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=131_072)


class PartitionValue(BaseModel):
    """One partition key of the run's partition and its value for this run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    value: str = Field(min_length=1, max_length=1024)


class CatalogRequest(BaseModel):
    """What a catalog step registers: the run's partition of a table the step creates when absent."""

    model_config = ConfigDict(extra="forbid")

    database: str = Field(min_length=1, max_length=255)
    location: str = Field(pattern=r"^s3://[^/]+/.+/$", description="the table's root, s3://bucket/prefix/")
    format: TableFormat
    partitions: list[PartitionValue] = Field(description="the run's partition: keys in order, values")
    columns: list[TableColumn] = Field(default_factory=list, description="the declared schema")
    columns_from: str | None = Field(
        default=None, pattern=STEP_ID_PATTERN, description="the job step whose summary reports the columns"
    )
    on_drift: OnDrift = "fail"
    crawler: str | None = Field(default=None, description="the crawler `on_drift: crawl` falls back to")

    @model_validator(mode="after")
    def _a_schema(self) -> CatalogRequest:
        if bool(self.columns) == (self.columns_from is not None):
            raise ValueError("a catalog step has exactly one of columns and columns_from")
        if self.on_drift == "crawl" and not self.crawler:
            raise ValueError("on_drift crawl needs the crawler to fall back to")
        return self

    def partition_location(self) -> str:
        return self.location + "".join(f"{p.name}={p.value}/" for p in self.partitions)


class QualityRule(BaseModel):
    """One rule of a quality step: a DQDL rule or a summary check, and what its failure does."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(min_length=1, max_length=65_536)
    severity: Severity = "error"


class QualityRequest(BaseModel):
    """What a quality step judges: a job's summary (summary_of), or a table's partition with a DQDL ruleset
    evaluated by Glue Data Quality (database, ruleset, role)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[QualityRule] = Field(min_length=1)
    summary_of: str | None = Field(default=None, pattern=STEP_ID_PATTERN, description="the job step checked")
    database: str | None = Field(default=None, min_length=1, max_length=255)
    partition: list[PartitionValue] = Field(default_factory=list, description="the run's partition evaluated")
    ruleset: str | None = Field(default=None, min_length=1, max_length=255, description="its Glue name")
    role: str | None = Field(default=None, description="the role Glue Data Quality evaluates as")

    @model_validator(mode="after")
    def _one_source(self) -> QualityRequest:
        table = (self.database, self.ruleset, self.role)
        if (self.summary_of is None) == (None in table):
            raise ValueError(
                "a quality step checks a job's summary (summary_of) or a table (database, ruleset, role)"
            )
        return self

    def texts(self) -> list[str]:
        return [r.rule for r in self.rules]

    def severities(self) -> list[Severity]:
        return [r.severity for r in self.rules]

    def predicate(self) -> str:
        """The evaluation's push-down predicate: the run's partition (empty: the whole table)."""
        return " AND ".join(f"{p.name} = '{p.value.replace(chr(39), chr(39) * 2)}'" for p in self.partition)


class StepRef(BaseModel):
    """A step, as named in a crawler lease."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    step: str

    def encode(self) -> str:
        return f"{self.run_id}|{self.step}"

    @classmethod
    def decode(cls, value: str) -> StepRef:
        run_id, _, step = value.partition("|")
        return cls(run_id=run_id, step=step)


class Step(BaseModel):
    """A step record: the token and what Glue did with it."""

    run_id: str
    step: str
    pipeline: str | None = None
    execution_arn: str | None = None
    timeout_seconds: int | None = None
    kind: StepKind
    resource: str
    status: StepStatus
    token: str
    attempt: int = 1
    opened_at: datetime
    glue_run_id: str | None = None
    outcome: Outcome | None = None
    closed_at: datetime | None = None
    repaired_by: str | None = None
    decided_at: datetime | None = None  # when the outcome was decided (OPEN -> COMPLETING)
    # A catalog step that found the table drifted and fell back to a crawl: the crawler, and the drift.
    crawler: str | None = None
    drift: dict[str, Any] | None = None
    # A quality step evaluated by Glue Data Quality: its rules and their severities (glue_run_id: the run)
    quality_rules: list[dict[str, Any]] | None = None

    @property
    def ref(self) -> StepRef:
        return StepRef(run_id=self.run_id, step=self.step)

    @property
    def waits_for_crawler(self) -> str | None:
        """The crawler whose crawl completes this step (a crawler step's, a catalog step's fallback)."""
        return self.resource if self.kind == StepKind.CRAWLER else self.crawler


class Outcome(BaseModel):
    """How a step ended: success with facts, or failure with Glue's error and message."""

    succeeded: bool
    facts: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    cause: str | None = None


class LeaseState(StrEnum):
    IDLE = "IDLE"
    CRAWLING = "CRAWLING"  # we started a crawl for the owners
    AWAITING_FOREIGN = "AWAITING_FOREIGN"  # someone else's crawl runs; ours starts when it ends
    # Our last crawl has ended but the crawler is still STOPPING, so the owners' crawl cannot start yet:
    # the sweeper starts it at its next run (steps asking meanwhile join the owners: nothing crawled yet).
    PENDING_START = "PENDING_START"


class Lease(BaseModel):
    """One per crawler: who the running crawl serves (owners) and who waits for the next one (waiters)."""

    crawler: str
    state: LeaseState = LeaseState.IDLE
    owners: list[StepRef] = Field(default_factory=list)
    waiters: list[StepRef] = Field(default_factory=list)
    crawl_requested_at: datetime | None = None
    version: int = 0


# --- Glue events (detail of "Glue Job State Change" / "Glue Crawler State Change") ---


class JobStateChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    job_name: str = Field(alias="jobName", min_length=1)
    job_run_id: str = Field(alias="jobRunId", min_length=1)
    state: Literal["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"]
    severity: str | None = None
    message: str | None = None


class CrawlerStateChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    crawler_name: str = Field(alias="crawlerName", min_length=1)
    state: Literal["Succeeded", "Failed"]
    message: str | None = None
    error_message: str | None = Field(default=None, alias="errorMessage")
    completion_date: str | None = Field(default=None, alias="completionDate")
    running_time_seconds: str | None = Field(default=None, alias="runningTime (sec)")
    tables_created: str | None = Field(default=None, alias="tablesCreated")
    tables_updated: str | None = Field(default=None, alias="tablesUpdated")
    tables_deleted: str | None = Field(default=None, alias="tablesDeleted")
    partitions_created: str | None = Field(default=None, alias="partitionsCreated")
    partitions_updated: str | None = Field(default=None, alias="partitionsUpdated")
    partitions_deleted: str | None = Field(default=None, alias="partitionsDeleted")
    warning_message: str | None = Field(default=None, alias="warningMessage")


# --- what adapters return from Glue ---


class JobRun(BaseModel):
    job_name: str
    run_id: str
    state: str
    arguments: dict[str, str] = Field(default_factory=dict)
    started_on: datetime | None = None
    completed_on: datetime | None = None
    execution_time_seconds: int | None = None
    dpu_seconds: float | None = None
    error_message: str | None = None
    attempt: int = 0  # Glue's own retry number (the job's MaxRetries), not the step's attempt
    previous_run_id: str | None = None  # the run this one retries

    @property
    def terminal(self) -> bool:
        return self.state in {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"}


class Crawl(BaseModel):
    """A crawl as ListCrawls reports it."""

    crawl_id: str | None = None
    state: str  # RUNNING | COMPLETED | CANCELLING | CANCELLED | FAILED
    started_on: datetime | None = None
    completed_on: datetime | None = None
    error_message: str | None = None
    summary: str | None = None


class CrawlerStatus(BaseModel):
    name: str
    state: str  # READY | RUNNING | STOPPING


class Claim(BaseModel):
    """Who holds a landed object, and since when."""

    run_id: str
    claimed_at: datetime


StepRequest.model_rebuild()
Step.model_rebuild()


# --- Glue Data Quality's event ("Data Quality Evaluation Results Available", source aws.glue-dataquality) ---


class QualityContext(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    run_id: str = Field(alias="runId", min_length=1, description="the ruleset evaluation run")
    context_type: str | None = Field(default=None, alias="contextType")
    database_name: str | None = Field(default=None, alias="databaseName")
    table_name: str | None = Field(default=None, alias="tableName")


class QualityResultsAvailable(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    context: QualityContext
    state: str | None = None
    ruleset_names: list[str] = Field(default_factory=list, alias="rulesetNames")
