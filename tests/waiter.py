"""Waiting in tests: a one-task state machine whose task token goes to SQS (real moto task tokens), and
`eventually` for conditions the local cloud reaches asynchronously."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gluerelay.local.clock import Clock
    from gluerelay.local.lambdas import LambdaRuntime


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


def while_progressing(
    measure: Callable[[], int], done: Callable[[int], bool], stall: float = 120, what: str = "condition"
) -> int:
    """Poll `measure` until `done` accepts its value, for as long as the value keeps changing: fail naming
    `what` only when it has not changed for `stall` seconds. For work that is proportional to the machine's
    speed (10,000 messages through the pollers), where any fixed deadline fails a slow machine that is
    still getting there."""
    value, changed = measure(), time.monotonic()
    while not done(value):
        if time.monotonic() - changed > stall:
            raise AssertionError(f"{what} not met: stuck at {value} for {stall:.0f} s")
        time.sleep(0.2)
        latest = measure()
        if latest != value:
            value, changed = latest, time.monotonic()
    return value


def through_retries(lambdas: LambdaRuntime, clock: Clock, function: str, retries: int) -> None:
    """Let a failing event invocation of `function` take its next `retries` retries: each time one waits on
    the clock for its attempt, move the clock past Lambda's retry delay (about 1, then 2 minutes)."""
    spec = lambdas.spec_for(function)
    assert spec is not None, f"{function} is not a function of the local cloud"

    def attempted(cursor: int, attempt: int) -> bool:
        return any(
            i.function == spec.name and i.asynchronous and i.attempt == attempt
            for i in lambdas.invocations[cursor:]
        )

    for retry in range(retries):
        cursor = len(lambdas.invocations)
        eventually(
            lambda: lambdas.retries_waiting(function) > 0,
            timeout=180,  # the first attempt may follow a Glue job run
            what=f"{function}'s event invocation waiting to retry",
        )
        clock.advance(lambdas.retry_delays[min(retry, len(lambdas.retry_delays) - 1)])
        attempt = retry + 2
        eventually(lambda: attempted(cursor, attempt), what=f"{function}'s attempt {attempt}")  # noqa: B023
