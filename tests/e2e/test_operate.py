"""The operator commands as an operator runs them: `gluerelay` in its own process, talking over the local
cloud's endpoint to a stack with real runs in it (one succeeded, one failed, one still running)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.runs import land, run_from_landing
from tests.e2e.cli_process import as_json, following, gluerelay
from tests.waiter import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Runs:
    succeeded: str
    failed: str
    running: str


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = CloudOptions(
        work_dir=tmp_path_factory.mktemp("operate"), parameters={"ArrivalBatchingWindowSeconds": "1"}
    )
    with LocalCloud(options) as running:
        yield running


@pytest.fixture(scope="module")
def runs(cloud: LocalCloud) -> Runs:
    [good] = run_from_landing(cloud, rows=300, seed=1)
    cleanse = cloud.template.physical_name("CleanseCustomersJob")
    cloud.glue.fail_jobs[cleanse] = "the warehouse was down (injected)"
    [bad] = run_from_landing(cloud, rows=200, seed=2)
    cloud.glue.fail_jobs.clear()
    cloud.glue.hang_jobs.add(cloud.template.physical_name("ExtractCustomersJob"))
    known = {e["executionArn"] for e in cloud.executions()}
    land(cloud, rows=100, files=1, seed=3)
    [running] = cloud.wait_for_new_executions(1, known)
    assert (good.status, bad.status) == ("SUCCEEDED", "FAILED")
    return Runs(good.run_id, bad.run_id, running["name"])


def test_runs_list_shows_every_run_with_its_status_and_failing_step(cloud: LocalCloud, runs: Runs) -> None:
    page = as_json(gluerelay(cloud, "runs", "list", "--local", "--json"))
    assert page["next"] is None
    listed = {r["run_id"]: r for r in page["runs"]}
    assert listed[runs.succeeded]["status"] == "SUCCEEDED" and listed[runs.succeeded]["seconds"] > 0
    assert (listed[runs.failed]["status"], listed[runs.failed]["failed_step"]) == ("FAILED", "cleanse")
    assert listed[runs.failed]["error"] == "GlueJobFailed"
    assert listed[runs.running]["status"] == "RUNNING" and listed[runs.running]["ended_at"] is None
    assert all(r["trigger"] == "s3" and r["pipeline"] == "customers" for r in listed.values())
    assert (
        as_json(gluerelay(cloud, "runs", "list", "--local", "--pipeline", "orders", "--json"))["runs"] == []
    )
    failed_only = as_json(gluerelay(cloud, "runs", "list", "--local", "--status", "FAILED", "--json"))["runs"]
    assert [r["run_id"] for r in failed_only] == [runs.failed]
    # Newest first, a page at a time: the pages together are the whole listing
    newest = [r["run_id"] for r in page["runs"]]
    first = as_json(gluerelay(cloud, "runs", "list", "--local", "--limit", "1", "--json"))
    rest = as_json(gluerelay(cloud, "runs", "list", "--local", "--next", first["next"], "--json"))
    assert [r["run_id"] for r in first["runs"] + rest["runs"]] == newest and len(newest) == 3
    today = page["runs"][0]["started_at"][:10]
    for option, value, expected in (
        ("--trigger", "s3", 3),
        ("--trigger", "manual", 0),
        ("--ingest-date", today, 3),
    ):
        found = as_json(gluerelay(cloud, "runs", "list", "--local", option, value, "--json"))["runs"]
        assert len(found) == expected, (option, value)
    text = gluerelay(cloud, "runs", "list", "--local", "--since", "1h")
    assert text.returncode == 0 and runs.failed in text.stdout and "cleanse (GlueJobFailed)" in text.stdout
    # Piped with no COLUMNS (`| grep`), each run is one whole line; in a narrow terminal the id is never cut
    piped = gluerelay(cloud, "runs", "list", "--local", columns=None).stdout.splitlines()
    assert [line for line in piped if runs.failed in line and "cleanse (GlueJobFailed)" in line]
    narrow = gluerelay(cloud, "runs", "list", "--local", columns="60").stdout
    assert runs.failed in narrow


def timestamps(value: Any) -> Iterator[str]:
    """Every value of a key ending in _at or _on, anywhere in a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.endswith(("_at", "_on")) and isinstance(inner, str):
                yield inner
            else:
                yield from timestamps(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from timestamps(inner)


def test_logs_are_in_cloudwatch_logs_and_gluerelay_logs_shows_a_runs_lines(
    cloud: LocalCloud, runs: Runs
) -> None:
    # Each function's lines are in its own group, one stream per execution environment as Lambda names it
    logs = cloud.client("logs")
    group = f"/aws/lambda/{cloud.template.physical_name('StartStepFunction')}"
    events = eventually(
        lambda: logs.filter_log_events(logGroupName=group, filterPattern=f'"{runs.failed}"')["events"],
        what="start_step's lines about the failed run in its log group",
    )
    assert all(re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", e["logStreamName"]) for e in events)
    assert any(json.loads(e["message"]).get("message") == "step started" for e in events)
    starts = logs.filter_log_events(logGroupName=group, filterPattern='"START RequestId"')["events"]
    assert starts and all(e["message"].endswith("Version: $LATEST") for e in starts)
    # Each invocation framed once, as on Lambda: one START and one REPORT per request id.
    started = [e["message"].split()[2] for e in starts]
    reports = logs.filter_log_events(logGroupName=group, filterPattern='"REPORT RequestId"')["events"]
    assert len(started) == len(set(started)), "an invocation with two START lines"
    assert sorted(e["message"].split()[2] for e in reports) == sorted(started)
    assert all("\tMemory Size: " in e["message"] for e in reports)
    # `gluerelay logs --run`: the functions' lines naming the run and its Glue job runs' output and error
    done = gluerelay(cloud, "logs", "--run", runs.failed, "--since", "1d", "--local")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(" error the warehouse was down (injected)" in line for line in lines), lines[-5:]
    assert any(" output " in line for line in lines)  # the extract job run's driver output
    assert any('"step started"' in line and runs.failed in line for line in lines)
    assert not any(runs.succeeded in line for line in lines)
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)
    # Bad input is refused before any call
    bad = gluerelay(cloud, "logs", "--since", "soon", "--local")
    assert bad.returncode == 2 and "a number and m, h, d or w" in " ".join(bad.stderr.split())


def test_runs_show_draws_the_steps_and_names_the_failure(
    cloud: LocalCloud, runs: Runs, tmp_path: Path
) -> None:
    detail = as_json(gluerelay(cloud, "runs", "show", runs.succeeded, "--local", "--json"))
    assert [s["status"] for s in detail["steps"]] == ["SUCCEEDED"] * 5
    assert detail["steps"][0]["glue_id"].startswith("jr_")
    assert (
        detail["steps"][1]["glue_id"] and detail["steps"][1]["facts"]["crawl_id"]
    )  # the crawl that served it
    assert detail["rows"]["rows_read"] == 300
    assert sum(detail["quarantined_by_reason"].values()) == detail["rows"]["rows_quarantined"]
    assert {t["name"] for t in detail["tables"]} == {"raw_customers", "cleansed_customers"}
    assert detail["state_transitions"] == 8
    # Every timestamp in --json has one format: UTC, to the millisecond (Glue's events say Z, the records
    # +00:00, and precisions differ)
    stamps = list(timestamps(detail))
    assert len(stamps) >= 8 and all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v) for v in stamps
    ), stamps

    page, picture = tmp_path / "run.html", tmp_path / "run.png"
    text = gluerelay(
        cloud, "runs", "show", runs.failed, "--local", "--html", str(page), "--png", str(picture)
    )
    assert text.returncode == 0, text.stderr
    assert "█" in text.stdout  # the timeline's bars
    assert "cleanse: GlueJobFailed" in text.stdout
    assert "the warehouse was down (injected)" in text.stdout
    assert 'class="bar"' in page.read_text() and runs.failed in page.read_text()
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5_000

    running = as_json(gluerelay(cloud, "runs", "show", runs.running, "--local", "--json"))
    assert [(s["step"], s["status"]) for s in running["steps"]] == [("extract", "OPEN")]


