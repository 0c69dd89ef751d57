"""The DQDL subset: parsed or refused naming the rule, and judged on DuckDB as Glue Data Quality judges."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from relay.logic.quality import ruleset_document as ruleset

from gluerelay.quality.dqdl import Constraint, RuleError, evaluate, parse, rules_of


@pytest.fixture
def data() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES "
        "(1, 'a@x.io', 'GB', 10.5), (2, NULL, 'US', 20.0), (3, 'c@x.io', 'gb', 30.0), "
        "(3, 'd@x.io', 'FR', NULL)"
        ") AS v(customer_id, email, country, amount)"
    )
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("rule", "passed", "metrics"),
    [
        ("RowCount > 0", True, {"Dataset.*.RowCount": 4.0}),
        ("RowCount between 4 and 10", False, {"Dataset.*.RowCount": 4.0}),  # DQDL's between excludes its ends
        ("ColumnCount = 4", True, {"Dataset.*.ColumnCount": 4.0}),
        ('IsComplete "customer_id"', True, {"Column.customer_id.Completeness": 1.0}),
        ('IsComplete "email"', False, {"Column.email.Completeness": 0.75}),
        ('Completeness "email" >= 0.75', True, {"Column.email.Completeness": 0.75}),
        ('IsUnique "customer_id"', False, {"Column.customer_id.Uniqueness": 0.5}),
        ('Uniqueness "email" > 0.7', True, {"Column.email.Uniqueness": 0.75}),
        (
            'ColumnValues "country" in ["GB", "US", "FR"]',
            False,
            {"Column.country.ColumnValues.Compliance": 0.75},
        ),
        (
            'ColumnValues "country" in ["GB", "US", "FR"] with threshold >= 0.75',
            True,
            {"Column.country.ColumnValues.Compliance": 0.75},
        ),
        (
            'ColumnValues "country" matches "[A-Z]{2}"',
            False,
            {"Column.country.ColumnValues.Compliance": 0.75},
        ),
        ('ColumnValues "amount" > 5', False, {"Column.amount.ColumnValues.Compliance": 0.75}),  # NULL fails
        (
            'ColumnValues "amount" between 5 and 31 with threshold > 0.7',
            True,
            {"Column.amount.ColumnValues.Compliance": 0.75},
        ),
    ],
)
def test_each_rule_is_measured_and_judged(
    data: duckdb.DuckDBPyConnection, rule: str, passed: bool, metrics: dict[str, float]
) -> None:
    judged = evaluate(parse(rule), data, "t")
    assert (judged.passed, judged.metrics) == (passed, metrics)
    if not passed:
        assert judged.message is not None and "does not meet the constraint requirement" in judged.message


def test_a_missing_column_fails_its_rule_and_column_exists_says_so(data: duckdb.DuckDBPyConnection) -> None:
    assert evaluate(parse('ColumnExists "email"'), data, "t").passed
    missing = evaluate(parse('IsComplete "phone"'), data, "t")
    assert not missing.passed and missing.message == "Column 'phone' does not exist"


def test_a_result_is_shaped_as_glue_reports_a_rule_result(data: duckdb.DuckDBPyConnection) -> None:
    judged = evaluate(parse('IsComplete "email"'), data, "t")
    assert judged.result(1) == {
        "Name": "Rule_2",
        "Description": 'IsComplete "email"',
        "Result": "FAIL",
        "EvaluatedMetrics": {"Column.email.Completeness": 0.75},
        "EvaluationMessage": "Value: 0.75 does not meet the constraint requirement!",
    }


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ('DataFreshness "updated_at" <= 24 hours', "rule type 'DataFreshness' is not one gluerelay checks"),
        ('CustomSql "select count(*) from primary" > 0', "rule type 'CustomSql' is not one gluerelay checks"),
        ("IsComplete customer_id", "the column is named in double quotes"),
        ('Completeness "email" about 0.9', "expected a constraint"),
        ('ColumnValues "country" in "GB"', "in takes a list"),
        ('IsUnique "id" > 1', "IsUnique takes a column only"),
    ],
)
def test_what_the_subset_does_not_check_is_refused_naming_the_rule(rule: str, problem: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse(rule)
    assert rule in str(raised.value) or repr(rule) in str(raised.value)
    assert problem in str(raised.value)


def test_a_ruleset_document_holds_the_rules_and_splits_back_into_them() -> None:
    rules = ["RowCount > 0", 'ColumnValues "country" in ["GB", "US"]', 'ColumnValues "x" matches "a,b"']
    document = ruleset(rules)
    assert document.startswith("Rules = [\n") and document.endswith("\n]")
    assert rules_of(document) == rules


def test_constraints_hold_as_dqdl_defines_them() -> None:
    assert Constraint(">=", 0.9).holds(0.9) and not Constraint(">", 0.9).holds(0.9)
    assert Constraint("between", 1, 3).holds(2) and not Constraint("between", 1, 3).holds(3)
