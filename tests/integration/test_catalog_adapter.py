"""Catalog steps' AWS calls on moto: the Data Catalog as Glue answers them, and the step's fallback record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from relay.adapters.aws import GlueService
from relay.adapters.dynamodb import ControlTable
from relay.errors import CatalogError
from relay.logic.catalog import Drift, Registered, register
from relay.models import CatalogRequest, Step, StepKind, StepRequest, StepStatus

from tests.fakes import FakeBucket
from tests.template import resource

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DATABASE = "stack_catalog"


@pytest.fixture
def glue() -> Iterator[tuple[GlueService, Any]]:
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_database(DatabaseInput={"Name": DATABASE})
        yield GlueService(client), client


def step(run: str) -> Step:
    return Step(
        run_id=run,
        step="catalog_cleansed",
        pipeline="customers",
        kind=StepKind.CATALOG,
        resource="cleansed_customers",
        status=StepStatus.OPEN,
        token="t",
        opened_at=T0,
    )


def request(run: str, columns: list[dict[str, str]] | None = None) -> CatalogRequest:
    return CatalogRequest.model_validate(
        {
            "database": DATABASE,
            "location": "s3://data/cleansed/customers/",
            "format": "parquet",
            "partitions": [{"name": "ingest_date", "value": "2026-01-01"}, {"name": "run_id", "value": run}],
            "columns": columns
            or [{"name": "customer_id", "type": "bigint"}, {"name": "email", "type": "string"}],
        }
    )


def test_a_table_is_none_until_created_and_created_once(glue: tuple[GlueService, Any]) -> None:
    service, _ = glue
    assert service.get_table(DATABASE, "t") is None
    table_input = {"Name": "t", "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "string"}]}}
    assert service.create_table(DATABASE, table_input) is True
    assert service.create_table(DATABASE, table_input) is False  # created meanwhile by another run
    created = service.get_table(DATABASE, "t")
    assert created is not None and created["StorageDescriptor"]["Columns"] == [
        {"Name": "a", "Type": "string"}
    ]


def test_a_missing_database_is_glues_error_not_a_missing_table(glue: tuple[GlueService, Any]) -> None:
    service, _ = glue
    with pytest.raises(CatalogError) as raised:
        service.get_table("no_such_db", "t")
    assert raised.value.code == "EntityNotFoundException" and "no_such_db" in raised.value.message


def test_runs_register_their_partitions_and_a_rerun_updates_its_own(glue: tuple[GlueService, Any]) -> None:
    service, client = glue
    first = register(step("a"), request("a"), service, FakeBucket())
    second = register(step("b"), request("b"), service, FakeBucket())
    again = register(step("a"), request("a"), service, FakeBucket())

    assert isinstance(first, Registered) and isinstance(second, Registered) and isinstance(again, Registered)
    assert (first.table_created, first.partitions_created, first.partitions_updated) == (True, 1, 0)
    assert (second.table_created, second.partitions_created) == (False, 1)
    assert (again.partitions_created, again.partitions_updated) == (0, 1)
    partitions = client.get_partitions(DatabaseName=DATABASE, TableName="cleansed_customers")["Partitions"]
    assert sorted(p["Values"][1] for p in partitions) == ["a", "b"]
    located = {p["Values"][1]: p["StorageDescriptor"]["Location"] for p in partitions}
    assert located["a"] == "s3://data/cleansed/customers/ingest_date=2026-01-01/run_id=a/"
    table = client.get_table(DatabaseName=DATABASE, Name="cleansed_customers")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ingest_date", "run_id"]
    assert table["Parameters"]["created_by"] == "gluerelay"


def test_a_drifted_table_is_reported_and_left_as_it_is(glue: tuple[GlueService, Any]) -> None:
    service, client = glue
    register(step("a"), request("a"), service, FakeBucket())
    drift = register(
        step("b"), request("b", [{"name": "customer_id", "type": "string"}]), service, FakeBucket()
    )

    assert isinstance(drift, Drift)
    assert drift.facts() == {"added": [], "removed": ["email"], "changed": ["customer_id"]}
    partitions = client.get_partitions(DatabaseName=DATABASE, TableName="cleansed_customers")["Partitions"]
    assert [p["Values"][1] for p in partitions] == ["a"]


def test_a_catalog_steps_fallback_is_recorded_and_a_new_attempt_clears_it() -> None:
    properties = resource("ControlTable")["Properties"]
    with mock_aws():
        created: Any = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="control",
            BillingMode=properties["BillingMode"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        )
        table = ControlTable(created)
        asked = StepRequest(
            pipeline="customers",
            kind=StepKind.CATALOG,
            name="cleansed_customers",
            run_id="r1",
            step="catalog_cleansed",
            token="t1",
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:stack_customers:r1",
            catalog=request("r1"),
        )
        opened = table.open_step(asked, T0)
        table.record_fallback(opened.ref, 1, "stack_cleansed_customers", {"added": ["email"]})
        read = table.get_step(opened.ref)
        assert read is not None and read.kind == StepKind.CATALOG
        assert (read.crawler, read.drift, read.waits_for_crawler) == (
            "stack_cleansed_customers",
            {"added": ["email"]},
            "stack_cleansed_customers",
        )
        reopened = table.open_step(asked.model_copy(update={"token": "t2"}), T0 + timedelta(hours=1))
        assert (reopened.attempt, reopened.crawler, reopened.drift) == (2, None, None)