def test_runs_cost_prices_glue_transitions_and_lambda_per_run_and_in_total(
    cloud: LocalCloud, runs: Runs
) -> None:
    one = as_json(gluerelay(cloud, "runs", "cost", runs.succeeded, "--local", "--json"))
    [cost] = one["runs"]
    assert cost["job_runs"] == 2 and cost["job_dpu_hours"] > 0  # 2 workers, 1-minute minimum each
    # One crawl (the raw table's; the catalog step crawls nothing) of seconds, billed at the 10-minute
    # minimum (DPUHour from ListCrawls)
    assert len(cost["crawls"]) == 1 and not cost["crawl_dpu_estimated"]
    assert cost["crawl_dpu_hours"] == pytest.approx(600 / 3600, rel=1e-3)
    assert cost["state_transitions"] == 8
    # start_step per step, on_glue_event per job run and crawl (the gate and the catalog step need none),
    # on_arrival
    assert cost["lambda_invocations"] == 5 + 3 + 1
    expected = (cost["job_dpu_hours"] + cost["crawl_dpu_hours"]) * 0.44 + 8 * 0.025 / 1000 + 9 * 0.2 / 1e6
    assert one["total"]["usd"] == pytest.approx(expected, rel=1e-3)
    everything = as_json(gluerelay(cloud, "runs", "cost", "--since", "1h", "--local", "--json"))
    assert {c["run_id"] for c in everything["runs"]} == {runs.succeeded, runs.failed, runs.running}
    assert everything["total"]["runs"] == 3
    table = gluerelay(cloud, "runs", "cost", runs.failed, "--local")
    assert table.returncode == 0 and runs.failed in table.stdout and "cost at AWS list prices" in table.stdout


