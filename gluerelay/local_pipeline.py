"""The customers pipeline's data plane on this machine: generate a source, run job 1, then job 2.

The bucket is a folder (``<data_dir>/bucket``) with the same prefixes as on AWS: landing/, raw/,
cleansed/, quarantine/, summaries/. Each job runs as its own process, as Glue runs each job run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gluerelay import datagen
from gluerelay.glue.jdbc import CONNECTIONS_ENV
from gluerelay.glue.jobrun import JobRunResult, run_job, script_path

Source = Literal["s3", "jdbc"]
JDBC_CONNECTION_NAME = "customers-source"
EXTRACT_JOB = "extract_customers"
CLEANSE_JOB = "cleanse_customers"


@dataclass(frozen=True)
class BucketLayout:
    """The data bucket's prefixes, rooted in a local folder."""

    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def raw(self) -> Path:
        return self.root / "raw" / "customers"

    @property
    def cleansed(self) -> Path:
        return self.root / "cleansed" / "customers"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine" / "customers"

    @property
    def summaries(self) -> Path:
        return self.root / "summaries"

    def summary(self, run_id: str, job: str) -> Path:
        return self.summaries / run_id / f"{job}.json"


@dataclass
class PipelineRun:
    run_id: str
    source: Source
    ingest_date: str
    inputs: list[str]
    bucket: BucketLayout
    jobs: list[JobRunResult] = field(default_factory=list)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return len(self.jobs) == 2 and all(job.state == "SUCCEEDED" for job in self.jobs)

    @property
    def failed_job(self) -> JobRunResult | None:
        return next((job for job in self.jobs if job.state != "SUCCEEDED"), None)


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"run-{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def prepare_source(
    data_dir: Path, *, source: Source, rows: int, seed: int, files: int, run_id: str
) -> tuple[list[str], str | None]:
    """Generate the run's source data; returns the landed file paths (s3) or the JDBC URL (jdbc)."""
    if source == "jdbc":
        database = data_dir / "source" / "customers.db"
        datagen.write(database, datagen.generate_rows(rows, seed), "sqlite")
        return [], f"jdbc:sqlite:{database}"
    if files < 1:
        raise ValueError(f"--files must be at least 1, not {files}")
    landing = BucketLayout(data_dir / "bucket").landing / run_id
    per_file, extra = divmod(rows, files)
    inputs = []
    for index in range(files):
        path = landing / f"customers-{index + 1:03d}.csv"
        count = per_file + (1 if index < extra else 0)
        datagen.write(path, datagen.generate_rows(count, seed + index), "csv")
        inputs.append(str(path))
    return inputs, None


def run_pipeline(
    data_dir: Path,
    *,
    rows: int = 10_000,
    source: Source = "s3",
    seed: int = 7,
    files: int = 1,
    jdbc_url: str | None = None,
    on_job_done: Callable[[JobRunResult], None] | None = None,
) -> PipelineRun:
    """Generate data, extract it to raw (job 1), cleanse it (job 2); stops at the first failed job."""
    run_id = new_run_id()
    ingest_date = datetime.now(UTC).strftime("%Y-%m-%d")
    bucket = BucketLayout(data_dir / "bucket")
    inputs: list[str]
    url: str | None
    if source == "jdbc" and jdbc_url:
        inputs, url = [], jdbc_url
    else:
        inputs, url = prepare_source(
            data_dir, source=source, rows=rows, seed=seed, files=files, run_id=run_id
        )
    env: dict[str, str] = {}
    extract_args = {
        "--source": source,
        "--run_id": run_id,
        "--raw_path": str(bucket.raw),
        "--summary_path": str(bucket.summaries),
        "--ingest_date": ingest_date,
    }
    if source == "jdbc":
        extract_args |= {"--connection_name": JDBC_CONNECTION_NAME, "--table": "customers"}
        env[CONNECTIONS_ENV] = json.dumps({JDBC_CONNECTION_NAME: url})
    else:
        extract_args["--input_uris"] = ",".join(inputs)
    run = PipelineRun(run_id, source, ingest_date, inputs or [url or ""], bucket)
    log_dir = data_dir / "logs"
    steps = [
        (EXTRACT_JOB, extract_args),
        (
            CLEANSE_JOB,
            {
                "--run_id": run_id,
                "--raw_path": str(bucket.raw),
                "--cleansed_path": str(bucket.cleansed),
                "--quarantine_path": str(bucket.quarantine),
                "--summary_path": str(bucket.summaries),
                "--ingest_date": ingest_date,
            },
        ),
    ]
    for job, arguments in steps:
        result = run_job(script_path(job), arguments, env=env, log_dir=log_dir)
        run.jobs.append(result)
        if on_job_done:
            on_job_done(result)
        if result.state != "SUCCEEDED":
            break
        run.summaries[job] = json.loads(bucket.summary(run_id, job).read_text())
    return run
