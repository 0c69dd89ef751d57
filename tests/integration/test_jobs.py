"""Both Glue jobs end to end as local job runs (child processes running the unmodified scripts), on
generated data: local files, a SQLite JDBC source, and S3 served by moto."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyarrow.dataset as ds
import pytest

from gluerelay import datagen, datagen_orders
from gluerelay.glue.jdbc import CONNECTIONS_ENV
from gluerelay.glue.jobrun import JobRunResult, run_job, script_path
from tests.conftest import needs_s3_filesystem, needs_sqlite_jdbc_driver, repo_root

pytestmark = [pytest.mark.integration, pytest.mark.spark]
INGEST_DATE = "2026-11-24"
ROOT = repo_root()


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

    def summary(self, run_id: str, step: str) -> Path:
        return self.summaries / run_id / f"{step}.json"


def extract(
    bucket: BucketLayout, run_id: str, env: dict[str, str] | None = None, **arguments: str
) -> JobRunResult:
    args = {
        "--run_id": run_id,
        "--raw_path": str(bucket.raw),
        "--summary_uri": str(bucket.summary(run_id, "extract")),
        "--ingest_date": INGEST_DATE,
        "--source": "s3",
    }
    args |= {f"--{k}": v for k, v in arguments.items()}
    return run_job(script_path("extract_customers"), args, env=env)


def cleanse(bucket: BucketLayout, run_id: str) -> JobRunResult:
    return run_job(
        script_path("cleanse_customers"),
        {
            "--run_id": run_id,
            "--raw_path": str(bucket.raw),
            "--cleansed_path": str(bucket.cleansed),
            "--quarantine_path": str(bucket.quarantine),
            "--summary_uri": str(bucket.summary(run_id, "cleanse")),
            "--ingest_date": INGEST_DATE,
        },
    )


def succeeded(result: JobRunResult) -> JobRunResult:
    assert result.state == "SUCCEEDED", (
        f"{result.job_name}: {result.error_message}\n{result.log_path.read_text()[-3000:]}"
    )
    return result


def read_parquet(folder: Path) -> list[dict[str, Any]]:
    return list(ds.dataset(str(folder), format="parquet").to_table().to_pylist())


def data_files(folder: Path) -> list[Path]:
    """Part files, as Spark reads them: not ``_SUCCESS``, not ``.crc``."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(("_", ".")))


def partition(root: Path, run_id: str) -> Path:
    return root / f"ingest_date={INGEST_DATE}" / f"run_id={run_id}"


@pytest.fixture
def bucket(tmp_path: Path) -> BucketLayout:
    return BucketLayout(tmp_path / "bucket")


def test_landed_csv_and_json_lines_flow_to_raw_cleansed_and_quarantine(bucket: BucketLayout) -> None:
    # Given an export landed as CSV and another as JSON Lines
    csv_file, jsonl_file = bucket.landing / "export.csv", bucket.landing / "export.jsonl"
    landed = list(datagen.generate_rows(3000, seed=21))
    datagen.write(csv_file, iter(landed), "csv")
    datagen.write(jsonl_file, datagen.generate_rows(500, seed=22), "jsonl")
    # When job 1 then job 2 run
    succeeded(extract(bucket, "run-a", input_uris=f"{csv_file},{jsonl_file}"))
    succeeded(cleanse(bucket, "run-a"))
    # Then raw holds every value exactly as landed, with lineage
    raw_rows: list[dict[str, str]] = []
    for raw_file in data_files(partition(bucket.raw, "run-a")):  # Spark writes parts in row order
        with raw_file.open(newline="", encoding="utf-8") as handle:
            raw_rows += list(csv.DictReader(handle))
    assert len(raw_rows) == 3500
    from_csv = [r for r in raw_rows if r["lineage_source"] == str(csv_file)]
    assert [{c: r[c] for c in datagen.COLUMNS} for r in from_csv] == landed, "raw means raw"
    assert {r["lineage_run_id"] for r in raw_rows} == {"run-a"}
    # And the cleansed rows are valid, unique and normalised
    cleansed = read_parquet(partition(bucket.cleansed, "run-a"))
    ids = [r["customer_id"] for r in cleansed]
    assert len(ids) == len(set(ids)) and all(i > 0 for i in ids)
    assert all(r["email"] is None or r["email"] == r["email"].lower() for r in cleansed)
    assert all(r["phone"] is None or re.fullmatch(r"\+[1-9][0-9]{7,14}", r["phone"]) for r in cleansed)
    assert all(r["country"] is None or re.fullmatch(r"[A-Z]{2}", r["country"]) for r in cleansed)
    # And every quarantined row has its reason, and the summary reconciles with the files
    quarantined = read_parquet(partition(bucket.quarantine, "run-a"))
    summary = json.loads(bucket.summary("run-a", "cleanse").read_text())
    by_reason: dict[str, int] = {}
    for row in quarantined:
        by_reason[row["quarantine_reason"]] = by_reason.get(row["quarantine_reason"], 0) + 1
    assert summary["quarantined_by_reason"] == by_reason
    assert summary["rows_read"] == 3500
    assert summary["rows_written"] == len(cleansed)
    assert summary["rows_quarantined"] == len(quarantined)
    assert (
        summary["rows_read"]
        == summary["rows_written"] + summary["rows_quarantined"] + summary["duplicates_removed"]
    )
    assert summary["duplicates_removed"] > 0 and len(by_reason) >= 5
    extract_summary = json.loads(bucket.summary("run-a", "extract").read_text())
    assert extract_summary["rows_read"] == extract_summary["rows_written"] == 3500
    assert extract_summary["inputs"] == [str(csv_file), str(jsonl_file)]


