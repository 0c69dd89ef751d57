"""Catalog steps in the local cloud: the customers example registers each run's cleansed partition in the
Data Catalog itself (no crawl), catches a table whose schema drifted (crawling it, or failing the run, as
the step says), and a rerun registers nothing twice."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from relay.logic.catalog import normalised_type

from gluerelay.local.cloud import LocalCloud
from gluerelay.local.report import RunReport, build
from gluerelay.local.runs import run_from_landing
from tests.e2e.cli_process import as_json, gluerelay

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TABLE = "cleansed_customers"


def cleansed_crawls(cloud: LocalCloud) -> int:
    crawler = cloud.template.physical_name("CleansedCustomersCrawler")
    return len([c for c in cloud.glue.crawls if c.crawler == crawler])


def run_partitions(cloud: LocalCloud, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cloud.client("glue").get_partitions(
        DatabaseName=cloud.output("CatalogDatabaseName"), TableName=TABLE, Expression=f"run_id = '{run_id}'"
    )["Partitions"]
    return found


def table_columns(cloud: LocalCloud) -> dict[str, str]:
    table = cloud.client("glue").get_table(DatabaseName=cloud.output("CatalogDatabaseName"), Name=TABLE)
    return {c["Name"]: c["Type"] for c in table["Table"]["StorageDescriptor"]["Columns"]}


def rows_at(cloud: LocalCloud, location: str) -> int:
    """The rows a query engine reads from a partition's location (its Parquet files)."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    s3 = cloud.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows
        for k in keys
        if k.endswith(".parquet")
    )


@pytest.fixture
def drifted_table(cloud: LocalCloud) -> Iterator[None]:
    """The cleansed table as someone altered it: customer_id typed string, where the job writes bigint."""
    run_from_landing(cloud, rows=50, seed=39)  # the table exists
    glue, database = cloud.client("glue"), cloud.output("CatalogDatabaseName")
    table = glue.get_table(DatabaseName=database, Name=TABLE)["Table"]
    keep = {k: table[k] for k in ("Name", "PartitionKeys", "StorageDescriptor", "TableType", "Parameters")}
    columns = [
        {**c, "Type": "string"} if c["Name"] == "customer_id" else c
        for c in keep["StorageDescriptor"]["Columns"]
    ]
    glue.update_table(
        DatabaseName=database,
        TableInput={**keep, "StorageDescriptor": {**keep["StorageDescriptor"], "Columns": columns}},
    )
    try:
        yield
    finally:
        glue.update_table(DatabaseName=database, TableInput=keep)


def test_a_runs_cleansed_partition_is_registered_by_the_catalog_step_without_a_crawl(
    cloud: LocalCloud,
) -> None:
    crawls_before = cleansed_crawls(cloud)
    [report] = run_from_landing(cloud, rows=300, seed=31)

    assert report.status == "SUCCEEDED", report.cause
    step = report.step("catalog_cleansed")
    assert (step.kind, step.resource, step.status) == ("catalog", TABLE, "SUCCEEDED")
    assert (step.facts["partitions_created"], step.facts["partitions_updated"]) == (1, 0)
    assert step.facts["dpu_seconds"] == 0 and step.facts["columns_from"] == "job step cleanse's summary"
    assert cleansed_crawls(cloud) == crawls_before  # no crawl
    # The partition is queryable: the catalog points at exactly the run's Parquet
    [partition] = run_partitions(cloud, report.run_id)
    ingest_date = partition["Values"][0]
    location = partition["StorageDescriptor"]["Location"]
    assert location == (
        f"s3://{cloud.output('DataBucketName')}/cleansed/customers/ingest_date={ingest_date}/run_id={report.run_id}/"
    )
    assert rows_at(cloud, location) == report.rows["rows_written"] > 0
    # The table's columns are those the job reported writing (Spark's timestamp_ntz: the catalog's timestamp),
    # typed as a crawl of the same Parquet types them
    reported = {c["name"]: normalised_type(c["type"]) for c in _summary_columns(cloud, report)}
    assert table_columns(cloud) == reported
    assert (reported["customer_id"], reported["updated_at"], reported["date_of_birth"]) == (
        "bigint",
        "timestamp",
        "date",
    )
    # runs show and runs cost see it like any step: the run's one crawl is the raw table's
    shown = as_json(gluerelay(cloud, "runs", "show", report.run_id, "--local", "--json"))
    [catalog_step] = [s for s in shown["steps"] if s["step"] == "catalog_cleansed"]
    assert catalog_step["facts"]["partitions_created"] == 1
    [cost] = as_json(gluerelay(cloud, "runs", "cost", report.run_id, "--local", "--json"))["runs"]
    assert len(cost["crawls"]) == 1


