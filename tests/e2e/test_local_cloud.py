"""The whole application in the local cloud: S3 events, the real state machine, the handlers in their own
processes, the Glue scripts and crawls, and the run's record in DynamoDB."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from gluerelay.local.cloud import LocalCloud
from gluerelay.local.report import RunReport
from gluerelay.local.runs import run_from_database, run_from_landing

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROWS = 1_500


def parquet_rows(cloud: LocalCloud, prefix: str) -> int:
    s3 = cloud.client("s3")
    bucket = cloud.output("DataBucketName")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    bodies = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys if k.endswith(".parquet")]
    return sum(pq.read_table(io.BytesIO(b)).num_rows for b in bodies)


def step(report: RunReport, name: str) -> dict[str, object]:
    found = next(s for s in report.steps if s.step == name)
    return {"status": found.status, **found.facts}


def test_landed_files_run_the_pipeline_to_success_with_data_and_catalog(cloud: LocalCloud) -> None:
    [report] = run_from_landing(cloud, rows=ROWS, files=2, seed=11)

    assert report.status == "SUCCEEDED" and report.execution_status == "SUCCEEDED", report.cause
    assert [s.step for s in report.steps] == ["01-extract", "02-crawl-raw", "03-cleanse", "04-crawl-cleansed"]
    assert all(s.status == "SUCCEEDED" for s in report.steps)
    rows = report.rows
    assert rows["rows_read"] == ROWS
    assert rows["rows_written"] + rows["rows_quarantined"] + rows["duplicates_removed"] == ROWS
    prefix = f"cleansed/customers/ingest_date={json.loads(_run_input(cloud, report))['ingest_date']}"
    assert parquet_rows(cloud, f"{prefix}/run_id={report.run_id}/") == rows["rows_written"]
    tables = {t.name: t for t in report.tables}
    assert {"raw_customers", "cleansed_customers"} <= set(tables)
    cleansed = tables["cleansed_customers"]
    assert cleansed.partition_keys == ["ingest_date", "run_id"]
    assert any(p[1] == report.run_id for p in cleansed.partitions)
    assert dict(cleansed.columns)["customer_id"] == "bigint"
    # Four callback steps: start_step four times, on_glue_event once per Glue completion, no polling.
    assert report.lambda_invocations["StartStepFunction"] == 4
    assert report.lambda_invocations["OnGlueEventFunction"] == 4
    # Start or resume?, Record the run as started, the four steps, Record the run as succeeded, Run succeeded
    assert report.state_transitions == 8


def _run_input(cloud: LocalCloud, report: RunReport) -> str:
    arn = cloud.execution_arn(report.run_id)
    return str(cloud.client("stepfunctions").describe_execution(executionArn=arn)["input"])


def test_the_relational_source_runs_through_a_glue_connection(cloud: LocalCloud) -> None:
    report = run_from_database(cloud, rows=ROWS, seed=12)

    assert report.status == "SUCCEEDED", report.cause
    assert report.trigger == "manual"
    extract = step(report, "01-extract")
    assert extract["rows"] == {"rows_read": ROWS, "rows_written": ROWS}


def test_a_failing_job_fails_the_run_with_glues_message(cloud: LocalCloud) -> None:
    bucket = cloud.output("DataBucketName")
    known = {e["executionArn"] for e in cloud.executions()}
    # Semicolons instead of commas: job 2 finds none of its required columns and says so.
    body = b"customer_id;first_name;email\n1;Ada;ada@example.com\n"
    cloud.client("s3").put_object(Bucket=bucket, Key="landing/wrong-delimiter.csv", Body=body)
    [execution] = cloud.wait_for_new_executions(1, known)
    final = cloud.wait_for_execution(execution["executionArn"])

    assert final["status"] == "FAILED"
    assert final["error"] == "GlueJobFailed"
    assert "missing required columns" in final["cause"]
    from gluerelay.local.report import build

    report = build(cloud, execution["executionArn"])
    assert report.status == "FAILED"
    assert report.failed_step is not None and report.failed_step["step"] in ("01-extract", "03-cleanse")


def test_a_failed_crawl_fails_the_run_never_succeeds(cloud: LocalCloud) -> None:
    crawler = cloud.output("RawCrawlerName")
    cloud.glue.fail_crawlers[crawler] = "Internal Service Exception"
    try:
        [report] = run_from_landing(cloud, rows=200, seed=13)
    finally:
        cloud.glue.fail_crawlers.pop(crawler)

    assert report.status == "FAILED"
    assert report.error == "GlueCrawlFailed"
    assert "Internal Service Exception" in (report.cause or "")
    assert step(report, "02-crawl-raw")["status"] == "FAILED"
