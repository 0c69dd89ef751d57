"""A running local cloud for the end-to-end tests: template.yaml deployed once per test module.

One cloud at a time: moto's backends are process-wide, so a module that builds its own cloud (from a changed
template) must not share the process with a running one; module scope tears each down before the next.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from gluerelay.local.cloud import CloudOptions, LocalCloud
from tests.e2e.chaos import Row, save


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = CloudOptions(work_dir=tmp_path_factory.mktemp("local-cloud"))
    with LocalCloud(options) as running:
        yield running


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test passed."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Iterator[list[Row]]:
    """A scenario's row for the reliability table: the test appends it once its assertions pass; a test
    that fails is recorded as FAIL with its last error line."""
    marker = request.node.get_closest_marker("chaos")
    if marker is None:
        raise pytest.UsageError(f"{request.node.name} uses the chaos fixture without @pytest.mark.chaos")
    rows: list[Row] = []
    yield rows
    outcome = getattr(request.node, "rep_call", None)
    if outcome is None or outcome.failed or not rows:
        last = outcome.longreprtext.strip().splitlines()[-1][:160] if outcome and outcome.failed else "no row"
        rows = [Row(marker.args[0], 0, 0, 0, 0, 0, 0, "FAIL", last)]
    save(rows)


@pytest.fixture(scope="module")
def alarm_inbox(cloud: LocalCloud) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to the alarm topic, as an operator's e-mail would be. Returns a reader of
    every notification so far: CloudWatch's message with SNS's Subject."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName="test-alarm-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.template.ref("AlarmTopic"), Protocol="sqs", Endpoint=arn)
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            envelope = json.loads(message["Body"])
            seen.append({"Subject": envelope["Subject"], **json.loads(envelope["Message"])})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return seen

    return read
