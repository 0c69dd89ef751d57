"""In-memory stand-ins for the control plane's ports: the logic's unit tests run with no network."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.contract import ExecutionInput, Manifest, RunAttempt, RunRecord, RunStatus, job_uris
from relay.errors import (
    ConcurrentRunsExceededException,
    ConditionFailedError,
    CrawlerRunningError,
    ExecutionAlreadyExistsError,
    NotFoundError,
    TaskAlreadyClosedError,
)
from relay.models import (
    Claim,
    Crawl,
    CrawlerStatus,
    JobRun,
    LandedObject,
    Lease,
    LeaseState,
    Outcome,
    Step,
    StepRef,
    StepRequest,
    StepStatus,
)
from relay.ports import ControlPlane

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict[str, Any]:
    """A shared AWS-shaped sample event from events/ (the one source of event shapes)."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


class FakeStore:
    def __init__(self) -> None:
        self.steps: dict[StepRef, Step] = {}
        self.leases: dict[str, Lease] = {}
        self.claims: dict[LandedObject, tuple[str, datetime]] = {}
        self.runs: dict[str, RunRecord] = {}
        self.quality_runs: dict[str, tuple[StepRef, int]] = {}

    def open_step(self, request: StepRequest, now: datetime) -> Step:
        ref = StepRef(run_id=request.run_id, step=request.step)
        previous = self.steps.get(ref)
        if previous is not None and previous.status == StepStatus.SUCCEEDED:
            return previous.model_copy()
        step = Step(
            run_id=request.run_id,
            step=request.step,
            pipeline=request.pipeline,
            execution_arn=request.execution_arn,
            timeout_seconds=request.timeout_seconds,
            kind=request.kind,
            resource=request.name,
            status=StepStatus.OPEN,
            token=request.token,
            attempt=previous.attempt + 1 if previous else 1,
            opened_at=now,
        )
        self.steps[ref] = step
        return step

    def get_step(self, ref: StepRef) -> Step | None:
        return self.steps.get(ref)

    def record_glue_run(self, ref: StepRef, attempt: int, glue_run_id: str) -> None:
        self._at_attempt(ref, attempt).glue_run_id = glue_run_id

    def mark_start_failed(self, ref: StepRef, attempt: int, error: str, now: datetime) -> None:
        self._at_attempt(ref, attempt).status = StepStatus.START_FAILED

    def record_quality_run(
        self, ref: StepRef, attempt: int, evaluation_run_id: str, rules: list[dict[str, Any]]
    ) -> None:
        self.quality_runs[evaluation_run_id] = (ref, attempt)
        step = self._at_attempt(ref, attempt)
        step.glue_run_id, step.quality_rules = evaluation_run_id, rules

    def quality_run_step(self, evaluation_run_id: str) -> tuple[StepRef, int] | None:
        return self.quality_runs.get(evaluation_run_id)

    def record_fallback(self, ref: StepRef, attempt: int, crawler: str, drift: dict[str, Any]) -> None:
        step = self._at_attempt(ref, attempt)
        step.crawler, step.drift = crawler, drift

    def _at_attempt(self, ref: StepRef, attempt: int) -> Step:
        step = self.steps[ref]
        if step.attempt != attempt:
            raise ConditionFailedError("attempt moved on")
        return step

    def begin_completion(
        self, step: Step, outcome: Outcome, now: datetime, repaired_by: str | None = None
    ) -> Step:
        stored = self.steps[step.ref]
        if stored.status != StepStatus.OPEN or stored.token != step.token:
            raise ConditionFailedError("not open")
        stored.status, stored.outcome, stored.repaired_by = StepStatus.COMPLETING, outcome, repaired_by
        stored.decided_at = now
        return stored.model_copy()

    def finish_completion(self, step: Step, status: StepStatus, now: datetime) -> None:
        stored = self.steps[step.ref]
        if stored.status == StepStatus.COMPLETING and stored.token == step.token:
            stored.status, stored.closed_at = status, now

    def active_steps(self, opened_before: datetime) -> list[Step]:
        active = [
            s.model_copy()
            for s in self.steps.values()
            if s.status in {StepStatus.OPEN, StepStatus.COMPLETING} and s.opened_at < opened_before
        ]
        return sorted(active, key=lambda s: s.opened_at)

    def run_steps(self, run_id: str) -> list[Step]:
        return [s.model_copy() for s in self.steps.values() if s.run_id == run_id]

    def supersede_step(self, run_id: str, step: str, rerun: int, now: datetime) -> None:
        stored = self.steps.get(StepRef(run_id=run_id, step=step))
        if stored is None:
            return
        if stored.status in {StepStatus.OPEN, StepStatus.COMPLETING}:
            raise ConditionFailedError(f"step {run_id}/{step} is still open")
        stored.status = StepStatus.SUPERSEDED

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def claim_rerun(self, run_id: str, attempt: RunAttempt, previous: int) -> None:
        run = self.runs.get(run_id)
        if run is None or run.reruns != previous or run.status is RunStatus.RUNNING:
            raise ConditionFailedError(f"run {run_id} was rerun or resumed meanwhile")
        attempts = [*run.attempts, attempt]
        self.runs[run_id] = run.model_copy(update={"reruns": attempt.number, "attempts": attempts})

    def set_run(self, run_id: str, status: RunStatus, execution_arn: str = "arn:execution:1") -> None:
        self.runs[run_id] = RunRecord(run_id=run_id, pipeline="p", status=status, execution_arn=execution_arn)

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
        run = self.runs.get(run_id)
        if run is None or run.status is not RunStatus.RUNNING or run.execution_arn != execution_arn:
            return False
        self.runs[run_id] = run.model_copy(
            update={"status": status, "failed_step": failed_step, "error": error, "cause": cause}
        )
        return True

    def get_lease(self, crawler: str) -> Lease:
        return self.leases.get(crawler, Lease(crawler=crawler)).model_copy(deep=True)

    def put_lease(self, lease: Lease, expected_version: int) -> None:
        if self.get_lease(lease.crawler).version != expected_version:
            raise ConditionFailedError("lease changed")
        self.leases[lease.crawler] = lease.model_copy(deep=True)

    def pending_crawls(self) -> list[str]:
        return [name for name, lease in self.leases.items() if lease.state == LeaseState.PENDING_START]

    def claim(self, obj: LandedObject, run_id: str, now: datetime) -> Claim | None:
        holder, since = self.claims.setdefault(obj, (run_id, now))
        return None if holder == run_id else Claim(run_id=holder, claimed_at=since)

    def take_over(self, obj: LandedObject, from_run: str, to_run: str, now: datetime) -> bool:
        if self.claims.get(obj, ("", now))[0] != from_run:
            return False
        self.claims[obj] = (to_run, now)
        return True


class FakeGlue:
    def __init__(self) -> None:
        self.job_runs: dict[str, JobRun] = {}
        self.crawls: dict[str, list[Crawl]] = {}
        self.crawler_state: dict[str, str] = {}
        self.crawls_started: list[str] = []
        self.refuse_job_runs = False
        self.stopped: list[str] = []
        self.max_retries: dict[str, int] = {}
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}
        self.partitions: dict[tuple[str, str], dict[tuple[str, ...], dict[str, Any]]] = {}
        self.partition_updates = 0
        self.rulesets: dict[str, str] = {}
        self.quality_runs: dict[str, dict[str, Any]] = {}  # evaluation runs, as Glue records them
        self.quality_results: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}
        self._ids = itertools.count(1)

    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str:
        if self.refuse_job_runs:
            raise ConcurrentRunsExceededException(f"{job_name}: concurrent runs exceeded")
        run_id = f"jr_{next(self._ids):04d}"
        self.job_runs[run_id] = JobRun(job_name=job_name, run_id=run_id, state="RUNNING", arguments=arguments)
        return run_id

    def finish_job_run(self, run_id: str, state: str, error: str | None = None) -> JobRun:
        run = self.job_runs[run_id]
        run.state, run.error_message, run.execution_time_seconds = state, error, 42
        return run

    def get_job_run(self, job_name: str, run_id: str) -> JobRun:
        if run_id not in self.job_runs:
            raise NotFoundError(run_id)
        return self.job_runs[run_id]

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        run = self.job_runs[run_id]
        if not run.terminal:
            run.state = "STOPPED"
        self.stopped.append(run_id)

    def job_max_retries(self, job_name: str) -> int:
        return self.max_retries.get(job_name, 0)

    def retry_job_run(self, run_id: str) -> str:
        """Glue's own retry of a FAILED run (the job's MaxRetries): a new run, same arguments."""
        failed = self.job_runs[run_id]
        retry_id = f"jr_{next(self._ids):04d}"
        self.job_runs[retry_id] = JobRun(
            job_name=failed.job_name,
            run_id=retry_id,
            state="RUNNING",
            arguments=failed.arguments,
            attempt=failed.attempt + 1,
            previous_run_id=run_id,
        )
        return retry_id

    def find_job_run(self, job_name: str, arguments: dict[str, str]) -> JobRun | None:
        for run in reversed(list(self.job_runs.values())):
            if run.job_name == job_name and all(run.arguments.get(k) == v for k, v in arguments.items()):
                return run
        return None

    def start_crawler(self, crawler: str) -> None:
        if self.crawler_state.get(crawler, "READY") != "READY":
            raise CrawlerRunningError(crawler)
        self.crawler_state[crawler] = "RUNNING"
        self.crawls_started.append(crawler)

    def finish_crawl(
        self, crawler: str, started: datetime, ended: datetime, state: str = "COMPLETED"
    ) -> None:
        self.crawler_state[crawler] = "READY"
        crawl = Crawl(
            crawl_id=f"crawl-{next(self._ids)}", state=state, started_on=started, completed_on=ended
        )
        self.crawls.setdefault(crawler, []).insert(0, crawl)

    def get_crawler(self, crawler: str) -> CrawlerStatus:
        return CrawlerStatus(name=crawler, state=self.crawler_state.get(crawler, "READY"))

    def recent_crawls(self, crawler: str) -> list[Crawl]:
        return list(self.crawls.get(crawler, []))

    # --- the Data Catalog, as Glue answers: tables by (database, name), partitions by their values ---

    def get_table(self, database: str, table: str) -> dict[str, Any] | None:
        found = self.tables.get((database, table))
        return copy.deepcopy(found) if found is not None else None

    def create_table(self, database: str, table_input: dict[str, Any]) -> bool:
        if (database, table_input["Name"]) in self.tables:
            return False
        self.tables[(database, table_input["Name"])] = copy.deepcopy(table_input)
        return True

    def batch_create_partition(
        self, database: str, table: str, partitions: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        held = self.partitions.setdefault((database, table), {})
        errors = []
        for partition in partitions:
            values = tuple(partition["Values"])
            if values in held:
                errors.append(
                    {
                        "PartitionValues": list(values),
                        "ErrorDetail": {"ErrorCode": "AlreadyExistsException", "ErrorMessage": "exists"},
                    }
                )
            else:
                held[values] = copy.deepcopy(partition)
        return errors

    def put_ruleset(self, name: str, document: str, database: str, table: str) -> None:
        self.rulesets[name] = document

    def start_quality_run(
        self, ruleset: str, *, database: str, table: str, predicate: str, role: str, token: str
    ) -> str:
        if token not in self._tokens:
            run_id = f"dqrun-{next(self._ids)}"
            self._tokens[token] = run_id
            self.quality_runs[run_id] = {
                "RunId": run_id,
                "Status": "RUNNING",
                "RulesetNames": [ruleset],
                "DataSource": {"GlueTable": {"DatabaseName": database, "TableName": table}},
                "Predicate": predicate,
                "Role": role,
            }
        return self._tokens[token]

    def finish_quality_run(
        self, run_id: str, results: list[dict[str, Any]], error: str | None = None
    ) -> None:
        """Glue's evaluation ends: one result holding these RuleResults, or FAILED with an error."""
        run = self.quality_runs[run_id]
        if error:
            run.update({"Status": "FAILED", "ErrorString": error, "ResultIds": []})
            return
        result_id = f"dqresult-{next(self._ids)}"
        self.quality_results[result_id] = {"ResultId": result_id, "RuleResults": results}
        run.update(
            {"Status": "SUCCEEDED", "ResultIds": [result_id], "ExecutionTime": 60, "NumberOfWorkers": 2}
        )

    def get_quality_run(self, run_id: str) -> dict[str, Any]:
        return dict(self.quality_runs[run_id])

    def get_quality_result(self, result_id: str) -> dict[str, Any]:
        return dict(self.quality_results[result_id])

    def batch_update_partition(
        self, database: str, table: str, entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        held = self.partitions.setdefault((database, table), {})
        for entry in entries:
            held[tuple(entry["PartitionValueList"])] = copy.deepcopy(entry["PartitionInput"])
            self.partition_updates += 1
        return []


class FakeWorkflow:
    def __init__(self) -> None:
        self.successes: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, tuple[str, str]] = {}
        self.closed: set[str] = set()
        self.executions: dict[str, tuple[str, ExecutionInput]] = {}

    def send_success(self, token: str, output: dict[str, Any]) -> None:
        self._check(token)
        self.successes[token] = output

    def send_failure(self, token: str, error: str, cause: str) -> None:
        self._check(token)
        self.failures[token] = (error, cause)

    def _check(self, token: str) -> None:
        if token in self.closed or token in self.successes or token in self.failures:
            raise TaskAlreadyClosedError(token)

    def start_execution(self, pipeline: str, name: str, execution_input: ExecutionInput) -> str:
        if name in self.executions:
            raise ExecutionAlreadyExistsError(name)
        self.executions[name] = (pipeline, execution_input)
        return f"arn:aws:states:us-east-1:123456789012:execution:stack_{pipeline}:{name}"

    def execution_exists(self, pipeline: str, name: str) -> bool:
        return name in self.executions and self.executions[name][0] == pipeline


class FakeBucket:
    def __init__(self) -> None:
        self.summaries: dict[tuple[str, str], dict[str, Any]] = {}
        self.manifests: dict[str, Manifest] = {}
        self.objects: dict[tuple[str, str], LandedObject] = {}  # each key's current version

    def job_uris(self, run_id: str, step: str, attempt: int) -> dict[str, str]:
        return job_uris("bucket", run_id, step, attempt)

    def read_summary(self, run_id: str, step: str) -> dict[str, Any] | None:
        return self.summaries.get((run_id, step))

    def write_manifest(self, manifest: Manifest) -> str:
        self.manifests[manifest.run_id] = manifest
        return f"s3://bucket/manifests/{manifest.run_id}.json"

    def read_manifest(self, run_id: str) -> Manifest | None:
        return self.manifests.get(run_id)

    def current_version(self, bucket: str, key: str) -> LandedObject | None:
        return self.objects.get((bucket, key))


class FakeCloud:
    """All fakes together, and the ControlPlane the logic sees."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.glue = FakeGlue()
        self.workflow = FakeWorkflow()
        self.bucket = FakeBucket()
        self.plane = ControlPlane(
            steps=self.store,
            runs=self.store,
            leases=self.store,
            glue=self.glue,
            workflow=self.workflow,
            bucket=self.bucket,
            ledger=self.store,
        )
