"""Backfills in the local cloud, driven as an operator drives them (`gluerelay backfill` in its own process):
the backfill state machine reruns many runs at most N at once, a repeat starts nothing, a cancel stops new
starts, and crawls keep coalescing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from relay.contract import lease_key, manifest_key

from bench.operate import most_at_once
from gluerelay.local.audit import account
from gluerelay.local.cloud import LocalCloud
from gluerelay.local.runs import follow, land
from tests.e2e.cli_process import as_json, gluerelay
from tests.waiter import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RUNS = 20


@pytest.fixture(scope="module")
def history(cloud: LocalCloud) -> list[str]:
    """RUNS finished runs of customers, one landed file each."""
    started: list[str] = []
    for n in range(RUNS):
        known = {e["executionArn"] for e in cloud.executions("customers")}
        land(cloud, rows=10, files=1, seed=300 + n)
        [new] = cloud.wait_for_new_executions(1, known, pipeline="customers")
        started.append(str(new["name"]))
    reports = follow(cloud, started, timeout=600)
    assert [r.status for r in reports] == ["SUCCEEDED"] * RUNS, [r.cause for r in reports]
    return started


def cli_json(cloud: LocalCloud, *args: str) -> Any:
    return as_json(gluerelay(cloud, *args, "--local", "--json"))


def backfill_status(cloud: LocalCloud, backfill_id: str) -> Any:
    return cli_json(cloud, "backfill", "status", backfill_id)


def rerun_executions(cloud: LocalCloud, runs: list[str]) -> list[dict[str, Any]]:
    """Every rerun execution of these runs, described (start and stop)."""
    sfn = cloud.client("stepfunctions")
    names = {f"{run}-rerun-" for run in runs}
    found = [
        e for e in cloud.executions("customers") if any(str(e["name"]).startswith(prefix) for prefix in names)
    ]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]


def waiting_for(cloud: LocalCloud, crawler: str) -> int:
    """How many steps wait for the crawler's next crawl (its lease's waiters)."""
    item = (
        cloud.client("dynamodb")
        .get_item(
            TableName=cloud.output("ControlTableName"),
            Key={k: {"S": v} for k, v in lease_key(crawler).items()},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return len(item.get("waiters", {}).get("L", []))


def test_a_backfill_reruns_every_run_at_most_n_at_once_and_a_repeat_starts_nothing(
    cloud: LocalCloud, history: list[str]
) -> None:
    crawler = cloud.template.physical_name("RawCustomersCrawler")
    crawls_before = len([c for c in cloud.glue.crawls if c.crawler == crawler])
    args = ("backfill", "--pipeline", "customers", "--from-step", "crawl_raw", "--max-concurrent", "4")
    dry = cli_json(cloud, *args, "--runs", ",".join(history), "--dry-run")
    assert sorted(dry["runs"]) == sorted(history)
    assert dry["steps"] == ["crawl_raw", "cleanse", "check_cleansed", "catalog_cleansed"]
    assert rerun_executions(cloud, history) == []  # a dry run starts nothing
    # The raw crawler's first crawl is held: the 4 reruns running ask for it meanwhile and share the next
    cloud.glue.hold_crawler(crawler)
    try:
        started = cli_json(cloud, *args, "--runs", ",".join(history))
        assert started["started"] is True
        eventually(lambda: waiting_for(cloud, crawler) == 3, timeout=300)
        assert len([e for e in rerun_executions(cloud, history) if e["status"] == "RUNNING"]) == 4
    finally:
        cloud.glue.release_crawler(crawler)
    backfill_id = started["plan"]["backfill_id"]
    assert backfill_id == dry["backfill_id"]
    ended = cloud.wait_for_execution(started["execution_arn"], timeout=900)
    assert ended["status"] == "SUCCEEDED"
    status = backfill_status(cloud, backfill_id)
    reruns = rerun_executions(cloud, history)
    unlike = [
        (r, cli_json(cloud, "runs", "show", r["run_id"])["steps"])
        for r in status["runs"]
        if r["state"] != "succeeded"
    ]
    assert status["counts"]["succeeded"] == RUNS, (
        unlike,
        [(e["name"], e["status"], e.get("cause")) for e in reruns if e["status"] != "SUCCEEDED"],
    )
    assert (status["counts"]["failed"], status["counts"]["pending"], status["counts"]["running"]) == (0, 0, 0)
    assert len(reruns) == RUNS and {e["status"] for e in reruns} == {"SUCCEEDED"}
    assert most_at_once(reruns) <= 4
    # Each run's cleansed partition was replaced: every landed row once
    figures = account(cloud, history, rows_in=10 * RUNS)
    assert (figures.lost, figures.duplicates, figures.problems) == (0, 0, []), figures
    # Crawls coalesced: 20 reruns asked for 20 crawls of the raw table; three shared one at least
    crawls = len([c for c in cloud.glue.crawls if c.crawler == crawler]) - crawls_before
    assert 1 <= crawls <= RUNS - 2
    # The same backfill again (same runs, same step, chosen another way) starts nothing new
    since = cli_json(cloud, *args, "--since", "1d")
    assert (since["started"], since["plan"]["backfill_id"]) == (False, backfill_id)
    assert len(rerun_executions(cloud, history)) == RUNS
    listed = cli_json(cloud, "runs", "list", "--backfill", backfill_id)["runs"]
    assert sorted(r["run_id"] for r in listed) == sorted(history)


def test_a_cancelled_backfill_starts_no_more_reruns(cloud: LocalCloud, history: list[str]) -> None:
    before = len(rerun_executions(cloud, history))
    crawler = cloud.template.physical_name("RawCustomersCrawler")
    cloud.glue.hold_crawler(crawler)  # the first rerun waits in its crawl until the backfill is cancelled
    started = cli_json(
        cloud,
        "backfill",
        "--pipeline",
        "customers",
        "--from-step",
        "extract",  # not crawl_raw: that backfill of these runs is the first test's, done (same id)
        "--max-concurrent",
        "1",
        "--runs",
        ",".join(history),
    )
    backfill_id = started["plan"]["backfill_id"]
    try:
        eventually(lambda: backfill_status(cloud, backfill_id)["counts"]["running"] == 1, timeout=120)
        cancelled = cli_json(cloud, "backfill", "cancel", backfill_id)
        assert cancelled["stopped"] == []
    finally:
        cloud.glue.release_crawler(crawler)
    ended = cloud.wait_for_execution(started["execution_arn"], timeout=300)
    assert ended["status"] == "SUCCEEDED"
    status = backfill_status(cloud, backfill_id)
    assert status["cancelled"] is True
    assert (status["counts"]["succeeded"], status["counts"]["cancelled"]) == (1, RUNS - 1), status
    assert len(rerun_executions(cloud, history)) == before + 1
    text = gluerelay(cloud, "backfill", "status", backfill_id, "--local")
    assert text.returncode == 0, text.stderr
    assert "succeeded 1" in text.stdout and f"cancelled {RUNS - 1}" in text.stdout and "done" in text.stdout


def test_cancel_now_also_stops_the_reruns_running(cloud: LocalCloud, history: list[str]) -> None:
    crawler = cloud.template.physical_name("RawCustomersCrawler")
    cloud.glue.hold_crawler(crawler)
    started = cli_json(
        cloud, "backfill", "--pipeline", "customers", "--max-concurrent", "2", "--runs", ",".join(history[:6])
    )
    backfill_id = started["plan"]["backfill_id"]
    try:
        eventually(lambda: backfill_status(cloud, backfill_id)["counts"]["running"] == 2, timeout=300)
        cancelled = cli_json(cloud, "backfill", "cancel", backfill_id, "--now")
    finally:
        cloud.glue.release_crawler(crawler)
    assert len(cancelled["stopped"]) == 2
    assert cloud.wait_for_execution(started["execution_arn"], timeout=300)["status"] == "SUCCEEDED"
    for arn in cancelled["stopped"]:
        assert cloud.wait_for_execution(arn)["status"] == "ABORTED"
    status = backfill_status(cloud, backfill_id)
    assert (status["counts"]["failed"], status["counts"]["cancelled"], status["counts"]["succeeded"]) == (
        2,
        4,
        0,
    )


def test_a_run_the_backfill_cannot_rerun_is_recorded_with_why_and_the_others_go_on(
    cloud: LocalCloud, history: list[str]
) -> None:
    """A rerun from extract reads the run's landed files: one run's file was deleted since, so prepare_rerun
    refuses it; the backfill records why and reruns the other."""
    gone, kept = history[-2], history[-1]
    s3 = cloud.client("s3")
    manifest = s3.get_object(Bucket=cloud.output("DataBucketName"), Key=manifest_key(gone))["Body"].read()
    [obj] = json.loads(manifest)["objects"]
    s3.delete_object(Bucket=obj["bucket"], Key=obj["key"])  # a delete marker: no current version
    started = cli_json(
        cloud, "backfill", "--pipeline", "customers", "--from-step", "extract", "--runs", f"{gone},{kept}"
    )
    assert cloud.wait_for_execution(started["execution_arn"], timeout=600)["status"] == "SUCCEEDED"
    status = backfill_status(cloud, started["plan"]["backfill_id"])
    assert (status["counts"]["refused"], status["counts"]["succeeded"]) == (1, 1), status
    [refused] = [r for r in status["runs"] if r["state"] == "refused"]
    assert refused["run_id"] == gone and "no longer exists" in refused["cause"]
    text = gluerelay(cloud, "backfill", "status", started["plan"]["backfill_id"], "--local")
    assert gone in text.stdout and "no longer exists" in " ".join(text.stdout.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--runs", "customers-s3-nope"), "no run customers-s3-nope in stack"),
        (
            ("--from-step", "nope", "--since", "1d"),
            "pipeline customers has no step nope: backfill from one of",
        ),
        (("--from-step", "publish", "--since", "1d"), "has no step publish"),
        (
            ("--ingest-date", "2001-01-01..2001-01-31"),
            "no runs of customers with ingest dates 2001-01-01..2001-01-31",
        ),
        (("--since", "1d", "--max-concurrent", "0"), "--max-concurrent 0: give 1 to 40"),
        (("--since", "1d", "--max-concurrent", "41"), "--max-concurrent 41: give 1 to 40"),
        ((), "choose the runs one way"),
    ],
)
def test_a_backfill_that_cannot_be_done_is_refused_naming_the_problem(
    cloud: LocalCloud, history: list[str], args: tuple[str, ...], message: str
) -> None:
    done = gluerelay(cloud, "backfill", "--pipeline", "customers", *args, "--local")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert message in " ".join(done.stderr.split())


def test_unknown_backfills_and_a_run_of_another_pipeline_are_refused(
    cloud: LocalCloud, history: list[str]
) -> None:
    done = gluerelay(cloud, "backfill", "status", "customers-bf-0000000000000000", "--local")
    assert done.returncode == 1 and "no backfill customers-bf-0000000000000000" in done.stderr
    done = gluerelay(cloud, "backfill", "--pipeline", "orders", "--runs", history[0], "--local")
    assert done.returncode == 1 and f"run {history[0]} is of pipeline customers, not orders" in " ".join(
        done.stderr.split()
    )