def test_start_by_hand_runs_the_named_objects(cloud: LocalCloud, runs: Runs) -> None:
    cloud.glue.hang_jobs.clear()
    bucket = cloud.output("DataBucketName")
    described = cloud.client("stepfunctions").describe_execution(
        executionArn=cloud.execution_arn(runs.succeeded)
    )
    manifest_uri = json.loads(described["input"])["manifest_uri"]
    manifest = cloud.client("s3").get_object(Bucket=bucket, Key=manifest_uri.split("/", 3)[3])["Body"].read()
    key = json.loads(manifest)["objects"][0]["key"]
    started = as_json(
        gluerelay(cloud, "start", "--pipeline", "customers", "--keys", key, "--local", "--json")
    )
    assert started["run_id"].startswith("customers-manual-") and started["objects"] == [key]
    assert started["params"] == {"source": "s3", "connection_name": ""}
    final = cloud.wait_for_execution(started["execution_arn"])
    assert final["status"] == "SUCCEEDED"
    record = eventually(
        lambda: as_json(gluerelay(cloud, "runs", "show", started["run_id"], "--local", "--json")),
        what="the manual run's detail",
    )
    assert record["run"]["trigger"] == "manual" and record["rows"]["rows_read"] == 300
    plain = gluerelay(cloud, "start", "--keys", key, "--local")
    assert plain.returncode == 0 and plain.stdout.strip().startswith("customers-manual-")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("runs", "show", "no-such-run", "--local"), 1, "no run no-such-run in stack gluerelay-local"),
        (("runs", "list", "--local", "--stack", "nope"), 1, "stack nope not found"),
        (("start", "--local", "--keys", "landing/customers/missing.csv"), 1, "no object s3://"),
        (("start", "--local", "--keys", "raw/x.csv"), 1, "jobs read landed objects only, under landing/"),
        (("start", "--local", "--param", "source=ftp"), 1, "parameter source='ftp' is not one of: s3, jdbc"),
        (("start", "--local", "--param", "sauce=jdbc"), 1, "unknown parameter sauce (declared:"),
        (("start", "--local", "--param", "source"), 2, "write NAME=VALUE"),
        (("start", "--local", "--pipeline", "nope"), 1, "no pipeline 'nope' (pipelines: customers, orders)"),
        (
            ("start", "--local", "--ingest-date", "2024-13-45"),
            2,
            "'2024-13-45' is not a date: write YYYY-MM-DD",
        ),
        (("start", "--local", "--ingest-date", "2024-1-5"), 2, "'2024-1-5' is not a date: write YYYY-MM-DD"),
        (
            ("runs", "list", "--local", "--status", "BOGUS"),
            2,
            "'BOGUS' is not one of 'running', 'succeeded', 'failed'",
        ),
        (("runs", "list", "--local", "--pipeline", "nope"), 1, "stack gluerelay-local has no pipeline nope"),
        (("runs", "list", "--local", "--since", "yesterday"), 2, "a number and m, h, d or w"),
        (("runs", "list", "--local", "--ingest-date", "2026-02-30"), 2, "'2026-02-30' is not a date range"),
        (("runs", "list", "--local", "--next", "nonsense"), 1, "'nonsense' is not a token a listing printed"),
        (
            ("runs", "list", "--local", "--trigger", "cron"),
            2,
            "'cron' is not one of 's3', 'schedule', 'manual'",
        ),
        (("start", "--local", "--ingest-date", "2099-01-01"), 1, "--ingest-date 2099-01-01 is after"),
        (("runs", "cost", "--local"), 2, "name one RUN or give --since (30m, 12h, 2d)"),
        (("runs", "cost", "x", "--since", "1d", "--local"), 2, "name one RUN or give --since, not both"),
    ],
)
def test_errors_name_the_problem_and_the_fix(
    cloud: LocalCloud, runs: Runs, args: tuple[str, ...], code: int, message: str
) -> None:
    done = gluerelay(cloud, *args)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert message in " ".join(done.stderr.split())


