"""Each reliability guarantee broken on purpose, to show that its scenario notices (`make mutants`).

A guarantee counts only when a test fails without it. Every mutant below removes one protection from a
scratch copy of the project (the working tree as it is, committed or not), then runs the scenario that
RELIABILITY.md credits with proving that protection. First each scenario runs unmutated, alone, in a
scratch copy: one that does not pass there makes its mutants "broken" (a scenario failing for another
reason would count every mutant as caught). The mutated scenario must fail in its test body: a failure
while setting up (the local cloud not starting, a fixture raising) is reported as broken, not caught,
because it says nothing about the protection. A mutant whose text is no longer in the code is reported
as stale, so the list cannot silently drift from the code it mutates.

    python -m tests.mutants            # every mutant
    python -m tests.mutants 04 05      # the mutants whose id starts with one of these

The last line is `mutants: N caught, M survived` (stale and broken mutants count as survived); the exit
status is 0 only when every mutant was caught.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELIABILITY = "tests/e2e/test_reliability.py::"
RESULTS = ROOT / ".gluerelay" / "mutants" / "results.json"
REPORT = ROOT / "RELIABILITY.md"
BEGIN, END = "<!-- mutants:begin -->", "<!-- mutants:end -->"


@dataclass(frozen=True)
class Mutant:
    id: str
    guarantee: str
    breaks: str  # the protection removed, in words
    path: str  # the file mutated, from the project root
    original: str  # exactly once in the file
    mutated: str
    test: str  # the scenario (a pytest node id) that must fail


MUTANTS = (
    Mutant(
        "01-claim",
        "An object is processed once",
        "the object ledger always grants the claim",
        "functions/relay/adapters/dynamodb.py",
        'ConditionExpression="attribute_not_exists(pk) OR run_id = :run",',
        'ConditionExpression="attribute_not_exists(pk) OR run_id = :run OR attribute_exists(pk)",',
        RELIABILITY + "test_the_same_object_created_three_times_is_processed_once",
    ),
    Mutant(
        "02-version",
        "A run reads exactly the object versions that landed for it",
        "job 1 copies a landed object without its version id",
        "glue/jobs/extract_customers.py",
        '**({"VersionId": landed.version_id} if landed.version_id else {}),',
        "",
        "tests/e2e/test_landed_objects.py::"
        "test_an_object_overwritten_while_its_run_waits_is_read_as_the_version_that_landed",
    ),
    Mutant(
        "03-join",
        "Runs share crawlers without failing or cheating",
        "a run arriving mid-crawl joins that crawl instead of waiting for the next",
        "functions/relay/logic/crawls.py",
        'update = {"waiters": [*lease.waiters, ref]}',
        'update = {"owners": [*lease.owners, ref]}',
        RELIABILITY + "test_twenty_concurrent_runs_share_crawls_and_each_waits_for_a_crawl_of_its_own_data",
    ),
    Mutant(
        "04-crawl",
        "A lost event does not strand a run",
        "the sweeper accepts a crawl that started before the step",
        "functions/relay/logic/steps.py",
        "if crawl.started_on >= step.opened_at:",
        "if crawl.started_on is not None:",
        RELIABILITY + "test_lost_job_and_crawler_events_are_repaired_by_the_sweeper",
    ),
    Mutant(
        "04-job",
        "A lost event does not strand a run",
        "the sweeper never repairs a job step",
        "functions/relay/logic/steps.py",
        "    if step.kind == StepKind.JOB:\n        return _reconcile_job(step, plane, now)\n",
        "    if step.kind == StepKind.JOB:\n        return None\n",
        RELIABILITY + "test_lost_job_and_crawler_events_are_repaired_by_the_sweeper",
    ),
    Mutant(
        "05-condition",
        "A step completes once",
        "the condition on the OPEN -> COMPLETING write is removed",
        "functions/relay/adapters/dynamodb.py",
        'ConditionExpression="#status = :open AND #token = :token",',
        'ConditionExpression="#status = :open OR #token = :token",',
        RELIABILITY
        + "test_duplicate_and_reordered_glue_events_complete_each_step_once_and_late_ones_change_nothing",
    ),
    Mutant(
        "05-earlier",
        "A step completes once",
        '"is this an earlier crawl\'s event" always answers no',
        "functions/relay/logic/crawls.py",
        "    if requested is None:\n        return False\n",
        "    if requested is not None:\n        return False\n",
        RELIABILITY
        + "test_duplicate_and_reordered_glue_events_complete_each_step_once_and_late_ones_change_nothing",
    ),
    Mutant(
        "06-job-failed",
        "A failure is never reported as success",
        "a job run that ended FAILED, TIMEOUT or STOPPED counts as succeeded",
        "functions/relay/logic/jobs.py",
        '    if state == "SUCCEEDED":\n        if summary:',
        '    if state in {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"}:\n        if summary:',
        RELIABILITY + "test_a_failed_timed_out_or_stopped_job_fails_the_run_with_glues_message_and_alarms",
    ),
    Mutant(
        "07-crawl-failed",
        "A failure is never reported as success",
        "a failed crawl counts as succeeded",
        "functions/relay/logic/crawls.py",
        'if detail.state == "Succeeded":',
        'if detail.state in {"Succeeded", "Failed"}:',
        RELIABILITY + "test_a_failed_crawl_fails_the_run_never_succeeds",
    ),
    Mutant(
        "08-stop",
        "A step that never finishes is seen, ended and cleaned up",
        "the job run of a step whose run ended is left running",
        "functions/relay/logic/runs.py",
        "            plane.glue.stop_job_run(step.resource, run.run_id)\n",
        "",
        RELIABILITY + "test_a_step_that_never_finishes_alarms_then_times_out_the_run_and_its_job_is_stopped",
    ),
    Mutant(
        "11-malformed",
        "Bad events are answered, not retried",
        "a malformed Glue event raises (and is retried) instead of being logged and skipped",
        "functions/relay/handlers/on_glue_event.py",
        '        return {"verdict": "rejected: malformed event"}',
        "        raise",
        RELIABILITY + "test_malformed_and_unknown_events_are_logged_and_skipped_without_retries",
    ),
    Mutant(
        "12-reuse",
        "A failed run resumes where it failed",
        "a resumed run runs a step that already succeeded again",
        "functions/relay/logic/steps.py",
        "    if step.status == StepStatus.SUCCEEDED and step.outcome is not None:\n",
        "    if False:\n",
        "tests/e2e/test_pipelines.py::"
        "test_a_failing_branch_stops_its_siblings_job_at_once_and_a_resume_runs_only_what_did_not_succeed",
    ),
    Mutant(
        "13-stopping",
        "A crawler still stopping does not strand its follow-up crawl",
        "a follow-up crawl refused while the crawler is STOPPING is not tried again",
        "functions/relay/logic/crawls.py",
        "STOPPING_RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0)",
        "STOPPING_RETRY_SECONDS: tuple[float, ...] = ()",
        RELIABILITY
        + "test_a_follow_up_crawl_starts_once_the_crawler_has_stopped_without_waiting_for_the_sweeper",
    ),
)


@dataclass
class Result:
    mutant: Mutant
    verdict: str  # caught, survived, broken, stale
    seconds: float
    detail: str = ""


def scratch_copy(into: Path) -> Path:
    """The working tree's files (tracked and new, not ignored) copied under `into`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    copy = into / "project"
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def apply(mutant: Mutant, project: Path) -> str | None:
    """Mutate the copy; the reason it cannot be (the text is gone or ambiguous), or None."""
    path = project / mutant.path
    text = path.read_text()
    found = text.count(mutant.original)
    if found != 1:
        return f"{mutant.path}: the text to mutate occurs {found} times, not once"
    path.write_text(text.replace(mutant.original, mutant.mutated))
    return None


