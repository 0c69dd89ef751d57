"""Nothing in the local cloud is hand-wired: a test copy of template.yaml with another rule pattern changes
what reaches the pipelines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gluerelay.local.cloud import TEMPLATE, CloudOptions, LocalCloud

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_template_drives_delivery_a_changed_rule_pattern_stops_it(tmp_path: Path) -> None:
    root = TEMPLATE.parent
    for folder in ("functions", "glue", "statemachine", "layers"):
        (tmp_path / folder).symlink_to(root / folder)
    template = TEMPLATE.read_text().replace("key: [{prefix: landing/}]", "key: [{prefix: landing/orders/}]")
    assert "landing/orders/}]" in template, "the arrival rule's pattern moved: update this test"
    (tmp_path / "template.yaml").write_text(template)

    options = CloudOptions(template=tmp_path / "template.yaml", work_dir=tmp_path / "work")
    with LocalCloud(options) as changed:
        bucket = changed.output("DataBucketName")
        body = b"customer_id\n1\n"
        changed.client("s3").put_object(Bucket=bucket, Key="landing/customers/a.csv", Body=body)
        time.sleep(3)
        assert list(changed.executions()) == []
        assert not [d for d in changed.bus.deliveries if d.source == "aws.s3"]
        changed.client("s3").put_object(Bucket=bucket, Key="landing/orders/order-lines-a.csv", Body=body)
        [started] = changed.wait_for_new_executions(1, set(), timeout=30)
        assert started["stateMachineArn"] == changed.state_machine_arn("orders")
