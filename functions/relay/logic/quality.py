"""Quality steps: a run whose output is wrong as a whole stops before anyone reads it.

Two gates. A *summary check* (`rows_quarantined <= 0.05 * rows_read`) is judged by start_step on the job
summary a job step wrote: no evaluation to pay for, answered at once. A *ruleset* (Glue Data Quality's
DQDL) is evaluated by Glue against the run's partition of a table; Glue Data Quality's own event (or the
sweeper, from the evaluation run's record) completes the step with its rule results. Either fails the run
naming each failed rule, what was measured and what was required; a rule of severity `warn` is recorded
and does not fail it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from relay.contract import short_hash, summary_key
from relay.logic.jobs import SUMMARY_FIGURES
from relay.models import Outcome, QualityRequest, Severity, Step
from relay.ports import ControlPlane, Glue

# What a summary check may compare: the numeric figures of a job's summary.
CHECK_FIGURES = tuple(f for f in SUMMARY_FIGURES if f != "quarantined_by_reason")
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_NUMBER = r"\d+(?:\.\d+)?"
_TERM = re.compile(rf"^\s*(?:({_NUMBER})\s*\*\s*)?([a-z_]+|{_NUMBER})\s*$")


class CheckError(ValueError):
    """A summary check that cannot be read."""


@dataclass(frozen=True)
class Term:
    """`figure`, `factor * figure`, or a number."""

    factor: float
    figure: str | None

    def value(self, summary: dict[str, Any]) -> float:
        if self.figure is None:
            return self.factor
        return self.factor * float(summary.get(self.figure) or 0)

    def text(self) -> str:
        if self.figure is None:
            return _number(self.factor)
        return self.figure if self.factor == 1 else f"{_number(self.factor)} * {self.figure}"


@dataclass(frozen=True)
class SummaryCheck:
    text: str
    left: Term
    op: str
    right: Term

    def judge(self, summary: dict[str, Any]) -> tuple[bool, str]:
        """Whether it holds on this summary, and what was measured (each side's figures)."""
        left, right = self.left.value(summary), self.right.value(summary)
        holds = {
            "<=": left <= right,
            ">=": left >= right,
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            ">": left > right,
        }[self.op]
        figures = [t.figure for t in (self.left, self.right) if t.figure is not None]
        measured = ", ".join(f"{f} {_number(float(summary.get(f) or 0))}" for f in dict.fromkeys(figures))
        return holds, f"{_number(left)} {self.op} {_number(right)}" + (f" ({measured})" if measured else "")


def parse_check(text: str) -> SummaryCheck:
    """`<term> <op> <term>`, a term being a summary figure, `<number> * <figure>` or a number."""
    for op in _OPERATORS:
        left, found, right = text.partition(op)
        if found:
            return SummaryCheck(text.strip(), _term(text, left), op, _term(text, right))
    raise CheckError(f"{text!r}: a check compares two sides with <=, >=, ==, !=, < or >")


def _term(text: str, side: str) -> Term:
    found = _TERM.match(side)
    if not found:
        raise CheckError(f"{text!r}: {side.strip()!r} is not a figure, a number or <number> * <figure>")
    factor, name = found.groups()
    if re.fullmatch(_NUMBER, name):
        if factor is not None:
            raise CheckError(f"{text!r}: multiply a figure, not a number")
        return Term(float(name), None)
    if name not in CHECK_FIGURES:
        raise CheckError(f"{text!r}: {name!r} is not a summary figure (figures: {', '.join(CHECK_FIGURES)})")
    return Term(float(factor) if factor is not None else 1.0, name)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Judgement:
    """One rule or check: whether it passed, what was measured, and whether a failure fails the run."""

    rule: str
    passed: bool
    measured: str
    severity: Severity = "error"

    def fact(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "passed": self.passed,
            "measured": self.measured,
            "severity": self.severity,
        }


def outcome(what: str, judged: list[Judgement], facts: dict[str, Any]) -> Outcome:
    """Succeeded unless a rule of severity error failed; every rule's result is kept in the facts."""
    failed = [j for j in judged if not j.passed and j.severity == "error"]
    warned = [j for j in judged if not j.passed and j.severity == "warn"]
    kept = {
        **facts,
        "rules": [j.fact() for j in judged],
        "rules_failed": len(failed),
        "rules_warned": len(warned),
    }
    if not failed:
        return Outcome(succeeded=True, facts=kept)
    return Outcome(
        succeeded=False,
        facts=kept,
        error="DataQualityFailed",
        cause=f"{what}: {len(failed)} of {len(judged)} rules failed: "
        + "; ".join(f"{j.rule}: measured {j.measured}" for j in failed),
    )


def judge_checks(checks: list[str], severities: list[Severity], summary: dict[str, Any]) -> list[Judgement]:
    judged = []
    for text, severity in zip(checks, severities, strict=True):
        passed, measured = parse_check(text).judge(summary)
        judged.append(Judgement(text, passed, measured, severity))
    return judged


def judge_results(
    rules: list[str], severities: list[Severity], results: list[dict[str, Any]]
) -> list[Judgement]:
    """Glue Data Quality's RuleResults (GetDataQualityResult) against the step's rules: each result is found
    by its rule's text (its Description), else by its place (Rule_<n>). A rule Glue did not report fails."""
    by_text = {_squeezed(r.get("Description", "")): r for r in results}
    by_name = {r.get("Name"): r for r in results}
    judged = []
    for index, (rule, severity) in enumerate(zip(rules, severities, strict=True)):
        result = by_text.get(_squeezed(rule)) or by_name.get(f"Rule_{index + 1}")
        if result is None:
            judged.append(Judgement(rule, False, "no result reported", severity))
            continue
        metrics = ", ".join(f"{k} {_number(float(v))}" for k, v in result.get("EvaluatedMetrics", {}).items())
        message = result.get("EvaluationMessage") or ""
        measured = "; ".join(part for part in (metrics, message) if part) or str(result.get("Result"))
        judged.append(Judgement(rule, result.get("Result") == "PASS", measured, severity))
    return judged


def _squeezed(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------------------ the step


def start_quality(step: Step, request: QualityRequest, plane: ControlPlane) -> tuple[Outcome | None, str]:
    """Judge a summary gate at once (its outcome), or start the ruleset's evaluation run (None, its id).
    QualityError carries Glue's refusal."""
    if request.summary_of is not None:
        summary = plane.bucket.read_summary(step.run_id, request.summary_of)
        what = f"quality step {step.step} on job step {request.summary_of}'s summary"
        if summary is None:
            return Outcome(
                succeeded=False,
                facts={"summary_of": request.summary_of, "dpu_seconds": 0},
                error="GlueQualityFailed",
                cause=f"{what}: no summary at {summary_key(step.run_id, request.summary_of)}",
            ), ""
        judged = judge_checks(request.texts(), request.severities(), summary)
        return outcome(what, judged, {"summary_of": request.summary_of, "dpu_seconds": 0}), ""
    assert request.database is not None and request.ruleset is not None and request.role is not None
    plane.glue.put_ruleset(
        request.ruleset, ruleset_document(request.texts()), request.database, step.resource
    )
    run_id = plane.glue.start_quality_run(
        request.ruleset,
        database=request.database,
        table=step.resource,
        predicate=request.predicate(),
        role=request.role,
        token=short_hash([step.run_id, step.step, str(step.attempt)]),
    )
    plane.steps.record_quality_run(step.ref, step.attempt, run_id, [r.model_dump() for r in request.rules])
    return None, run_id


def ruleset_document(rules: list[str]) -> str:
    """The DQDL document of the step's rules (CreateDataQualityRuleset's Ruleset)."""
    return "Rules = [\n" + ",\n".join(f"    {r.strip()}" for r in rules) + "\n]"


def run_outcome(step: Step, glue: Glue) -> Outcome | None:
    """The step's evaluation run's outcome from Glue's own record of it; None while it runs."""
    assert step.glue_run_id is not None
    run = glue.get_quality_run(step.glue_run_id)
    status = str(run.get("Status"))
    if status in RUNNING_STATES:
        return None
    facts: dict[str, Any] = {
        "evaluation_run_id": step.glue_run_id,
        "evaluation_state": status,
        "duration_seconds": run.get("ExecutionTime"),
        "dpu_seconds": (run.get("ExecutionTime") or 0) * (run.get("NumberOfWorkers") or 0),
    }
    what = f"quality step {step.step} on table {step.resource}"
    if status != "SUCCEEDED":
        return Outcome(
            succeeded=False,
            facts=facts,
            error="GlueQualityFailed",
            cause=f"{what}: evaluation run {step.glue_run_id} {status}: "
            f"{run.get('ErrorString') or 'no message'}",
        )
    results = [
        r
        for result_id in run.get("ResultIds", [])
        for r in glue.get_quality_result(result_id).get("RuleResults", [])
    ]
    rules = step.quality_rules or []
    judged = judge_results([r["rule"] for r in rules], [r.get("severity", "error") for r in rules], results)
    return outcome(what, judged, {**facts, "result_ids": run.get("ResultIds", [])})


RUNNING_STATES = {"STARTING", "RUNNING", "STOPPING"}
