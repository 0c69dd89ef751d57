"""The local Lambda service: isolated execution environments (worker processes) for the template's functions.

Each environment is a process of its own (`lambda_worker`) with the function's environment variables,
module globals and logger state, as on Lambda: one event at a time, reused while warm, a cold start
counted when a new one starts. The function's Timeout is enforced by stopping its process. Asynchronous
invocations are retried as Lambda does (two retries unless the function's EventInvokeConfig says
otherwise, about one and then two minutes apart, waited on the local cloud's clock), then go to its
OnFailure destination.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gluerelay.local.clock import Clock
from gluerelay.local.journal import Journal

# (function name, request id, line, log stream: the execution environment's, as Lambda names it)
LogSink = Callable[[str, str | None, str, str], None]
# Lambda retries a failed asynchronous invocation after about one and then two minutes.
ASYNC_RETRY_DELAYS_SECONDS = (60.0, 120.0)
MAX_ENVIRONMENTS_PER_FUNCTION = 8
FAULTS = ("raise", "hang")
# Errors of an environment that ended mid-invocation (timed out, exited): it wrote no END or REPORT.
ENVIRONMENT_ENDED = frozenset({"Sandbox.Timedout", "Runtime.ExitError"})


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    max_async_retries: int = 2
    on_failure: Callable[[dict[str, Any], dict[str, Any]], None] | None = None


@dataclass
class Invocation:
    """One invocation, as the report and the tests see it."""

    function: str
    request_id: str
    started: float
    duration: float
    cold_start: bool
    error_type: str | None
    asynchronous: bool = False
    attempt: int = 1


@dataclass
class Fault:
    """Fault injection for tests: the function's next `remaining` invocations raise (`raise`) or run past
    their Timeout (`hang`), inside the real execution environment."""

    kind: str
    remaining: int
    when: Callable[[Any], bool] | None = None  # only events this accepts (None: every event)


@dataclass
class Result:
    payload: Any
    error: dict[str, Any] | None
    invocation: Invocation


class _Environment:
    """One execution environment: a worker process and the thread that reads its replies."""

    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], sink: LogSink) -> None:
        self.spec = spec
        self.sink = sink
        self.current_request: str | None = None
        self.stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        env = {
            **base_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gluerelay.local.lambda_worker", spec.handler, str(spec.code_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read_replies, daemon=True).start()
        threading.Thread(target=self._read_logs, args=(sink,), daemon=True).start()

    def _read_replies(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.replies.put(json.loads(line))
        self.replies.put(None)  # the process ended

    def _read_logs(self, sink: LogSink) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            sink(self.spec.name, self.current_request, line.rstrip("\n"), self.stream)

    def run(
        self, event: Any, request_id: str, timeout: float, fault: str | None = None
    ) -> tuple[Any, dict[str, Any] | None]:
        assert self.process.stdin is not None
        self.current_request = request_id
        started = time.time()
        payload, error = self._run(event, request_id, timeout, fault)
        if error is not None and error.get("errorType") in ENVIRONMENT_ENDED:
            # The environment wrote its START and whatever it printed, never its END and REPORT: Lambda
            # writes them with the invocation's status.
            took = (time.time() - started) * 1000
            status = "timeout" if error["errorType"] == "Sandbox.Timedout" else "error"
            for line in (
                f"END RequestId: {request_id}",
                f"REPORT RequestId: {request_id}\tDuration: {took:.2f} ms\t"
                f"Billed Duration: {int(took) + 1} ms\tMemory Size: {self.spec.memory_mb} MB\t"
                f"Status: {status}",
            ):
                self.sink(self.spec.name, request_id, line, self.stream)
        return payload, error

    def _run(
        self, event: Any, request_id: str, timeout: float, fault: str | None
    ) -> tuple[Any, dict[str, Any] | None]:
        assert self.process.stdin is not None
        deadline = time.time() + timeout
        request = {
            "request_id": request_id,
            "event": event,
            "deadline": deadline,
            "function_arn": self.spec.arn,
            "fault": fault,
        }
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            message = f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
            return None, {"errorMessage": message, "errorType": "Sandbox.Timedout"}
        except (BrokenPipeError, OSError) as e:
            self.stop()
            return None, {
                "errorMessage": f"execution environment ended: {e}",
                "errorType": "Runtime.ExitError",
            }
        if reply is None:
            self.stop()
            code = self.process.returncode
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            return None, {"errorMessage": message, "errorType": "Runtime.ExitError"}
        return reply.get("payload"), reply.get("error")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@dataclass
class LambdaRuntime:
    """The functions of one local cloud."""

    base_env: dict[str, str]
    sink: LogSink
    clock: Clock
    retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS_SECONDS
    specs: dict[str, FunctionSpec] = field(default_factory=dict)
    invocations: Journal[Invocation] = field(default_factory=Journal)
    faults: dict[str, Fault] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)  # event invocations not yet ended, per function
    _retrying: dict[str, int] = field(default_factory=dict)  # of those, waiting on the clock for a retry
    _idle: dict[str, list[_Environment]] = field(default_factory=dict)
    _busy: dict[str, int] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _async: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16, "lambda-async"))

    def register(self, spec: FunctionSpec) -> None:
        self.specs[spec.name] = spec

    def inject(
        self, function: str, kind: str, times: int = 1, when: Callable[[Any], bool] | None = None
    ) -> None:
        """Make the function's next `times` invocations fail: `raise` (an error) or `hang` (a timeout);
        with `when`, only invocations whose event it accepts."""
        spec = self.spec_for(function)
        if spec is None:
            raise KeyError(f"function {function} is not part of the local cloud")
        if kind not in FAULTS:
            raise ValueError(f"fault {kind!r}: choose one of {', '.join(FAULTS)}")
        with self._lock:
            self.faults[spec.name] = Fault(kind, times, when)

    def _take_fault(self, function: str, event: Any) -> str | None:
        with self._lock:
            fault = self.faults.get(function)
            if fault is None or (fault.when is not None and not fault.when(event)):
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.faults[function]
            return fault.kind

    def invocations_since(self, index: int) -> list[Invocation]:
        """The invocations that ended after the first `index` (a consumer's cursor)."""
        return self.invocations[index:]

    def in_flight(self, function: str) -> int:
        """Event invocations of the function accepted and not yet ended (including those waiting to retry)."""
        spec = self.spec_for(function)
        with self._lock:
            return self._in_flight.get(spec.name if spec else function, 0)

    def retries_waiting(self, function: str) -> int:
        """Event invocations of the function that failed and wait on the clock for their next attempt."""
        spec = self.spec_for(function)
        with self._lock:
            return self._retrying.get(spec.name if spec else function, 0)

    def _count(self, counts: dict[str, int], function: str, change: int) -> None:
        with self._lock:
            counts[function] = counts.get(function, 0) + change

    def spec_for(self, name_or_arn: str) -> FunctionSpec | None:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        return self.specs.get(name)

    def _acquire(self, spec: FunctionSpec) -> tuple[_Environment, bool]:
        with self._lock:
            while True:
                idle = self._idle.setdefault(spec.name, [])
                while idle:
                    environment = idle.pop()
                    if environment.alive:
                        self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                        return environment, False
                if self._busy.get(spec.name, 0) < MAX_ENVIRONMENTS_PER_FUNCTION:
                    self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                    break
                self._lock.wait()
        return _Environment(spec, self.base_env, self.sink), True

    def _release(self, spec: FunctionSpec, environment: _Environment) -> None:
        with self._lock:
            self._busy[spec.name] -= 1
            if environment.alive:
                self._idle.setdefault(spec.name, []).append(environment)
            self._lock.notify()

    def invoke(self, name: str, event: Any, *, asynchronous: bool = False, attempt: int = 1) -> Result:
        spec = self.spec_for(name)
        if spec is None:
            raise KeyError(f"function {name} is not part of the local cloud")
        request_id = str(uuid.uuid4())
        started = time.time()
        environment, cold = self._acquire(spec)
        try:
            fault = self._take_fault(spec.name, event)
            payload, error = environment.run(event, request_id, spec.timeout_seconds, fault)
        finally:
            self._release(spec, environment)
        invocation = Invocation(
            spec.name,
            request_id,
            started,
            time.time() - started,
            cold,
            error["errorType"] if error else None,
            asynchronous,
            attempt,
        )
        self.invocations.append(invocation)
        return Result(payload, error, invocation)

    def invoke_async(self, name: str, event: Any) -> None:
        """Event invocation: queued, retried on error, then sent to the OnFailure destination."""
        spec = self.spec_for(name)
        if spec is None:
            return
        self._count(self._in_flight, spec.name, 1)
        self._async.submit(self._run_async, name, event, counted=True)

    def invoke_event_now(self, name: str, event: Any) -> None:
        """An event invocation (retries, OnFailure destination) run in the caller's thread, to its end."""
        self._run_async(name, event)

    def _run_async(self, name: str, event: Any, *, counted: bool = False) -> None:
        spec = self.spec_for(name)
        if spec is None:
            return
        if not counted:
            self._count(self._in_flight, spec.name, 1)
        try:
            attempts = 1 + spec.max_async_retries
            for attempt in range(1, attempts + 1):
                result = self.invoke(name, event, asynchronous=True, attempt=attempt)
                if result.error is None:
                    return
                if attempt < attempts:
                    delay = self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)]
                    self._wait_to_retry(spec.name, delay)
                elif spec.on_failure is not None:
                    spec.on_failure(event, result.error)
        finally:
            self._count(self._in_flight, spec.name, -1)

    def _wait_to_retry(self, function: str, delay: float) -> None:
        due = self.clock.now() + delay
        self._count(self._retrying, function, 1)  # counted once `due` is fixed: an advance from now on counts
        try:
            self.clock.sleep(due - self.clock.now())
        finally:
            self._count(self._retrying, function, -1)

    def shutdown(self) -> None:
        self._async.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            environments = [e for idle in self._idle.values() for e in idle]
            self._idle.clear()
        for environment in environments:
            environment.stop()


def endpoint_env(endpoint: str, region: str) -> dict[str, str]:
    """What a child process (a function, a Glue job) needs to reach the local cloud's services (moto's
    fixed local credentials)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def worker_base_env(endpoint: str, region: str) -> dict[str, str]:
    """What every execution environment starts with: the local endpoint, credentials and the region."""
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "PYTHONPATH")
    }
    return {
        **keep,
        **endpoint_env(endpoint, region),
        # No X-Ray daemon locally: Powertools' tracer would otherwise try to send segments.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
