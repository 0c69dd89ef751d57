"""Starting pipeline runs in a local cloud the way they start on AWS: files landing under a pipeline's prefix
(S3 events), or a run started by hand (for example against the relational source)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from relay.contract import MANIFEST_PREFIX, ExecutionInput, Manifest, Trigger, manual_run_id, resolve_params

from gluerelay import datagen, datagen_orders
from gluerelay.local.cloud import LocalCloud
from gluerelay.local.report import RunReport, build

Lander = Callable[[int, int, int, Path], list[Path]]  # (rows, files, seed, folder) -> the files


def _customers(rows: int, files: int, seed: int, folder: Path) -> list[Path]:
    data = list(datagen.generate_rows(rows, seed))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    paths = []
    for index in range(files):
        path = folder / f"customers-{stamp}-{index + 1:03d}.csv"
        datagen.write(path, iter(data[index::files]), "csv")
        paths.append(path)
    return paths


def _orders_for(rows: int, seed: int) -> datagen_orders.Orders:
    """About `rows` order lines: orders of one to four lines each."""
    return datagen_orders.generate(max(1, rows * 2 // 5), seed)


def _orders(rows: int, files: int, seed: int, folder: Path) -> list[Path]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return datagen_orders.write_files(_orders_for(rows, seed), folder, files, stamp)


# Sample data for the example pipelines (a pipeline of your own lands your own files).
SAMPLES: dict[str, Lander] = {"customers": _customers, "orders": _orders}


def rows_landed(pipeline: str, *, rows: int, seed: int) -> int:
    """How many input rows `land` puts in for these arguments (what the runs' outputs must account for)."""
    if pipeline == "orders":
        return len(_orders_for(rows, seed).lines)
    return rows


def carries_rows(key: str) -> bool:
    """Whether a landed sample file's rows are rows the runs must account for: the orders example's
    headers file is joined into the order lines and has no rows of its own in the output."""
    return not key.rsplit("/", 1)[-1].startswith(datagen_orders.HEADERS_FILE_PREFIX)


def landing_prefix(cloud: LocalCloud, pipeline: str) -> str:
    s3 = cloud.project.pipeline(pipeline).triggers.s3
    if s3 is None:
        raise ValueError(f"pipeline {pipeline} starts no runs from landed files (it has no triggers.s3)")
    return s3.prefix


def land(
    cloud: LocalCloud,
    *,
    rows: int,
    files: int,
    seed: int,
    pipeline: str = "customers",
    sample: str | None = None,
) -> list[str]:
    """Generate sample files (the pipeline's own, or `sample`'s for a pipeline that reads the same data)
    and put them under the pipeline's landing prefix; their keys.

    Every file is written before the first put, so the puts arrive together, as an export job's do.
    """
    sample = sample or pipeline
    if sample not in SAMPLES:
        raise ValueError(
            f"no sample data for pipeline {sample} (there is for {', '.join(SAMPLES)}): "
            "land your own files through `gluerelay local up`"
        )
    prefix = landing_prefix(cloud, pipeline)
    folder = cloud.work_dir / "landing" / pipeline / secrets.token_hex(3)
    folder.mkdir(parents=True, exist_ok=True)
    paths = SAMPLES[sample](rows, files, seed, folder)
    bucket = cloud.output("DataBucketName")
    s3 = cloud.client("s3")
    for path in paths:
        s3.put_object(Bucket=bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())
    return [f"{prefix}{path.name}" for path in paths]


def runs_taking(cloud: LocalCloud, keys: Iterable[str], timeout: float = 120) -> dict[str, Manifest]:
    """The runs that took these landed keys, by run id: read from the runs' manifests, which on_arrival
    writes before it starts each run. Waits until every key is in one (however long batching takes on a
    busy machine) and fails naming the keys no run took by the deadline."""
    wanted = set(keys)
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    seen: dict[str, Manifest] = {}
    deadline = time.monotonic() + timeout
    while True:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{MANIFEST_PREFIX}/"):
            for item in page.get("Contents", []):
                if item["Key"] in seen:
                    continue
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                seen[item["Key"]] = Manifest.model_validate_json(body)
        taking = {m.run_id: m for m in seen.values() if wanted & {o.key for o in m.objects}}
        missing = wanted - {o.key for m in taking.values() for o in m.objects}
        if not missing:
            return taking
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(missing)} landed objects in no run after {timeout:.0f} s: {sorted(missing)[:5]}"
            )
        time.sleep(0.1)


def follow(cloud: LocalCloud, run_ids: Iterable[str], timeout: float = 600) -> list[RunReport]:
    """Each run's first execution followed to its end and read back, in the order the runs started."""
    ended = []
    deadline = time.monotonic() + timeout
    for run_id in run_ids:
        left = max(1.0, deadline - time.monotonic())
        ended.append(cloud.wait_for_execution(cloud.execution_arn(run_id), left))
    reports = []
    for execution in sorted(ended, key=lambda e: e["startDate"]):
        began = time.perf_counter()
        reports.append(build(cloud, execution["executionArn"]))
        cloud.timings["report"] = round(cloud.timings.get("report", 0) + time.perf_counter() - began, 3)
    return reports


def run_from_landing(
    cloud: LocalCloud,
    *,
    rows: int,
    files: int = 1,
    seed: int = 7,
    pipeline: str = "customers",
    timeout: float = 600,
) -> list[RunReport]:
    """Land files and follow every run they start (one per arrival batch) to its end."""
    began = time.perf_counter()
    keys = land(cloud, rows=rows, files=files, seed=seed, pipeline=pipeline)
    cloud.timings["land"] = round(time.perf_counter() - began, 3)
    return follow(cloud, runs_taking(cloud, keys), timeout)


def start_manual(cloud: LocalCloud, pipeline: str, params: dict[str, str]) -> str:
    """Start a run by hand, as `gluerelay start` does; its execution ARN."""
    specs = cloud.project.pipeline(pipeline).params
    now = datetime.now(UTC)
    run_id = manual_run_id(pipeline, now, secrets.token_hex(3))
    execution_input = ExecutionInput(
        run_id=run_id,
        trigger=Trigger.MANUAL,
        ingest_date=now.date().isoformat(),
        params=resolve_params(specs, params),
    )
    return str(
        cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.state_machine_arn(pipeline), name=run_id, input=execution_input.to_json()
        )["executionArn"]
    )


def run_from_database(
    cloud: LocalCloud, *, rows: int, seed: int = 7, jdbc_url: str | None = None, timeout: float = 600
) -> RunReport:
    """Start a customers run by hand that extracts from the relational source through a Glue connection.

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
    arn = start_manual(cloud, "customers", {"source": "jdbc", "connection_name": name})
    cloud.wait_for_execution(arn, timeout)
    return build(cloud, arn)
