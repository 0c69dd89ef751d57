"""The contract between the deployed functions, the compiled state machines and the tooling.

Everything two of them must agree on is defined here once and imported by the others: the control table's
keys, where manifests and job summaries live, the arguments gluerelay adds to every job run, how stack-owned
resources and state machines are named, run ids, the execution input, the manifest, the run record, and the
pipeline catalog the functions route arrivals and schedules with. ``gluerelay`` (the tooling) imports this
module too; it must stay free of boto3 and of anything only the tooling has.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# ------------------------------------------------------------------------------------------ names and ids

PIPELINE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
# Execution names allow 80 characters; a resumed run's executions add "-resume-<n>" to the run id.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Stack names are letters, digits and hyphens, so "_" ends the stack's part of a name unambiguously: the
# prefix "dev_" of stack "dev" can never match a resource of stack "dev-2" (whose prefix is "dev-2_").
NAME_SEPARATOR = "_"


def stack_prefix(stack: str) -> str:
    """What every stack-owned Glue job, crawler and state machine name starts with."""
    return f"{stack}{NAME_SEPARATOR}"


def stack_owned_name(stack: str, name: str) -> str:
    """The Glue name of a stack-owned job or crawler a pipeline calls ``name``."""
    return stack_prefix(stack) + name


def state_machine_name(stack: str, pipeline: str) -> str:
    return stack_prefix(stack) + pipeline


def pipeline_of_state_machine(stack: str, machine_name: str) -> str | None:
    prefix = stack_prefix(stack)
    return machine_name.removeprefix(prefix) if machine_name.startswith(prefix) else None


def short_hash(parts: Iterable[str], length: int = 32) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:length]


def arrival_run_id(pipeline: str, objects: Iterable[LandedObject]) -> str:
    """Deterministic: the same objects (in any order) always name the same run of the pipeline."""
    parts = sorted(f"{o.bucket}\t{o.key}\t{o.etag}\t{o.version_id or ''}" for o in objects)
    return f"{pipeline}-s3-{short_hash(parts)}"


def manual_run_id(pipeline: str, now: datetime, nonce: str) -> str:
    return f"{pipeline}-manual-{now:%Y%m%dT%H%M%S}-{nonce}"


def schedule_run_id(pipeline: str, due: datetime, schedule_index: int) -> str:
    """Deterministic per tick: a schedule's duplicate or retried tick names the run it already started."""
    return f"{pipeline}-schedule{schedule_index}-{due:%Y%m%dT%H%M}"


RESUME_MARK = "-resume-"
RERUN_MARK = "-rerun-"


EXECUTION_NAME_LIMIT = 80  # Step Functions: an execution's name is 1 to 80 characters


def resume_execution_name(run_id: str, attempt: int) -> str:
    return _later_execution(run_id, RESUME_MARK, attempt)


def rerun_execution_name(run_id: str, rerun: int) -> str:
    return _later_execution(run_id, RERUN_MARK, rerun)


def _later_execution(run_id: str, mark: str, number: int) -> str:
    name = f"{run_id}{mark}{number}"
    if len(name) > EXECUTION_NAME_LIMIT:
        raise ValueError(f"execution name {name} is longer than Step Functions' {EXECUTION_NAME_LIMIT}")
    return name


def pipeline_of_run(run_id: str) -> str:
    """Every run id starts with its pipeline's name, which has no '-' (PIPELINE_NAME_PATTERN)."""
    return run_id.split("-", 1)[0]


def run_id_of_execution(name: str) -> str:
    """The run an execution belongs to: its name, without a resume's -resume-<n> or a rerun's -rerun-<n>."""
    for later in (RESUME_MARK, RERUN_MARK):
        run, mark, number = name.rpartition(later)
        if mark and number.isdigit():
            return run
    return name


# ------------------------------------------------------------------------------------------ the table

