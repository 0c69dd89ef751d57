"""What the logic needs from AWS, as interfaces: adapters implement them over boto3, tests with fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from relay.contract import ExecutionInput, Manifest, RunAttempt, RunRecord, RunStatus
from relay.models import (
    Claim,
    Crawl,
    CrawlerStatus,
    JobRun,
    LandedObject,
    Lease,
    Outcome,
    Step,
    StepRef,
    StepRequest,
    StepStatus,
)


class StepStore(Protocol):
    def open_step(self, request: StepRequest, now: datetime) -> Step:
        """Write the step as OPEN with this request's token (a retry of the state opens a new attempt).
        A step that already SUCCEEDED in this run (a resumed run) is returned as it is, unchanged."""

    def get_step(self, ref: StepRef) -> Step | None: ...

    def record_glue_run(self, ref: StepRef, attempt: int, glue_run_id: str) -> None: ...

    def mark_start_failed(self, ref: StepRef, attempt: int, error: str, now: datetime) -> None: ...

    def record_fallback(self, ref: StepRef, attempt: int, crawler: str, drift: dict[str, Any]) -> None:
        """A catalog step found its table drifted and waits for this crawler's crawl instead."""

    def record_quality_run(
        self, ref: StepRef, attempt: int, evaluation_run_id: str, rules: list[dict[str, Any]]
    ) -> None:
        """A quality step's evaluation run (and the rules it judges by): on the step, and findable by the
        run's id (quality_run_step)."""

    def quality_run_step(self, evaluation_run_id: str) -> tuple[StepRef, int] | None:
        """The step and attempt an evaluation run was started for; None when gluerelay did not start it."""

    def begin_completion(
        self, step: Step, outcome: Outcome, now: datetime, repaired_by: str | None = None
    ) -> Step:
        """OPEN → COMPLETING for this step's token, storing the outcome; ConditionFailedError if another
        event or the sweeper got there first."""

    def finish_completion(self, step: Step, status: StepStatus, now: datetime) -> None:
        """COMPLETING → status, for this step's token (its attempt). A step another completer has already
        closed, or that was opened again since, keeps its status."""

    def active_steps(self, opened_before: datetime) -> list[Step]:
        """OPEN and COMPLETING steps opened before the given time, oldest first."""

    def run_steps(self, run_id: str) -> list[Step]:
        """Every step of the run."""

    def supersede_step(self, run_id: str, step: str, rerun: int, now: datetime) -> None:
        """Mark the step SUPERSEDED by this rerun, so start_step opens it again; nothing for a step the run
        never reached. ConditionFailedError for a step still open (OPEN or COMPLETING)."""


class RunStore(Protocol):
    def get_run(self, run_id: str) -> RunRecord | None: ...

    def end_run(
        self,
        run_id: str,
        execution_arn: str,
        status: RunStatus,
        now: datetime,
        *,
        failed_step: str | None,
        error: str,
        cause: str,
    ) -> bool:
        """RUNNING → status for the run's current execution; False when the run was already ended or a
        later execution (a resume) runs it now."""

    def claim_rerun(self, run_id: str, attempt: RunAttempt, previous: int) -> None:
        """Count the rerun and keep it in the run's attempts if the run has had `previous` reruns and is
        not RUNNING; ConditionFailedError otherwise (another rerun or resume got there first)."""


class LeaseStore(Protocol):
    def get_lease(self, crawler: str) -> Lease: ...

    def put_lease(self, lease: Lease, expected_version: int) -> None:
        """Write the lease if its stored version is still ``expected_version`` (else ConditionFailedError)."""

    def pending_crawls(self) -> list[str]:
        """The crawlers whose lease waits in PENDING_START for the crawler to stop."""


class ObjectLedger(Protocol):
    def claim(self, obj: LandedObject, run_id: str, now: datetime) -> Claim | None:
        """Record that ``run_id`` processes ``obj``. None when the claim is ours (new, or ours from an
        earlier attempt); otherwise the claim that holds it."""

    def take_over(self, obj: LandedObject, from_run: str, to_run: str, now: datetime) -> bool: ...


class Glue(Protocol):
    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str: ...

    def get_job_run(self, job_name: str, run_id: str) -> JobRun: ...

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        """Ask Glue to stop a job run (it ends STOPPED); a run that already ended is left as it is."""

    def find_job_run(self, job_name: str, arguments: dict[str, str]) -> JobRun | None:
        """The most recent run of ``job_name`` started with all of ``arguments``, if any."""

    def job_max_retries(self, job_name: str) -> int:
        """How many times Glue itself starts a FAILED run of the job again (the job's MaxRetries)."""

    def start_crawler(self, crawler: str) -> None: ...

    def get_crawler(self, crawler: str) -> CrawlerStatus: ...

    def recent_crawls(self, crawler: str) -> list[Crawl]: ...

    def get_table(self, database: str, table: str) -> dict[str, Any] | None:
        """GetTable's `Table`, or None when the table does not exist."""

    def create_table(self, database: str, table_input: dict[str, Any]) -> bool:
        """CreateTable; False when the table exists already (created meanwhile)."""

    def batch_create_partition(
        self, database: str, table: str, partitions: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """BatchCreatePartition; its `Errors` (one per partition Glue did not create)."""

    def batch_update_partition(
        self, database: str, table: str, entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """BatchUpdatePartition; its `Errors`."""

    def put_ruleset(self, name: str, document: str, database: str, table: str) -> None:
        """The Data Quality ruleset `name` holds `document` (created, or updated when it differs)."""

    def start_quality_run(
        self, ruleset: str, *, database: str, table: str, predicate: str, role: str, token: str
    ) -> str:
        """StartDataQualityRulesetEvaluationRun over the table's rows `predicate` selects; the run's id. The
        same token starts one run however often it is asked."""

    def get_quality_run(self, run_id: str) -> dict[str, Any]:
        """GetDataQualityRulesetEvaluationRun."""

    def get_quality_result(self, result_id: str) -> dict[str, Any]:
        """GetDataQualityResult."""


class Workflow(Protocol):
    def send_success(self, token: str, output: dict[str, Any]) -> None: ...

    def send_failure(self, token: str, error: str, cause: str) -> None: ...

    def start_execution(self, pipeline: str, name: str, execution_input: ExecutionInput) -> str: ...

    def execution_exists(self, pipeline: str, name: str) -> bool: ...


class DataBucket(Protocol):
    def job_uris(self, run_id: str, step: str, attempt: int) -> dict[str, str]:
        """Where a job step attempt's run writes, as its arguments (contract.job_uris)."""

    def read_summary(self, run_id: str, step: str) -> dict[str, Any] | None: ...

    def write_manifest(self, manifest: Manifest) -> str:
        """Store the run's manifest; its s3:// URI."""

    def read_manifest(self, run_id: str) -> Manifest | None: ...

    def current_version(self, bucket: str, key: str) -> LandedObject | None:
        """The object's current version (HeadObject), or None when it no longer exists."""


@dataclass
class ControlPlane:
    """The ports every decision needs, bundled once per invocation."""

    steps: StepStore
    runs: RunStore
    leases: LeaseStore
    glue: Glue
    workflow: Workflow
    bucket: DataBucket
    ledger: ObjectLedger
