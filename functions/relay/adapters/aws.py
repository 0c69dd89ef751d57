"""Glue, Step Functions and S3 behind the control plane's ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from relay.contract import ExecutionInput, Manifest, job_uris, manifest_key, s3_uri, summary_key
from relay.errors import (
    CatalogError,
    ConcurrentRunsExceededException,
    CrawlerRunningError,
    ExecutionAlreadyExistsError,
    GlueRefusedError,
    NotFoundError,
    QualityError,
    TaskAlreadyClosedError,
)
from relay.models import Crawl, CrawlerStatus, JobRun, LandedObject

# Step Functions limits: error ≤ 256 characters, cause ≤ 32,768.
MAX_ERROR = 256
MAX_CAUSE = 32_768
FIND_JOB_RUN_PAGES = 3


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def _glue_errors(what: str) -> Iterator[None]:
    """Glue's errors as the control plane's: a missing entity is NotFoundError naming `what`."""
    try:
        yield
    except ClientError as e:
        code = _code(e)
        if code == "EntityNotFoundException":
            raise NotFoundError(f"{what} does not exist") from e
        if code == "ConcurrentRunsExceededException":
            raise ConcurrentRunsExceededException(str(e)) from e
        if code == "CrawlerRunningException":
            raise CrawlerRunningError(f"{what} is already running") from e
        raise


@contextmanager
def _refusals(operation: str, refusal: type[GlueRefusedError] = CatalogError) -> Iterator[None]:
    """Glue's refusals (after boto3's own retries of throttling) as the step's GlueRefusedError."""
    try:
        yield
    except ClientError as e:
        error = e.response.get("Error", {})
        raise refusal(_code(e) or "GlueRefused", f"{operation}: {error.get('Message', e)}") from e


