"""Whether an AWS service may use a KMS key on the local cloud's behalf, read from the key's own policy.

AWS services that write to an encrypted resource (CloudWatch alarms publishing to an SSE-KMS topic) need
the key's policy to let their service principal use the key (Amazon SNS Developer Guide, "Enable
compatibility between event sources from AWS services and encrypted topics"). An AWS managed key's policy
(alias/aws/sns) never does, so such a topic receives nothing from them. moto stores key policies but
never evaluates them; this module evaluates the parts such a grant uses: Allow and Deny statements,
Service and "*" principals, Action patterns, and the StringEquals/StringLike/ArnEquals/ArnLike
conditions (an operator it does not know makes the statement not apply, so nothing is granted by
accident).
"""

from __future__ import annotations

import fnmatch
import json
import operator
from collections.abc import Callable
from typing import Any

CONDITIONS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": operator.eq,
    "StringLike": fnmatch.fnmatchcase,
    "ArnEquals": operator.eq,
    "ArnLike": fnmatch.fnmatchcase,
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return service in _listed(principal.get("Service", [])) or "*" in _listed(principal.get("AWS", []))


def _action_matches(patterns: Any, action: str) -> bool:
    return any(fnmatch.fnmatch(action.lower(), str(p).lower()) for p in _listed(patterns))


def _conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for name, tests in condition.items():
        check = CONDITIONS.get(name)
        if check is None:
            return False
        for key, wanted in tests.items():
            given = context.get(key)
            if given is None or not any(check(given, str(w)) for w in _listed(wanted)):
                return False
    return True


def _applies(statement: dict[str, Any], service: str, action: str, context: dict[str, str]) -> bool:
    return (
        _principal_matches(statement.get("Principal"), service)
        and _action_matches(statement.get("Action", []), action)
        and _conditions_hold(statement.get("Condition", {}), context)
    )


def key_refuses(
    policy: str | dict[str, Any], service: str, actions: list[str], context: dict[str, str]
) -> str | None:
    """Why the key policy does not let `service` perform every one of `actions` (None when it does)."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = _listed(document.get("Statement", []))
    for action in actions:
        applying = [s for s in statements if _applies(s, service, action, context)]
        if any(s.get("Effect") == "Deny" for s in applying):
            return f"its key policy denies {service} {action}"
        if not any(s.get("Effect") == "Allow" for s in applying):
            return f"its key policy does not allow {service} {action}"
    return None


def topic_refuses(clients: Any, topic_arn: str, service: str, context: dict[str, str]) -> str | None:
    """Why `service` cannot publish to the topic because of its encryption (None when it can)."""
    attributes = clients("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    key_id = attributes.get("KmsMasterKeyId")
    if not key_id:
        return None
    if key_id.startswith("alias/aws/"):
        return (
            f"topic {topic_arn} is encrypted with the AWS managed key {key_id}, whose policy cannot let "
            f"{service} use it"
        )
    kms = clients("kms")
    key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if key.get("KeyManager") == "AWS":
        return f"topic {topic_arn} is encrypted with an AWS managed key, whose policy cannot let {service} in"
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    refused = key_refuses(policy, service, ["kms:GenerateDataKey", "kms:Decrypt"], context)
    return f"topic {topic_arn} is encrypted with key {key['KeyId']}: {refused}" if refused else None


def log_group_refuses(clients: Any, key_id: str, group_arn: str, region: str) -> str | None:
    """Why CloudWatch Logs cannot encrypt the log group with this key (None when it can). CreateLogGroup
    and AssociateKmsKey fail on AWS when the key's policy does not let `logs.<region>.amazonaws.com` use
    it with the group's ARN as encryption context (CloudWatch Logs User Guide, "Encrypt log data in
    CloudWatch Logs using AWS Key Management Service")."""
    kms = clients("kms")
    key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if key.get("KeyManager") == "AWS":
        return f"key {key_id} is AWS managed: its policy cannot let CloudWatch Logs use it"
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    return key_refuses(
        policy,
        f"logs.{region}.amazonaws.com",
        ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
        {"kms:EncryptionContext:aws:logs:arn": group_arn},
    )
