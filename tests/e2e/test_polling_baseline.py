"""The benchmark's comparison, end to end: the polling baseline and our callbacks over the same 10 s steps.

Exercises what `make bench` relies on: a function and a state machine added beside the template's, Glue's
`startJobRun.sync`, Wait states and Glue's minimum durations on a clock running faster than the wall clock,
and the per-run counting of transitions, polls and Lambda requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import orchestration
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.glue import GlueTiming

STEP_SECONDS = 10
RATE = 5.0


@pytest.fixture(scope="module")
def fast_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = CloudOptions(
        work_dir=tmp_path_factory.mktemp("polling"),
        timing=GlueTiming(min_job_seconds=STEP_SECONDS, min_crawl_seconds=STEP_SECONDS),
        clock_rate=RATE,
        alarm_evaluation_seconds=RATE,
    )
    with LocalCloud(options) as running:
        yield running


def test_polling_pays_per_poll_and_callbacks_pay_per_step(fast_cloud: LocalCloud) -> None:
    machine = orchestration.deploy_polling(fast_cloud)
    key = orchestration.put_source(fast_cloud)

    target = orchestration.target_of(fast_cloud)
    polled = orchestration.run_once(
        fast_cloud,
        "polling",
        target=target,
        machine=machine,
        key=key,
        name="polled",
        step_seconds=STEP_SECONDS,
    )
    ours = orchestration.run_once(
        fast_cloud,
        "callbacks",
        target=target,
        machine=orchestration.deploy_callbacks(fast_cloud),
        key=key,
        name="called-back",
        step_seconds=STEP_SECONDS,
    )

    # Four steps of at least 10 clock seconds each, in far less real time.
    assert ours.clock_seconds >= 4 * STEP_SECONDS
    assert polled.clock_seconds >= 4 * STEP_SECONDS
    # Every crawl is polled at least once; each poll is Wait, the Lambda and the Choice. How many polls a
    # 10 s crawl takes depends on where the 5 s Waits fall against it, and on a busy machine (where one
    # real second is five clock seconds here) they fall anywhere: `make bench` reports the counts.
    assert polled.polls >= 2
    assert polled.transitions == 5 + 3 * polled.polls  # 2 .sync jobs, 2 crawler starts, the end
    assert polled.lambda_requests == 2 + polled.polls
    # Callbacks: the same seven transitions whatever the duration; start_step and on_glue_event per step.
    assert ours.transitions == 7
    assert ours.lambda_requests == 8
    assert [kind for kind, _ in polled.handoffs_ms] == ["sync", "poll", "sync", "poll"]
    assert all(ms >= 0 for _, ms in ours.handoffs_ms)