class GlueService:
    def __init__(self, client: Any) -> None:
        self._glue = client

    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str:
        with _glue_errors(f"Glue job {job_name}"):
            return str(self._glue.start_job_run(JobName=job_name, Arguments=arguments)["JobRunId"])

    def get_job_run(self, job_name: str, run_id: str) -> JobRun:
        with _glue_errors(f"Glue job run {job_name}/{run_id}"):
            run = self._glue.get_job_run(JobName=job_name, RunId=run_id, PredecessorsIncluded=False)["JobRun"]
        return self._job_run(run)

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        errors = self._glue.batch_stop_job_run(JobName=job_name, JobRunIds=[run_id]).get("Errors", [])
        # Glue refuses to stop a run that has ended meanwhile: nothing left to do. Any other refusal is real.
        if errors and not self.get_job_run(job_name, run_id).terminal:
            detail = errors[0].get("ErrorDetail", {})
            raise RuntimeError(
                f"Glue could not stop job run {job_name}/{run_id}: "
                f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
            )

    def find_job_run(self, job_name: str, arguments: dict[str, str]) -> JobRun | None:
        kwargs: dict[str, Any] = {"JobName": job_name}
        for _ in range(FIND_JOB_RUN_PAGES):
            try:
                page = self._glue.get_job_runs(**kwargs)
            except ClientError as e:
                if _code(e) == "EntityNotFoundException":
                    return None
                raise
            for run in page.get("JobRuns", []):
                given = run.get("Arguments", {})
                if all(given.get(k) == v for k, v in arguments.items()):
                    return self._job_run(run)
            if not page.get("NextToken"):
                return None
            kwargs["NextToken"] = page["NextToken"]
        return None

    @staticmethod
    def _job_run(run: dict[str, Any]) -> JobRun:
        return JobRun(
            job_name=run["JobName"],
            run_id=run["Id"],
            state=run["JobRunState"],
            arguments=run.get("Arguments", {}),
            started_on=run.get("StartedOn"),
            completed_on=run.get("CompletedOn"),
            execution_time_seconds=run.get("ExecutionTime"),
            dpu_seconds=run.get("DPUSeconds"),
            error_message=run.get("ErrorMessage"),
            attempt=run.get("Attempt") or 0,
            previous_run_id=run.get("PreviousRunId"),
        )

    def job_max_retries(self, job_name: str) -> int:
        with _glue_errors(f"Glue job {job_name}"):
            job = self._glue.get_job(JobName=job_name)["Job"]
        return int(job.get("MaxRetries") or 0)

    def start_crawler(self, crawler: str) -> None:
        with _glue_errors(f"Glue crawler {crawler}"):
            self._glue.start_crawler(Name=crawler)

    def get_crawler(self, crawler: str) -> CrawlerStatus:
        with _glue_errors(f"Glue crawler {crawler}"):
            found = self._glue.get_crawler(Name=crawler)["Crawler"]
        return CrawlerStatus(name=crawler, state=found.get("State", "READY"))

    def recent_crawls(self, crawler: str) -> list[Crawl]:
        with _glue_errors(f"Glue crawler {crawler}"):
            crawls = self._glue.list_crawls(CrawlerName=crawler, MaxResults=20).get("Crawls", [])
        return [
            Crawl(
                crawl_id=c.get("CrawlId"),
                state=c.get("State", "RUNNING"),
                started_on=c.get("StartTime"),
                completed_on=c.get("EndTime"),
                error_message=c.get("ErrorMessage"),
                summary=c.get("Summary"),
            )
            for c in crawls
        ]

    # --- the Data Catalog (catalog steps) ---

    def get_table(self, database: str, table: str) -> dict[str, Any] | None:
        try:
            with _refusals(f"GetTable {database}.{table}"):
                return dict(self._glue.get_table(DatabaseName=database, Name=table)["Table"])
        except CatalogError as e:
            if e.code == "EntityNotFoundException" and "database" not in e.message.lower():
                return None
            raise

    def create_table(self, database: str, table_input: dict[str, Any]) -> bool:
        try:
            with _refusals(f"CreateTable {database}.{table_input['Name']}"):
                self._glue.create_table(DatabaseName=database, TableInput=table_input)
        except CatalogError as e:
            if e.code == "AlreadyExistsException":
                return False
            raise
        return True

    def batch_create_partition(
        self, database: str, table: str, partitions: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        with _refusals(f"BatchCreatePartition {database}.{table}"):
            response = self._glue.batch_create_partition(
                DatabaseName=database, TableName=table, PartitionInputList=partitions
            )
        return list(response.get("Errors", []))

    def batch_update_partition(
        self, database: str, table: str, entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        with _refusals(f"BatchUpdatePartition {database}.{table}"):
            response = self._glue.batch_update_partition(
                DatabaseName=database, TableName=table, Entries=entries
            )
        return list(response.get("Errors", []))

    # --- Glue Data Quality (quality steps) ---

    def put_ruleset(self, name: str, document: str, database: str, table: str) -> None:
        found = self._ruleset(name)
        if found is None:
            try:
                with _refusals(f"CreateDataQualityRuleset {name}", QualityError):
                    self._glue.create_data_quality_ruleset(
                        Name=name,
                        Ruleset=document,
                        Description="gluerelay: a quality step's rules (pipelines/*.yaml)",
                        TargetTable={"DatabaseName": database, "TableName": table},
                    )
            except QualityError as e:
                if e.code != "AlreadyExistsException":
                    raise
                found = self._ruleset(name)  # another run created it meanwhile: compare with it
        if found is not None and found.get("Ruleset") != document:  # the pipeline file's rules changed
            with _refusals(f"UpdateDataQualityRuleset {name}", QualityError):
                self._glue.update_data_quality_ruleset(Name=name, Ruleset=document)

    def _ruleset(self, name: str) -> dict[str, Any] | None:
        try:
            with _refusals(f"GetDataQualityRuleset {name}", QualityError):
                return dict(self._glue.get_data_quality_ruleset(Name=name))
        except QualityError as e:
            if e.code == "EntityNotFoundException":
                return None
            raise

    def start_quality_run(
        self, ruleset: str, *, database: str, table: str, predicate: str, role: str, token: str
    ) -> str:
        source: dict[str, Any] = {"DatabaseName": database, "TableName": table}
        if predicate:
            source["AdditionalOptions"] = {"pushDownPredicate": predicate}
        with _refusals(f"StartDataQualityRulesetEvaluationRun {ruleset}", QualityError):
            started = self._glue.start_data_quality_ruleset_evaluation_run(
                DataSource={"GlueTable": source}, Role=role, RulesetNames=[ruleset], ClientToken=token
            )
        return str(started["RunId"])

    def get_quality_run(self, run_id: str) -> dict[str, Any]:
        with _refusals(f"GetDataQualityRulesetEvaluationRun {run_id}", QualityError):
            return dict(self._glue.get_data_quality_ruleset_evaluation_run(RunId=run_id))

    def get_quality_result(self, result_id: str) -> dict[str, Any]:
        with _refusals(f"GetDataQualityResult {result_id}", QualityError):
            return dict(self._glue.get_data_quality_result(ResultId=result_id))


class StepFunctionsService:
    """Task tokens, and the executions of the stack's pipelines: the state machine of pipeline P is
    `<state_machine_arn_prefix>P` (`arn:…:stateMachine:<stack>_`)."""

    def __init__(self, client: Any, state_machine_arn_prefix: str | None = None) -> None:
        self._sfn = client
        self._prefix = state_machine_arn_prefix

    def send_success(self, token: str, output: dict[str, Any]) -> None:
        self._closing(
            lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output, default=str))
        )

    def send_failure(self, token: str, error: str, cause: str) -> None:
        self._closing(
            lambda: self._sfn.send_task_failure(
                taskToken=token, error=error[:MAX_ERROR], cause=cause[:MAX_CAUSE]
            )
        )

    @staticmethod
    def _closing(call: Any) -> None:
        try:
            call()
        except ClientError as e:
            # InvalidToken is not here: a malformed token is a bug to surface, not a closed task.
            if _code(e) in {"TaskTimedOut", "TaskDoesNotExist"}:
                raise TaskAlreadyClosedError(f"{_code(e)}: {e}") from e
            raise

    def state_machine_arn(self, pipeline: str) -> str:
        if not self._prefix:
            raise ValueError("this function has no STATE_MACHINE_ARN_PREFIX")
        return self._prefix + pipeline

    def start_execution(self, pipeline: str, name: str, execution_input: ExecutionInput) -> str:
        try:
            return str(
                self._sfn.start_execution(
                    stateMachineArn=self.state_machine_arn(pipeline),
                    name=name,
                    input=execution_input.to_json(),
                )["executionArn"]
            )
        except ClientError as e:
            if _code(e) == "ExecutionAlreadyExists":
                raise ExecutionAlreadyExistsError(f"execution {name} exists") from e
            if _code(e) == "StateMachineDoesNotExist":
                raise NotFoundError(
                    f"pipeline {pipeline} has no state machine {self.state_machine_arn(pipeline)}: "
                    "is its block in template.yaml deployed?"
                ) from e
            raise

    def execution_exists(self, pipeline: str, name: str) -> bool:
        # arn:<partition>:states:<region>:<account>:stateMachine:<machine> → …:execution:<machine>:<name>
        prefix, _, machine = self.state_machine_arn(pipeline).rpartition(":stateMachine:")
        try:
            self._sfn.describe_execution(executionArn=f"{prefix}:execution:{machine}:{name}")
        except ClientError as e:
            if _code(e) == "ExecutionDoesNotExist":
                return False
            raise
        return True