RUN_PK_PREFIX = "RUN#"
RUN_SK = "RUN"
STEP_SK_PREFIX = "STEP#"
LEASE_PK_PREFIX = "CRAWLER#"
LEASE_SK = "LEASE"
OBJECT_PK_PREFIX = "OBJECT#"
OBJECT_SK = "OBJECT"
ACTIVE = "ACTIVE"  # active_pk of OPEN and COMPLETING steps (the sparse index the sweeper reads)
PENDING_CRAWL = "PENDING_CRAWL"  # active_pk of leases whose crawl waits for its crawler to stop (same index)
ACTIVE_INDEX = "ActiveSteps"
# The run index: every run item carries runs_pk = RUNS#<pipeline> and run_sort = <started_at>#<run_id> (set
# once, by the run's first execution), so the sparse index `Runs` lists a pipeline's runs newest first,
# any page or time window of them, without reading the rest. It projects RUN_INDEX_FIELDS (the template's
# NonKeyAttributes; a test holds them equal): what `runs list` shows, never the input or the cause.
RUNS_INDEX = "Runs"
RUNS_PK_PREFIX = "RUNS#"
RUN_SORT_SEPARATOR = "#"
RUN_INDEX_FIELDS = (
    "run_id",
    "pipeline",
    "status",
    "trigger",
    "started_at",
    "ended_at",
    "ingest_date",
    "executions",
    "failed_step",
    "error",
)


def run_pk(run_id: str) -> str:
    return RUN_PK_PREFIX + run_id


def run_key(run_id: str) -> dict[str, str]:
    return {"pk": run_pk(run_id), "sk": RUN_SK}


def step_key(run_id: str, step: str) -> dict[str, str]:
    return {"pk": run_pk(run_id), "sk": STEP_SK_PREFIX + step}


def runs_pk(pipeline: str) -> str:
    """The run index's partition of a pipeline's runs."""
    return RUNS_PK_PREFIX + pipeline


def run_sort(started_at: str, run_id: str) -> str:
    """A run's place in its pipeline's index: by start (ISO 8601 UTC), the run id breaking ties."""
    return f"{started_at}{RUN_SORT_SEPARATOR}{run_id}"


BACKFILL_PK_PREFIX = "BACKFILL#"
BACKFILL_SK = "BACKFILL"
BACKFILL_MARK = "-bf-"
BACKFILL_ID_PATTERN = PIPELINE_NAME_PATTERN.removesuffix("$") + re.escape(BACKFILL_MARK) + r"[0-9a-f]{16}$"
MAX_BACKFILL_RUNS = 1000  # one execution's history holds 25,000 events; an iteration takes ~15
MAX_BACKFILL_CONCURRENCY = 40  # an inline Map runs at most 40 iterations at once


def backfill_key(backfill: str) -> dict[str, str]:
    return {"pk": BACKFILL_PK_PREFIX + backfill, "sk": BACKFILL_SK}


def backfill_id(pipeline: str, from_step: str | None, run_ids: Iterable[str]) -> str:
    """Deterministic: the same runs rerun from the same step are the same backfill."""
    return f"{pipeline}{BACKFILL_MARK}{short_hash([from_step or '', *sorted(run_ids)], 16)}"


QUALITY_RUN_PK_PREFIX = "QUALITY_RUN#"
QUALITY_RUN_SK = "QUALITY_RUN"


def quality_run_key(evaluation_run_id: str) -> dict[str, str]:
    """Which step a Glue Data Quality evaluation run serves (its event names only the run)."""
    return {"pk": QUALITY_RUN_PK_PREFIX + evaluation_run_id, "sk": QUALITY_RUN_SK}


def lease_key(crawler: str) -> dict[str, str]:
    return {"pk": LEASE_PK_PREFIX + crawler, "sk": LEASE_SK}


# ------------------------------------------------------------------------------------------ the bucket

MANIFEST_PREFIX = "manifests"
SUMMARY_PREFIX = "summaries"
# Where a job copies the exact object versions of its run before reading them (safe names: no glob
# characters, no version to lose); the script deletes its copies, and a lifecycle rule expires leftovers.
STAGING_PREFIX = "staging"
LANDING_PREFIX = "landing/"  # every S3 trigger's prefix lies under it (the arrival rule matches it)


def manifest_key(run_id: str) -> str:
    return f"{MANIFEST_PREFIX}/{run_id}.json"


