"""The local Glue Data Quality service on moto: rulesets, an evaluation run over the run's partition on
DuckDB, its result and its event, through boto3 as on AWS."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from relay.logic.quality import ruleset_document as ruleset

from gluerelay.local.quality import DETAIL_TYPE, SOURCE, LocalDataQuality

pytestmark = pytest.mark.integration
DATABASE, TABLE, BUCKET = "stack_catalog", "cleansed_customers", "data"
ROLE = "arn:aws:iam::123456789012:role/dq"


@pytest.fixture
def service() -> Iterator[tuple[LocalDataQuality, Any, list[tuple[str, str, dict[str, Any]]]]]:
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        glue.create_table(
            DatabaseName=DATABASE,
            TableInput={
                "Name": TABLE,
                "Parameters": {"classification": "parquet"},
                "PartitionKeys": [{"Name": "run_id", "Type": "string"}],
                "StorageDescriptor": {"Columns": [], "Location": f"s3://{BUCKET}/cleansed/"},
            },
        )
        for run, ids in (("a", [1, 2, 3]), ("b", [1, 1, None])):  # run b's ids: a duplicate and a null
            body = io.BytesIO()
            pq.write_table(pa.table({"customer_id": pa.array(ids, pa.int64())}), body)
            s3.put_object(Bucket=BUCKET, Key=f"cleansed/run_id={run}/part-0.parquet", Body=body.getvalue())
            glue.create_partition(
                DatabaseName=DATABASE,
                TableName=TABLE,
                PartitionInput={
                    "Values": [run],
                    "StorageDescriptor": {"Location": f"s3://{BUCKET}/cleansed/run_id={run}/"},
                },
            )
        events: list[tuple[str, str, dict[str, Any]]] = []
        local = LocalDataQuality(
            publish=lambda *event: events.append(event), s3=s3, glue=glue, account="123456789012"
        )
        local.install()
        try:
            yield local, glue, events
        finally:
            local.uninstall()


def evaluate(local: LocalDataQuality, glue: Any, run: str, token: str | None = None) -> dict[str, Any]:
    started = glue.start_data_quality_ruleset_evaluation_run(
        DataSource={
            "GlueTable": {
                "DatabaseName": DATABASE,
                "TableName": TABLE,
                "AdditionalOptions": {"pushDownPredicate": f"run_id = '{run}'"},
            }
        },
        Role=ROLE,
        RulesetNames=["checks"],
        **({"ClientToken": token} if token else {}),
    )
    assert local.idle(30)
    found: dict[str, Any] = glue.get_data_quality_ruleset_evaluation_run(RunId=started["RunId"])
    return found


def test_a_partition_is_evaluated_and_its_results_and_event_are_as_glue_gives_them(
    service: tuple[LocalDataQuality, Any, list[tuple[str, str, dict[str, Any]]]],
) -> None:
    local, glue, events = service
    rules = ["RowCount = 3", 'IsComplete "customer_id"', 'IsUnique "customer_id"']
    glue.create_data_quality_ruleset(Name="checks", Ruleset=ruleset(rules))
    good, bad = evaluate(local, glue, "a"), evaluate(local, glue, "b")

    assert (good["Status"], bad["Status"]) == ("SUCCEEDED", "SUCCEEDED")  # the evaluation ran; rules judged
    [good_result] = good["ResultIds"]
    result = glue.get_data_quality_result(ResultId=good_result)
    assert [r["Result"] for r in result["RuleResults"]] == ["PASS", "PASS", "PASS"] and result["Score"] == 1.0
    [bad_result] = bad["ResultIds"]
    results = glue.get_data_quality_result(ResultId=bad_result)["RuleResults"]
    assert [(r["Name"], r["Description"], r["Result"]) for r in results] == [
        ("Rule_1", "RowCount = 3", "PASS"),
        ("Rule_2", 'IsComplete "customer_id"', "FAIL"),
        ("Rule_3", 'IsUnique "customer_id"', "FAIL"),
    ]
    assert results[2]["EvaluatedMetrics"] == {"Column.customer_id.Uniqueness": 0.0}
    assert [(s, t, d["state"], d["context"]["runId"]) for s, t, d in events] == [
        (SOURCE, DETAIL_TYPE, "SUCCEEDED", good["RunId"]),
        (SOURCE, DETAIL_TYPE, "FAILED", bad["RunId"]),
    ]
    assert events[1][2]["numRulesFailed"] == 2 and events[1][2]["context"]["tableName"] == TABLE


def test_a_client_token_starts_one_run_and_what_cannot_be_evaluated_fails_the_run(
    service: tuple[LocalDataQuality, Any, list[tuple[str, str, dict[str, Any]]]],
) -> None:
    local, glue, events = service
    glue.create_data_quality_ruleset(Name="checks", Ruleset=ruleset(["RowCount > 0"]))
    assert evaluate(local, glue, "a", "tok")["RunId"] == evaluate(local, glue, "a", "tok")["RunId"]
    assert len(events) == 1
    with pytest.raises(glue.exceptions.AlreadyExistsException):
        glue.create_data_quality_ruleset(Name="checks", Ruleset=ruleset(["RowCount > 0"]))
    glue.update_data_quality_ruleset(Name="checks", Ruleset=ruleset(['DataFreshness "at" <= 24 hours']))
    failed = evaluate(local, glue, "a")
    assert failed["Status"] == "FAILED" and "DataFreshness" in failed["ErrorString"]
    missing = evaluate(local, glue, "zzz")
    assert (
        missing["Status"] == "FAILED"
        and "No data in stack_catalog.cleansed_customers" in missing["ErrorString"]
    )
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_data_quality_ruleset(Name="nope")