def test_rerunning_a_run_replaces_its_output_only(bucket: BucketLayout) -> None:
    # Given two runs on the same ingest date
    for run_id, seed in (("run-1", 1), ("run-2", 2)):
        landed = bucket.landing / f"{run_id}.csv"
        datagen.write(landed, datagen.generate_rows(400, seed=seed), "csv")
        succeeded(extract(bucket, run_id, input_uris=str(landed)))
        succeeded(cleanse(bucket, run_id))
    other_files = {p: p.read_bytes() for p in partition(bucket.cleansed, "run-2").iterdir()}
    before = read_parquet(partition(bucket.cleansed, "run-1"))
    old_files = {p.name for p in data_files(partition(bucket.cleansed, "run-1"))}
    # When run-1 is cleansed again
    succeeded(cleanse(bucket, "run-1"))
    # Then run-1's output is the same rows, not doubled, none of its old files remain,
    # and run-2's files are untouched
    after = read_parquet(partition(bucket.cleansed, "run-1"))
    assert sorted(r["customer_id"] for r in after) == sorted(r["customer_id"] for r in before)
    assert old_files.isdisjoint(p.name for p in data_files(partition(bucket.cleansed, "run-1")))
    assert {p: p.read_bytes() for p in partition(bucket.cleansed, "run-2").iterdir()} == other_files


@needs_sqlite_jdbc_driver
def test_jdbc_source_reads_the_table_behind_the_glue_connection(bucket: BucketLayout, tmp_path: Path) -> None:
    database = tmp_path / "crm.db"
    datagen.write(database, datagen.generate_rows(800, seed=4), "sqlite")
    env = {CONNECTIONS_ENV: json.dumps({"crm": f"jdbc:sqlite:{database}"})}
    succeeded(extract(bucket, "run-j", env, source="jdbc", connection_name="crm", table="customers"))
    succeeded(cleanse(bucket, "run-j"))
    summary = json.loads(bucket.summary("run-j", "extract").read_text())
    assert summary["rows_read"] == 800
    assert summary["inputs"] == ["jdbc:crm/customers"]
    assert json.loads(bucket.summary("run-j", "cleanse").read_text())["rows_read"] == 800


def test_a_missing_landed_file_fails_the_job_naming_it(bucket: BucketLayout) -> None:
    missing = bucket.landing / "not-there.csv"
    result = extract(bucket, "run-m", input_uris=str(missing))
    assert result.state == "FAILED"
    assert result.error_message and str(missing) in result.error_message
    assert result.error_message.startswith("ExtractError: landed file")