def outcome(report: Path) -> tuple[str, str]:
    """From pytest's JUnit XML: failed in the test body -> caught; passed -> survived; else broken."""
    if not report.is_file():
        return "broken", "pytest wrote no report"
    case = ET.parse(report).getroot().find(".//testcase")
    if case is None:
        return "broken", "the scenario was not collected"
    failure, error = case.find("failure"), case.find("error")
    if failure is not None:
        return "caught", (failure.get("message") or "").splitlines()[0][:200]
    if error is not None:
        return "broken", (error.get("message") or "").splitlines()[0][:200]
    if case.find("skipped") is not None:
        return "broken", "the scenario was skipped"
    return "survived", "the scenario passed"


def baseline(test: str, timeout: float) -> tuple[str, str]:
    """The scenario run unmutated, alone, in a scratch copy: it must pass, or its mutants prove nothing (a
    scenario that fails alone would count every mutant as caught)."""
    with tempfile.TemporaryDirectory(prefix="mutant-baseline-") as scratch:
        project = scratch_copy(Path(scratch))
        return pytest_outcome(project, test, Path(scratch) / "report.xml", timeout)


def pytest_outcome(project: Path, test: str, report: Path, timeout: float) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(project)}  # the copy's gluerelay and tests, not the tree's
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
                test,
                f"--junitxml={report}",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "broken", f"no answer within {timeout:.0f} s"
    return outcome(report)


