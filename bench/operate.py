"""`make bench`, operate: a backfill of 100 runs, and `runs list` over 100,000 runs.

Backfill: 100 exports land under the customers prefix, one run each (on_arrival's batch size set to 1, as
UpdateEventSourceMapping would), ten at a time (a job's default concurrency), each followed to its end.
Then `gluerelay backfill`'s own code reruns all 100 from `crawl_raw`, at most 10 at once, through the backfill
state machine: wall time from the start to the backfill's end, reruns succeeded, the most reruns running at
one moment (from the executions' own start and stop times), crawls of the raw table per 100 reruns (the
crawler leases coalesce them), peak memory of the whole local cloud, and every landed row accounted once (0
lost, 0 duplicated) after the cleansed partitions were replaced.

Runs list: 100,000 run records (1% failed, over two pipelines) written straight into a fresh control table
in moto, then the first page of `runs list` (50 runs), a `--status FAILED` page and a one-day
`--since` window: index entries read (what DynamoDB bills; it does not grow with the table), Query requests,
and moto's wall time (moto scans its whole table per Query, so its time does grow: AWS's does not).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from relay.contract import RunStatus, Trigger, run_key, run_sort, runs_pk

from bench.measure import TreeMemory, goal_table
from gluerelay import backfills
from gluerelay.local.audit import account
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.runs import land, rows_landed, runs_taking
from gluerelay.local.template import load_yaml
from gluerelay.runindex import RunQuery, query_runs

ROOT = Path(__file__).resolve().parents[1]
BACKFILL_RUNS = 100
BACKFILL_CONCURRENCY = 10
WAVE = 10  # the runs to backfill are made 10 at a time: GlueMaxConcurrentRuns' default
ROWS_PER_FILE = 10
INDEXED_RUNS = 100_000


def backfill() -> dict[str, Any]:
    with LocalCloud(CloudOptions()) as cloud:
        mapping = cloud.pollers.mappings[cloud.template.physical_name("OnArrivalFunction")]
        mapping.batch_size, mapping.window_seconds = 1, 0  # one object, one run
        runs: list[str] = []
        for wave in range(BACKFILL_RUNS // WAVE):  # as many at once as a job runs at once (its default)
            keys = land(cloud, rows=WAVE * ROWS_PER_FILE, files=WAVE, seed=700 + wave)
            taken = sorted(runs_taking(cloud, keys, timeout=900))
            ended = [cloud.wait_for_execution(cloud.execution_arn(r), timeout=1800) for r in taken]
            assert {e["status"] for e in ended} == {"SUCCEEDED"}, [e.get("cause") for e in ended]
            runs += taken
        crawler = cloud.template.physical_name("RawCustomersCrawler")
        crawls_before = len([c for c in cloud.glue.crawls if c.crawler == crawler])
        target = cloud.target()
        with TreeMemory() as memory:  # the backfill's peak, not the 100 first runs'
            began = time.monotonic()
            plan = backfills.plan(
                target,
                "customers",
                from_step="crawl_raw",
                run_ids=runs,
                ingest_dates=(None, None),
                since=None,
                max_concurrent=BACKFILL_CONCURRENCY,
            )
            started = backfills.start(target, plan)
            done = cloud.wait_for_execution(started.execution_arn, timeout=3600)
            wall = time.monotonic() - began
        status = backfills.status(target, plan.backfill_id)
        sfn = cloud.client("stepfunctions")
        reruns = [sfn.describe_execution(executionArn=cloud.execution_arn(r) + "-rerun-1") for r in runs]
        figures = account(
            cloud,
            runs,
            rows_in=sum(
                rows_landed("customers", rows=WAVE * ROWS_PER_FILE, seed=700 + w)
                for w in range(BACKFILL_RUNS // WAVE)
            ),
        )
        result = {
            "runs": len(runs),
            "max_concurrent": BACKFILL_CONCURRENCY,
            "backfill_status": done["status"],
            "succeeded": status.counts["succeeded"],
            "failed": status.counts["failed"],
            "wall_seconds": round(wall, 1),
            "most_at_once": most_at_once(reruns),
            "crawls": len([c for c in cloud.glue.crawls if c.crawler == crawler]) - crawls_before,
            "peak_memory_mib": round(memory.peak_mib),
            "lost": figures.lost,
            "duplicates": figures.duplicates,
        }
    print(
        f"backfill of {result['runs']}: {result['wall_seconds']} s, {result['crawls']} crawls, "
        f"at most {result['most_at_once']} at once, {result['lost']} lost, {result['duplicates']} duplicated",
        flush=True,
    )
    return result


def most_at_once(executions: list[dict[str, Any]]) -> int:
    """The most executions that were running at one moment (from their own start and stop times)."""
    moments = sorted(
        [(e["startDate"], 1) for e in executions]
        + [(e["stopDate"], -1) for e in executions if e.get("stopDate")],
        key=lambda m: (m[0], m[1]),  # a stop before a start at the same instant
    )
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


def run_list() -> dict[str, Any]:
    properties = load_yaml(ROOT / "template.yaml")["Resources"]["ControlTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="control",
            **{k: properties[k] for k in ("BillingMode", "AttributeDefinitions", "KeySchema")},
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        )
        table = boto3.resource("dynamodb", region_name="us-east-1").Table("control")
        start = datetime(2026, 1, 1, tzinfo=UTC)
        began = time.monotonic()
        with table.batch_writer() as batch:
            for n in range(INDEXED_RUNS):
                pipeline = ("customers", "orders")[n % 2]
                at = (
                    (start + timedelta(minutes=5 * n))
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z")
                )
                run_id = f"{pipeline}-s3-{n:08d}"
                batch.put_item(
                    Item={
                        **run_key(run_id),
                        "run_id": run_id,
                        "pipeline": pipeline,
                        "status": (RunStatus.FAILED if n % 100 == 7 else RunStatus.SUCCEEDED).value,
                        "trigger": Trigger.S3.value,
                        "started_at": at,
                        "ingest_date": at[:10],
                        "executions": 1,
                        "runs_pk": runs_pk(pipeline),
                        "run_sort": run_sort(at, run_id),
                    }
                )
        written = time.monotonic() - began
        last = start + timedelta(minutes=5 * (INDEXED_RUNS - 1))
        queries = {
            "first page (50)": RunQuery(["customers", "orders"]),
            "--status FAILED (50)": RunQuery(["customers", "orders"], status=RunStatus.FAILED),
            "--since 1d": RunQuery(["customers", "orders"], started_since=last - timedelta(days=1)),
        }
        measured = []
        for label, query in queries.items():
            began = time.monotonic()
            page = query_runs(client, "control", query, limit=50 if "since" not in label else 1000)
            measured.append(
                {
                    "query": label,
                    "runs": len(page.runs),
                    "examined": page.examined,
                    "requests": page.requests,
                    "moto_seconds": round(time.monotonic() - began, 2),
                }
            )
    return {"runs_in_table": INDEXED_RUNS, "write_seconds": round(written, 1), "queries": measured}


def run() -> dict[str, Any]:
    return {"backfill": backfill(), "run_list": run_list()}


def render(result: dict[str, Any]) -> list[str]:
    b, listing = result["backfill"], result["run_list"]
    lines = [
        "## Operate: a backfill of 100 runs, and runs list over 100,000 runs",
        "",
        f"{b['runs']} customers runs (one {ROWS_PER_FILE}-row export each) rerun from `crawl_raw` by one "
        f"`gluerelay backfill`, at most {b['max_concurrent']} at once, in a fresh local cloud. Wall time "
        "runs from the backfill's start to its end; crawls are the raw table's during it (one asked per "
        "rerun, coalesced by the crawler lease); rows are accounted from the Parquet the reruns replaced.",
        "",
        "| runs | succeeded | failed | wall s | most at once | crawls per 100 reruns | peak memory MiB | "
        "lost | duplicated |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {b['runs']} | {b['succeeded']} | {b['failed']} | {b['wall_seconds']} | {b['most_at_once']} | "
        f"{round(b['crawls'] * 100 / b['runs'])} | {b['peak_memory_mib']} | {b['lost']} | "
        f"{b['duplicates']} |",
        "",
        f"`runs list` over {listing['runs_in_table']:,} run records (two pipelines, 1% failed) in moto: "
        "index entries read per call is what DynamoDB reads and bills, and stays flat however many runs the "
        "table holds; moto's time is not AWS's (moto scans its whole table for every Query).",
        "",
        "| query | runs returned | index entries read | Query requests | moto s |",
        "|---|---:|---:|---:|---:|",
    ]
    for q in listing["queries"]:
        lines.append(
            f"| {q['query']} | {q['runs']} | {q['examined']} | {q['requests']} | {q['moto_seconds']} |"
        )
    first = listing["queries"][0]
    checks = [
        (
            "backfill: lost and duplicated rows",
            f"{b['lost']} and {b['duplicates']}",
            "0 and 0",
            b["lost"] == 0 and b["duplicates"] == 0,
        ),
        (
            "backfill: reruns running at once",
            str(b["most_at_once"]),
            f"<= {b['max_concurrent']}",
            b["most_at_once"] <= b["max_concurrent"],
        ),
        ("backfill: crawls for 100 reruns", str(b["crawls"]), "< 100", b["crawls"] < b["runs"]),
        (
            "runs list: entries read for a first page of 50",
            str(first["examined"]),
            "<= 102 (51 a pipeline)",
            first["examined"] <= 102,
        ),
    ]
    return lines + goal_table(checks)
