"""The local Glue service: StartJobRun runs the job's real script, StartCrawler really crawls the bucket.

Hooks sit on moto's Glue backend, so every caller (start_step's worker, the CLI, tests) goes through them
and GetJobRun / GetJobRuns / GetCrawler / ListCrawls / GetTables / GetPartitions stay truthful: they are
moto's own answers about the state this module keeps. Each run ends with the AWS-shaped event Glue sends
("Glue Job State Change", "Glue Crawler State Change").
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from moto.glue import exceptions as glue_exceptions
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from relay.logic.catalog import TABLE_FORMATS

from gluerelay.glue.jdbc import CONNECTIONS_ENV
from gluerelay.glue.jobrun import run_job
from gluerelay.local.clock import Clock
from gluerelay.local.journal import Journal
from gluerelay.local.logs import LogDelivery, glue_log_groups

Publish = Callable[[str, str, dict[str, Any]], None]  # (source, detail-type, detail)
SAMPLE_BYTES = 1 << 20


@dataclass
class GlueTiming:
    """Latency knobs that emulate AWS: Glue takes seconds to start a job and at least a while to crawl."""

    job_start_delay_seconds: float = 0.0
    min_crawl_seconds: float = 0.0
    min_job_seconds: float = 0.0  # a job run lasts at least this long, from its start (the delay excluded)
    # After a crawl's event the crawler stays STOPPING this long (StartCrawler refuses it meanwhile)
    crawler_stopping_seconds: float = 0.0


@dataclass
class JobRunRecord:
    job_name: str
    run_id: str
    state: str
    started: float
    completed: float | None = None
    error: str | None = None
    log_path: Path | None = None


@dataclass
class CrawlRecord:
    crawler: str
    crawl_id: str
    state: str
    started: float
    completed: float | None = None
    error: str | None = None
    tables_created: int = 0
    tables_updated: int = 0
    partitions_created: int = 0
    partitions_updated: int = 0


@dataclass
class LocalGlue:
    """Runs what moto records. `install()` patches moto's backend; `uninstall()` restores it."""

    root: Path
    publish: Publish
    job_env: Callable[[], dict[str, str]]
    s3: Any  # an in-process boto3 S3 client
    timing: GlueTiming = field(default_factory=GlueTiming)
    log_dir: Path | None = None
    # The local cloud's clock: the timing knobs count on it (a fast clock emulates long runs quickly).
    clock: Clock = field(default_factory=Clock)
    job_runs: Journal[JobRunRecord] = field(default_factory=Journal)
    crawls: Journal[CrawlRecord] = field(default_factory=Journal)
    # Test hooks: make a job or a crawl fail with a message of our choosing. A job's value is the message
    # (the run ends FAILED) or (state, message) for another end: TIMEOUT, STOPPED or ERROR.
    fail_jobs: dict[str, str | tuple[str, str]] = field(default_factory=dict)
    fail_crawlers: dict[str, str] = field(default_factory=dict)
    # Test hook: the next N runs of a job fail (then it works again), e.g. to see Glue's retry succeed.
    fail_runs: dict[str, int] = field(default_factory=dict)
    # Jobs whose runs never finish (a hung driver): RUNNING until BatchStopJobRun or the job's Timeout.
    hang_jobs: set[str] = field(default_factory=set)
    # Crawlers whose crawls stay RUNNING (after their catalog work) until `release_crawler`: a test can act
    # while a crawl is certainly in progress, however fast or slow the machine.
    held_crawlers: set[str] = field(default_factory=set)
    # Connections that exist only locally (the SQLite stand-in for the RDS source): name -> JDBC URL.
    extra_connections: dict[str, str] = field(default_factory=dict)
    # Where a job run's driver output and error go (CloudWatch Logs, as Glue sends them); None: nowhere.
    logs: LogDelivery | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _stops: dict[str, threading.Event] = field(default_factory=dict)  # job run id -> stop requested
    _crawler_lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    _start_run: Callable[..., str] = field(default=lambda *a, **k: "", repr=False)  # moto's StartJobRun

    # ------------------------------------------------------------------ hooks

    def install(self) -> None:
        self._install_jobs()
        self._install_crawlers()

    def _install_jobs(self) -> None:
        backend_cls = glue_models.GlueBackend
        original_start_job_run = backend_cls.start_job_run
        original_job_run_dict = glue_models.FakeJobRun.as_dict
        glue = self

        def start_job_run(backend: Any, name: str, *args: Any, **kwargs: Any) -> str:
            run_id = original_start_job_run(backend, name, *args, **kwargs)
            job = backend.get_job(name)
            glue._start_job(job, job.get_job_run(run_id), backend)
            return str(run_id)

        def job_run_as_dict(run: Any) -> dict[str, Any]:
            data: dict[str, Any] = original_job_run_dict(run)
            extra = getattr(run, "gluerelay", {})
            data.update({k: v for k, v in extra.items() if v is not None})
            data["Attempt"] = getattr(run, "attempt", 0)  # moto always says 0
            if data["JobRunState"] in ("STARTING", "RUNNING", "STOPPING"):
                data.pop("CompletedOn", None)
            return data

        def batch_stop_job_run(response: Any) -> str:
            # moto has no BatchStopJobRun: stopping a run means stopping the local runtime's process.
            name = response._get_param("JobName")
            submitted, errors = [], []
            for run_id in response._get_param("JobRunIds") or []:
                if glue.stop_job_run(response.glue_backend, name, run_id):
                    submitted.append({"JobName": name, "JobRunId": run_id})
                else:
                    detail = {"ErrorCode": "InvalidInputException", "ErrorMessage": "Job run is not running"}
                    errors.append({"JobName": name, "JobRunId": run_id, "ErrorDetail": detail})
            return json.dumps({"SuccessfulSubmissions": submitted, "Errors": errors})

        self._start_run = original_start_job_run
        backend_cls.start_job_run = start_job_run  # type: ignore[method-assign,assignment]
        glue_responses.GlueResponse.batch_stop_job_run = batch_stop_job_run  # type: ignore[attr-defined]
        glue_models.FakeJobRun.as_dict = job_run_as_dict  # type: ignore[method-assign,assignment]

        def undo() -> None:
            backend_cls.start_job_run = original_start_job_run  # type: ignore[method-assign]
            del glue_responses.GlueResponse.batch_stop_job_run  # type: ignore[attr-defined]
            glue_models.FakeJobRun.as_dict = original_job_run_dict  # type: ignore[method-assign]

        self._undo.append(undo)

    def _install_crawlers(self) -> None:
        backend_cls = glue_models.GlueBackend
        original_start_crawler = backend_cls.start_crawler
        original_crawler_dict = glue_models.FakeCrawler.as_dict
        glue = self

        def start_crawler(backend: Any, name: str) -> None:
            # moto checks "not running" and appends the crawl without a lock; two StartCrawler calls from
            # concurrent requests must not both pass the check, as they cannot on Glue.
            with glue._crawler_lock:
                if glue.clock.now() < getattr(backend.get_crawler(name), "ready_at", 0.0):
                    raise glue_exceptions.CrawlerRunningException(f"Crawler with name {name} is stopping")
                original_start_crawler(backend, name)  # raises CrawlerRunningException as Glue does
                crawler = backend.get_crawler(name)
                glue._start_crawl(crawler, crawler.crawls[-1], backend)

        def crawler_as_dict(crawler: Any) -> dict[str, Any]:
            data: dict[str, Any] = original_crawler_dict(crawler)
            if data.get("State") == "READY" and glue.clock.now() < getattr(crawler, "ready_at", 0.0):
                data["State"] = "STOPPING"
            last = data.get("LastCrawl")
            if (
                last
            ):  # ListCrawls says COMPLETED; GetCrawler's LastCrawl.Status is SUCCEEDED | FAILED | CANCELLED
                crawl = crawler.crawls[-1]
                last["Status"] = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED"}.get(
                    crawl.status, crawl.status
                )
                if getattr(crawl, "error_message", None):
                    last["ErrorMessage"] = crawl.error_message
            return data

        backend_cls.start_crawler = start_crawler  # type: ignore[method-assign,assignment]
        glue_models.FakeCrawler.as_dict = crawler_as_dict  # type: ignore[method-assign,assignment]

        def undo() -> None:
            backend_cls.start_crawler = original_start_crawler  # type: ignore[method-assign]
            glue_models.FakeCrawler.as_dict = original_crawler_dict  # type: ignore[method-assign]

        self._undo.append(undo)

    def hold_crawler(self, name: str) -> None:
        with self._released:
            self.held_crawlers.add(name)

    def release_crawler(self, name: str) -> None:
        with self._released:
            self.held_crawlers.discard(name)
            self._released.notify_all()

    def uninstall(self) -> None:
        # Job runs still going (a hung one) are stopped quietly: nothing is left to hear their events.
        self._closed = True
        for stop in list(self._stops.values()):
            stop.set()
        with self._released:
            self._released.notify_all()
        while self._undo:
            self._undo.pop()()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]  # bounded: only what still runs
        self._threads.append(thread)
        thread.start()

    def idle(self, timeout: float) -> bool:
        """Wait for every job run and crawl started so far to end."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    # ------------------------------------------------------------------ jobs

    def stop_job_run(self, backend: Any, job_name: str, run_id: str) -> bool:
        """Stop a STARTING or RUNNING run (it ends STOPPED, with its event); False if it is not running."""
        run = backend.get_job_run(job_name, run_id)
        if run.status not in ("STARTING", "RUNNING"):
            return False
        run.status = "STOPPING"
        self._stops.setdefault(run_id, threading.Event()).set()
        return True

    def _start_job(self, job: Any, run: Any, backend: Any) -> None:
        run.status = "STARTING"
        run.gluerelay = {"ExecutionTime": 0, "GlueVersion": job.glue_version}
        record = JobRunRecord(job.name, run.job_run_id, "STARTING", time.time())
        self.job_runs.append(record)
        self._spawn(self._run_job, job, run, record, backend)

    def _run_job(self, job: Any, run: Any, record: JobRunRecord, backend: Any) -> None:
        stop = self._stops.setdefault(run.job_run_id, threading.Event())
        if self.clock.sleep(self.timing.job_start_delay_seconds, stop):
            run.started_on = datetime.now(UTC)
            self._finish_job(job, run, record, "STOPPED", None)
            return
        run.status = record.state = "RUNNING"
        run.started_on = datetime.now(UTC)
        running_since = self.clock.now()
        arguments = {**(job.default_arguments or {}), **(run.arguments or {})}
        arguments = {k: v for k, v in arguments.items() if not k.startswith(("--job-language", "--enable-"))}
        script = self._script(job)
        timeout_minutes = run.timeout or job.timeout or 2880
        fault = self.fail_jobs.get(job.name)
        with self._crawler_lock:
            if fault is None and self.fail_runs.get(job.name, 0) > 0:
                self.fail_runs[job.name] -= 1
                fault = f"{job.name} run {run.job_run_id} failed (injected)"
        error: str | None
        log_path: Path | None = None
        if fault is not None:
            state, error = fault if isinstance(fault, tuple) else ("FAILED", fault)
        elif job.name in self.hang_jobs:
            stopped = stop.wait(float(timeout_minutes) * 60)
            state = "STOPPED" if stopped else "TIMEOUT"
            error = None if stopped else f"Job run timed out after {timeout_minutes:g} minutes"
        else:
            env = {**self.job_env(), **self._connections(job, backend)}
            result = run_job(
                script,
                arguments,
                job_name=job.name,
                env=env,
                timeout_seconds=float(timeout_minutes) * 60,
                log_dir=self.log_dir,
                job_run_id=run.job_run_id,
                stop=stop,
            )
            state, error, log_path = result.state, result.error_message, result.log_path
            if state == "SUCCEEDED" and self.clock.sleep(
                self.timing.min_job_seconds - (self.clock.now() - running_since), stop
            ):
                state, error = "STOPPED", None
        self._finish_job(job, run, record, state, error, log_path=log_path)
        if state == "FAILED" and not self._closed and getattr(run, "attempt", 0) < (job.max_retries or 0):
            self._retry_job(job, run, backend)

    def _finish_job(
        self,
        job: Any,
        run: Any,
        record: JobRunRecord,
        state: str,
        error: str | None,
        *,
        log_path: Path | None = None,
    ) -> None:
        finished = datetime.now(UTC)
        seconds = round((finished - run.started_on).total_seconds())
        workers = run.number_of_workers or 2
        run.completed_on = run.modified_on = finished
        run.gluerelay = {
            "ExecutionTime": seconds,
            "ErrorMessage": error,
            "GlueVersion": job.glue_version,
            "DPUSeconds": float(max(seconds, 60) * workers),  # Glue 2.0+: billed per second, 1-minute minimum
        }
        self._deliver_logs(job, run.job_run_id, log_path, error)
        run.status = record.state = state
        record.completed, record.error, record.log_path = time.time(), error, log_path
        self._stops.pop(run.job_run_id, None)
        detail: dict[str, Any] = {
            "jobName": job.name,
            "severity": "INFO" if state == "SUCCEEDED" else "ERROR",
            "state": state,
            "jobRunId": run.job_run_id,
            "message": error
            or {"SUCCEEDED": "Job run succeeded", "STOPPED": "Job run stopped"}.get(state, state),
        }
        if not self._closed:
            self.publish("aws.glue", "Glue Job State Change", detail)

    def _deliver_logs(self, job: Any, run_id: str, log_path: Path | None, error: str | None) -> None:
        """The run's driver output to `<prefix>/output` and its error to `<prefix>/error`, in a stream named
        after the run, before its end is visible (as Glue's logs are there when its event arrives)."""
        if self.logs is None:
            return
        output, errors = glue_log_groups(getattr(job, "default_arguments", None))
        try:
            lines = log_path.read_text(errors="replace").splitlines() if log_path is not None else []
        except OSError as e:  # the run's end must be published whatever happens to its log
            lines = [f"gluerelay local: the job run's log {log_path} cannot be read: {e}"]
        for line in lines:
            self.logs.put(output, run_id, line)
        if error:
            self.logs.put(errors, run_id, error)
        self.logs.flush()

    def _retry_job(self, job: Any, failed: Any, backend: Any) -> None:
        """Glue's own retry of a FAILED run (the job's MaxRetries): a new run with the same arguments, its
        Attempt one more and PreviousRunId the failed run's."""
        run_id = self._start_run(
            backend,
            job.name,
            arguments=failed.arguments,
            allocated_capacity=None,
            max_capacity=None,
            timeout=failed.timeout,
            worker_type=None,
            security_configuration=None,
            number_of_workers=failed.number_of_workers,
            notification_property=None,
            previous_run_id=failed.job_run_id,
        )
        retry = job.get_job_run(run_id)
        retry.attempt = getattr(failed, "attempt", 0) + 1
        self._start_job(job, retry, backend)

    def _script(self, job: Any) -> Path:
        location = str(job.command.get("ScriptLocation", ""))
        path = Path(location) if Path(location).is_absolute() else self.root / location
        if not path.is_file():
            raise FileNotFoundError(f"Glue job {job.name}: script {location} is not a local file")
        return path

    def _connections(self, job: Any, backend: Any) -> dict[str, str]:
        """The job's Glue connections as JDBC URLs for the local engine (credentials from the secret)."""
        names = list((job.connections or {}).get("Connections", []))
        urls: dict[str, str] = {}
        for name in names + list(self.extra_connections):
            url = self.extra_connections.get(name)
            if url is None:
                connection = backend.get_connection(name).as_dict()
                url = connection["ConnectionProperties"].get("JDBC_CONNECTION_URL", "")
            urls[name] = url
        return {CONNECTIONS_ENV: json.dumps(urls)} if urls else {}

    # ------------------------------------------------------------------ crawls

    def _start_crawl(self, crawler: Any, crawl: Any, backend: Any) -> None:
        crawl.status = "RUNNING"
        record = CrawlRecord(crawler.name, crawl.crawl_id, "RUNNING", time.time())
        self.crawls.append(record)
        self.publish(
            "aws.glue",
            "Glue Crawler State Change",
            {"crawlerName": crawler.name, "state": "Started", "message": "Crawler Started"},
        )
        self._spawn(self._crawl, crawler, crawl, record, backend)

    def _crawl(self, crawler: Any, crawl: Any, record: CrawlRecord, backend: Any) -> None:
        started = self.clock.now()
        error: str | None = self.fail_crawlers.get(crawler.name)
        if error is None:
            try:
                self._catalog(crawler, record)
            except Exception as e:  # noqa: BLE001 - a crawl that cannot read its target fails, as Glue's does
                error = f"{type(e).__name__}: {e}"
        self.clock.sleep(self.timing.min_crawl_seconds - (self.clock.now() - started))
        with self._released:
            self._released.wait_for(lambda: crawler.name not in self.held_crawlers or self._closed)
        crawl.end_time = datetime.now(UTC)
        crawl.error_message = error
        # Glue sends the crawl's event, then keeps the crawler STOPPING for a while before it is READY
        crawler.ready_at = self.clock.now() + self.timing.crawler_stopping_seconds
        crawl.status = record.state = "FAILED" if error else "COMPLETED"
        record.completed, record.error = time.time(), error
        running = max(0.0, (crawl.end_time - crawl.start_time.replace(tzinfo=UTC)).total_seconds())
        crawler.crawl_elapsed_time = int(running * 1000)
        crawl.dpu_hour = round(running / 3600, 6)  # one DPU while it ran (moto reports a fixed 100)
        self.publish(
            "aws.glue",
            "Glue Crawler State Change",
            crawl_event(crawler.name, backend, record, running, crawl.end_time),
        )

    def _catalog(self, crawler: Any, record: CrawlRecord) -> None:
        glue = _catalog_client()
        for target in (crawler.targets or {}).get("S3Targets", []):
            path = str(target["Path"])
            bucket, _, prefix = path.removeprefix("s3://").partition("/")
            table_name = (crawler.table_prefix or "") + prefix.rstrip("/").rsplit("/", 1)[-1]
            found = _scan(self.s3, bucket, prefix.rstrip("/") + "/")
            if not found.files:
                continue
            table_input = found.table_input(table_name, f"s3://{bucket}/{prefix.rstrip('/')}/")
            try:
                glue.get_table(DatabaseName=crawler.database_name, Name=table_name)
                glue.update_table(DatabaseName=crawler.database_name, TableInput=table_input)
                record.tables_updated += 1
            except glue.exceptions.EntityNotFoundException:
                glue.create_table(DatabaseName=crawler.database_name, TableInput=table_input)
                record.tables_created += 1
            for values, location in sorted(found.partitions.items()):
                partition = {
                    "Values": list(values),
                    "StorageDescriptor": {**table_input["StorageDescriptor"], "Location": location},
                }
                try:
                    glue.get_partition(
                        DatabaseName=crawler.database_name, TableName=table_name, PartitionValues=list(values)
                    )
                    glue.update_partition(
                        DatabaseName=crawler.database_name,
                        TableName=table_name,
                        PartitionValueList=list(values),
                        PartitionInput=partition,
                    )
                    record.partitions_updated += 1
                except glue.exceptions.EntityNotFoundException:
                    glue.create_partition(
                        DatabaseName=crawler.database_name, TableName=table_name, PartitionInput=partition
                    )
                    record.partitions_created += 1


def crawl_event(
    crawler: str, backend: Any, record: CrawlRecord, running: float, completed: datetime
) -> dict[str, Any]:
    """A crawl's "Glue Crawler State Change" detail, exactly as Glue documents it (EventBridge user guide,
    Glue events): a Failed event carries no completionDate, running time or table counts."""
    common = {
        "crawlerName": crawler,
        "accountId": backend.account_id,
        "cloudWatchLogLink": (
            f"https://console.aws.amazon.com/cloudwatch/home?region={backend.region_name}"
            f"#logEventViewer:group=/aws-glue/crawlers;stream={crawler}"
        ),
    }
    if record.error:
        return {**common, "errorMessage": record.error, "state": "Failed", "message": "Crawler Failed"}
    return {
        **common,
        "tablesCreated": str(record.tables_created),
        "warningMessage": "N/A",
        "partitionsUpdated": str(record.partitions_updated),
        "tablesUpdated": str(record.tables_updated),
        "message": "Crawler Succeeded",
        "partitionsDeleted": "0",
        "runningTime (sec)": str(round(running)),
        "tablesDeleted": "0",
        "completionDate": completed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "state": "Succeeded",
        "partitionsCreated": str(record.partitions_created),
    }


def _catalog_client() -> Any:
    import boto3

    return boto3.client("glue")


# ---------------------------------------------------------------------------------------------- inference


def glue_type(arrow: pa.DataType) -> str:  # noqa: PLR0911 - one answer per family of types
    """The catalog type Glue's classifiers give a column."""
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_integer(arrow):
        return "int" if arrow.bit_width <= 32 else "bigint"
    if pa.types.is_floating(arrow):
        return "double"
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_date(arrow):
        return "date"
    return "string"


@dataclass
class _Scan:
    classification: str = ""
    files: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    partition_keys: list[str] = field(default_factory=list)
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)
    rows_sampled: int = 0

    def table_input(self, name: str, location: str) -> dict[str, Any]:
        descriptor = {
            "Columns": [{"Name": c, "Type": t} for c, t in self.columns.items()],
            "Location": location,
            "Compressed": False,
            "NumberOfBuckets": -1,
            "StoredAsSubDirectories": False,
            "Parameters": {"classification": self.classification},
            **TABLE_FORMATS[self.classification],
        }
        if self.classification == "csv":
            descriptor["Parameters"] = {"classification": "csv", "skip.header.line.count": "1"}
        return {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": self.classification, "UPDATED_BY_CRAWLER": "gluerelay-local"},
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in self.partition_keys],
            "StorageDescriptor": descriptor,
        }