@needs_sqlite_jdbc_driver
def test_a_missing_jdbc_table_fails_the_job_naming_it(bucket: BucketLayout, tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    datagen.write(database, iter([]), "sqlite")
    env = {CONNECTIONS_ENV: json.dumps({"crm": f"jdbc:sqlite:{database}"})}
    result = extract(bucket, "run-t", env, source="jdbc", connection_name="crm", table="clients")
    assert result.state == "FAILED"
    assert result.error_message and "table clients through connection crm" in result.error_message


def test_an_unknown_file_format_fails_the_job_naming_it(bucket: BucketLayout) -> None:
    landed = bucket.landing / "export.xlsx"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(b"PK\x03\x04")
    result = extract(bucket, "run-x", input_uris=str(landed))
    assert result.state == "FAILED"
    assert result.error_message and f"landed file {landed} has an unknown format" in result.error_message


def test_missing_required_columns_fail_job_2_naming_them(bucket: BucketLayout) -> None:
    landed = bucket.landing / "narrow.csv"
    landed.parent.mkdir(parents=True)
    landed.write_text("customer_id,email\n1,a@example.com\n")
    succeeded(extract(bucket, "run-n", input_uris=str(landed)))
    result = cleanse(bucket, "run-n")
    assert result.state == "FAILED"
    assert (
        result.error_message
        and "missing required columns: first_name, last_name, phone" in result.error_message
    )


def test_job_arguments_are_validated(bucket: BucketLayout) -> None:
    result = extract(bucket, "../escape", input_uris="x.csv")
    assert result.state == "FAILED"
    assert result.error_message and "--run_id '../escape'" in result.error_message


# --- S3 (moto) -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[dict[str, str]]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@needs_s3_filesystem
def test_both_jobs_run_against_s3(s3_endpoint: dict[str, str]) -> None:
    # Given a bucket with an export landed in it
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    body = io.StringIO()
    rows = list(datagen.generate_rows(1500, seed=31))
    writer = csv.DictWriter(body, fieldnames=datagen.COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    put = s3.put_object(Bucket="data", Key="landing/2026/export.csv", Body=body.getvalue().encode())
    manifest = {
        "run_id": "run-s3",
        "pipeline": "customers",
        "objects": [{"bucket": "data", "key": "landing/2026/export.csv", "etag": put["ETag"].strip('"')}],
    }
    s3.put_object(Bucket="data", Key="manifests/run-s3.json", Body=json.dumps(manifest).encode())
    # When both jobs run on s3:// paths (the manifest names the landed file)
    args = {
        "--run_id": "run-s3",
        "--raw_path": "s3://data/raw/customers",
        "--ingest_date": INGEST_DATE,
    }
    succeeded(
        run_job(
            script_path("extract_customers"),
            args
            | {
                "--source": "s3",
                "--manifest_uri": "s3://data/manifests/run-s3.json",
                "--summary_uri": "s3://data/summaries/run-s3/extract.json",
                "--staging_uri": "s3://data/staging/run-s3/extract/1/",
            },
            env=s3_endpoint,
        )
    )
    succeeded(
        run_job(
            script_path("cleanse_customers"),
            args
            | {
                "--cleansed_path": "s3://data/cleansed/customers",
                "--quarantine_path": "s3://data/quarantine/customers",
                "--summary_uri": "s3://data/summaries/run-s3/cleanse.json",
            },
            env=s3_endpoint,
        )
    )
    # Then the outputs are in the bucket under the run's partitions and the summary reconciles
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]]
    prefix = f"ingest_date={INGEST_DATE}/run_id=run-s3/"
    assert any(k.startswith(f"raw/customers/{prefix}") and k.endswith(".csv") for k in keys)
    assert any(k.startswith(f"cleansed/customers/{prefix}") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith(f"quarantine/customers/{prefix}") and k.endswith(".parquet") for k in keys)
    summary = json.loads(s3.get_object(Bucket="data", Key="summaries/run-s3/cleanse.json")["Body"].read())
    assert summary["rows_read"] == 1500
    assert (
        summary["rows_read"]
        == summary["rows_written"] + summary["rows_quarantined"] + summary["duplicates_removed"]
    )
    assert "landing/2026/export.csv" in keys, "input objects are never deleted"


