"""Quality steps in the local cloud: the customers example's gate on its cleanse summary, and DQDL rules that
Glue Data Quality (the local service, on DuckDB) evaluates on the run's cleansed partition, completed by its
own event or, when that event is lost, by the sweeper."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.variants import deployable
from gluerelay.local.cloud import LocalCloud
from gluerelay.local.runs import follow, land, run_from_landing
from gluerelay.pipelines.model import Pipeline, Quality, Step
from gluerelay.pipelines.project import Project
from tests.e2e.cli_process import as_json, gluerelay

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CSV_HEADER = "customer_id,first_name,last_name,email,phone,date_of_birth,country,updated_at\n"


def with_verify(rules: list[Any]) -> Pipeline:
    """The customers example with a DQDL quality step on the run's cleansed partition, after cataloging."""
    example = Project().pipeline("customers")
    verify = Step(
        needs=["catalog_cleansed"],
        quality=Quality(
            table="cleansed_customers",
            partition={"ingest_date": "{ingest_date}", "run_id": "{run_id}"},
            rules=rules,
        ),
    )
    return example.model_copy(update={"steps": {**example.steps, "verify_cleansed": verify}})


@pytest.fixture
def deployed(cloud: LocalCloud) -> Iterator[Any]:
    """Deploy a variant of the customers pipeline for the test; the example again after it."""
    sfn = cloud.client("stepfunctions")
    arn = cloud.state_machine_arn("customers")
    example = sfn.describe_state_machine(stateMachineArn=arn)["definition"]

    def deploy(pipeline: Pipeline) -> None:
        sfn.update_state_machine(stateMachineArn=arn, definition=deployable(cloud, pipeline))

    try:
        yield deploy
    finally:
        sfn.update_state_machine(stateMachineArn=arn, definition=example)
        cloud.bus.drop = None


def test_the_gate_fails_a_run_whose_cleanse_set_aside_too_many_rows_naming_the_check(
    cloud: LocalCloud,
) -> None:
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    rows = [
        "1,Ada,Lovelace,ada@example.com,+442079460000,1985-12-10,GB,2026-01-01T00:00:00Z",
        "2,Grace,Hopper,not-an-email,+442079460000,1985-12-10,GB,2026-01-01T00:00:00Z",
        "3,Edsger,Dijkstra,also-not-an-email,+442079460000,1985-12-10,GB,2026-01-01T00:00:00Z",
        "4,Barbara,Liskov,barbara@example.com,+442079460000,1985-12-10,GB,2026-01-01T00:00:00Z",
    ]
    key = "landing/quality/customers.csv"  # under no pipeline's prefix: started by hand below
    s3.put_object(Bucket=bucket, Key=key, Body=(CSV_HEADER + "\n".join(rows) + "\n").encode())
    started = as_json(gluerelay(cloud, "start", "--keys", key, "--local", "--json"))
    [report] = follow(cloud, [started["run_id"]], timeout=300)

    assert report.status == "FAILED"
    assert report.error == "DataQualityFailed", (report.error, report.cause)
    assert "rows_quarantined <= 0.25 * rows_read: measured 2 <= 1 (rows_quarantined 2, rows_read 4)" in str(
        report.cause
    )
    steps = {s.step: s for s in report.steps}
    assert steps["check_cleansed"].status == "FAILED"
    assert "catalog_cleansed" not in steps  # the gate stopped the run before its partition was published
    text = gluerelay(cloud, "runs", "show", report.run_id, "--local")
    assert "quality check_cleansed: error rule failed" in " ".join(text.stdout.split())


def test_a_failed_dqdl_rule_fails_the_run_naming_the_rule_and_what_was_measured(
    cloud: LocalCloud, deployed: Any
) -> None:
    deployed(with_verify(["RowCount > 0", 'IsUnique "customer_id"', 'ColumnValues "country" in ["GB"]']))
    [report] = run_from_landing(cloud, rows=200, seed=61)

    assert report.status == "FAILED"
    assert report.error == "DataQualityFailed", (report.error, report.cause)
    cause = str(report.cause)
    assert 'ColumnValues "country" in ["GB"]: measured Column.country.ColumnValues.Compliance' in cause
    assert "1 of 3 rules failed" in cause  # RowCount and IsUnique passed (cleanse de-duplicates by id)
    verify = report.step("verify_cleansed")
    assert verify.status == "FAILED" and verify.glue_id and verify.glue_id.startswith("dqrun-")
    assert [r["passed"] for r in verify.facts["rules"]] == [True, True, False]
    assert verify.repaired_by is None  # Glue Data Quality's own event completed it
    assert cloud.quality.rulesets["gluerelay-local_customers_verify_cleansed"]["Ruleset"].count("\n") == 4


def test_a_lost_quality_event_is_repaired_by_the_sweeper(cloud: LocalCloud, deployed: Any) -> None:
    deployed(with_verify(["RowCount > 0", {"rule": 'ColumnValues "country" in ["GB"]', "severity": "warn"}]))
    dropped: list[str] = []

    def drop(event: dict[str, Any]) -> bool:
        if event.get("source") == "aws.glue-dataquality":
            dropped.append(event["detail"]["context"]["runId"])
            return True
        return False

    cloud.bus.drop = drop
    known = {e["executionArn"] for e in cloud.executions()}
    land(cloud, rows=150, files=1, seed=62)
    [execution] = cloud.wait_for_new_executions(1, known)
    arn = execution["executionArn"]
    sfn = cloud.client("stepfunctions")
    overdue = (
        int(cloud.template.parameters["RepairAfterSeconds"])
        + int(cloud.template.parameters["SweepIntervalMinutes"]) * 60
        + 60
    )
    deadline = time.monotonic() + 300
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "run still RUNNING after 300 s"
        time.sleep(0.5)
        if dropped:  # the evaluation ended and its event was lost: the next sweep finds the step overdue
            cloud.clock.advance(overdue)
    assert len(dropped) == 1
    shown = as_json(gluerelay(cloud, "runs", "show", execution["name"], "--local", "--json"))
    assert shown["run"]["status"] == "SUCCEEDED"
    [verify] = [s for s in shown["steps"] if s["step"] == "verify_cleansed"]
    assert verify["repaired_by"] == "sweeper" and verify["glue_id"] == dropped[0]
    assert verify["facts"]["rules_warned"] == 1 and verify["facts"]["rules_failed"] == 0