SAMPLED_FILES = 3  # the data files a crawl reads to infer its schema


def _scan(s3: Any, bucket: str, prefix: str) -> _Scan:
    """List a crawler target; infer one schema over its data files and the hive partitions they sit in."""
    scan = _Scan()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            relative = key[len(prefix) :]
            parts = relative.split("/")
            if any(p.startswith(("_", ".")) for p in parts) or obj["Size"] == 0:
                continue
            kind = _classification(key)
            if kind is None:
                continue
            if scan.classification and kind != scan.classification:
                raise ValueError(f"s3://{bucket}/{prefix} mixes {scan.classification} and {kind} files")
            sample = None
            if len(scan.files) < SAMPLED_FILES:
                try:
                    sample = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                except s3.exceptions.NoSuchKey:
                    # Listed, then deleted before it was read (a job overwriting its partition meanwhile):
                    # skipped, as Glue's crawler skips an object that is gone, not a failed crawl.
                    continue
            scan.classification = kind
            keys = [p.split("=", 1) for p in parts[:-1] if "=" in p]
            if not scan.partition_keys:
                scan.partition_keys = [k for k, _ in keys]
            values = tuple(v for _, v in keys)
            if len(values) == len(scan.partition_keys) and values:
                directory = "/".join(parts[:-1])
                scan.partitions[values] = f"s3://{bucket}/{prefix}{directory}/"
            scan.files.append(key)
            if sample is not None:
                _merge_schema(scan, sample, kind)
    for key in scan.partition_keys:
        scan.columns.pop(key, None)
    return scan


_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


def _classification(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1].lower()
    return next((kind for suffix, kind in _SUFFIXES.items() if name.endswith(suffix)), None)


def _merge_schema(scan: _Scan, body: bytes, kind: str) -> None:
    if kind == "parquet":
        schema = pq.read_schema(io.BytesIO(body))
    elif kind == "csv":
        sample = body if len(body) <= SAMPLE_BYTES else body[: body.rfind(b"\n", 0, SAMPLE_BYTES) + 1]
        schema = pa_csv.read_csv(io.BytesIO(sample)).schema
    else:
        schema = pa_json.read_json(io.BytesIO(body)).schema
    for column in schema:
        inferred = glue_type(column.type)
        previous = scan.columns.get(column.name)
        # Compatible schemas combine: a column typed differently in two files becomes string.
        scan.columns[column.name] = inferred if previous in (None, inferred) else "string"
