"""A burst of 10,000 landed objects, with the arrival mapping at its largest (BatchSize 10000): Lambda hands
on_arrival at most 6 MB of records at once, each run's execution input carries its manifest's URI (never the
list of objects, which would pass Step Functions' 256 KiB input limit at about 3,000 keys), and every object
is counted by exactly one run.

Its own module: it deploys a project copy with the `bulk` pipeline added (one run per arrival batch)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.events import ESM_PAYLOAD_LIMIT_BYTES
from gluerelay.local.runs import follow, runs_taking
from gluerelay.pipelines.project import extended
from tests.waiter import while_progressing

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OBJECTS = 10_000
STEP_FUNCTIONS_INPUT_LIMIT = 256 * 1024
WINDOW_SECONDS = 300  # the largest window: batches close at 6 MB (or when the test moves the clock)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    root = tmp_path_factory.mktemp("bulk-project")
    extended(
        root,
        pipelines=[FIXTURES / "bulk_pipeline" / "bulk.yaml"],
        scripts=[FIXTURES / "echo_pipeline" / "count_lines.py"],
        resources=(FIXTURES / "echo_pipeline" / "job.yaml").read_text(),
    )
    options = CloudOptions(
        template=root / "template.yaml",
        work_dir=root / "work",
        parameters={"ArrivalBatchSize": "10000", "ArrivalBatchingWindowSeconds": str(WINDOW_SECONDS)},
    )
    with LocalCloud(options) as running:
        yield running


def test_ten_thousand_objects_land_in_runs_that_take_each_exactly_once(cloud: LocalCloud) -> None:
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    keys = [f"landing/bulk/part-{n:05d}.txt" for n in range(OBJECTS)]
    arrival = cloud.template.physical_name("OnArrivalFunction")
    sqs, queue = cloud.client("sqs"), cloud.template.get_att("ArrivalQueue", "QueueUrl")

    def queued(state: str) -> int:
        name = f"ApproximateNumberOf{state}"
        return int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[name])["Attributes"][name])

    # This test is about batching. On a saturated machine a batch of ~4,000 records can outlast on_arrival's
    # 60 s Timeout (real seconds); Lambda then returns the batch to the queue and it would be counted twice.
    # Give the function Lambda's longest timeout and the queue six times that, as Lambda requires of an SQS
    # event source (both are what `update-function-configuration` / `set-queue-attributes` would do).
    spec = cloud.lambdas.specs[arrival]
    cloud.lambdas.register(dataclasses.replace(spec, timeout_seconds=900.0))
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": str(6 * 900)})
    cloud.pollers.pause()  # the whole burst is queued before Lambda polls (a backlog, as after an outage)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:  # an export job writing its parts
            list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"a\nb\n"), keys))
        # (visible, or received by a poll that began as the pause did: those wait in the poller's batch)
        while_progressing(
            lambda: queued("Messages") + queued("MessagesNotVisible"),
            lambda count: count == OBJECTS,
            what="every Object Created queued",
        )
    finally:
        cloud.pollers.resume()
    # Batches fill to 6 MB and go at once; the remainder waits for its window, which the clock then ends
    # A poller may wait on on_arrival with its batch before it receives more: up to the function's timeout.
    while_progressing(
        lambda: queued("Messages"), lambda count: count == 0, stall=900, what="every message received"
    )
    cloud.clock.advance(WINDOW_SECONDS)

    runs = runs_taking(cloud, keys, timeout=900)
    reports = follow(cloud, runs, timeout=900)

    # Every object is in exactly one run, and every run succeeded counting its objects' lines
    taken = [o.key for m in runs.values() for o in m.objects]
    assert sorted(taken) == keys
    assert [r.status for r in reports] == ["SUCCEEDED"] * len(reports), [r.cause for r in reports]
    assert sum(r.step("count").facts["rows"]["rows_read"] for r in reports) == 2 * OBJECTS
    # Lambda's 6 MB payload limit split the burst; no invocation carried more
    batches = [(records, size) for function, records, size in cloud.pollers.batches if function == arrival]
    failed = [
        (i.error_type, round(i.duration))
        for i in cloud.lambdas.invocations
        if i.function == arrival and i.error_type
    ]
    assert sum(records for records, _ in batches) == OBJECTS, (
        f"on_arrival failed and its batch came back: {failed}"
    )
    assert max(size for _, size in batches) <= ESM_PAYLOAD_LIMIT_BYTES
    full = batches[:-1]  # the last batch is what was left when its window ended
    assert len(full) == math.ceil(sum(size for _, size in batches) / ESM_PAYLOAD_LIMIT_BYTES) - 1 >= 1
    assert all(
        size > ESM_PAYLOAD_LIMIT_BYTES - 2000 for _, size in full
    )  # filled to the last record that fits
    # Each execution started with its manifest's URI: a few hundred bytes, however many objects it has
    sfn = cloud.client("stepfunctions")
    inputs = [sfn.describe_execution(executionArn=cloud.execution_arn(run))["input"] for run in runs]
    assert max(len(i.encode()) for i in inputs) < 1024 < STEP_FUNCTIONS_INPUT_LIMIT
    assert all(
        json.loads(i)["manifest_uri"].endswith(f"manifests/{run}.json")
        for i, run in zip(inputs, runs, strict=True)
    )