def test_an_unreachable_endpoint_says_so(cloud: LocalCloud) -> None:
    done = gluerelay(cloud, "runs", "list", "--local", endpoint="http://127.0.0.1:9")
    assert done.returncode == 1 and "is `gluerelay local up` running?" in done.stderr


def test_logs_follow_prints_new_lines_as_they_arrive_each_once(cloud: LocalCloud, runs: Runs) -> None:
    """Last in this module: the run it lands stays RUNNING (the runs fixture hangs extract)."""
    with following(cloud, "logs", "--follow", "--since", "1m", "--local") as printed:
        known = {e["executionArn"] for e in cloud.executions()}
        land(cloud, rows=50, files=1, seed=4)  # lines written while following
        [started] = cloud.wait_for_new_executions(1, known)
        eventually(
            lambda: [line for line in printed() if started["name"] in line and '"step started"' in line],
            what="the new run's start_step line, followed",
        )
        # An event stamped before lines already printed (as a Glue job's output delivered late) still shows.
        logs = cloud.client("logs")
        group = f"/aws/lambda/{cloud.template.physical_name('StartStepFunction')}"
        logs.create_log_stream(logGroupName=group, logStreamName="late")
        stamp = int(time.time() * 1000) - 10_000
        logs.put_log_events(
            logGroupName=group, logStreamName="late", logEvents=[{"timestamp": stamp, "message": "late line"}]
        )
        eventually(lambda: any(line.endswith(" late line") for line in printed()), what="the late line")
    lines = printed()
    requests = [
        line.split("START RequestId: ")[1].split()[0] for line in lines if "START RequestId: " in line
    ]
    assert requests and len(requests) == len(set(requests)), "a followed line printed twice"
