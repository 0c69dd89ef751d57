"""Every fix the local cloud makes to moto, in one place.

moto is pinned exactly (pyproject.toml); each patch names the moto 5.2.5 gap it covers and has a test in
tests/integration/test_moto_patches.py that shows the gap and the fix. `install()` applies them all and
returns a function that restores moto; it is idempotent, so tests and the local cloud can both call it.
"""

from __future__ import annotations

import functools
import logging
import threading
import types
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.dynamodb import models as dynamodb_models
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.glue.utils import validate_crawl_filters
from moto.moto_api import state_manager
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser import models as sfn_models
from moto.stepfunctions.parser.api import (
    ExecutionStatus,
    InvalidToken,
    SendTaskFailureOutput,
    SendTaskSuccessOutput,
    TaskTimedOut,
)
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as callback_task,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue import (
    StateTaskServiceGlue,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval import environment, program_state
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackConsumerLeft,
    CallbackOutcomeFailure,
    CallbackOutcomeSuccess,
)
from moto.stepfunctions.parser.backend import execution as sfn_execution
from moto.stepfunctions.parser.backend import execution_worker

from gluerelay.local.clock import CHECK_SECONDS, Clock
from gluerelay.records import utc_text

_lock = threading.Lock()
_undo: list[Callable[[], None]] = []
# The time TimeoutSeconds and Wait states count in: the running local cloud's clock (see `use_clock`).
_clock = Clock()


def _replace(owner: Any, name: str, new: Any) -> None:
    if name not in owner.__dict__:  # inherited: undone by removing the override
        setattr(owner, name, new)
        _undo.append(lambda: delattr(owner, name))
        return
    old = owner.__dict__[name]
    setattr(owner, name, new)
    _undo.append(lambda: setattr(owner, name, old))


def send_task_failure_keeps_cause() -> None:
    """SendTaskFailure passes `cause` on (moto's responses.py drops it, and with it Glue's message)."""

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    _replace(sfn_responses.StepFunctionResponse, "send_task_failure", send_task_failure)


def closed_tokens_time_out() -> None:
    """A token whose task already ended answers TaskTimedOut, as on AWS.

    moto: a token of a finished execution raises InvalidToken (only RUNNING executions are searched), a
    second SendTaskSuccess for a task that is already completed silently overwrites the first outcome, and
    moto's own TaskTimedOut has no error code. Sends are also serialised here: two racing calls for one
    token (the moto server serves each in its own thread) must not both find the task open and both be
    accepted; on AWS exactly one is.
    """
    lock = threading.Lock()

    def notify(backend: Any, token: str, outcome: Any) -> None:
        with lock:
            _notify(backend, token, outcome)

    def _notify(backend: Any, token: str, outcome: Any) -> None:
        for execution in backend._get_executions():
            worker = getattr(execution, "exec_worker", None)
            if worker is None:
                continue
            endpoint = worker.env.callback_pool_manager.get(token)
            if endpoint is None:
                continue
            waiter = getattr(endpoint, "gluerelay_waiter", None)  # see tokens_of_ended_tasks_are_closed
            running = execution.status == "RUNNING" and (waiter is None or waiter.is_running())
            if not running or endpoint.get_outcome() is not None or endpoint.consumer_error is not None:
                raise TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'", "TaskTimedOut")
            endpoint.notify(outcome=outcome)
            return
        raise InvalidToken()  # type: ignore[no-untyped-call]

    def send_task_success(self: Any, task_token: str, outcome: str) -> SendTaskSuccessOutput:
        notify(self, task_token, CallbackOutcomeSuccess(callback_id=task_token, output=outcome))
        return SendTaskSuccessOutput()

    def send_task_failure(
        self: Any, task_token: str, error: str | None = None, cause: str | None = None
    ) -> SendTaskFailureOutput:
        notify(self, task_token, CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause))
        return SendTaskFailureOutput()

    backend = sfn_models.StepFunctionsParserBackend
    _replace(backend, "send_task_success", send_task_success)
    _replace(backend, "send_task_failure", send_task_failure)


def tokens_of_ended_tasks_are_closed() -> None:
    """A token whose task has ended (it timed out, or its Parallel branch was stopped when another branch
    failed, while the execution goes on) answers TaskTimedOut, as on AWS.

    moto keeps the token's endpoint open until the whole execution ends, so a SendTaskFailure for a step
    that already timed out, or whose branch was stopped, "succeeds" while the workflow is in its failure
    path. The task's end and the environment waiting for it are marked on its endpoint (the check lives in
    closed_tokens_time_out). The body is moto's own, plus those marks.
    """

    def eval_body(self: Any, env: Any) -> None:
        token = None
        if (
            self._is_integration_pattern()
            and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns
        ):
            self._assert_integration_pattern_is_supported()
            token = env.states.context_object.update_task_token()
            # The environment that waits for the token: once it stops (a Parallel's other branch failed, the
            # execution was stopped), nothing waits for the token any more.
            env.callback_pool_manager.add(token).gluerelay_waiter = env
        try:
            super(callback_task.StateTaskServiceCallback, self)._eval_body(env=env)
        finally:
            env.states.context_object.context_object_data.pop("Task", None)
            endpoint = env.callback_pool_manager.get(token) if token else None
            if endpoint is not None and endpoint.get_outcome() is None:
                endpoint.report(CallbackConsumerLeft())

    _replace(callback_task.StateTaskServiceCallback, "_eval_body", eval_body)


