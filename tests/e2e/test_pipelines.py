"""Pipelines as data, end to end: two pipelines at once on one control plane, a failing branch that stops its
sibling at once, resuming branch by branch, and pipeline files refused naming the problem."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gluerelay.local.audit import account
from gluerelay.local.cloud import ROOT, CloudOptions, LocalCloud
from gluerelay.local.report import RunReport, build
from gluerelay.local.runs import carries_rows, follow, land, rows_landed, runs_taking
from tests.e2e.cli_process import gluerelay, validate
from tests.waiter import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def land_and_follow(cloud: LocalCloud, *landings: tuple[str, int, int, int]) -> list[RunReport]:
    """Land (pipeline, rows, files, seed) samples together, then follow every run that took them."""
    keys = [
        k
        for p, rows, files, seed in landings
        for k in land(cloud, rows=rows, files=files, seed=seed, pipeline=p)
    ]
    return follow(cloud, runs_taking(cloud, keys), timeout=300)


def test_customers_and_orders_run_at_the_same_time_and_every_row_is_accounted_for(cloud: LocalCloud) -> None:
    reports = land_and_follow(cloud, ("customers", 600, 2, 201), ("orders", 600, 2, 202))

    assert sorted(r.pipeline for r in reports) == ["customers", "orders"]
    assert all(r.status == "SUCCEEDED" for r in reports), [(r.pipeline, r.cause) for r in reports]
    # The two runs overlapped in time: one control plane served both
    spans = sorted((r.detail.run.started_at or "", r.detail.run.ended_at or "") for r in reports)
    assert spans[1][0] < spans[0][1]
    rows_in = rows_landed("customers", rows=600, seed=201) + rows_landed("orders", rows=600, seed=202)
    figures = account(cloud, [r.run_id for r in reports], rows_in=rows_in, carries_rows=carries_rows)
    assert (figures.lost, figures.duplicates, figures.objects_in_two_runs) == (0, 0, 0), figures
    listed = json.loads(gluerelay(cloud, "runs", "list", "--local", "--json").stdout)["runs"]
    assert {r["run_id"]: r["pipeline"] for r in listed if r["run_id"] in {x.run_id for x in reports}} == {
        r.run_id: r.pipeline for r in reports
    }


def test_a_failing_branch_stops_its_siblings_job_at_once_and_a_resume_runs_only_what_did_not_succeed(
    cloud: LocalCloud,
) -> None:
    lines_job = cloud.template.physical_name("ExtractOrderLinesJob")
    cloud.glue.hang_jobs.add(lines_job)
    cloud.glue.fail_jobs["erp_extract_order_headers"] = "the ERP export was empty (injected)"
    try:
        [failed] = land_and_follow(cloud, ("orders", 300, 1, 203))
        # Failed at the headers branch, named as such, with the other team's job's own message
        assert (failed.status, failed.failed_step, failed.error) == (
            "FAILED",
            "extract_headers",
            "GlueJobFailed",
        )
        assert "the ERP export was empty (injected)" in (failed.cause or "")
        # The sibling's job run was stopped by close_run, not left to the sweeper (no time has passed)
        hung = next(r for r in cloud.glue.job_runs[::-1] if r.job_name == lines_job)
        eventually(lambda: hung.state == "STOPPED", timeout=20, what="the sibling branch's job run STOPPED")
        lines = failed.step("extract_lines")
        assert (lines.status, lines.repaired_by) == ("CLOSED", "close_run")
    finally:
        cloud.glue.hang_jobs.discard(lines_job)
        cloud.glue.fail_jobs.clear()

    # The cause is fixed: resume. Neither extract had succeeded, so both run again; the rest once.
    resumed = json.loads(gluerelay(cloud, "runs", "resume", failed.run_id, "--local", "--json").stdout)
    cloud.wait_for_execution(resumed["execution_arn"], timeout=300)
    report = build(cloud, resumed["execution_arn"])
    assert report.status == "SUCCEEDED", report.cause
    attempts = {s.step: s.attempt for s in report.steps}
    assert attempts == {"extract_lines": 2, "extract_headers": 2, "crawl_raw": 1, "cleanse": 1, "publish": 1}

    # A run that fails after both branches succeeded resumes without running either branch again
    cleanse = cloud.template.physical_name("CleanseOrdersJob")
    cloud.glue.fail_jobs[cleanse] = "injected"
    [second] = land_and_follow(cloud, ("orders", 300, 1, 204))
    cloud.glue.fail_jobs.clear()
    assert (second.status, second.failed_step) == ("FAILED", "cleanse")
    runs_before = len(cloud.glue.job_runs)
    resumed = json.loads(gluerelay(cloud, "runs", "resume", second.run_id, "--local", "--json").stdout)
    cloud.wait_for_execution(resumed["execution_arn"], timeout=300)
    again = build(cloud, resumed["execution_arn"])
    assert again.status == "SUCCEEDED", again.cause
    assert {s.step: s.attempt for s in again.steps} == {
        "extract_lines": 1,
        "extract_headers": 1,
        "crawl_raw": 1,
        "cleanse": 2,
        "publish": 1,
    }
    assert [r.job_name for r in cloud.glue.job_runs[runs_before:]] == [cleanse]


def test_a_broken_pipeline_file_is_refused_by_validate_naming_file_field_and_problem(tmp_path: Path) -> None:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines")
    broken = (
        (tmp_path / "pipelines" / "orders.yaml")
        .read_text()
        .replace("needs: [crawl_raw]", "needs: [crawl_rwa]")
    )
    (tmp_path / "pipelines" / "orders.yaml").write_text(broken)
    done = validate(tmp_path)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert (
        "pipelines/orders.yaml: steps.cleanse.needs: unknown step 'crawl_rwa' (did you mean 'crawl_raw'?)"
        in message
    )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with LocalCloud(CloudOptions(work_dir=tmp_path_factory.mktemp("pipelines"))) as running:
        yield running


def test_an_external_job_glue_retries_by_itself_completes_its_step_with_the_retry(cloud: LocalCloud) -> None:
    # Given the ERP team's job, which Glue retries once (its MaxRetries is 1), with its next run failing
    glue = cloud.client("glue")
    job = glue.get_job(JobName="erp_extract_order_headers")["Job"]
    assert job["MaxRetries"] == 1
    cloud.glue.fail_runs[job["Name"]] = 1
    try:
        [report] = land_and_follow(cloud, ("orders", 300, 1, 205))
    finally:
        cloud.glue.fail_runs.clear()
    # Then its first run's FAILED event did not fail the step: Glue's retry completed it
    assert report.status == "SUCCEEDED", report.cause
    headers = report.step("extract_headers")
    runs = {r["Id"]: r for r in glue.get_job_runs(JobName=job["Name"])["JobRuns"]}
    retry = runs[headers.glue_id]
    assert (retry["Attempt"], runs[retry["PreviousRunId"]]["JobRunState"]) == (1, "FAILED")
    assert headers.attempt == 1  # the step's own attempt: Glue's retry is not a new attempt
