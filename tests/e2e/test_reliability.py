"""Fault tolerance, end to end: faults injected into the local cloud, then the data and the state checked.

Each scenario accounts for every input row (cleansed, quarantined, or removed by job 2's dedup, counted
from what the runs wrote) and records a row of RELIABILITY.md's table (see `chaos.py`, `make chaos`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow.parquet as pq
import pytest
from relay.contract import manifest_key, step_key, summary_key

from gluerelay.local.audit import Figures, account
from gluerelay.local.barriers import Barrier, Write, holding
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.report import RunReport, build
from gluerelay.local.runs import follow as follow_runs
from gluerelay.local.runs import land, runs_taking
from tests.e2e.chaos import Row, row
from tests.e2e.cli_process import gluerelay
from tests.waiter import eventually, through_retries

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
WINDOW_SECONDS = 2  # the arrival batching window here
HOLD_SECONDS = 30  # how long a held-back event waits (clock seconds): far beyond a batching window


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = CloudOptions(
        work_dir=tmp_path_factory.mktemp("reliability"),
        parameters={"ArrivalBatchingWindowSeconds": str(WINDOW_SECONDS)},
    )
    with LocalCloud(options) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(cloud: LocalCloud) -> Iterator[None]:
    yield
    cloud.bus.drop = cloud.bus.copies = cloud.bus.delay = None
    cloud.glue.fail_jobs.clear()
    cloud.glue.fail_crawlers.clear()
    cloud.glue.hang_jobs.clear()
    cloud.lambdas.faults.clear()
    for crawler in list(cloud.glue.held_crawlers):
        cloud.glue.release_crawler(crawler)


def land_and_follow(cloud: LocalCloud, *, rows: int, files: int, seed: int) -> list[RunReport]:
    """Land files and follow the runs that took them (from their manifests: no guessing how long batching
    takes), each to its end."""
    keys = land(cloud, rows=rows, files=files, seed=seed)
    return follow_runs(cloud, runs_taking(cloud, keys), timeout=300)


def glue_name(cloud: LocalCloud, logical_id: str) -> str:
    return cloud.template.physical_name(logical_id)


@contextmanager
def arrival_batching(cloud: LocalCloud, *, size: int, window: float) -> Iterator[None]:
    """Change on_arrival's SQS batching for a while, as UpdateEventSourceMapping would."""
    mapping = cloud.pollers.mappings[glue_name(cloud, "OnArrivalFunction")]
    saved = mapping.batch_size, mapping.window_seconds
    mapping.batch_size, mapping.window_seconds = size, window
    try:
        yield
    finally:
        mapping.batch_size, mapping.window_seconds = saved


def every_row_once(cloud: LocalCloud, run_ids: list[str], rows_in: int) -> Figures:
    """The runs' figures, after checking that no row was lost or written twice and no object ran twice."""
    figures = account(cloud, run_ids, rows_in=rows_in)
    assert (figures.lost, figures.duplicates, figures.objects_in_two_runs) == (0, 0, 0), figures
    assert figures.problems == [], figures.problems
    return figures


def sweep_seconds(cloud: LocalCloud) -> int:
    return int(cloud.template.parameters["SweepIntervalMinutes"]) * 60


def customers_crawlers(cloud: LocalCloud) -> dict[str, tuple[str, str]]:
    """The customers pipeline's crawler steps: (crawler, the step whose data it must crawl). Its cleansed
    table is cataloged by a catalog step, without a crawl."""
    return {"crawl_raw": (glue_name(cloud, "RawCustomersCrawler"), "extract")}


def each_crawl_after_its_data(
    cloud: LocalCloud, report: RunReport, crawlers: dict[str, tuple[str, str]]
) -> None:
    """Each crawler step was completed by the crawl its facts name, as Glue recorded it, and that crawl
    started after the job run that wrote the step's data had ended."""
    steps = {s.step: s for s in report.steps}
    for step, (crawler, data_step) in crawlers.items():
        wrote = next(r for r in cloud.glue.job_runs if r.run_id == steps[data_step].glue_id)
        crawl_id = steps[step].facts.get("crawl_id")
        served = next((c for c in cloud.glue.crawls if c.crawler == crawler and c.crawl_id == crawl_id), None)
        assert served is not None, (report.run_id, step, steps[step].facts)
        assert served.state == "COMPLETED" and wrote.completed and served.started >= wrote.completed, (
            f"{report.run_id} {step}: completed by a crawl that started before its data was written"
        )


def verdicts(cloud: LocalCloud, function: str, since: int) -> list[dict[str, Any]]:
    """The function's verdict log lines (on_glue_event logs one per event it handled) since a cursor."""
    found = []
    for line in cloud.logs[since:]:
        if line.function == function and '"completed"' in line.line:
            record = json.loads(line.line)
            if "completed" in record:
                found.append(record)
    return found


def logged(cloud: LocalCloud, function: str, since: int, message: str) -> int:
    """How many of the function's log lines since a cursor carry this message."""
    return sum(
        1
        for line in cloud.logs[since:]
        if line.function == function
        and f'"{message}"' in line.line
        and json.loads(line.line)["message"] == message
    )


