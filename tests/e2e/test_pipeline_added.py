"""A pipeline added in a test directory (its file, its job's script and Glue resource, and its state machine
block) validates, compiles, deploys and runs, with nothing else edited: no IAM, rule or function change.

Its own module: it runs its own local cloud, and moto's backends allow one at a time in a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.report import build
from gluerelay.pipelines.project import extended
from tests.e2e.cli_process import validate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "echo_pipeline"


@pytest.fixture(scope="module")
def echo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with one pipeline added: its file, its job's script and Glue resource, and its
    state machine block. Nothing else in it differs from the repository."""
    root = tmp_path_factory.mktemp("echo-project")
    extended(
        root,
        pipelines=[FIXTURE / "echo.yaml"],
        scripts=[FIXTURE / "count_lines.py"],
        resources=(FIXTURE / "job.yaml").read_text(),
    )
    return root


def test_a_pipeline_added_in_a_test_directory_validates_compiles_and_runs(echo_project: Path) -> None:
    done = validate(echo_project)
    assert done.returncode == 0, done.stderr
    assert "3 pipelines valid (customers, echo, orders)" in done.stdout
    options = CloudOptions(template=echo_project / "template.yaml", work_dir=echo_project / "work")
    with LocalCloud(options) as cloud:
        assert cloud.pipelines == ["customers", "echo", "orders"]
        bucket = cloud.output("DataBucketName")
        cloud.client("s3").put_object(Bucket=bucket, Key="landing/echo/a.txt", Body=b"one\ntwo\nthree\n")
        [execution] = cloud.wait_for_new_executions(1, set(), timeout=60, pipeline="echo")
        cloud.wait_for_execution(execution["executionArn"], timeout=120)
        report = build(cloud, execution["executionArn"])
        # Its schedule (rate(1 hour)) starts a run when the clock passes the hour, with its parameters
        cloud.clock.advance(3600)
        [scheduled] = cloud.wait_for_new_executions(
            1, {execution["executionArn"]}, timeout=60, pipeline="echo"
        )
        cloud.wait_for_execution(scheduled["executionArn"], timeout=120)
        on_time = build(cloud, scheduled["executionArn"])
        job = report.step("count").resource
        runs = cloud.client("glue").get_job_runs(JobName=job)["JobRuns"]
        greetings = {r["Arguments"]["--run_id"]: r["Arguments"]["--greeting"] for r in runs}
    assert report.status == "SUCCEEDED", report.cause
    count = report.step("count")
    assert count.facts["rows"] == {"rows_read": 3, "rows_written": 3}
    assert count.resource.endswith("_count_lines")
    assert (on_time.status, on_time.trigger) == ("SUCCEEDED", "schedule"), on_time.cause
    assert on_time.run_id.startswith("echo-schedule0-")
    assert on_time.step("count").facts["rows"] == {"rows_read": 0, "rows_written": 0}
    # Each run's parameters reached its job: the default for the landing, the schedule's own for the tick
    assert greetings == {report.run_id: "hello", on_time.run_id: "scheduled"}
