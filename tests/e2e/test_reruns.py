"""Reruns in the local cloud, as an operator asks for them (`gluerelay runs rerun` in its own process): a
finished run re-executes a step and everything downstream of it, reusing its inputs, and its partitions
are replaced, never duplicated."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from relay.contract import manifest_key

from gluerelay.local.audit import account
from gluerelay.local.cloud import LocalCloud
from gluerelay.local.report import build
from gluerelay.local.runs import follow, land, run_from_landing
from tests.e2e.cli_process import as_json, gluerelay

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CSV_HEADER = "customer_id,first_name,last_name,email,phone,date_of_birth,country,updated_at\n"


def job_runs_of(cloud: LocalCloud, logical_id: str, run_id: str) -> int:
    job = cloud.template.physical_name(logical_id)
    runs = cloud.client("glue").get_job_runs(JobName=job)["JobRuns"]
    return len([r for r in runs if r["Arguments"].get("--run_id") == run_id])


def cleansed_keys(cloud: LocalCloud, run_id: str) -> list[str]:
    s3 = cloud.client("s3")
    bucket = cloud.output("DataBucketName")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="cleansed/")
    return [o["Key"] for page in pages for o in page.get("Contents", []) if f"/run_id={run_id}/" in o["Key"]]


def rerun_json(cloud: LocalCloud, run_id: str, step: str, *options: str) -> subprocess.CompletedProcess[str]:
    return gluerelay(cloud, "runs", "rerun", run_id, "--from-step", step, *options, "--local", "--json")


def manifest_of(cloud: LocalCloud, run_id: str) -> Any:
    body = cloud.client("s3").get_object(Bucket=cloud.output("DataBucketName"), Key=manifest_key(run_id))[
        "Body"
    ]
    return json.loads(body.read())


def customers(rows: list[tuple[int, str]]) -> bytes:
    body = "".join(
        f"{cid},{name},Lovelace,{name.lower()}{cid}@example.com,+442079460000,1985-12-10,GB,2026-01-01T00:00:00Z\n"
        for cid, name in rows
    )
    return (CSV_HEADER + body).encode()


def test_a_rerun_from_cleanse_re_executes_cleanse_and_what_follows_only(cloud: LocalCloud) -> None:
    [first] = run_from_landing(cloud, rows=300, seed=11)
    assert first.status == "SUCCEEDED", first.cause
    before = sorted(cleansed_keys(cloud, first.run_id))
    rerun = as_json(rerun_json(cloud, first.run_id, "cleanse"))
    assert (rerun["run_id"], rerun["from_step"], rerun["steps"]) == (
        first.run_id,
        "cleanse",
        ["cleanse", "check_cleansed", "catalog_cleansed"],
    )
    assert rerun["attempt"] == 1 and rerun["execution_name"] == f"{first.run_id}-rerun-1"
    cloud.wait_for_execution(rerun["execution_arn"], timeout=300)
    report = build(cloud, rerun["execution_arn"])
    assert report.status == "SUCCEEDED", report.cause
    assert {s.step: s.attempt for s in report.steps} == {
        "extract": 1,
        "crawl_raw": 1,
        "cleanse": 2,
        "check_cleansed": 2,
        "catalog_cleansed": 2,
    }
    assert job_runs_of(cloud, "ExtractCustomersJob", first.run_id) == 1
    assert job_runs_of(cloud, "CleanseCustomersJob", first.run_id) == 2
    # The partition was replaced: every row once, from one attempt's files
    figures = account(cloud, [first.run_id], rows_in=300)
    assert (figures.lost, figures.duplicates, figures.problems) == (0, 0, []), figures
    assert len(cleansed_keys(cloud, first.run_id)) == len(before)
    shown = as_json(gluerelay(cloud, "runs", "show", first.run_id, "--local", "--json"))
    assert shown["run"]["executions"] == 2
    text = gluerelay(cloud, "runs", "show", first.run_id, "--local").stdout
    assert "rerun 1 from cleanse by arn:aws" in " ".join(text.split())
    [attempt] = shown["attempts"]
    assert (attempt["number"], attempt["from_step"]) == (1, "cleanse")
    assert attempt["steps"] == ["cleanse", "check_cleansed", "catalog_cleansed"]
    assert attempt["by"] and attempt["execution"] == f"{first.run_id}-rerun-1"
    # A run is listed once, however many times it was rerun
    listed = as_json(gluerelay(cloud, "runs", "list", "--local", "--json"))["runs"]
    assert [r["run_id"] for r in listed].count(first.run_id) == 1


def test_a_rerun_from_extract_reads_a_replaced_file_at_its_corrected_version(cloud: LocalCloud) -> None:
    """A file landed outside any pipeline's prefix starts no run of its own: a manual run reads it, it is
    replaced with a corrected one, and a rerun from extract reads the correction into the same run."""
    s3 = cloud.client("s3")
    bucket = cloud.output("DataBucketName")
    key = "landing/corrections/customers.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=customers([(1, "Ada"), (2, "Grace"), (3, "Edsger")]))
    started = as_json(gluerelay(cloud, "start", "--keys", key, "--local", "--json"))
    [first] = follow(cloud, [started["run_id"]], timeout=300)
    assert first.status == "SUCCEEDED", first.cause
    fixed = customers([(1, "Ada"), (2, "Grace"), (3, "Edsger"), (4, "Barbara")])
    corrected = s3.put_object(Bucket=bucket, Key=key, Body=fixed)
    rerun = as_json(rerun_json(cloud, first.run_id, "extract"))
    assert rerun["steps"] == ["extract", "crawl_raw", "cleanse", "check_cleansed", "catalog_cleansed"]
    assert rerun["replaced"] == [key]
    cloud.wait_for_execution(rerun["execution_arn"], timeout=300)
    assert build(cloud, rerun["execution_arn"]).status == "SUCCEEDED"
    figures = account(cloud, [first.run_id], rows_in=4)
    assert (figures.cleansed, figures.lost, figures.duplicates, figures.problems) == (4, 0, 0, []), figures
    manifest = manifest_of(cloud, first.run_id)
    assert [o["version_id"] for o in manifest["objects"]] == [corrected["VersionId"]]


def test_a_replaced_file_its_own_arrival_processed_is_not_read_twice(cloud: LocalCloud) -> None:
    [first] = run_from_landing(cloud, rows=50, files=1, seed=12)
    [obj] = manifest_of(cloud, first.run_id)["objects"]
    known = {e["executionArn"] for e in cloud.executions()}
    cloud.client("s3").put_object(Bucket=obj["bucket"], Key=obj["key"], Body=customers([(9, "Alan")]))
    [arrival] = cloud.wait_for_new_executions(1, known)  # the replacement lands: a run of its own
    [second] = follow(cloud, [arrival["name"]], timeout=300)
    assert second.run_id != first.run_id
    refused = gluerelay(cloud, "runs", "rerun", first.run_id, "--from-step", "extract", "--local")
    assert refused.returncode == 1
    assert f"its new version was processed by run {second.run_id}" in " ".join(refused.stderr.split())
    # With the versions the run read first, it reruns
    pinned = as_json(rerun_json(cloud, first.run_id, "extract", "--same-versions"))
    assert pinned["replaced"] == []
    cloud.wait_for_execution(pinned["execution_arn"], timeout=300)
    figures = account(cloud, [first.run_id, second.run_id], rows_in=51)
    assert (figures.lost, figures.duplicates, figures.objects_in_two_runs) == (0, 0, 0), figures


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-run", "--from-step", "cleanse"), "no run no-such-run"),
        (("{run}", "--from-step", "nope"), "has no step nope: rerun from one of extract, crawl_raw, cleanse"),
        (("{run}", "--from-step", "extract_lines"), "customers (run {run}'s) has no step extract_lines"),
    ],
)
def test_a_rerun_that_cannot_be_done_is_refused_naming_the_problem(
    cloud: LocalCloud, args: tuple[str, ...], message: str
) -> None:
    listed = as_json(gluerelay(cloud, "runs", "list", "--local", "--pipeline", "customers", "--json"))["runs"]
    run = listed[-1]["run_id"]
    done = gluerelay(cloud, "runs", "rerun", *(a.format(run=run) for a in args), "--local")
    assert done.returncode == 1, done.stdout
    assert message.format(run=run) in " ".join(done.stderr.split())


def test_a_running_run_is_not_rerun(cloud: LocalCloud) -> None:
    extract = cloud.template.physical_name("ExtractCustomersJob")
    cloud.glue.hang_jobs.add(extract)
    known = {e["executionArn"] for e in cloud.executions()}
    land(cloud, rows=20, files=1, seed=13)
    [running] = cloud.wait_for_new_executions(1, known)
    try:
        done = gluerelay(cloud, "runs", "rerun", running["name"], "--from-step", "cleanse", "--local")
        assert done.returncode == 1 and "is RUNNING: wait for it to end" in done.stderr
        text = gluerelay(cloud, "runs", "show", running["name"], "--local")
        assert text.returncode == 0 and "rerun" not in text.stdout
    finally:
        cloud.glue.hang_jobs.discard(extract)
        cloud.client("stepfunctions").stop_execution(executionArn=running["executionArn"])