# A job's summary may report the columns it wrote, as [{"name": ..., "type": <Hive type>}, ...]: a catalog
# step with `columns_from: <job step>` creates and checks its table from them. (The Glue scripts are
# self-contained and write this key literally; a test holds them to it.)
SUMMARY_COLUMNS = "columns"


def summary_key(run_id: str, step: str) -> str:
    """Where a job step's script writes its summary (row counts), which completes the step's facts."""
    return f"{SUMMARY_PREFIX}/{run_id}/{step}.json"


def staging_key(run_id: str, step: str, attempt: int) -> str:
    """A job step attempt's own staging folder (an attempt being stopped never deletes the next's copies)."""
    return f"{STAGING_PREFIX}/{run_id}/{step}/{attempt}/"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def job_uris(bucket: str, run_id: str, step: str, attempt: int) -> dict[str, str]:
    """Where a job step's run writes: its summary, and its staging folder."""
    return {
        SUMMARY_ARG: s3_uri(bucket, summary_key(run_id, step)),
        STAGING_ARG: s3_uri(bucket, staging_key(run_id, step, attempt)),
    }


# ------------------------------------------------------------------------------------------ job arguments

# What gluerelay adds to every job run: the run and step it serves (on_glue_event and the sweeper find the
# step from Glue's own record of the run), where the script writes its summary, and a staging folder of
# its own (where a script that reads landed objects copies their exact versions first).
RUN_ID_ARG = "--run_id"
STEP_ARG = "--gluerelay_step"
ATTEMPT_ARG = "--gluerelay_attempt"
SUMMARY_ARG = "--summary_uri"
STAGING_ARG = "--staging_uri"
GLUERELAY_ARGUMENTS = (RUN_ID_ARG, STEP_ARG, ATTEMPT_ARG, SUMMARY_ARG, STAGING_ARG)
# A pipeline passes only its scripts' own snake_case arguments. Glue consumes hyphenated and camelCase ones
# itself (--extra-py-files, --additional-python-modules, --TempDir, --scriptLocation, --JOB_NAME, ...), and
# these snake_case names it reserves for internal use.
SCRIPT_ARGUMENT_PATTERN = r"^--[a-z][a-z0-9_]{0,62}$"
GLUE_INTERNAL_ARGUMENTS = frozenset({"--conf", "--debug", "--mode", "--class"})


def argument_problem(name: str) -> str | None:
    """Why a pipeline may not set this job argument, or None when it may."""
    if name in GLUERELAY_ARGUMENTS:
        return f"{name} is set by gluerelay for every job run"
    if name in GLUE_INTERNAL_ARGUMENTS:
        return f"{name} is reserved by Glue for internal use"
    if not re.fullmatch(SCRIPT_ARGUMENT_PATTERN, name):
        return (
            f"{name} is not a script argument (--lower_snake_case): Glue consumes hyphenated and camelCase "
            "arguments itself (--extra-py-files, --TempDir, ...), and those belong on the job's resource"
        )
    return None


# ------------------------------------------------------------------------------------------ runs


class Trigger(StrEnum):
    S3 = "s3"
    SCHEDULE = "schedule"
    MANUAL = "manual"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"  # a step outlived its TimeoutSeconds
    ABORTED = "ABORTED"  # someone stopped the execution

    @property
    def ended(self) -> bool:
        return self is not RunStatus.RUNNING


ParamValue = str | int | float | bool


class ExecutionInput(BaseModel):
    """What every pipeline execution starts with. Every key is always present: the state machine reads
    them with JSONPath, which fails on a missing one."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    trigger: Trigger
    ingest_date: str = Field(description="YYYY-MM-DD: the partition the run writes")
    manifest_uri: str = Field(default="", description="s3:// URI of the run's manifest; empty without one")
    params: dict[str, ParamValue] = Field(default_factory=dict)

    @field_validator("ingest_date")
    @classmethod
    def _a_date(cls, value: str) -> str:
        return date.fromisoformat(value).isoformat()

    def to_json(self) -> str:
        return self.model_dump_json()


class BackfillInput(BaseModel):
    """What a backfill's execution starts with (the backfill state machine reads every key)."""

    model_config = ConfigDict(extra="forbid")

    backfill_id: str = Field(pattern=BACKFILL_ID_PATTERN)
    pipeline: str = Field(pattern=PIPELINE_NAME_PATTERN)
    from_step: str | None = Field(default=None, description="None: every step of each run")
    max_concurrent: int = Field(ge=1, le=MAX_BACKFILL_CONCURRENCY)
    runs: list[str] = Field(min_length=1, max_length=MAX_BACKFILL_RUNS)


