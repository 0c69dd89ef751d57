"""Catalog steps: the run's partition registered without a crawl, drift caught, a rerun idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from relay.logic.catalog import compare, normalised_type, type_problem
from relay.logic.steps import on_crawler_event, start_step, sweep
from relay.models import (
    CatalogRequest,
    CrawlerStateChange,
    StepKind,
    StepRef,
    StepRequest,
    StepStatus,
    TableColumn,
)

from tests.fakes import FakeCloud, load_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DATABASE = "stack_catalog"
TABLE = "cleansed_customers"
CRAWLER = "stack_cleansed_customers"
COLUMNS = [{"name": "customer_id", "type": "bigint"}, {"name": "email", "type": "string"}]


def catalog_request(**spec: Any) -> CatalogRequest:
    return CatalogRequest.model_validate(
        {
            "database": DATABASE,
            "location": "s3://data/cleansed/customers/",
            "format": "parquet",
            "partitions": [{"name": "ingest_date", "value": "2026-01-01"}, {"name": "run_id", "value": "r"}],
            "columns": COLUMNS,
            **spec,
        }
    )


def catalog_step(
    cloud: FakeCloud, run: str, at: datetime = T0, token: str | None = None, **spec: Any
) -> dict[str, Any]:
    request = catalog_request(**spec)
    request.partitions[1].value = run
    return start_step(
        StepRequest(
            pipeline="customers",
            kind=StepKind.CATALOG,
            name=TABLE,
            run_id=run,
            step="catalog_cleansed",
            token=token or f"t-{run}",
            execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:stack_customers:{run}",
            catalog=request,
        ),
        cloud.plane,
        at,
    )


def existing_table(
    cloud: FakeCloud, columns: list[dict[str, str]], keys: tuple[str, ...] = ("ingest_date", "run_id")
) -> None:
    cloud.glue.tables[(DATABASE, TABLE)] = {
        "Name": TABLE,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
        "StorageDescriptor": {"Columns": [{"Name": c["name"], "Type": c["type"]} for c in columns]},
    }


# ------------------------------------------------------------------------------------------ types and drift


@pytest.mark.parametrize(
    "hive_type",
    [
        "string",
        "BIGINT",
        "decimal(10, 2)",
        "varchar(20)",
        "array<string>",
        "map<string,array<int>>",
        "struct<a:int,b:array<struct<c:string>>>",
        "timestamp",
        "date",
        "boolean",
    ],
)
def test_glue_column_types_are_accepted(hive_type: str) -> None:
    assert type_problem(hive_type) is None


@pytest.mark.parametrize(
    "hive_type", ["text", "strin", "varchar", "array<>", "map<string>", "decimal(10)", "int4"]
)
def test_what_glue_does_not_type_is_refused_naming_it(hive_type: str) -> None:
    problem = type_problem(hive_type)
    assert problem is not None and repr(hive_type) in problem


def test_the_same_schema_written_differently_is_no_drift() -> None:
    table = {
        "Name": TABLE,
        "PartitionKeys": [{"Name": "ingest_date"}],
        "StorageDescriptor": {
            "Columns": [{"Name": "Amount", "Type": "DECIMAL(10, 2)"}, {"Name": "id", "Type": "integer"}]
        },
    }
    columns = [TableColumn(name="id", type="int"), TableColumn(name="amount", type="decimal(10,2)")]
    assert normalised_type("DECIMAL(10, 2)") == "decimal(10,2)"
    # Spark's names for the catalog's types, as a job reports its DataFrame's schema
    assert normalised_type("timestamp_ntz") == "timestamp" == normalised_type("TIMESTAMP_LTZ")
    assert normalised_type("array<struct<a:integer,b:long>>") == "array<struct<a:int,b:bigint>>"
    assert compare(table, columns, ["ingest_date"], "parquet", "the pipeline file") is None
    # A CSV table reads columns by position: the same columns in another order is drift there
    drift = compare(table, columns, ["ingest_date"], "csv", "the pipeline file")
    assert drift is not None and drift.reordered and "another order" in drift.describe()


def test_drift_names_every_column_that_differs_and_the_partition_keys() -> None:
    table = {
        "Name": TABLE,
        "PartitionKeys": [{"Name": "ingest_date"}],
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "string"}, {"Name": "phone", "Type": "string"}]
        },
    }
    columns = [TableColumn(name="id", type="bigint"), TableColumn(name="email", type="string")]
    drift = compare(table, columns, ["ingest_date", "run_id"], "parquet", "job step cleanse's summary")
    assert drift is not None
    assert drift.facts() == {
        "added": ["email"],
        "removed": ["phone"],
        "changed": ["id"],
        "partition_keys": ["ingest_date"],
    }
    assert drift.describe() == (
        "table cleansed_customers differs from job step cleanse's summary: not in the table: email string; "
        "not in the data: phone string; types differ: id string in the table, bigint in the data; "
        "partition keys: ingest_date in the table, ingest_date, run_id in the step"
    )


# ------------------------------------------------------------------------------------------ registering


def test_the_first_run_creates_the_table_and_registers_its_partition_with_no_crawl() -> None:
    cloud = FakeCloud()
    result = catalog_step(cloud, "a")

    assert result["catalog"] == "registered"
    table = cloud.glue.tables[(DATABASE, TABLE)]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ingest_date", "run_id"]
    assert table["StorageDescriptor"]["Columns"] == [
        {"Name": "customer_id", "Type": "bigint"},
        {"Name": "email", "Type": "string"},
    ]
    assert "ParquetHiveSerDe" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    partition = cloud.glue.partitions[(DATABASE, TABLE)][("2026-01-01", "a")]
    assert (
        partition["StorageDescriptor"]["Location"]
        == "s3://data/cleansed/customers/ingest_date=2026-01-01/run_id=a/"
    )
    output = cloud.workflow.successes["t-a"]
    assert output["kind"] == "catalog" and output["resource"] == TABLE
    assert (output["table_created"], output["partitions_created"], output["partitions_updated"]) == (
        True,
        1,
        0,
    )
    assert output["partition"] == ["2026-01-01", "a"] and output["dpu_seconds"] == 0
    assert cloud.glue.crawls_started == []
    assert cloud.store.steps[StepRef(run_id="a", step="catalog_cleansed")].status == StepStatus.SUCCEEDED


def test_a_rerun_updates_its_partition_and_registers_nothing_twice() -> None:
    cloud = FakeCloud()
    catalog_step(cloud, "a")
    catalog_step(cloud, "b")
    # The same run's step again, as a rerun opens it (a new token: a new attempt)
    cloud.store.steps[StepRef(run_id="a", step="catalog_cleansed")].status = StepStatus.SUPERSEDED
    catalog_step(cloud, "a", T0 + timedelta(hours=1), token="t-a-rerun")

    again = cloud.workflow.successes["t-a-rerun"]
    assert (again["table_created"], again["partitions_created"], again["partitions_updated"]) == (False, 0, 1)
    assert sorted(cloud.glue.partitions[(DATABASE, TABLE)]) == [("2026-01-01", "a"), ("2026-01-01", "b")]
    assert cloud.glue.partition_updates == 1


def test_the_columns_come_from_the_jobs_summary_when_the_step_says_so() -> None:
    cloud = FakeCloud()
    cloud.bucket.summaries[("a", "cleanse")] = {"rows_read": 1, "columns": [{"name": "id", "type": "bigint"}]}
    catalog_step(cloud, "a", columns=[], columns_from="cleanse")
    assert cloud.glue.tables[(DATABASE, TABLE)]["StorageDescriptor"]["Columns"] == [
        {"Name": "id", "Type": "bigint"}
    ]
    assert cloud.workflow.successes["t-a"]["columns_from"] == "job step cleanse's summary"

    # Spark's timestamp_ntz is the catalog's timestamp: the table is created, and compared, with Hive's name
    cloud.bucket.summaries[("c", "cleanse")] = {
        "columns": [{"name": "id", "type": "bigint"}, {"name": "at", "type": "timestamp_ntz"}]
    }
    del cloud.glue.tables[(DATABASE, TABLE)]
    catalog_step(cloud, "c", columns=[], columns_from="cleanse")
    columns = cloud.glue.tables[(DATABASE, TABLE)]["StorageDescriptor"]["Columns"]
    assert columns == [{"Name": "id", "Type": "bigint"}, {"Name": "at", "Type": "timestamp"}]
    cloud.bucket.summaries[("d", "cleanse")] = {
        "columns": [{"name": "id", "type": "bigint"}, {"name": "at", "type": "timestamp"}]
    }
    catalog_step(cloud, "d", columns=[], columns_from="cleanse")
    assert cloud.workflow.successes["t-d"]["partitions_created"] == 1  # no drift
    # A type the catalog does not have is refused naming it
    cloud.bucket.summaries[("e", "cleanse")] = {"columns": [{"name": "id", "type": "interval"}]}
    catalog_step(cloud, "e", columns=[], columns_from="cleanse")
    assert "id: 'interval' is not a Glue column type" in cloud.workflow.failures["t-e"][1]

    # A summary without columns fails the step naming where it looked
    catalog_step(cloud, "b", columns=[], columns_from="cleanse")
    error, cause = cloud.workflow.failures["t-b"]
    assert error == "GlueCatalogFailed"
    assert "summaries/b/cleanse.json" in cause and "reports no `columns`" in cause


def test_drift_with_on_drift_fail_fails_the_run_naming_the_columns() -> None:
    cloud = FakeCloud()
    existing_table(cloud, [{"name": "customer_id", "type": "string"}, {"name": "email", "type": "string"}])
    result = catalog_step(cloud, "a")

    assert result["drift"] == {"added": [], "removed": [], "changed": ["customer_id"]}
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "SchemaDrift"
    assert "types differ: customer_id string in the table, bigint in the data" in cause
    assert cloud.glue.partitions.get((DATABASE, TABLE)) is None  # nothing registered into a drifted table
    assert cloud.glue.crawls_started == []


def test_drift_with_on_drift_crawl_hands_the_step_to_its_crawler_whose_crawl_completes_it() -> None:
    cloud = FakeCloud()
    existing_table(cloud, [{"name": "customer_id", "type": "bigint"}])
    result = catalog_step(cloud, "a", on_drift="crawl", crawler=CRAWLER)

    assert result == {
        "run_id": "a",
        "step": "catalog_cleansed",
        "attempt": 1,
        "drift": {"added": ["email"], "removed": [], "changed": []},
        "crawl": "owner",
    }
    assert cloud.glue.crawls_started == [CRAWLER]
    step = cloud.store.steps[StepRef(run_id="a", step="catalog_cleansed")]
    assert step.status == StepStatus.OPEN and step.waits_for_crawler == CRAWLER
    # The crawl's own event completes it, like a crawler step, with the drift kept in its output
    cloud.glue.crawler_state[CRAWLER] = "READY"
    detail = {**load_event("glue-crawler-succeeded")["detail"], "crawlerName": CRAWLER}
    detail["completionDate"] = (T0 + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    on_crawler_event(CrawlerStateChange.model_validate(detail), cloud.plane, T0 + timedelta(minutes=2))
    output = cloud.workflow.successes["t-a"]
    assert output["kind"] == "catalog" and output["crawler"] == CRAWLER
    assert output["drift"] == {"added": ["email"], "removed": [], "changed": []}


def test_the_sweeper_repairs_a_fallen_back_catalog_step_whose_crawl_event_was_lost() -> None:
    cloud = FakeCloud()
    existing_table(cloud, [{"name": "customer_id", "type": "bigint"}])
    catalog_step(cloud, "a", on_drift="crawl", crawler=CRAWLER)
    cloud.glue.finish_crawl(CRAWLER, T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))  # event lost

    report = sweep(cloud.plane, T0 + timedelta(minutes=30), timedelta(minutes=10), timedelta(hours=1))

    assert len(report.repaired) == 1 and "event lost" in report.repaired[0], report
    assert cloud.workflow.successes["t-a"]["repaired_by"] == "sweeper"


def test_a_catalog_refusal_fails_the_step_with_glues_own_message() -> None:
    cloud = FakeCloud()

    def refuse(database: str, table: str, partitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "PartitionValues": partitions[0]["Values"],
                "ErrorDetail": {"ErrorCode": "InvalidInputException", "ErrorMessage": "Location is invalid"},
            }
        ]

    cloud.glue.batch_create_partition = refuse  # type: ignore[method-assign]
    catalog_step(cloud, "a")
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "GlueCatalogFailed"
    assert cause == (
        "catalog step catalog_cleansed (table cleansed_customers): InvalidInputException: "
        "BatchCreatePartition: Location is invalid"
    )


def test_a_catalog_request_is_refused_without_exactly_one_schema_or_a_fallback_crawler() -> None:
    with pytest.raises(ValueError, match="exactly one of columns and columns_from"):
        catalog_request(columns_from="cleanse")
    with pytest.raises(ValueError, match="needs the crawler"):
        catalog_request(on_drift="crawl")
