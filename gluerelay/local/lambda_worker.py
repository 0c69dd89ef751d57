"""One Lambda execution environment of the local cloud: a process that imports one handler and runs events.

``python -m gluerelay.local.lambda_worker HANDLER CODE_DIR`` (HANDLER = ``module.attribute``). Requests
arrive as JSON lines on stdin; replies leave as JSON lines on the original stdout. Everything the handler
prints (Powertools' JSON logs, EMF metrics) goes to stderr, which the runtime reads as the function's log
stream, framed by START / END / REPORT lines as on Lambda.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass
class Context:
    """The Lambda context object handlers receive."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def error_payload(error: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_exception(error)[1:],
    }


class InjectedFaultError(RuntimeError):
    """The error a test asked the local cloud to raise in this function."""


def _inject(fault: str | None, name: str, context: Context) -> None:
    if fault == "hang":  # outlive the deadline: the runtime stops this environment, as Lambda does
        time.sleep(max(0.0, context.deadline - time.time()) + 30)
    if fault == "raise":
        raise InjectedFaultError(f"fault injected into {name} by the local cloud")


def serve(handler_path: str, code_dir: str, requests: TextIO, replies: TextIO) -> None:
    sys.path.insert(0, code_dir)
    module_name, _, attribute = handler_path.rpartition(".")
    init_error: dict[str, Any] | None = None
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as e:  # noqa: BLE001 - an init failure is reported on every invocation, as Lambda does
        traceback.print_exc()
        init_error = {**error_payload(e), "errorType": f"Runtime.ImportModuleError: {type(e).__name__}"}
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    for line in requests:
        request = json.loads(line)
        request_id = request["request_id"]
        started = time.perf_counter()
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        reply: dict[str, Any] = {"request_id": request_id}
        if init_error is not None:
            reply["error"] = init_error
        else:
            context = Context(
                function_name=name,
                function_version="$LATEST",
                invoked_function_arn=request["function_arn"],
                memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
                aws_request_id=request_id,
                log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}"),
                log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
                deadline=float(request["deadline"]),
            )
            try:
                _inject(request.get("fault"), name, context)
                reply["payload"] = handler(request["event"], context)
            except Exception as e:  # noqa: BLE001 - the function's error is the invocation's result
                traceback.print_exc()
                reply["error"] = error_payload(e)
        elapsed_ms = (time.perf_counter() - started) * 1000
        memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        print(f"END RequestId: {request_id}", flush=True)
        print(
            f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms\t"
            f"Billed Duration: {int(elapsed_ms) + 1} ms\tMemory Size: {memory} MB",
            flush=True,
        )
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


def main() -> int:
    handler_path, code_dir = sys.argv[1], sys.argv[2]
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints (logs, EMF) join stderr: the log stream
    sys.stdout = os.fdopen(1, "w", buffering=1)
    serve(handler_path, code_dir, sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