class LandedObject(BaseModel):
    """One version of one object under a pipeline's landing prefix."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int | None = None

    @property
    def uri(self) -> str:
        return s3_uri(self.bucket, self.key)

    @property
    def lineage_source(self) -> str:
        """How the rows read from this version name it (job 1's `lineage_source` column; the Glue scripts,
        self-contained, write the same form)."""
        return f"{self.uri}?versionId={self.version_id}" if self.version_id else self.uri

    @property
    def claim_pk(self) -> str:
        """Its claim's key in the control table: one claim per version (per content, unversioned)."""
        return f"{OBJECT_PK_PREFIX}{self.bucket}/{self.key}#{self.etag}#{self.version_id or ''}"


class Manifest(BaseModel):
    """The objects of a run (manifests/<run_id>.json): jobs read exactly these, never a listing."""

    run_id: str
    pipeline: str
    objects: list[LandedObject]

    @property
    def uris(self) -> list[str]:
        return [o.uri for o in self.objects]


class RunAttempt(BaseModel):
    """A rerun of the run, as its record keeps it (`attempts`): who asked, when, from which step."""

    model_config = ConfigDict(extra="ignore")

    number: int = Field(description="1 for the run's first rerun, then 2, ...")
    from_step: str | None = Field(description="None: every step")
    steps: list[str] = Field(description="the steps it re-executes, in the pipeline's order")
    by: str = Field(description="who asked: an IAM principal's ARN, or the backfill")
    at: str = Field(description="when it was asked (ISO 8601, UTC)")
    execution: str = Field(description="its execution's name: <run>-rerun-<number>")
    key: str | None = Field(default=None, description="what makes asking again idempotent (a backfill's id)")
    replaced: list[str] = Field(default_factory=list, description="landed objects read at a newer version")


