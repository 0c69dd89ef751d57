"""The subset of Glue Data Quality's DQDL that gluerelay checks at deploy and the local cloud evaluates.

A rule the subset does not know is refused by `gluerelay pipelines validate` naming it (never passed
silently). Each rule parses into a `Rule`: its type, its column, and its constraint; `evaluate` measures it on
a DuckDB relation and judges it as Glue Data Quality does (its EvaluatedMetrics names, its messages).

Supported (DQDL reference, "Rule types"):
  RowCount <constraint>                       ColumnCount <constraint>
  IsComplete "col"                            Completeness "col" <constraint>
  IsUnique "col"                              Uniqueness "col" <constraint>
  IsPrimaryKey "col"                          ColumnExists "col"
  ColumnValues "col" in [v, ...]              ColumnValues "col" matches "regex"
  ColumnValues "col" <constraint>             ... with threshold <op> <fraction>  (ColumnValues only)
A <constraint> is `= n`, `!= n`, `> n`, `>= n`, `< n`, `<= n` or `between a and b` (exclusive, as DQDL's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

NUMBER = r"-?\d+(?:\.\d+)?"
QUOTED = r'"((?:[^"\\]|\\.)*)"'
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
SUPPORTED = (
    "RowCount",
    "ColumnCount",
    "IsComplete",
    "Completeness",
    "IsUnique",
    "Uniqueness",
    "IsPrimaryKey",
    "ColumnExists",
    "ColumnValues",
)


class RuleError(ValueError):
    """A rule gluerelay cannot check: outside the supported subset, or malformed."""


@dataclass(frozen=True)
class Constraint:
    """`op value` or `between low and high` (DQDL's between excludes both ends)."""

    op: str
    value: float = 0.0
    high: float = 0.0

    def holds(self, measured: float) -> bool:
        if self.op == "between":
            return self.value < measured < self.high
        return {
            "=": measured == self.value,
            "!=": measured != self.value,
            ">": measured > self.value,
            ">=": measured >= self.value,
            "<": measured < self.value,
            "<=": measured <= self.value,
        }[self.op]


@dataclass(frozen=True)
class Rule:
    text: str
    type: str
    column: str | None = None
    constraint: Constraint | None = None
    values: tuple[str | None, ...] = ()  # ColumnValues ... in [...]: None stands for NULL
    pattern: str | None = None  # ColumnValues ... matches "regex"
    threshold: Constraint | None = None  # ColumnValues ... with threshold


@dataclass
class Judged:
    """A rule's outcome as Glue Data Quality reports it (a RuleResult)."""

    rule: Rule
    passed: bool
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None

    def result(self, index: int) -> dict[str, Any]:
        return {
            "Name": f"Rule_{index + 1}",
            "Description": self.rule.text,
            "Result": "PASS" if self.passed else "FAIL",
            "EvaluatedMetrics": self.metrics,
            **({"EvaluationMessage": self.message} if self.message else {}),
        }


def parse(text: str) -> Rule:
    """One DQDL rule; RuleError names what is not supported or not well formed."""
    rule = text.strip()
    kind = rule.split(" ", 1)[0]
    if kind not in SUPPORTED:
        known = ", ".join(SUPPORTED)
        raise RuleError(f"{rule!r}: rule type {kind!r} is not one gluerelay checks (supported: {known})")
    rest = rule[len(kind) :].strip()
    if kind in {"RowCount", "ColumnCount"}:
        return Rule(rule, kind, constraint=_constraint(rule, rest))
    column, rest = _column(rule, rest)
    if kind in {"IsComplete", "IsUnique", "IsPrimaryKey", "ColumnExists"}:
        if rest:
            raise RuleError(f"{rule!r}: {kind} takes a column only, not {rest!r}")
        return Rule(rule, kind, column=column)
    if kind in {"Completeness", "Uniqueness"}:
        return Rule(rule, kind, column=column, constraint=_constraint(rule, rest))
    rest, threshold = _threshold(rule, rest)
    if rest.startswith("in "):
        return Rule(rule, kind, column=column, values=_values(rule, rest[3:].strip()), threshold=threshold)
    if rest.startswith("matches "):
        found = re.fullmatch(QUOTED, rest[8:].strip())
        if not found:
            raise RuleError(f'{rule!r}: matches takes a quoted regular expression, like matches "[A-Z]{{2}}"')
        return Rule(rule, kind, column=column, pattern=_unescape(found.group(1)), threshold=threshold)
    return Rule(rule, kind, column=column, constraint=_constraint(rule, rest), threshold=threshold)


def _column(rule: str, rest: str) -> tuple[str, str]:
    found = re.match(QUOTED, rest)
    if not found:
        raise RuleError(f'{rule!r}: the column is named in double quotes, like "customer_id"')
    return _unescape(found.group(1)), rest[found.end() :].strip()


def _constraint(rule: str, text: str) -> Constraint:
    between = re.fullmatch(rf"between\s+({NUMBER})\s+and\s+({NUMBER})", text)
    if between:
        return Constraint("between", float(between.group(1)), float(between.group(2)))
    for op in OPERATORS:
        if text.startswith(op):
            value = text[len(op) :].strip()
            if re.fullmatch(NUMBER, value):
                return Constraint(op, float(value))
    raise RuleError(f"{rule!r}: expected a constraint (= n, > n, >= n, < n, <= n, != n or between a and b)")


def _threshold(rule: str, rest: str) -> tuple[str, Constraint | None]:
    text, mark, threshold = rest.partition(" with threshold ")
    if not mark:
        return rest, None
    return text.strip(), _constraint(rule, threshold.strip())


def _values(rule: str, text: str) -> tuple[str | None, ...]:
    if not (text.startswith("[") and text.endswith("]")):
        raise RuleError(f'{rule!r}: in takes a list, like in ["GB", "US"]')
    body = text[1:-1].strip()
    values: list[str | None] = []
    while body:
        quoted = re.match(QUOTED, body)
        if quoted:
            values.append(_unescape(quoted.group(1)))
            body = body[quoted.end() :]
        elif body.startswith("NULL"):
            values.append(None)
            body = body[4:]
        else:
            number = re.match(NUMBER, body)
            if not number:
                raise RuleError(f"{rule!r}: {body!r} is not a quoted value, a number or NULL")
            values.append(number.group(0))
            body = body[number.end() :]
        body = body.strip()
        if body.startswith(","):
            body = body[1:].strip()
        elif body:
            raise RuleError(f"{rule!r}: values in the list are separated by commas")
    if not values:
        raise RuleError(f"{rule!r}: the list of values is empty")
    return tuple(values)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def rules_of(document: str) -> list[str]:
    """The rules of a DQDL document `Rules = [ ... ]`, split at the commas between them."""
    found = re.fullmatch(r"\s*Rules\s*=\s*\[(.*)\]\s*", document, re.DOTALL)
    if not found:
        raise RuleError("a ruleset is `Rules = [ rule, rule, ... ]`")
    rules, current, depth, quoted = [], "", 0, False
    for char in found.group(1):
        if char == '"' and not current.endswith("\\"):
            quoted = not quoted
        elif not quoted and char == "[":
            depth += 1
        elif not quoted and char == "]":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            rules.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        rules.append(current.strip())
    return rules


# ------------------------------------------------------------------------------------------ evaluation


def evaluate(rule: Rule, connection: duckdb.DuckDBPyConnection, relation: str) -> Judged:  # noqa: PLR0911 - per type
    """Measure and judge the rule over `relation` (a table or view in `connection`)."""
    columns = [row[0] for row in connection.execute(f"DESCRIBE {relation}").fetchall()]
    if rule.column is not None and rule.column not in columns and rule.type != "ColumnExists":
        return Judged(rule, False, message=f"Column {rule.column!r} does not exist")
    rows = int(_scalar(connection, f"SELECT count(*) FROM {relation}"))
    name = f'"{rule.column}"' if rule.column else ""
    if rule.type == "RowCount":
        return _against(rule, rows, {"Dataset.*.RowCount": rows})
    if rule.type == "ColumnCount":
        return _against(rule, len(columns), {"Dataset.*.ColumnCount": len(columns)})
    if rule.type == "ColumnExists":
        exists = rule.column in columns
        return Judged(rule, exists, message=None if exists else f"Column {rule.column!r} does not exist")
    completeness = _ratio(_scalar(connection, f"SELECT count({name}) FROM {relation}"), rows)
    uniqueness = _ratio(
        _scalar(
            connection,
            f"SELECT count(*) FROM (SELECT {name} FROM {relation} WHERE {name} IS NOT NULL "
            f"GROUP BY {name} HAVING count(*) = 1)",
        ),
        rows,
    )
    complete = {f"Column.{rule.column}.Completeness": completeness}
    unique = {f"Column.{rule.column}.Uniqueness": uniqueness}
    if rule.type == "IsComplete":
        return _against(rule, completeness, complete, Constraint("=", 1.0))
    if rule.type == "Completeness":
        return _against(rule, completeness, complete)
    if rule.type == "IsUnique":
        return _against(rule, uniqueness, unique, Constraint("=", 1.0))
    if rule.type == "Uniqueness":
        return _against(rule, uniqueness, unique)
    if rule.type == "IsPrimaryKey":
        judged = _against(rule, min(completeness, uniqueness), {**complete, **unique}, Constraint("=", 1.0))
        return judged
    return _column_values(rule, connection, relation, name, rows)


def _column_values(
    rule: Rule, connection: duckdb.DuckDBPyConnection, relation: str, name: str, rows: int
) -> Judged:
    if rule.values:
        listed = [v for v in rule.values if v is not None]
        members = ", ".join("'" + v.replace("'", "''") + "'" for v in listed) or "NULL"
        condition = f"CAST({name} AS VARCHAR) IN ({members})"
        if None in rule.values:
            condition = f"({condition} OR {name} IS NULL)"
    elif rule.pattern is not None:
        escaped = rule.pattern.replace("'", "''")
        condition = f"regexp_full_match(CAST({name} AS VARCHAR), '{escaped}')"
    else:
        assert rule.constraint is not None
        constraint = rule.constraint
        if constraint.op == "between":
            condition = f"({name} > {constraint.value} AND {name} < {constraint.high})"
        else:
            op = "=" if constraint.op == "=" else constraint.op
            condition = f"{name} {op} {constraint.value}"
    compliant = _scalar(connection, f"SELECT count(*) FROM {relation} WHERE coalesce({condition}, false)")
    compliance = _ratio(compliant, rows)
    metrics = {f"Column.{rule.column}.ColumnValues.Compliance": compliance}
    return _against(rule, compliance, metrics, rule.threshold or Constraint("=", 1.0))


def _against(
    rule: Rule, measured: float, metrics: dict[str, Any], constraint: Constraint | None = None
) -> Judged:
    applied = constraint or rule.constraint
    assert applied is not None
    passed = applied.holds(measured)
    message = (
        None if passed else f"Value: {_number(round(measured, 6))} does not meet the constraint requirement!"
    )
    return Judged(rule, passed, {k: float(v) for k, v in metrics.items()}, message)


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> float:
    row = connection.execute(sql).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _ratio(part: float, whole: float) -> float:
    """A fraction of the rows; of no rows, 0 (an empty dataset is not complete, unique or compliant)."""
    return part / whole if whole else 0.0
