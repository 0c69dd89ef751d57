"""Nothing in the local cloud is hand-wired: a test copy of template.yaml with another rule pattern changes
what reaches the pipelines, and one with a narrower key policy does not deploy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gluerelay.local.cloud import TEMPLATE, CloudOptions, LocalCloud
from gluerelay.local.template import TemplateError

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


def test_a_log_group_key_that_shuts_out_cloudwatch_logs_fails_the_deploy_naming_the_group(
    tmp_path: Path,
) -> None:
    """As CreateLogGroup does on AWS: a key whose policy does not let logs.<region>.amazonaws.com use it
    for the group cannot encrypt it, and the stack does not deploy."""
    root = TEMPLATE.parent
    for folder in ("functions", "glue", "statemachine", "layers"):
        (tmp_path / folder).symlink_to(root / folder)
    statement = '            Principal: {Service: !Sub "logs.${AWS::Region}.amazonaws.com"}'
    text = TEMPLATE.read_text()
    assert statement in text, "LogsKey's CloudWatch Logs statement moved: update this test"
    (tmp_path / "template.yaml").write_text(
        text.replace(statement, "            Principal: {Service: sns.amazonaws.com}")
    )

    options = CloudOptions(template=tmp_path / "template.yaml", work_dir=tmp_path / "work")
    with (
        pytest.raises(
            TemplateError, match=r"CloudWatch Logs cannot encrypt log group .*does not allow logs\."
        ),
        LocalCloud(options),
    ):
        pass
