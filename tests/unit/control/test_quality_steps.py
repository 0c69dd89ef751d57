"""Quality steps through start_step, Glue Data Quality's event and the sweeper (fakes for AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from relay.logic.steps import on_quality_event, start_step, sweep
from relay.models import QualityRequest, QualityResultsAvailable, StepKind, StepRef, StepRequest, StepStatus

from tests.fakes import FakeCloud

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUMMARY = {"rows_read": 1000, "rows_written": 700, "rows_quarantined": 120, "duplicates_removed": 180}
RULES = [
    {"rule": "RowCount > 0"},
    {"rule": 'IsComplete "email"'},
    {"rule": 'IsUnique "id"', "severity": "warn"},
]


def quality_step(
    cloud: FakeCloud, run: str, quality: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    request = StepRequest(
        pipeline="customers",
        kind=StepKind.QUALITY,
        name=quality.get("summary_of") or "cleansed_customers",
        run_id=run,
        step="check",
        token=token or f"t-{run}",
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:stack_customers:{run}",
        quality=QualityRequest.model_validate(quality),
    )
    return start_step(request, cloud.plane, T0)


def gate(*rules: str | dict[str, str]) -> dict[str, Any]:
    return {"summary_of": "cleanse", "rules": [r if isinstance(r, dict) else {"rule": r} for r in rules]}


def table_rules() -> dict[str, Any]:
    return {
        "rules": RULES,
        "database": "stack_catalog",
        "partition": [{"name": "run_id", "value": "a"}],
        "ruleset": "stack_customers_check",
        "role": "arn:aws:iam::123456789012:role/dq",
    }


def test_a_summary_gate_passes_records_warnings_and_fails_naming_the_rule_and_measure() -> None:
    cloud = FakeCloud()
    cloud.bucket.summaries[("a", "cleanse")] = SUMMARY
    cloud.bucket.summaries[("b", "cleanse")] = SUMMARY
    quality_step(
        cloud,
        "a",
        gate("rows_written > 0", {"rule": "rows_quarantined <= 0.05 * rows_read", "severity": "warn"}),
    )
    quality_step(cloud, "b", gate("rows_written > 0", "rows_quarantined <= 0.05 * rows_read"))

    passed = cloud.workflow.successes["t-a"]
    assert (passed["kind"], passed["rules_failed"], passed["rules_warned"], passed["dpu_seconds"]) == (
        "quality",
        0,
        1,
        0,
    )
    error, cause = cloud.workflow.failures["t-b"]
    assert error == "DataQualityFailed"
    assert cause == (
        "quality step check on job step cleanse's summary: 1 of 2 rules failed: "
        "rows_quarantined <= 0.05 * rows_read: measured 120 <= 50 (rows_quarantined 120, rows_read 1000)"
    )
    assert cloud.glue.quality_runs == {}  # no evaluation run: nothing to pay


def test_a_summary_gate_without_its_summary_fails_naming_where_it_looked() -> None:
    cloud = FakeCloud()
    quality_step(cloud, "a", gate("rows_written > 0"))
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "GlueQualityFailed" and "no summary at summaries/a/cleanse.json" in cause


def test_a_ruleset_is_evaluated_by_glue_and_its_event_fails_the_run_naming_each_failed_rule() -> None:
    cloud = FakeCloud()
    started = quality_step(cloud, "a", table_rules())
    [run_id] = cloud.glue.quality_runs
    assert started["evaluation_run_id"] == run_id
    assert cloud.glue.rulesets["stack_customers_check"] == (
        'Rules = [\n    RowCount > 0,\n    IsComplete "email",\n    IsUnique "id"\n]'
    )
    assert cloud.glue.quality_runs[run_id]["Predicate"] == "run_id = 'a'"
    # A retried invocation of the same attempt adopts its run: one evaluation, not two
    assert quality_step(cloud, "a", table_rules())["adopted"] is True
    assert len(cloud.glue.quality_runs) == 1

    cloud.glue.finish_quality_run(
        run_id,
        [
            {
                "Name": "Rule_1",
                "Description": "RowCount > 0",
                "Result": "PASS",
                "EvaluatedMetrics": {"Dataset.*.RowCount": 5},
            },
            {
                "Name": "Rule_2",
                "Description": 'IsComplete "email"',
                "Result": "FAIL",
                "EvaluatedMetrics": {"Column.email.Completeness": 0.8},
                "EvaluationMessage": "Value: 0.8 does not meet the constraint requirement!",
            },
            {
                "Name": "Rule_3",
                "Description": 'IsUnique "id"',
                "Result": "FAIL",
                "EvaluatedMetrics": {"Column.id.Uniqueness": 0.5},
            },
        ],
    )
    event = QualityResultsAvailable.model_validate({"context": {"runId": run_id}, "state": "FAILED"})
    verdict = on_quality_event(event, cloud.plane, T0 + timedelta(minutes=2))
    assert verdict.completed == 1
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "DataQualityFailed"
    assert cause.startswith("quality step check on table cleansed_customers: 1 of 3 rules failed: ")
    assert 'IsComplete "email": measured Column.email.Completeness 0.8; Value: 0.8 does not meet' in cause
    assert "IsUnique" not in cause  # a warn rule records, it does not fail the run
    step = cloud.store.steps[StepRef(run_id="a", step="check")]
    assert step.status == StepStatus.FAILED and step.outcome is not None
    assert [r["passed"] for r in step.outcome.facts["rules"]] == [True, False, False]
    # The same event again changes nothing
    assert on_quality_event(event, cloud.plane, T0 + timedelta(minutes=3)).completed == 0


def test_an_event_of_a_run_gluerelay_did_not_start_is_ignored() -> None:
    cloud = FakeCloud()
    event = QualityResultsAvailable.model_validate(
        {"context": {"runId": "dqrun-elsewhere"}, "state": "SUCCEEDED"}
    )
    verdict = on_quality_event(event, cloud.plane, T0)
    assert verdict.completed == 0 and "did not start" in verdict.reason


def test_the_sweeper_completes_a_quality_step_whose_event_was_lost() -> None:
    cloud = FakeCloud()
    quality_step(cloud, "a", table_rules())
    [run_id] = cloud.glue.quality_runs
    assert (
        sweep(cloud.plane, T0 + timedelta(minutes=30), timedelta(minutes=10), timedelta(hours=1)).repaired
        == []
    )
    results = [
        {"Name": f"Rule_{n}", "Description": r["rule"], "Result": "PASS"} for n, r in enumerate(RULES, 1)
    ]
    cloud.glue.finish_quality_run(run_id, results)  # its event is lost

    report = sweep(cloud.plane, T0 + timedelta(minutes=40), timedelta(minutes=10), timedelta(hours=1))

    assert report.repaired == [f"a/check: evaluation run {run_id} SUCCEEDED, event lost"]
    output = cloud.workflow.successes["t-a"]
    assert output["repaired_by"] == "sweeper" and output["rules_failed"] == 0


def test_an_evaluation_glue_could_not_run_fails_the_step_with_its_error() -> None:
    cloud = FakeCloud()
    quality_step(cloud, "a", table_rules())
    [run_id] = cloud.glue.quality_runs
    cloud.glue.finish_quality_run(run_id, [], error="Table stack_catalog.cleansed_customers not found")
    on_quality_event(QualityResultsAvailable.model_validate({"context": {"runId": run_id}}), cloud.plane, T0)
    error, cause = cloud.workflow.failures["t-a"]
    assert error == "GlueQualityFailed"
    assert cause.endswith(f"evaluation run {run_id} FAILED: Table stack_catalog.cleansed_customers not found")