def _summary_columns(cloud: LocalCloud, report: RunReport) -> list[dict[str, str]]:
    key = f"summaries/{report.run_id}/cleanse.json"
    body = cloud.client("s3").get_object(Bucket=cloud.output("DataBucketName"), Key=key)["Body"].read()
    columns: list[dict[str, str]] = json.loads(body)["columns"]
    return columns


def test_a_rerun_updates_the_runs_partition_and_registers_nothing_twice(cloud: LocalCloud) -> None:
    [first] = run_from_landing(cloud, rows=200, seed=32)
    assert first.status == "SUCCEEDED", first.cause
    rerun = as_json(
        gluerelay(cloud, "runs", "rerun", first.run_id, "--from-step", "cleanse", "--local", "--json")
    )
    cloud.wait_for_execution(rerun["execution_arn"], timeout=300)
    report = build(cloud, rerun["execution_arn"])

    assert report.status == "SUCCEEDED", report.cause
    step = report.step("catalog_cleansed")
    assert step.attempt == 2
    assert (step.facts["partitions_created"], step.facts["partitions_updated"]) == (0, 1)
    [partition] = run_partitions(cloud, first.run_id)
    assert rows_at(cloud, partition["StorageDescriptor"]["Location"]) == report.rows["rows_written"]


def test_drift_with_on_drift_crawl_crawls_the_table_and_the_run_succeeds(
    cloud: LocalCloud, drifted_table: None
) -> None:
    crawls_before = cleansed_crawls(cloud)
    [report] = run_from_landing(cloud, rows=100, seed=33)

    assert report.status == "SUCCEEDED", report.cause
    step = report.step("catalog_cleansed")
    assert step.facts["drift"] == {"added": [], "removed": [], "changed": ["customer_id"]}
    assert step.facts["crawler"] == cloud.template.physical_name("CleansedCustomersCrawler")
    assert cleansed_crawls(cloud) == crawls_before + 1
    assert table_columns(cloud)["customer_id"] == "bigint"  # the crawl typed it from the data again
    assert len(run_partitions(cloud, report.run_id)) == 1
    # The crawl typed the table as the job reports its columns: the next run finds no drift, and no crawl
    [after] = run_from_landing(cloud, rows=100, seed=35)
    assert after.status == "SUCCEEDED", after.cause
    assert "drift" not in after.step("catalog_cleansed").facts
    assert after.step("catalog_cleansed").facts["partitions_created"] == 1
    assert cleansed_crawls(cloud) == crawls_before + 1


def test_drift_with_on_drift_fail_fails_the_run_naming_the_columns(
    cloud: LocalCloud, drifted_table: None
) -> None:
    sfn = cloud.client("stepfunctions")
    arn = cloud.template.ref("CustomersPipeline")
    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    assert definition.count('"on_drift": "crawl"') == 1
    # The pipeline deployed again with on_drift: fail
    sfn.update_state_machine(
        stateMachineArn=arn, definition=definition.replace('"on_drift": "crawl"', '"on_drift": "fail"')
    )
    crawls_before = cleansed_crawls(cloud)
    try:
        [report] = run_from_landing(cloud, rows=100, seed=34)
    finally:
        sfn.update_state_machine(stateMachineArn=arn, definition=definition)

    assert report.status == "FAILED"
    assert report.step("catalog_cleansed").status == "FAILED"
    assert report.error == "SchemaDrift", (report.error, report.cause)
    assert "types differ: customer_id string in the table, bigint in the data" in str(report.cause)
    assert cleansed_crawls(cloud) == crawls_before
    assert run_partitions(cloud, report.run_id) == []  # nothing registered into the drifted table
