"""Starting pipeline runs in a local cloud the way they start on AWS: files landing in the bucket (S3 events)
or a run started by hand against the relational source."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from gluerelay import datagen
from gluerelay.local.cloud import LocalCloud
from gluerelay.local.report import RunReport, build


def land(
    cloud: LocalCloud, *, rows: int, files: int, seed: int, fmt: datagen.OutputFormat = "csv"
) -> list[str]:
    """Generate `rows` customer rows, split over `files` export files, and put them under landing/.

    Every file is written before the first put, so the puts arrive together, as an export job's do.
    """
    bucket = cloud.output("DataBucketName")
    data = list(datagen.generate_rows(rows, seed))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    paths = []
    for index in range(files):
        path = cloud.work_dir / f"customers-{stamp}-{index + 1:03d}.{fmt}"
        datagen.write(path, iter(data[index::files]), fmt)
        paths.append(path)
    s3 = cloud.client("s3")
    for path in paths:
        s3.put_object(Bucket=bucket, Key=f"landing/{path.name}", Body=path.read_bytes())
    return [f"landing/{path.name}" for path in paths]


def run_from_landing(
    cloud: LocalCloud, *, rows: int, files: int = 1, seed: int = 7, timeout: float = 600
) -> list[RunReport]:
    """Land files and follow every run they start (one per arrival batch) to its end."""
    known = {e["executionArn"] for e in cloud.executions()}
    began = time.perf_counter()
    land(cloud, rows=rows, files=files, seed=seed)
    cloud.timings["land"] = round(time.perf_counter() - began, 3)
    started = cloud.wait_for_new_executions(1, known, timeout=60)
    time.sleep(float(cloud.template.parameters.get("ArrivalBatchingWindowSeconds", "0")) + 0.5)
    started = [e for e in cloud.executions() if e["executionArn"] not in known] or started
    reports = []
    for execution in sorted(started, key=lambda e: e["startDate"]):
        cloud.wait_for_execution(execution["executionArn"], timeout)
        began = time.perf_counter()
        reports.append(build(cloud, execution["executionArn"]))
        cloud.timings["report"] = round(cloud.timings.get("report", 0) + time.perf_counter() - began, 3)
    return reports


def run_from_database(
    cloud: LocalCloud, *, rows: int, seed: int = 7, jdbc_url: str | None = None, timeout: float = 600
) -> RunReport:
    """Start a run by hand that extracts from the relational source through a Glue connection.

    With `jdbc_url` (a real PostgreSQL: jdbc:postgresql://host:5432/db?user=…&password=…) the source is that
    database's `customers` table; otherwise a generated SQLite database stands in for it. Either way the
    connection is registered with the local Glue service under the name the template gives its connection.
    """
    name = f"{cloud.env.stack}-source"
    if jdbc_url is None:
        database = cloud.work_dir / "source.db"
        database.unlink(missing_ok=True)
        datagen.write(database, datagen.generate_rows(rows, seed), "sqlite")
        jdbc_url = f"jdbc:sqlite:{Path(database).resolve()}"
    cloud.glue.extra_connections[name] = jdbc_url
    today = datetime.now(UTC).date().isoformat()
    run_id = f"manual-{datetime.now(UTC):%Y%m%dT%H%M%S}-{int(time.time() * 1000) % 1000:03d}"
    execution_input = {
        "run_id": run_id,
        "trigger": "manual",
        "ingest_date": today,
        "objects": [],
        "extract_arguments": {"--source": "jdbc", "--connection_name": name, "--ingest_date": today},
        "cleanse_arguments": {"--ingest_date": today},
    }
    arn = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.output("StateMachineArn"), name=run_id, input=json.dumps(execution_input)
    )["executionArn"]
    cloud.wait_for_execution(arn, timeout)
    return build(cloud, arn)
