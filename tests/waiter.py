"""Waiting in tests: a one-task state machine whose task token goes to SQS (real moto task tokens), and
`eventually` for conditions the local cloud reaches asynchronously."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


def waiter_definition(queue_url: str, timeout_seconds: int = 30) -> str:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": timeout_seconds,
        "End": True,
    }
    return json.dumps({"StartAt": "Wait for the step", "States": {"Wait for the step": task}})


def next_token(sqs: Any, queue_url: str) -> str:
    """The task token the next waiting execution handed to the queue."""
    for _ in range(200):
        if messages := sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages"):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            return str(json.loads(messages[0]["Body"])["token"])
        time.sleep(0.01)
    raise AssertionError("the execution never handed out its task token")


def finished(sfn: Any, arn: str) -> dict[str, Any]:
    """The execution once it is no longer RUNNING."""
    for _ in range(200):
        execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.02)
    raise AssertionError(f"{arn} still RUNNING")


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (and return that), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")