class DataBucketService:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def job_uris(self, run_id: str, step: str, attempt: int) -> dict[str, str]:
        return job_uris(self._bucket, run_id, step, attempt)

    def read_summary(self, run_id: str, step: str) -> dict[str, Any] | None:
        key = summary_key(run_id, step)
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as e:
            if _code(e) in {"NoSuchKey", "404"}:
                return None
            raise
        try:
            summary = json.loads(body)
        except ValueError:
            return None
        return summary if isinstance(summary, dict) else None

    def read_manifest(self, run_id: str) -> Manifest | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=manifest_key(run_id))["Body"].read()
        except ClientError as e:
            if _code(e) in {"NoSuchKey", "404"}:
                return None
            raise
        return Manifest.model_validate_json(body)

    def current_version(self, bucket: str, key: str) -> LandedObject | None:
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if _code(e) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return LandedObject(
            bucket=bucket,
            key=key,
            etag=str(head.get("ETag", "")).strip('"'),
            version_id=head.get("VersionId"),
            size=head.get("ContentLength"),
        )

    def write_manifest(self, manifest: Manifest) -> str:
        key = manifest_key(manifest.run_id)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=manifest.model_dump_json(exclude_none=True).encode(),
            ContentType="application/json",
        )
        return s3_uri(self._bucket, key)