def run(mutant: Mutant, timeout: float) -> Result:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as scratch:
        project = scratch_copy(Path(scratch))
        problem = apply(mutant, project)
        if problem:
            return Result(mutant, "stale", 0.0, problem)
        report = Path(scratch) / "report.xml"
        verdict, detail = pytest_outcome(project, mutant.test, report, timeout)
        return Result(mutant, verdict, time.monotonic() - began, detail)


def record(results: list[Result]) -> None:
    """Merge this run's verdicts into the results file (newest per mutant) and write RELIABILITY.md's
    table of every mutant between its markers."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    previous.update({r.mutant.id: {"verdict": r.verdict, "seconds": round(r.seconds)} for r in results})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    lines = [
        "| guarantee | protection removed | scenario that must fail | result |",
        "|---|---|---|---|",
    ]
    for m in MUTANTS:
        verdict = previous.get(m.id, {}).get("verdict", "not run")
        test = m.test.replace("tests/e2e/", "").replace("::", " ")
        lines.append(f"| {m.guarantee} | {m.breaks} (`{m.id}`) | `{test}` | {verdict} |")
    text = REPORT.read_text()
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        REPORT.write_text(f"{head}{BEGIN}\n" + "\n".join(lines) + f"\n{END}{rest.partition(END)[2]}")


def main(argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    chosen = [m for m in MUTANTS if not argv or any(m.id.startswith(a) for a in argv)]
    if not chosen:
        print(f"no mutant matches {' '.join(argv)}; ids: {', '.join(m.id for m in MUTANTS)}", file=sys.stderr)
        return 2
    console = Console()
    baselines = {}
    for test in dict.fromkeys(m.test for m in chosen):
        verdict, detail = baseline(test, timeout=900)
        baselines[test] = (verdict, detail)
        colour = "green" if verdict == "survived" else "red"  # unmutated, "survived" means it passed
        shown = "passes" if verdict == "survived" else f"does not pass alone: {detail}"
        console.print(f"baseline {test.rsplit('::', 1)[-1]}: [{colour}]{shown}[/]")
    results = []
    for mutant in chosen:
        if baselines[mutant.test][0] != "survived":
            results.append(Result(mutant, "broken", 0.0, "its scenario fails without the mutant"))
            console.print(f"[bold]{mutant.id}[/] [red]broken[/]: its scenario fails without the mutant")
            continue
        console.print(f"[bold]{mutant.id}[/] {mutant.breaks} -> {mutant.test.rsplit('::', 1)[-1]}")
        result = run(mutant, timeout=900)
        colour = "green" if result.verdict == "caught" else "red"
        console.print(f"  [{colour}]{result.verdict}[/] in {result.seconds:.0f} s: {result.detail}")
        results.append(result)
    table = Table(title="mutants", title_justify="left")
    for column in ("mutant", "guarantee", "protection removed", "result"):
        table.add_column(column)
    for r in results:
        colour = "green" if r.verdict == "caught" else "red"
        table.add_row(r.mutant.id, r.mutant.guarantee, r.mutant.breaks, f"[{colour}]{r.verdict}[/]")
    console.print(table)
    record(results)
    caught = sum(r.verdict == "caught" for r in results)
    print(f"mutants: {caught} caught, {len(results) - caught} survived")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