def objects_of(cloud: LocalCloud, run_id: str) -> list[str]:
    """The landed keys a run was started for (its manifest)."""
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key(run_id))["Body"].read())
    return [o["key"] for o in manifest["objects"]]


# ------------------------------------------------------------------------------------------ 1. duplicates


@pytest.mark.chaos("01 duplicate S3 events")
def test_the_same_object_created_three_times_is_processed_once(cloud: LocalCloud, chaos: list[Row]) -> None:
    """One copy of A's Object Created arrives at once; two are held back and come in a later batch beside a
    new object B. That batch names a different run (its objects differ), so only the object ledger can
    tell that A is taken: B's run must take B alone."""
    sqs, queue = cloud.client("sqs"), cloud.template.get_att("ArrivalQueue", "QueueUrl")
    held = HOLD_SECONDS
    copy = iter([0.0, held, held])
    cloud.bus.copies = lambda event: 3 if event.get("source") == "aws.s3" else 1
    cloud.bus.delay = lambda event: next(copy) if event.get("source") == "aws.s3" else 0.0
    [a] = land(cloud, rows=600, files=1, seed=51)
    [first] = runs_taking(cloud, [a])
    cloud.bus.copies = cloud.bus.delay = None

    def queued() -> int:  # visible, or taken by a poll that began as the pause did
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
        return sum(int(found[n]) for n in names)

    cloud.pollers.pause()  # A's two late copies and B's event wait in the queue together: one batch
    try:
        [b] = land(cloud, rows=300, files=1, seed=52)
        cloud.clock.advance(held)  # the held copies are delivered
        eventually(lambda: queued() == 3, what="A's two late copies and B's event queued together")
    finally:
        cloud.pollers.resume()
    runs = runs_taking(cloud, [a, b])
    reports = follow_runs(cloud, runs)

    assert [r.status for r in reports] == ["SUCCEEDED", "SUCCEEDED"], [r.cause for r in reports]
    [second] = set(runs) - {first}
    assert [o.key for o in runs[first].objects] == [a]
    assert [o.key for o in runs[second].objects] == [b]  # A's late copies started nothing
    figures = every_row_once(cloud, list(runs), rows_in=900)
    chaos.append(
        row(
            "01 duplicate S3 events", figures, "A delivered 3 times, 2 copies in a later batch with B: A once"
        )
    )


# ------------------------------------------------------------------------------------------ 2. burst


@pytest.mark.chaos("02 burst of 200 objects")
def test_a_burst_of_200_objects_is_batched_into_full_runs_and_every_row_lands_once(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    size = int(cloud.template.parameters["ArrivalBatchSize"])
    most = math.ceil(200 / size)
    # The template's window (60 s) outlasts the burst; this module's 2 s window would not on a busy machine.
    with arrival_batching(cloud, size=size, window=60):
        began = time.monotonic()
        keys = land(cloud, rows=2000, files=200, seed=52)
        landed_in = time.monotonic() - began
        reports = follow_runs(cloud, runs_taking(cloud, keys, timeout=600), timeout=600)

    assert len(reports) <= most, [len(objects_of(cloud, r.run_id)) for r in reports]
    assert [r.status for r in reports] == ["SUCCEEDED"] * len(reports), [r.cause for r in reports]
    batches = [objects_of(cloud, r.run_id) for r in reports]
    assert sorted(k for batch in batches for k in batch) == sorted(keys), "every object in exactly one run"
    figures = every_row_once(cloud, [r.run_id for r in reports], rows_in=2000)
    a_run_lost_what_another_wrote_twice_is_seen(cloud, [r.run_id for r in reports], rows_in=2000)
    chaos.append(
        row(
            "02 burst of 200 objects",
            figures,
            f"200 objects put in {landed_in:.1f} s; batch size {size} -> runs of "
            + ", ".join(str(len(b)) for b in batches),
        )
    )


def a_run_lost_what_another_wrote_twice_is_seen(cloud: LocalCloud, run_ids: list[str], rows_in: int) -> None:
    """The accounting counts by identity: one cleansed file moved from the first run's partition to the
    second's (the first run lost those rows, the second wrote rows of objects it never took) leaves every
    total unchanged, and must still show both the loss and the duplicates. The file is put back after."""
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    first, second = run_ids[:2]
    [part, *_] = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="cleansed/")["Contents"]
        if f"/run_id={first}/" in o["Key"] and o["Key"].endswith(".parquet")
    ]
    moved = part.replace(f"/run_id={first}/", f"/run_id={second}/")
    body = s3.get_object(Bucket=bucket, Key=part)["Body"].read()
    rows = pq.read_metadata(io.BytesIO(body)).num_rows
    s3.put_object(Bucket=bucket, Key=moved, Body=body)
    s3.delete_object(Bucket=bucket, Key=part)
    try:
        figures = account(cloud, run_ids, rows_in=rows_in)
    finally:
        s3.put_object(Bucket=bucket, Key=part, Body=body)
        s3.delete_object(Bucket=bucket, Key=moved)
    assert figures.rows_out == rows_in  # the totals alone would see nothing
    assert (figures.lost, figures.duplicates) == (rows, rows), figures


# ------------------------------------------------------------------------------------------ 3. concurrency