@needs_s3_filesystem
def test_an_object_overwritten_in_an_unversioned_bucket_fails_the_run_naming_it(
    s3_endpoint: dict[str, str],
) -> None:
    # Given an unversioned bucket whose landed object was overwritten after its manifest was written
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="plain")
    body = io.StringIO()
    writer = csv.DictWriter(body, fieldnames=datagen.COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(datagen.generate_rows(5, seed=3))
    landed = s3.put_object(Bucket="plain", Key="landing/x.csv", Body=body.getvalue().encode())["ETag"]
    s3.put_object(Bucket="plain", Key="landing/x.csv", Body=body.getvalue().encode() + b"\n")
    manifest = {
        "run_id": "run-w",
        "pipeline": "customers",
        "objects": [{"bucket": "plain", "key": "landing/x.csv", "etag": landed.strip('"')}],
    }
    s3.put_object(Bucket="plain", Key="manifests/run-w.json", Body=json.dumps(manifest).encode())
    # When job 1 runs
    result = run_job(
        script_path("extract_customers"),
        {
            "--run_id": "run-w",
            "--raw_path": "s3://plain/raw/customers",
            "--ingest_date": INGEST_DATE,
            "--source": "s3",
            "--manifest_uri": "s3://plain/manifests/run-w.json",
            "--summary_uri": "s3://plain/summaries/run-w/extract.json",
            "--staging_uri": "s3://plain/staging/run-w/extract/1/",
        },
        env=s3_endpoint,
    )
    # Then it fails naming the object and why, rather than reading content that is not the run's
    assert result.state == "FAILED"
    assert "landing/x.csv was overwritten after it landed" in (result.error_message or "")
    assert "raw/" not in " ".join(o["Key"] for o in s3.list_objects_v2(Bucket="plain").get("Contents", []))


@needs_s3_filesystem
def test_the_orders_jobs_join_lines_to_their_headers_and_account_for_every_line(
    s3_endpoint: dict[str, str], tmp_path: Path
) -> None:
    # Given a run's landed order headers and lines, and its manifest
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="shop")
    orders = datagen_orders.generate(300, seed=41)
    files = datagen_orders.write_files(orders, tmp_path, files=2, stamp="t")
    objects = []
    for path in files:
        put = s3.put_object(Bucket="shop", Key=f"landing/orders/{path.name}", Body=path.read_bytes())
        objects.append(
            {"bucket": "shop", "key": f"landing/orders/{path.name}", "etag": put["ETag"].strip('"')}
        )
    manifest = {"run_id": "run-o", "pipeline": "orders", "objects": objects}
    s3.put_object(Bucket="shop", Key="manifests/run-o.json", Body=json.dumps(manifest).encode())
    common = {
        "--run_id": "run-o",
        "--ingest_date": INGEST_DATE,
        "--manifest_uri": "s3://shop/manifests/run-o.json",
    }
    partition = f"ingest_date={INGEST_DATE}/run_id=run-o/"
    # When the lines job, the ERP team's headers job and the cleanse job run
    succeeded(
        run_job(
            script_path("extract_order_lines"),
            common
            | {
                "--raw_path": "s3://shop/raw/orders/lines",
                "--summary_uri": "s3://shop/summaries/run-o/lines.json",
                "--staging_uri": "s3://shop/staging/run-o/lines/1/",
            },
            env=s3_endpoint,
        )
    )
    succeeded(
        run_job(
            ROOT / "examples" / "erp-stack" / "erp_extract_order_headers.py",
            common
            | {
                "--name_prefix": datagen_orders.HEADERS_FILE_PREFIX,
                "--output_path": f"s3://shop/raw/orders/headers/{partition}",
            },
            env=s3_endpoint,
        )
    )
    succeeded(
        run_job(
            script_path("cleanse_orders"),
            {
                "--run_id": "run-o",
                "--ingest_date": INGEST_DATE,
                "--lines_path": "s3://shop/raw/orders/lines",
                "--headers_path": "s3://shop/raw/orders/headers",
                "--cleansed_path": "s3://shop/cleansed/orders",
                "--quarantine_path": "s3://shop/quarantine/orders",
                "--summary_uri": "s3://shop/summaries/run-o/cleanse.json",
            },
            env=s3_endpoint,
        )
    )
    # Then every line is written or quarantined with its reason, exactly as the generator made them
    summary = json.loads(s3.get_object(Bucket="shop", Key="summaries/run-o/cleanse.json")["Body"].read())
    assert summary["rows_read"] == len(orders.lines)
    assert summary["rows_quarantined"] == orders.bad_lines > 0
    assert summary["rows_written"] == len(orders.lines) - orders.bad_lines
    assert summary["quarantined_by_reason"]["unknown_order"] > 0
    written = _parquet_rows(s3, "shop", f"cleansed/orders/{partition}")
    assert len(written) == summary["rows_written"]
    headers = {h["order_id"]: h for h in orders.headers}
    for row in written[:50]:
        assert row["customer_id"] == int(headers[row["order_id"]]["customer_id"])
        assert row["amount"] == row["quantity"] * row["unit_price"]


def _parquet_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        if item["Key"].endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows
