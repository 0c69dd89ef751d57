"""Quality gates' judgement: summary checks read and judged, Glue's rule results matched to the step's
rules, and a run failed only by a failed rule of severity error, naming it and what was measured."""

from __future__ import annotations

import pytest
from relay.logic.quality import CheckError, judge_checks, judge_results, outcome, parse_check

SUMMARY = {"rows_read": 1000, "rows_written": 700, "rows_quarantined": 120, "duplicates_removed": 180}


@pytest.mark.parametrize(
    ("check", "holds", "measured"),
    [
        ("rows_written > 0", True, "700 > 0 (rows_written 700)"),
        ("rows_quarantined <= 0.05 * rows_read", False, "120 <= 50 (rows_quarantined 120, rows_read 1000)"),
        ("rows_quarantined <= 0.25 * rows_read", True, "120 <= 250 (rows_quarantined 120, rows_read 1000)"),
        ("duplicates_removed < rows_written", True, "180 < 700 (duplicates_removed 180, rows_written 700)"),
        ("files_set_aside == 0", True, "0 == 0 (files_set_aside 0)"),
    ],
)
def test_a_summary_check_is_judged_with_what_it_measured(check: str, holds: bool, measured: str) -> None:
    assert parse_check(check).judge(SUMMARY) == (holds, measured)


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ("rows_writen > 0", "'rows_writen' is not a summary figure"),
        ("rows_written 0", "a check compares two sides"),
        ("rows_written > rows_read / 2", "is not a figure, a number or <number> * <figure>"),
        ("2 * 3 > rows_read", "multiply a figure, not a number"),
    ],
)
def test_a_check_that_cannot_be_read_is_refused_naming_it(check: str, problem: str) -> None:
    with pytest.raises(CheckError) as raised:
        parse_check(check)
    assert repr(check) in str(raised.value) and problem in str(raised.value)


def test_a_failed_error_rule_fails_naming_each_failed_rule_and_a_warn_rule_only_records() -> None:
    judged = judge_checks(
        ["rows_written > 0", "rows_quarantined <= 0.05 * rows_read", "duplicates_removed <= 0.1 * rows_read"],
        ["error", "error", "warn"],
        SUMMARY,
    )
    failed = outcome("quality step check_cleansed", judged, {"checked": "cleanse"})
    assert not failed.succeeded and failed.error == "DataQualityFailed"
    assert failed.cause == (
        "quality step check_cleansed: 1 of 3 rules failed: rows_quarantined <= 0.05 * rows_read: "
        "measured 120 <= 50 (rows_quarantined 120, rows_read 1000)"
    )
    assert (failed.facts["rules_failed"], failed.facts["rules_warned"]) == (1, 1)
    assert [r["passed"] for r in failed.facts["rules"]] == [True, False, False]
    warned = outcome("q", [j for j in judged if j.rule != "rows_quarantined <= 0.05 * rows_read"], {})
    assert warned.succeeded and warned.facts["rules_warned"] == 1


def test_glues_rule_results_are_matched_by_rule_text_or_place_and_a_missing_one_fails() -> None:
    results = [
        {
            "Name": "Rule_1",
            "Description": "RowCount  > 0",
            "Result": "PASS",
            "EvaluatedMetrics": {"Dataset.*.RowCount": 700.0},
        },
        {
            "Name": "Rule_2",
            "Description": "something Glue rewrote",
            "Result": "FAIL",
            "EvaluatedMetrics": {"Column.email.Completeness": 0.75},
            "EvaluationMessage": "Value: 0.75 does not meet the constraint requirement!",
        },
    ]
    judged = judge_results(
        ["RowCount > 0", 'IsComplete "email"', 'IsUnique "customer_id"'], ["error", "error", "warn"], results
    )
    assert [(j.passed, j.severity) for j in judged] == [(True, "error"), (False, "error"), (False, "warn")]
    assert judged[1].measured == (
        "Column.email.Completeness 0.75; Value: 0.75 does not meet the constraint requirement!"
    )
    assert judged[2].measured == "no result reported"
    failed = outcome("quality step verify", judged, {})
    assert (
        failed.cause is not None
        and 'IsComplete "email": measured Column.email.Completeness 0.75' in failed.cause
    )