def stopped_executions_stop_waiting() -> None:
    """StopExecution ends an execution that waits for a task token at once (ABORTED, its status-change
    event sent), as on AWS.

    moto marks the execution stopped but its task keeps waiting on the token's endpoint until the task's
    TimeoutSeconds (hours): the execution reads RUNNING meanwhile, and a `startExecution.sync` parent
    waiting for it (a backfill cancelled with --now) waits as long. The endpoints of the stopped execution's
    tokens are interrupted, so the wait returns and moto ends the execution as stopped."""
    original = sfn_execution.Execution.__dict__["stop"]

    def stop(self: Any, stop_date: datetime, error: str | None, cause: str | None) -> None:
        original(self, stop_date, error, cause)
        worker = getattr(self, "exec_worker", None)
        env = getattr(worker, "env", None)
        if env is not None:
            for endpoint in list(env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

    _replace(sfn_execution.Execution, "stop", stop)
    # The interrupted task then fails in a stopped environment; moto's set_error would turn the stopped
    # execution FAILED. A stopped program stays stopped.
    for name in ("set_error", "set_timed_out"):
        ending = environment.Environment.__dict__[name]

        def keep_stopped(self: Any, *args: Any, _ending: Any = ending, **kwargs: Any) -> None:
            if isinstance(self._program_state, program_state.ProgramStopped):
                return
            _ending(self, *args, **kwargs)

        _replace(environment.Environment, name, keep_stopped)


def unnamed_executions_get_a_name() -> None:
    """StartExecution without a name gets a generated one (moto: ARN ends in `:None`, 2nd start clashes)."""
    original = sfn_models.StepFunctionsParserBackend.__dict__["start_execution"]

    def start_execution(
        self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kw: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kw)

    _replace(sfn_models.StepFunctionsParserBackend, "start_execution", start_execution)


def execution_start_time_is_a_string() -> None:
    """`$$.Execution.StartTime` is an ISO 8601 string, as on AWS (moto passes a datetime, so a DynamoDB or
    Lambda task that uses it fails with "Object of type datetime is not JSON serializable")."""
    original = execution_worker.ExecutionWorker.__dict__["_get_evaluation_environment"]

    def get_evaluation_environment(self: Any) -> Any:
        details = self._evaluation_details.execution_details
        started = details.start_time
        if isinstance(started, datetime):
            details.start_time = utc_text(started)
        try:
            return original(self)
        finally:
            details.start_time = started

    _replace(execution_worker.ExecutionWorker, "_get_evaluation_environment", get_evaluation_environment)


class _ClockEvent(threading.Event):
    """An Event whose timed wait counts on the local cloud's clock, so `clock.advance` can expire it."""

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        deadline = _clock.now() + timeout
        while not super().wait(min(CHECK_SECONDS, _clock.real_seconds(max(0.0, deadline - _clock.now())))):
            if _clock.now() >= deadline:
                return False
        return True


def task_timeouts_follow_the_clock() -> None:
    """A state's TimeoutSeconds counts on the local cloud's clock (`use_clock`), as schedules and alarms
    do, so a test can move time past a step's two-hour timeout instead of waiting for it.

    moto waits for a state's end on a threading.Event in real time (ExecuteState._evaluate_with_timeout,
    the module's only use of `threading`): that module sees an Event whose timed wait reads the clock.
    """
    clocked = types.SimpleNamespace(Event=_ClockEvent)
    _replace(execute_state, "threading", clocked)


def waits_follow_the_clock() -> None:
    """A Wait state waits on the local cloud's clock (`use_clock`): `clock.advance` ends it, and a clock
    running faster than the wall clock shortens it alike.

    moto: WaitFunction._wait_interval waits `Seconds` of real time on the execution's event.
    """

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        deadline = _clock.now() + wait_seconds
        while env.is_running() and (left := deadline - _clock.now()) > 0:
            _clock.sleep(left, env.program_state_event)

    _replace(WaitFunction, "_wait_interval", wait_interval)


def glue_sync_tasks_run() -> None:
    """`arn:aws:states:::glue:startJobRun.sync` runs the job and waits for its end, as on AWS.

    moto: every glue .sync task fails with "'NoneType' object has no attribute 'interrupt_all'": the task's
    clean-up interrupts its callback endpoint, which only services that also take .waitForTaskToken get.
    The fix gives Glue tasks that endpoint too (a token nobody answers; the job run's end decides).
    Left as is: in-process moto puts GetJobRun's datetimes in the task's result, which its DescribeExecution
    cannot serialise (the polling baseline discards the result: ResultPath null).
    """
    original: Callable[[Any], None] = StateTaskServiceGlue.__init__

    def init(self: Any) -> None:
        original(self)
        self._supported_integration_patterns = {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}

    _replace(StateTaskServiceGlue, "__init__", init)


def _epoch_ms(value: Any) -> Any:
    """A time in a task's answer as AWS writes it into state data: milliseconds since the epoch."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


def nested_executions_use_the_api_names() -> None:
    """A `states:startExecution` task (with .sync or .sync:2 too) calls StartExecution with the API's own
    member names (StateMachineArn -> stateMachineArn, Name, Input) and answers with the integration's
    PascalCase keys (ExecutionArn, StartDate; for .sync:2 Status, Output, ...; times in epoch milliseconds),
    as on AWS. moto 5.2.5 passes the state's keys to boto3 unchanged (the task fails with States.Runtime
    "'StateMachineArn'") and returns boto3's camelCase answer, with datetimes JSON cannot hold."""
    cls = StateTaskServiceSfn
    request, answer = cls._normalise_parameters, cls._normalise_response

    def normalise_parameters(  # moto passes `parameters` by name
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        request(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None:  # the task's own call
            renamed = {key[:1].lower() + key[1:]: value for key, value in parameters.items()}
            parameters.clear()
            parameters.update(renamed)

    def normalise_response(  # moto passes `response` by name
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        answer(self, response, boto_service_name, service_action_name)
        if isinstance(response, dict):
            renamed = {key[:1].upper() + key[1:]: _epoch_ms(value) for key, value in response.items()}
            response.clear()
            response.update(renamed)

    _replace(cls, "_normalise_parameters", normalise_parameters)
    _replace(cls, "_normalise_response", normalise_response)


def use_clock(clock: Clock) -> Callable[[], None]:
    """Count TimeoutSeconds and Wait states on `clock` (a local cloud's) until the returned function is
    called."""
    global _clock  # noqa: PLW0603 - the process has one running local cloud
    _clock = clock

    def restore() -> None:
        global _clock  # noqa: PLW0603
        _clock = Clock()

    return restore


def an_execution_being_started_is_running() -> None:
    """An execution listed or described while StartExecution is still setting it up reads RUNNING, as on AWS.

    moto registers the execution before it sets its status, so a ListExecutions racing a StartExecution
    (20 runs starting at once) fails with AttributeError: 'NoneType' object has no attribute 'value'.
    """

    def status(self: Any) -> str:
        return str((self.exec_status or ExecutionStatus.RUNNING).value)

    _replace(sfn_execution.Execution, "status", property(status))


def dynamodb_conditional_writes_are_atomic() -> None:
    """A conditional write checks its condition and writes as one step, as DynamoDB does.

    moto reads the current item, evaluates the ConditionExpression, then writes, with no lock: two requests
    served by different threads (the local cloud's Lambdas, Step Functions' DynamoDB tasks) can both pass
    the same `version = :v` condition, and the later write silently replaces the earlier. Twenty runs
    joining one crawler's lease lost a waiter that way: its step waited for a crawl nobody would start.
    """
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = dynamodb_models.DynamoDBBackend.__dict__[name]

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        _replace(dynamodb_models.DynamoDBBackend, name, functools.wraps(original)(locked))


def glue_runs_wait_for_the_local_runtime() -> None:
    """Glue job runs and crawls stay where the local Glue runtime puts them.

    moto: a job run is SUCCEEDED and a crawl finished the first time anyone looks ("immediate" progression),
    although nothing ran.
    """
    for model in ("glue::job_run", "glue::crawl"):
        previous = state_manager.get_transition(model)
        state_manager.set_transition(model, {"progression": "manual", "times": 10**12})
        _undo.append(functools.partial(state_manager.set_transition, model, previous))


def crawls_list_newest_first() -> None:
    """ListCrawls answers the newest crawls first, honouring MaxResults and NextToken.

    moto ignores both and always answers the 20 oldest crawls, so once a crawler has crawled 20 times
    nothing new is listed: an event's crawl is no longer found by its end, and the sweeper never sees the
    crawl that served a step. Glue's reference does not state the order; its console lists a crawler's
    runs newest first, and that is what gluerelay asks for (`MaxResults`: the most recent crawls).
    """
    unpaginated = glue_models.GlueBackend.list_crawls.__wrapped__  # type: ignore[attr-defined]

    def list_crawls(self: Any) -> Any:
        filters = validate_crawl_filters(self.parameters.get("Filters", []))
        crawls = unpaginated(self.glue_backend, self.parameters.get("CrawlerName"), filters)
        crawls = sorted(crawls, key=lambda c: c.start_time, reverse=True)
        start = int(self.parameters.get("NextToken") or 0)
        size = int(self.parameters.get("MaxResults") or 20)
        page = crawls[start : start + size]
        answer: dict[str, Any] = {"Crawls": [crawl.as_dict() for crawl in page]}
        if start + size < len(crawls):
            answer["NextToken"] = str(start + size)
        return ActionResult(answer)

    _replace(glue_responses.GlueResponse, "list_crawls", list_crawls)


def copies_check_the_source_etag() -> None:
    """CopyObject honours x-amz-copy-source-if-match: a source whose ETag differs answers 412
    PreconditionFailed and nothing is copied (Amazon S3 API Reference, CopyObject).

    moto 5.2.5 checks only x-amz-copy-source-if-none-match, so a copy "only if the object is still the
    version that landed" copies whatever is there now.
    """
    from urllib.parse import parse_qs, unquote, urlparse

    from moto.s3.exceptions import PreconditionFailed
    from moto.s3.responses import S3Response

    original = S3Response.copy_object

    def copy_object(self: Any) -> Any:
        wanted = self.headers.get("x-amz-copy-source-if-match")
        if wanted:
            source = self.headers.get("x-amz-copy-source")
            source = source.decode() if isinstance(source, bytes) else source
            parsed = urlparse(source)
            bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
            version = parse_qs(parsed.query).get("versionId", [None])[0]
            found = self.backend.get_object(bucket, key, version_id=version)
            if found is not None and found.etag.strip('"') != wanted.strip('"'):
                raise PreconditionFailed(failed_condition="x-amz-copy-source-If-Match")
        return original(self)

    _replace(S3Response, "copy_object", copy_object)


def receives_stay_linear() -> None:
    """SendMessage and ReceiveMessage cost what they carry, not the square of the queue's depth.

    moto 5.2.5 checks each message it returns against the retention period by computing every queue
    attribute, and every send computes them too (to read ContentBasedDeduplication); the approximate
    counts among them ask each message whether it is visible, reading the time twice per message. A
    3,000-message queue took 1.3 s per ReceiveMessage and 0.2 s per send, so an arrival burst of 10,000
    objects took over an hour to pass through the arrival queue locally. Same answers, one time reading.
    """
    from moto.core.utils import unix_time
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    def messages(self: Any) -> list[Any]:
        now = sqs_models.unix_time_millis()  # type: ignore[attr-defined]
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = sqs_models.unix_time_millis()  # type: ignore[attr-defined]
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = sqs_models.unix_time_millis()  # type: ignore[attr-defined]
        return sum(1 for m in self._messages if not now > m.visible_at)

    valid = is_message_valid_based_on_retention_period
    _replace(SQSBackend, "is_message_valid_based_on_retention_period", valid)
    _replace(Queue, "messages", property(messages))
    _replace(Queue, "approximate_number_of_messages_delayed", property(delayed))
    _replace(Queue, "approximate_number_of_messages_not_visible", property(not_visible))


def quiet_the_interpreter() -> None:
    """moto's ASL interpreter logs every handled failure (Catch, Retry) at ERROR with kilobytes of AST, and
    the server logs every request."""
    for name in ("moto.stepfunctions.parser", "werkzeug"):
        log = logging.getLogger(name)
        level = log.level
        log.setLevel(logging.CRITICAL)
        _undo.append(functools.partial(log.setLevel, level))


PATCHES: tuple[Callable[[], None], ...] = (
    send_task_failure_keeps_cause,
    closed_tokens_time_out,
    tokens_of_ended_tasks_are_closed,
    stopped_executions_stop_waiting,
    unnamed_executions_get_a_name,
    execution_start_time_is_a_string,
    an_execution_being_started_is_running,
    dynamodb_conditional_writes_are_atomic,
    glue_runs_wait_for_the_local_runtime,
    task_timeouts_follow_the_clock,
    waits_follow_the_clock,
    glue_sync_tasks_run,
    nested_executions_use_the_api_names,
    copies_check_the_source_etag,
    crawls_list_newest_first,
    receives_stay_linear,
    quiet_the_interpreter,
)


def install() -> Callable[[], None]:
    """Apply every patch (once); the returned function restores moto."""
    with _lock:
        if not _undo:
            for patch in PATCHES:
                patch()
    return uninstall


def uninstall() -> None:
    with _lock:
        while _undo:
            _undo.pop()()