@pytest.mark.chaos("03 20 concurrent runs sharing crawlers")
def test_twenty_concurrent_runs_share_crawls_and_each_waits_for_a_crawl_of_its_own_data(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    crawlers = customers_crawlers(cloud)
    first_crawl = len(cloud.glue.crawls)
    cloud.glue.timing.min_crawl_seconds = 3.0  # AWS crawls take a minute or more: crawls overlap runs
    try:
        with arrival_batching(cloud, size=1, window=0):  # one object, one run: 20 runs at once
            keys = land(cloud, rows=1000, files=20, seed=53)
            reports = follow_runs(cloud, runs_taking(cloud, keys, timeout=600), timeout=600)
    finally:
        cloud.glue.timing.min_crawl_seconds = 0.0

    assert len(reports) == 20
    assert [r.status for r in reports] == ["SUCCEEDED"] * 20, [r.cause for r in reports if r.cause]
    crawls = cloud.glue.crawls[first_crawl:]
    counts = {}
    for step, (crawler, _) in crawlers.items():
        mine = [c for c in crawls if c.crawler == crawler]
        counts[step] = len(mine)
        assert len(mine) < 20, f"{crawler}: {len(mine)} crawls for 20 runs, nothing coalesced"
    for report in reports:
        each_crawl_after_its_data(cloud, report, crawlers)
    cleansed_crawler = glue_name(cloud, "CleansedCustomersCrawler")
    cleansed_crawls = len([c for c in crawls if c.crawler == cleansed_crawler])
    assert cleansed_crawls == 0  # the catalog step registered each run's partition itself
    figures = every_row_once(cloud, [r.run_id for r in reports], rows_in=1000)
    chaos.append(
        row(
            "03 20 concurrent runs sharing crawlers",
            figures,
            f"crawls for 20 runs: raw {counts['crawl_raw']}, each after its run's data; "
            f"cleansed cataloged with {cleansed_crawls} crawls",
        )
    )


@pytest.mark.chaos("13 crawler still stopping")
def test_a_follow_up_crawl_starts_once_the_crawler_has_stopped_without_waiting_for_the_sweeper(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    # Glue sends a crawl's event, then keeps the crawler STOPPING for a while: a follow-up crawl started
    # at the event gets CrawlerRunningException. Six runs at once share each crawler through follow-ups.
    cloud.glue.timing.min_crawl_seconds = 3.0
    cloud.glue.timing.crawler_stopping_seconds = 10.0
    first_crawl = len(cloud.glue.crawls)
    sweeps = len([i for i in cloud.lambdas.invocations if i.function == glue_name(cloud, "SweeperFunction")])
    # No sweep may help: its schedule is off while the runs go (a tick could fall in on a slow machine).
    events, schedule = cloud.client("events"), glue_name(cloud, "SweeperFunctionSweep")
    events.disable_rule(Name=schedule)
    try:
        with arrival_batching(cloud, size=1, window=0):
            keys = land(cloud, rows=300, files=6, seed=57)
            reports = follow_runs(cloud, runs_taking(cloud, keys), timeout=240)
    finally:
        events.enable_rule(Name=schedule)
        cloud.glue.timing.min_crawl_seconds = 0.0
        cloud.glue.timing.crawler_stopping_seconds = 0.0

    assert [r.status for r in reports] == ["SUCCEEDED"] * 6, [r.cause for r in reports if r.cause]
    assert all(s.repaired_by is None for r in reports for s in r.steps)
    swept = [i for i in cloud.lambdas.invocations if i.function == glue_name(cloud, "SweeperFunction")]
    assert len(swept) == sweeps, "the sweeper's schedule was off, yet a sweep ran"
    figures = every_row_once(cloud, [r.run_id for r in reports], rows_in=300)
    raw = glue_name(cloud, "RawCustomersCrawler")
    crawls = len([c for c in cloud.glue.crawls[first_crawl:] if c.crawler == raw])
    chaos.append(
        row(
            "13 crawler still stopping",
            figures,
            f"10 s STOPPING after every crawl; 6 runs done by follow-up crawls ({crawls} raw), no sweep",
        )
    )


# ------------------------------------------------------------------------------------------ 4. lost events


@pytest.mark.chaos("04 lost Glue events")
def test_lost_job_and_crawler_events_are_repaired_by_the_sweeper(cloud: LocalCloud, chaos: list[Row]) -> None:
    lost = {glue_name(cloud, "ExtractCustomersJob"), glue_name(cloud, "RawCustomersCrawler")}
    dropped: list[str] = []

    def drop(event: dict[str, Any]) -> bool:
        detail = event.get("detail", {})
        name = detail.get("jobName") or detail.get("crawlerName")
        if name in lost and name not in dropped:
            dropped.append(name)
            return True
        return False

    # Each crawler has a finished crawl from before this run (the other scenarios leave some; run alone, the
    # scenario crawls once first), so a sweep that took any finished crawl for the step's would be caught.
    glue = cloud.client("glue")
    crawlers = [glue_name(cloud, "RawCustomersCrawler")]
    for crawler in crawlers:
        if not any(c.crawler == crawler and c.state == "COMPLETED" for c in cloud.glue.crawls):
            glue.start_crawler(Name=crawler)
    eventually(
        lambda: (
            all(any(c.crawler == n and c.state == "COMPLETED" for c in cloud.glue.crawls) for n in crawlers)
            and all(glue.get_crawler(Name=n)["Crawler"]["State"] == "READY" for n in crawlers)
        ),
        what="an earlier, finished crawl of each crawler",
    )
    cloud.bus.drop = drop
    # A step is repaired by the first sweep after it is RepairAfterSeconds old; sweeps fire on their schedule
    # (each with its own time), so moving the clock by this much always brings one.
    overdue = int(cloud.template.parameters["RepairAfterSeconds"]) + sweep_seconds(cloud) + 60
    first_crawl = len(cloud.glue.crawls)
    # Each crawl of the run outlasts sweeps of its overdue step, while the crawlers' earlier crawls (of
    # earlier scenarios) are finished: a sweep must not take one of those for the step's own.
    cloud.glue.timing.min_crawl_seconds = 2.5 * overdue
    known = {e["executionArn"] for e in cloud.executions()}
    land(cloud, rows=500, files=1, seed=54)
    [execution] = cloud.wait_for_new_executions(1, known)
    arn = execution["executionArn"]
    sfn = cloud.client("stepfunctions")
    repairs = sweeps_mid_crawl = 0
    deadline = time.monotonic() + 300
    try:
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"run still RUNNING after 300 s: {build(cloud, arn).steps}"
            time.sleep(0.5)
            if len(dropped) > repairs:  # an event was lost: the next sweep finds its step overdue
                repairs += 1
                cloud.clock.advance(overdue)
            elif any(c.state == "RUNNING" for c in cloud.glue.crawls[first_crawl:]):
                sweeps_mid_crawl += 1  # a crawler step is overdue and its crawl still running
                cloud.clock.advance(overdue)
    finally:
        cloud.glue.timing.min_crawl_seconds = 0.0
    report = build(cloud, arn)

    assert sorted(dropped) == sorted(lost)
    assert report.status == "SUCCEEDED", report.cause
    repaired = {s.step: s.repaired_by for s in report.steps}
    assert (repaired["extract"], repaired["crawl_raw"]) == ("sweeper", "sweeper")
    # The clock races on here, so a sweep may also beat a real event to a later step: either completes
    # it, once.
    assert all(s.status == "SUCCEEDED" for s in report.steps)
    assert sweeps_mid_crawl >= 2
    each_crawl_after_its_data(cloud, report, customers_crawlers(cloud))
    figures = every_row_once(cloud, [report.run_id], rows_in=500)
    chaos.append(
        row(
            "04 lost Glue events",
            figures,
            f"job and crawler events lost; the sweeper completed both ({sweeps_mid_crawl} sweeps mid-crawl)",
        )
    )


# -------------------------------------------------------------------------------- 5. duplicates, late


@pytest.mark.chaos("05 duplicate, late, reordered Glue events")
def test_duplicate_and_reordered_glue_events_complete_each_step_once_and_late_ones_change_nothing(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    """Every Glue event of run A arrives three times, and the copies of each job event race: a barrier
    holds each job step's deciding write until all three copies have read the step as OPEN, so only the
    conditional OPEN -> COMPLETING write can keep the decision single. Then a copy of A's raw crawl's
    Succeeded event arrives late, while run B's own raw crawl is in progress: it must not complete B."""
    handler = glue_name(cloud, "OnGlueEventFunction")
    raw, _ = customers_crawlers(cloud)["crawl_raw"]
    table = cloud.output("ControlTableName")
    job_steps = {step_key("", step)["sk"] for step in ("extract", "cleanse")}

    def deciding(write: Write) -> str | None:  # a job step's OPEN -> COMPLETING write (it sets decided_at)
        sets = write.expression.partition("REMOVE")[0]
        if write.table == table and write.key.get("sk") in job_steps and "decided_at =" in sets:
            return f"{write.key['pk']} {write.key['sk']}"
        return None

    cloud.bus.copies = lambda event: 3 if event.get("source") == "aws.glue" else 1
    logs, deliveries = len(cloud.logs), len(cloud.bus.deliveries)
    with holding(Barrier(deciding, parties=3)) as barrier:
        [a] = land(cloud, rows=500, files=1, seed=55)
        [report] = follow_runs(cloud, runs_taking(cloud, [a]), timeout=240)
        eventually(
            lambda: len(verdicts(cloud, handler, logs)) >= 3 * 3,
            what="every copy of A's 3 Glue events handled (its catalog step has none)",
        )
    cloud.bus.copies = None

    assert report.status == "SUCCEEDED", report.cause
    assert barrier.unfilled == [], f"these steps' copies never raced: {barrier.unfilled}"
    assert sorted(barrier.groups.values()) == [3, 3], barrier.groups  # both job steps: 3 racing writes
    assert report.state_transitions == 8  # the same as a run without duplicates: nothing ran twice
    # Each step decided once: a copy that also decided would find the token closed and log it.
    assert [s.status for s in report.steps] == ["SUCCEEDED"] * 5
    assert logged(cloud, handler, logs, "Step Functions no longer waits for this step") == 0
    assert (
        logged(cloud, handler, logs, "step already completed; event ignored") == 2 * 2
    )  # 2 losers per job step

    # A's raw crawl reports Succeeded once more, late, while B's raw crawl is certainly running.
    [late] = {
        d.event["id"]: d.event
        for d in cloud.bus.deliveries[deliveries:]
        if d.detail_type == "Glue Crawler State Change" and d.event["detail"]["crawlerName"] == raw
    }.values()
    crawls = len(cloud.glue.crawls)
    cloud.glue.hold_crawler(raw)
    try:
        [b] = land(cloud, rows=300, files=1, seed=56)
        [run_b] = runs_taking(cloud, [b])
        eventually(
            lambda: any(c.crawler == raw and c.state == "RUNNING" for c in cloud.glue.crawls[crawls:]),
            what="B's raw crawl running",
        )
        logs = len(cloud.logs)
        cloud.bus.redeliver(late)
        [answer] = eventually(
            lambda: [v for v in verdicts(cloud, handler, logs) if v.get("crawler") == raw],
            what="the late crawl event handled",
        )
    finally:
        cloud.glue.release_crawler(raw)
    [report_b] = follow_runs(cloud, [run_b], timeout=240)

    assert report_b.status == "SUCCEEDED", report_b.cause
    each_crawl_after_its_data(cloud, report_b, customers_crawlers(cloud))
    assert answer["message"] == "ignored: event of an earlier crawl", answer
    figures = every_row_once(cloud, [report.run_id, report_b.run_id], rows_in=800)
    chaos.append(
        row(
            "05 duplicate, late, reordered Glue events",
            figures,
            "each job event 3 times, racing: decided once; a late crawl event ignored while B crawls",
        )
    )


# ------------------------------------------------------------------------------------------ 6, 7. Glue fails


@pytest.mark.chaos("06 Glue job FAILED, TIMEOUT, STOPPED")
def test_a_failed_timed_out_or_stopped_job_fails_the_run_with_glues_message_and_alarms(
    cloud: LocalCloud, chaos: list[Row], alarm_inbox: Callable[[], list[dict[str, Any]]]
) -> None:
    job = glue_name(cloud, "CleanseCustomersJob")
    alarm = glue_name(cloud, "RunsFailedAlarm")
    expected = {"FAILED": "GlueJobFailed", "TIMEOUT": "GlueJobTimeout", "STOPPED": "GlueJobStopped"}
    run_ids = []
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    landed: dict[str, str] = {}
    for seed, (state, error) in enumerate(expected.items(), start=60):
        message = f"{state.lower()} injected by the scenario"
        cloud.glue.fail_jobs[job] = (state, message)
        [key] = land(cloud, rows=300, files=1, seed=seed)
        landed[key] = s3.head_object(Bucket=bucket, Key=key)["ETag"]
        [report] = follow_runs(cloud, runs_taking(cloud, [key]), timeout=300)
        run_ids.append(report.run_id)

        assert report.status == "FAILED"
        assert report.failed_step == "cleanse"
        assert report.error == error
        assert message in str(report.cause)
    notice = eventually(
        lambda: [m for m in alarm_inbox() if m["AlarmName"] == alarm and m["NewStateValue"] == "ALARM"],
        what="the runs-failed ALARM notification",
    )
    assert notice[0]["Trigger"]["MetricName"] == "RunsFailed"
    # Nothing is lost: the failed runs' inputs are where they landed, unchanged, ready to run again.
    assert {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in landed} == landed
    figures = account(cloud, run_ids, rows_in=900)
    assert (figures.cleansed, figures.retained, figures.lost, figures.problems) == (0, 900, 0, []), figures
    chaos.append(
        row(
            "06 Glue job FAILED, TIMEOUT, STOPPED", figures, "3 runs FAILED with Glue's message; alarm -> SNS"
        )
    )


@pytest.mark.chaos("07 crawl failed")
def test_a_failed_crawl_fails_the_run_never_succeeds(cloud: LocalCloud, chaos: list[Row]) -> None:
    cloud.glue.fail_crawlers[glue_name(cloud, "RawCustomersCrawler")] = "Internal Service Exception"
    [report] = land_and_follow(cloud, rows=300, files=1, seed=70)

    assert report.status == "FAILED"
    assert report.error == "GlueCrawlFailed"
    assert "Internal Service Exception" in str(report.cause)
    figures = account(cloud, [report.run_id], rows_in=300)
    assert figures.lost == 0  # the raw data was written before the crawl; the landed file is intact
    chaos.append(row("07 crawl failed", figures, "run FAILED (GlueCrawlFailed), data kept"))


# ------------------------------------------------------------------------------------------ 8. never finishes


@pytest.mark.chaos("08 a step that never finishes")
def test_a_step_that_never_finishes_alarms_then_times_out_the_run_and_its_job_is_stopped(
    cloud: LocalCloud, chaos: list[Row], alarm_inbox: Callable[[], list[dict[str, Any]]]
) -> None:
    job = glue_name(cloud, "ExtractCustomersJob")
    alarm = glue_name(cloud, "StuckStepsAlarm")
    stuck_after = int(cloud.template.parameters["StuckAfterSeconds"])
    timeout = int(cloud.template.parameters["StepTimeoutSeconds"])
    cloud.glue.hang_jobs.add(job)
    known = {e["executionArn"] for e in cloud.executions()}
    [key] = land(cloud, rows=300, files=1, seed=80)
    [execution] = cloud.wait_for_new_executions(1, known)
    arn = execution["executionArn"]
    hung = eventually(
        lambda: next(
            (r for r in cloud.glue.job_runs[::-1] if r.job_name == job and r.state == "RUNNING"), None
        ),
        what="the extract job run hanging",
    )

    # Past StuckAfterSeconds: the sweeper counts the step as stuck and the alarm tells the operator.
    # Sweeps run every SweepIntervalMinutes wherever their ticks fall: one falls due at least 60 s after the
    # step has been open StuckAfterSeconds.
    cloud.clock.advance(stuck_after + sweep_seconds(cloud) + 60)
    notice = eventually(
        lambda: [m for m in alarm_inbox() if m["AlarmName"] == alarm and m["NewStateValue"] == "ALARM"],
        what="the stuck-steps ALARM notification",
    )
    assert notice[0]["Trigger"]["MetricName"] == "StuckSteps"
    assert cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"

    # Past the step's TimeoutSeconds: Step Functions stops waiting, close_run stops the job run at once and
    # the run ends TIMED_OUT; the alarm returns to OK at the next sweep.
    cloud.clock.advance(timeout - stuck_after - sweep_seconds(cloud))
    cloud.wait_for_execution(arn, timeout=60)
    eventually(lambda: hung.state == "STOPPED", what="the hung job run STOPPED")
    cloud.clock.advance(int(cloud.template.parameters["SweepIntervalMinutes"]) * 60)
    report = build(cloud, arn)
    assert report.status == "TIMED_OUT"
    assert report.failed_step == "extract"
    assert report.error == "StepTimedOut", (report.error, report.cause)
    assert f"after {timeout} s" in str(report.cause)
    step = report.steps[0]
    assert (step.status, step.repaired_by) == ("CLOSED", "close_run")
    assert f"job run {hung.run_id} stopped" in str(step.cause)
    eventually(
        lambda: [m for m in alarm_inbox() if m["AlarmName"] == alarm and m["NewStateValue"] == "OK"],
        what="the stuck-steps OK notification",
    )
    # Nothing lost: the input is where it landed, to run again.
    s3 = cloud.client("s3")
    assert s3.head_object(Bucket=cloud.output("DataBucketName"), Key=key)["ContentLength"] > 0
    figures = account(cloud, [report.run_id], rows_in=300)
    assert (figures.retained, figures.lost, figures.stuck, figures.problems) == (300, 0, 0, []), figures
    chaos.append(
        row(
            "08 a step that never finishes",
            figures,
            f"stuck alarm after {stuck_after} s, run TIMED_OUT after {timeout} s, job run stopped",
        )
    )


# ------------------------------------------------------------------------------------------ 9. handler errors


@pytest.mark.chaos("09 on_glue_event raising or timing out")
def test_a_failing_event_handler_is_retried_dead_lettered_and_the_sweeper_still_completes_the_step(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    handler = glue_name(cloud, "OnGlueEventFunction")
    extract = glue_name(cloud, "ExtractCustomersJob")
    spec = cloud.lambdas.specs[handler]
    cloud.lambdas.register(dataclasses.replace(spec, timeout_seconds=2.0))  # as update-function-configuration
    dlq = cloud.template.get_att("GlueEventsDeadLetterQueue", "QueueUrl")
    sqs = cloud.client("sqs")
    repair_after = int(cloud.template.parameters["RepairAfterSeconds"])
    run_ids = []
    try:
        for seed, fault in ((90, "raise"), (91, "hang")):
            # The extract job's event only: a sweep may complete that step first (the clock is far ahead
            # after the earlier scenarios) and the next step's event must not take these faults.
            cloud.lambdas.inject(
                handler, fault, times=3, when=lambda event: event.get("detail", {}).get("jobName") == extract
            )
            known = {e["executionArn"] for e in cloud.executions()}
            land(cloud, rows=300, files=1, seed=seed)
            [execution] = cloud.wait_for_new_executions(1, known)
            through_retries(cloud.lambdas, cloud.clock, handler, retries=2)
            [message] = eventually(
                lambda: sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages"),
                what=f"the OnFailure record ({fault})",
            )
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            record = json.loads(message["Body"])
            assert record["requestContext"]["condition"] == "RetriesExhausted"
            expected = "InjectedFaultError" if fault == "raise" else "Sandbox.Timedout"
            assert record["responsePayload"]["errorType"] == expected
            cloud.clock.advance(repair_after + sweep_seconds(cloud) + 60)  # a sweep falls due past it
            final = cloud.wait_for_execution(execution["executionArn"])
            assert final["status"] == "SUCCEEDED"
            run_ids.append(final["name"])
            assert build(cloud, execution["executionArn"]).steps[0].repaired_by == "sweeper"
    finally:
        cloud.lambdas.register(spec)
    figures = every_row_once(cloud, run_ids, rows_in=600)
    chaos.append(
        row(
            "09 on_glue_event raising or timing out",
            figures,
            "3 attempts each, OnFailure to DLQ, sweeper completed",
        )
    )


# ------------------------------------------------------------------------------------------ 11. bad events


@pytest.mark.chaos("11 bad events")
def test_malformed_and_unknown_events_are_logged_and_skipped_without_retries(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    handler = glue_name(cloud, "OnGlueEventFunction")
    job = glue_name(cloud, "ExtractCustomersJob")
    envelope = {
        "version": "0",
        "id": "bad-1",
        "source": "aws.glue",
        "account": cloud.env.account,
        "time": "2026-11-24T00:00:00Z",
        "region": cloud.env.region,
        "resources": [],
    }
    bad = [
        {"not": "an EventBridge event"},
        {**envelope, "detail-type": "Glue Job State Change", "detail": {"jobName": job}},  # no state, no id
        {
            **envelope,
            "detail-type": "Glue Job State Change",
            "detail": {
                "jobName": "someone-elses-job",
                "state": "SUCCEEDED",
                "jobRunId": "jr_x",
                "message": "",
            },
        },
        {
            **envelope,
            "detail-type": "Glue Job State Change",
            "detail": {"jobName": job, "state": "SUCCEEDED", "jobRunId": "jr_unknown", "message": ""},
        },
        {
            **envelope,
            "detail-type": "Glue Crawler State Change",
            "detail": {"crawlerName": "someone-elses-crawler", "state": "Succeeded", "message": ""},
        },
        {**envelope, "source": "aws.s3", "detail-type": "Object Created", "detail": {}},
    ]
    before = len(cloud.lambdas.invocations)
    lambda_client = cloud.client("lambda")
    for event in bad:
        lambda_client.invoke(FunctionName=handler, InvocationType="Event", Payload=json.dumps(event))
    calls = eventually(
        lambda: (
            (found := [i for i in cloud.lambdas.invocations[before:] if i.function == handler])
            and len(found) >= len(bad)
            and found
        ),
        what="every bad event handled",
    )
    # Every event invocation has ended, or one waits on the clock to retry (which this test must not see).
    eventually(
        lambda: cloud.lambdas.in_flight(handler) == cloud.lambdas.retries_waiting(handler),
        what="every event invocation ended or waiting to retry",
    )
    assert cloud.lambdas.retries_waiting(handler) == 0, "a bad event was raised, and Lambda retries it"
    calls = [i for i in cloud.lambdas.invocations[before:] if i.function == handler]
    assert len(calls) == len(bad), "no retries: every bad event was answered, not raised"
    assert all(i.error_type is None and i.attempt == 1 for i in calls)
    dlq = cloud.template.get_att("GlueEventsDeadLetterQueue", "QueueUrl")
    assert cloud.client("sqs").receive_message(QueueUrl=dlq).get("Messages") is None
    chaos.append(
        Row("11 bad events", 0, 0, 0, 0, 0, 0, "pass", f"{len(bad)} malformed or unknown: answered once each")
    )


# ------------------------------------------------------------------------------------------ 12. resume


@pytest.mark.chaos("12 resume a failed run")
def test_a_failed_run_resumes_from_its_failed_step_without_redoing_the_others(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    cleanse = glue_name(cloud, "CleanseCustomersJob")
    extract = glue_name(cloud, "ExtractCustomersJob")
    cloud.glue.fail_jobs[cleanse] = "the warehouse was down (injected)"
    [failed] = land_and_follow(cloud, rows=400, files=2, seed=120)
    assert (failed.status, failed.failed_step) == ("FAILED", "cleanse")
    refused = gluerelay(cloud, "runs", "resume", "no-such-run", "--local")
    assert refused.returncode == 1 and "no run no-such-run" in refused.stderr

    cloud.glue.fail_jobs.clear()  # the cause is fixed: resume
    done = gluerelay(cloud, "runs", "resume", failed.run_id, "--local", "--json")
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    assert (resumed["run_id"], resumed["resume_from"]) == (failed.run_id, "cleanse")
    cloud.wait_for_execution(resumed["execution_arn"])
    report = build(cloud, resumed["execution_arn"])

    assert report.run_id == failed.run_id and report.status == "SUCCEEDED", report.cause
    assert [s.status for s in report.steps] == ["SUCCEEDED"] * 5
    # The steps that had succeeded ran once; the failed one ran again (its second attempt).
    assert {s.step: s.attempt for s in report.steps} == {
        "extract": 1,
        "crawl_raw": 1,
        "cleanse": 2,
        "check_cleansed": 1,
        "catalog_cleansed": 1,
    }
    assert report.steps[0].glue_id == failed.steps[0].glue_id
    runs = cloud.client("glue").get_job_runs(JobName=extract)["JobRuns"]
    assert len([r for r in runs if r["Arguments"].get("--run_id") == failed.run_id]) == 1
    # The resumed execution went through every step; the two that had succeeded answered from their record.
    history = cloud.client("stepfunctions").get_execution_history(executionArn=resumed["execution_arn"])
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if e["type"].endswith("Entered")
    ]
    assert entered == [
        "Record the run as started",
        "extract",
        "crawl_raw",
        "cleanse",
        "check_cleansed",
        "catalog_cleansed",
        "Record the run as succeeded",
        "Run succeeded",
    ]
    assert report.detail.run.executions == 2
    second = gluerelay(cloud, "runs", "resume", failed.run_id, "--local")
    assert second.returncode == 1 and "is SUCCEEDED" in second.stderr
    figures = every_row_once(cloud, [report.run_id], rows_in=400)
    chaos.append(
        row(
            "12 resume a failed run",
            figures,
            "FAILED at cleanse; `gluerelay runs resume` re-ran cleanse and the steps after it only",
        )
    )


# ------------------------------------------------------------------------------------------ 10. bad data

HEADER = b"customer_id,first_name,last_name,email,phone,date_of_birth,country,updated_at\n"
GOOD = b"1,Ada,Lovelace,ada@example.com,+442079460000,1985-12-10,GB,2026-01-01T00:00:00Z\n"
BAD_FILES: dict[str, tuple[bytes, str, str]] = {
    # name: (body, the reason job 1 sets it aside, words of its message); "" for a file that is read
    "empty.csv": (b"", "empty", "is empty"),
    "wrong-delimiter.csv": (
        b"customer_id;first_name;email\n1;Ada;ada@example.com\n",
        "wrong_delimiter",
        "looks semicolon-delimited",
    ),
    "missing-columns.csv": (
        b"customer_id,first_name\n1,Ada\n",
        "missing_columns",
        "lacks required columns: last_name, email",
    ),
    "not-utf8.csv": (
        HEADER + "2,Zoë,Brontë,z@example.com,+442079460001,1990-01-01,GB,2026-01-01\n".encode("latin-1"),
        "not_utf8",
        "is not UTF-8 text: line 2",
    ),
    "ten-megabyte-line.csv": (
        HEADER + b"3,Bob," + b"x" * (10 << 20) + b",b@example.com,,1990-01-01,GB,2026-01-01\n",
        "record_too_long",
        "the limit for landed records (line 2)",
    ),
    "header-only.csv": (HEADER, "", ""),
}


@pytest.mark.chaos("10 bad data")
def test_bad_files_end_their_runs_with_a_clear_error_and_are_never_altered(
    cloud: LocalCloud, chaos: list[Row]
) -> None:
    """Each bad file alone fails its run at extract, naming the file and its problem; all of them landed
    with a good file make one run that reads the good file and sets each bad one aside with the same
    reason. No landed object is ever changed."""
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    outcomes = {}
    for name, (body, reason, says) in BAD_FILES.items():
        key = f"landing/customers/{name}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        [report] = follow_runs(cloud, runs_taking(cloud, [key]), timeout=300)
        outcomes[name] = (report.status, (report.cause or "")[:200])

        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, name
        if reason:
            assert (report.status, report.failed_step) == ("FAILED", "extract"), (name, report.cause)
            assert f"landed file s3://{bucket}/{key}" in str(report.cause), (name, report.cause)
            assert says in str(report.cause), (name, report.cause)
            assert "DESCRIBE" not in str(report.cause) and "read_csv" not in str(report.cause)
        else:  # a sound file with nothing in it: the gate on the cleanse's counts stops the run
            assert (report.status, report.failed_step, report.error) == (
                "FAILED",
                "check_cleansed",
                "DataQualityFailed",
            ), (name, report.cause)
            assert "rows_written > 0: measured 0 > 0" in str(report.cause), report.cause
            assert report.rows.get("rows_read") == 0
    set_aside_alarm = glue_name(cloud, "LandedFilesSetAsideAlarm")
    assert set_aside_alarm not in report.local.alarms_in_alarm  # a failed run sets nothing aside
    # Batched: the same files, landed again under new names with one good file, make one run.
    batch = {f"landing/customers/batched/{name}": body for name, (body, _, _) in BAD_FILES.items()}
    batch["landing/customers/batched/good.csv"] = HEADER + GOOD
    with arrival_batching(cloud, size=len(batch), window=600):
        for key, body in batch.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        [batched] = follow_runs(cloud, runs_taking(cloud, list(batch)), timeout=300)
    assert batched.status == "SUCCEEDED", batched.cause
    bad = sum(1 for _, reason, _ in BAD_FILES.values() if reason)
    assert (batched.rows.get("files_read"), batched.rows.get("files_set_aside")) == (len(batch) - bad, bad)
    summary = json.loads(
        s3.get_object(Bucket=bucket, Key=summary_key(batched.run_id, "extract"))["Body"].read()
    )
    reasons = {f["file"].split("?")[0].rsplit("/", 1)[1]: f.get("reason", "") for f in summary["files"]}
    assert reasons == {name: reason for name, (_, reason, _) in BAD_FILES.items()} | {"good.csv": ""}
    assert summary["rows_read"] == 1
    assert set_aside_alarm in batched.local.alarms_in_alarm  # the operator hears of the set-aside files
    assert all(s3.get_object(Bucket=bucket, Key=k)["Body"].read() == body for k, body in batch.items())
    failed = sum(1 for status, _ in outcomes.values() if status == "FAILED")
    chaos.append(
        Row(
            "10 bad data",
            len(BAD_FILES),
            0,
            0,
            0,
            0,
            0,
            "pass",
            f"{failed} of {len(BAD_FILES)} files failed their run at extract naming the problem; "
            f"batched with a good file, each set aside with the same reason; inputs unaltered",
        )
    )