class RunRecord(BaseModel):
    """The run's item (RUN#<run_id> / RUN): the state machine and close_run write it, the tooling reads it."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    pipeline: str
    status: RunStatus
    trigger: Trigger | None = None
    execution_arn: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    ingest_date: str | None = None
    executions: int = 1
    input: str | None = None  # the first execution's input (JSON): what a resume starts again with
    failed_step: str | None = None
    error: str | None = None
    cause: str | None = None
    reruns: int = 0
    attempts: list[RunAttempt] = Field(default_factory=list)  # its reruns, oldest first

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RunRecord:
        """From a plain item (values already unwrapped from DynamoDB's typed form)."""
        counts = {"executions", "reruns"}
        return cls.model_validate({k: (int(v) if k in counts else v) for k, v in item.items()})

    def execution_input(self) -> ExecutionInput:
        if not self.input:
            raise ValueError(f"run {self.run_id} has no recorded input")
        return ExecutionInput.model_validate_json(self.input)


# ------------------------------------------------------------------------------------------ the catalog

ParamType = Literal["string", "int", "number", "bool", "date"]


class ParamSpec(BaseModel):
    """A run parameter a pipeline declares: steps use it as {param.<name>} in their arguments."""

    model_config = ConfigDict(extra="forbid")

    type: ParamType = Field(default="string", description="what values it takes (`date`: YYYY-MM-DD)")
    default: ParamValue | None = Field(default=None, description="used when a run does not set it")
    allowed: list[ParamValue] | None = Field(default=None, description="the only values accepted")
    description: str = Field(default="", description="for people: shown by `gluerelay pipelines show`")

    def coerce(self, name: str, value: Any) -> ParamValue:
        """The value as this parameter's type; ValueError names the parameter and what it accepts."""
        try:
            typed = _coerce(self.type, value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"parameter {name}={value!r} is not a {self.type}") from e
        if self.allowed is not None and typed not in [_coerce(self.type, a) for a in self.allowed]:
            accepted = ", ".join(str(a) for a in self.allowed)
            raise ValueError(f"parameter {name}={value!r} is not one of: {accepted}")
        return typed


def _coerce(kind: ParamType, value: Any) -> ParamValue:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered not in {"true", "false"}:
            raise ValueError(value)
        return lowered == "true"
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if kind == "date":
        return date.fromisoformat(str(value)).isoformat()
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise TypeError(value)
    return str(value)


def resolve_params(specs: Mapping[str, ParamSpec], given: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Every declared parameter's value for a run: given ones checked and typed, the rest defaulted.
    ValueError names an undeclared, ill-typed or missing parameter."""
    unknown = sorted(set(given) - set(specs))
    if unknown:
        declared = ", ".join(sorted(specs)) or "none"
        raise ValueError(f"unknown parameter {', '.join(unknown)} (declared: {declared})")
    resolved: dict[str, ParamValue] = {}
    for name, spec in specs.items():
        if name in given:
            resolved[name] = spec.coerce(name, given[name])
        elif spec.default is not None:
            resolved[name] = spec.coerce(name, spec.default)
        else:
            raise ValueError(f"parameter {name} has no default: set it (--param {name}=...)")
    return resolved


class S3Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(description=f"where the pipeline's files land: a folder under {LANDING_PREFIX}")
    batch_size: int = Field(
        default=100, ge=1, le=10_000, description="the most objects one run takes (a bigger batch is split)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_own_window(cls, value: Any) -> Any:
        if isinstance(value, dict) and {"window", "window_seconds"} & value.keys():
            raise ValueError(
                "a pipeline has no batching window of its own: one arrival queue serves every pipeline, and "
                "how long it gathers objects is the stack's ArrivalBatchingWindowSeconds parameter"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _under_landing(cls, value: str) -> str:
        if not value.startswith(LANDING_PREFIX) or not value.endswith("/") or value == LANDING_PREFIX:
            raise ValueError(f"must be a folder under {LANDING_PREFIX} ending in '/', e.g. landing/orders/")
        if any(c in value for c in "*?[]{}"):
            raise ValueError("is a literal folder, not a pattern")
        return value


class ScheduleTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str = Field(description="rate(N minutes|hours|days) or cron(min hour day month weekday year)")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="this schedule's run parameters")


class CatalogStep(BaseModel):
    """What the functions know of a step: where it sits in the graph, and whether it reads the manifest."""

    needs: list[str] = Field(default_factory=list)
    reads_manifest: bool = False


class CatalogPipeline(BaseModel):
    """What the functions know of a pipeline: how runs of it start, and its steps (what a rerun redoes)."""

    name: str = Field(pattern=PIPELINE_NAME_PATTERN)
    s3: S3Trigger | None = None
    schedules: list[ScheduleTrigger] = Field(default_factory=list)
    manual: bool = True
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    steps: dict[str, CatalogStep] = Field(default_factory=dict)  # in the pipeline file's order


class Catalog(BaseModel):
    """Every pipeline of the stack (relay/pipelines.json, compiled from pipelines/*.yaml)."""

    pipelines: dict[str, CatalogPipeline] = Field(default_factory=dict)

    def for_key(self, key: str) -> CatalogPipeline | None:
        """The pipeline whose landing prefix holds this object key (prefixes never overlap)."""
        return next(
            (p for p in self.pipelines.values() if p.s3 is not None and key.startswith(p.s3.prefix)), None
        )

    def to_json(self) -> str:
        return (
            json.dumps(self.model_dump(mode="json", exclude_defaults=True), indent=2, sort_keys=True) + "\n"
        )


CATALOG_FILE = "pipelines.json"


@cache
def catalog() -> Catalog:
    """The compiled catalog deployed with the functions (read once per execution environment)."""
    text = resources.files("relay").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return Catalog.model_validate_json(text)
