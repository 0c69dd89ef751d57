"""The whole application in the local cloud: S3 events, the real state machines, the handlers in their own
processes, the Glue scripts and crawls, and the runs' records in DynamoDB."""

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


def test_landed_files_run_the_customers_pipeline_to_success_with_data_and_catalog(cloud: LocalCloud) -> None:
    [report] = run_from_landing(cloud, rows=ROWS, files=2, seed=11)

    assert report.status == "SUCCEEDED" and report.local.execution_status == "SUCCEEDED", report.cause
    assert report.pipeline == "customers" and report.run_id.startswith("customers-s3-")
    assert [s.step for s in report.steps] == [
        "extract",
        "crawl_raw",
        "cleanse",
        "check_cleansed",
        "catalog_cleansed",
    ]
    assert all(s.status == "SUCCEEDED" for s in report.steps)
    rows = report.rows
    assert rows["rows_read"] == ROWS
    assert rows["rows_written"] + rows["rows_quarantined"] + rows["duplicates_removed"] == ROWS
    ingest_date = json.loads(_run_input(cloud, report))["ingest_date"]
    assert (
        parquet_rows(cloud, f"cleansed/customers/ingest_date={ingest_date}/run_id={report.run_id}/")
        == (rows["rows_written"])
    )
    tables = {t.name: t for t in report.detail.tables}
    assert set(tables) == {"raw_customers", "cleansed_customers"}
    cleansed = tables["cleansed_customers"]
    assert cleansed.partition_keys == ["ingest_date", "run_id"] and cleansed.run_partitions == 1
    assert dict(cleansed.columns)["customer_id"] == "bigint"
    # Five callback steps: start_step five times, on_glue_event once per Glue job run or crawl (the gate and
    # the catalog step complete within start_step: nothing for Glue to report), no polling.
    assert report.local.lambda_invocations["StartStepFunction"] == 5
    assert report.local.lambda_invocations["OnGlueEventFunction"] == 3
    # Record the run as started, the five steps, Record the run as succeeded, Run succeeded
    assert report.state_transitions == 8


def _run_input(cloud: LocalCloud, report: RunReport) -> str:
    arn = cloud.execution_arn(report.run_id)
    return str(cloud.client("stepfunctions").describe_execution(executionArn=arn)["input"])


def test_the_relational_source_runs_through_a_glue_connection(cloud: LocalCloud) -> None:
    report = run_from_database(cloud, rows=ROWS, seed=12)

    assert report.status == "SUCCEEDED", report.cause
    assert report.trigger == "manual"
    extract = report.step("extract")
    assert extract.facts["rows"] == {"rows_read": ROWS, "rows_written": ROWS}


def test_the_orders_pipeline_runs_two_extracts_at_once_a_crawl_after_both_and_other_stacks_steps(
    cloud: LocalCloud,
) -> None:
    [report] = run_from_landing(cloud, rows=800, files=2, seed=14, pipeline="orders")

    assert report.status == "SUCCEEDED", report.cause
    steps = {s.step: s for s in report.steps}
    order = list(steps)
    assert set(order[:2]) == {"extract_lines", "extract_headers"}
    assert order[2:] == ["crawl_raw", "cleanse", "publish"]
    # The two extracts overlapped; the crawl started after both had finished (fan-in)
    lines, headers, crawl = steps["extract_lines"], steps["extract_headers"], steps["crawl_raw"]
    assert max(lines.opened_at or "", headers.opened_at or "") < min(
        lines.closed_at or "", headers.closed_at or ""
    )
    assert (crawl.opened_at or "") >= max(lines.closed_at or "", headers.closed_at or "")
    # The other stack's job and crawler ran as steps, by their own names
    assert (
        headers.resource == "erp_extract_order_headers" and steps["publish"].resource == "erp_orders_catalog"
    )
    assert report.transitions[1].type == "Parallel"
    rows = report.rows
    assert rows["rows_read"] == rows["rows_written"] + rows["rows_quarantined"] > 0
    erp = cloud.client("glue").get_tables(DatabaseName="erp_catalog")["TableList"]
    assert [t["Name"] for t in erp] == ["erp_orders"]


def test_a_failing_job_fails_the_run_with_glues_message(cloud: LocalCloud) -> None:
    bucket = cloud.output("DataBucketName")
    known = {e["executionArn"] for e in cloud.executions()}
    # Semicolons instead of commas: job 1's check of the landed file says so, naming the file.
    body = b"customer_id;first_name;email\n1;Ada;ada@example.com\n"
    cloud.client("s3").put_object(Bucket=bucket, Key="landing/customers/wrong-delimiter.csv", Body=body)
    [execution] = cloud.wait_for_new_executions(1, known)
    final = cloud.wait_for_execution(execution["executionArn"])

    assert final["status"] == "FAILED"
    assert final["error"] == "GlueJobFailed"
    assert f"landed file s3://{bucket}/landing/customers/wrong-delimiter.csv" in final["cause"]
    assert "is not comma-delimited: its header looks semicolon-delimited" in final["cause"]
    from gluerelay.local.report import build

    report = build(cloud, execution["executionArn"])
    assert report.status == "FAILED"
    assert report.failed_step == "extract"


def test_a_failed_crawl_fails_the_run_never_succeeds(cloud: LocalCloud) -> None:
    crawler = cloud.template.physical_name("RawCustomersCrawler")
    cloud.glue.fail_crawlers[crawler] = "Internal Service Exception"
    try:
        [report] = run_from_landing(cloud, rows=200, seed=13)
    finally:
        cloud.glue.fail_crawlers.pop(crawler)

    assert report.status == "FAILED"
    assert report.error == "GlueCrawlFailed"
    assert report.failed_step == "crawl_raw"
    assert "Internal Service Exception" in (report.cause or "")
    assert report.step("crawl_raw").status == "FAILED"
