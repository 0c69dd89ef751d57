"""The local cloud reads a KMS key's policy as AWS does when a service asks to use the key."""

from __future__ import annotations

from typing import Any

import pytest

from gluerelay.local.kms import key_refuses

ACCOUNT = "123456789012"
ALARM = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:stack-runs-failed"
CONTEXT = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": ALARM}
NEEDED = ["kms:GenerateDataKey", "kms:Decrypt"]
ROOT = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
CLOUDWATCH = {
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    "Resource": "*",
    "Condition": {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:stack-*"},
    },
}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_key_policy_granting_cloudwatch_for_this_stacks_alarms_lets_them_publish() -> None:
    assert key_refuses(policy(ROOT, CLOUDWATCH), "cloudwatch.amazonaws.com", NEEDED, CONTEXT) is None


@pytest.mark.parametrize(
    ("statements", "context", "why"),
    [
        ((ROOT,), CONTEXT, "does not allow cloudwatch.amazonaws.com kms:GenerateDataKey"),
        (
            (ROOT, CLOUDWATCH),
            {**CONTEXT, "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:other-x"},
            "does not allow",
        ),
        ((ROOT, {**CLOUDWATCH, "Action": "kms:Decrypt"}), CONTEXT, "kms:GenerateDataKey"),
        ((ROOT, CLOUDWATCH, {**CLOUDWATCH, "Effect": "Deny", "Condition": {}}), CONTEXT, "denies"),
        (
            (ROOT, {**CLOUDWATCH, "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}),
            CONTEXT,
            "does not allow",
        ),
    ],
)
def test_anything_less_refuses_cloudwatch_and_says_why(
    statements: tuple[dict[str, Any], ...], context: dict[str, str], why: str
) -> None:
    refused = key_refuses(policy(*statements), "cloudwatch.amazonaws.com", NEEDED, context)
    assert refused is not None and why in refused
