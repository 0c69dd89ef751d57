"""Each moto patch in gluerelay.local.patches: the gap in stock moto 5.2.5, then the fix."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from gluerelay.local import patches
from gluerelay.local.clock import CHECK_SECONDS, Clock
from tests.waiter import eventually, finished, next_token, waiter_definition

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        patches.uninstall()
        yield boto3.client("stepfunctions", region_name=REGION)
        patches.uninstall()


def waiting_execution(sfn: Any, timeout_seconds: int = 30) -> tuple[str, str]:
    """An execution waiting on a task token (handed to SQS); returns (execution ARN, token)."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=f"q{time.monotonic_ns()}")["QueueUrl"]
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=waiter_definition(queue, timeout_seconds),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=f"e{time.monotonic_ns()}")["executionArn"]
    return arn, next_token(sqs, queue)


def failure_cause(sfn: Any) -> str | None:
    arn, token = waiting_execution(sfn)
    sfn.send_task_failure(taskToken=token, error="GlueJobFailed", cause="Glue's own message")
    finished(sfn, arn)
    events = sfn.get_execution_history(executionArn=arn)["events"]
    details = next(e for e in events if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    cause: str | None = details.get("cause")
    return cause


def test_send_task_failure_keeps_the_cause(sfn: Any) -> None:
    assert failure_cause(sfn) is None
    patches.install()
    assert failure_cause(sfn) == "Glue's own message"


def late_token_error(sfn: Any) -> str:
    arn, token = waiting_execution(sfn)
    sfn.send_task_success(taskToken=token, output="{}")
    finished(sfn, arn)
    with pytest.raises(ClientError) as raised:
        sfn.send_task_success(taskToken=token, output="{}")
    return str(raised.value.response["Error"]["Code"])


def test_a_token_of_a_closed_task_times_out_as_on_aws(sfn: Any) -> None:
    assert late_token_error(sfn) == "InvalidToken"
    patches.install()
    assert late_token_error(sfn) == "TaskTimedOut"
    with pytest.raises(ClientError, match="InvalidToken"):
        sfn.send_task_success(taskToken="never-issued", output="{}")


def token_of_an_ended_task(sfn: Any, how: str) -> str:
    """The answer to SendTaskFailure for a task that ended while its execution goes on (in the state a Catch
    leads to, as a workflow's failure path is): it timed out, or its Parallel branch was stopped because the
    other branch failed."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=f"q{time.monotonic_ns()}")["QueueUrl"]
    task = json.loads(waiter_definition(queue, timeout_seconds=1 if how == "timeout" else 60))["States"][
        "Wait for the step"
    ]
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Failure path"}]
    if how == "timeout":
        task.pop("End")
        step = {**task, "Catch": catch, "Next": "Failure path"}
    else:
        failing = {
            "StartAt": "Pause",
            "States": {
                "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Boom"},
                "Boom": {"Type": "Fail", "Error": "Boom"},
            },
        }
        waiting = {"StartAt": "Wait for the step", "States": {"Wait for the step": task}}
        step = {"Type": "Parallel", "Branches": [waiting, failing], "Catch": catch, "Next": "Failure path"}
    definition = {
        "StartAt": "Step",
        "States": {"Step": step, "Failure path": {"Type": "Wait", "Seconds": 5, "End": True}},
    }
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    token = next_token(sqs, queue)
    for _ in range(100):  # until the workflow is in its failure path
        history = sfn.get_execution_history(executionArn=arn)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == "Failure path" for e in history):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the workflow never reached its failure path")
    try:
        sfn.send_task_failure(taskToken=token, error="Late", cause="after the timeout")
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    return "accepted"


@pytest.mark.parametrize("how", ["timeout", "branch stopped"])
def test_a_token_of_a_task_that_ended_is_closed_while_the_execution_goes_on(sfn: Any, how: str) -> None:
    install_all_but(patches.tokens_of_ended_tasks_are_closed)  # the gap, with every other patch
    assert token_of_an_ended_task(sfn, how) == "accepted"
    patches.uninstall()
    patches.install()
    assert token_of_an_ended_task(sfn, how) == "TaskTimedOut"


def install_all_but(skipped: Any) -> None:
    for patch in patches.PATCHES:
        if patch is not skipped:
            patch()  # registered in patches' undo list: patches.uninstall() removes them


def unnamed_execution_names(sfn: Any) -> list[str]:
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    names = []
    for _ in range(2):
        try:
            names.append(sfn.start_execution(stateMachineArn=machine)["executionArn"].rsplit(":", 1)[1])
        except ClientError as e:
            names.append(str(e.response["Error"]["Code"]))
    return names


def test_unnamed_executions_get_distinct_names(sfn: Any) -> None:
    assert unnamed_execution_names(sfn)[0] == "None"
    patches.install()
    first, second = unnamed_execution_names(sfn)
    assert first != second and "None" not in (first, second)


def job_run_state() -> str:
    glue = boto3.client("glue", region_name=REGION)
    name = f"j{time.monotonic_ns()}"
    glue.create_job(Name=name, Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
    run_id = glue.start_job_run(JobName=name)["JobRunId"]
    return str(glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"])


def test_glue_job_runs_do_not_succeed_by_themselves(sfn: Any) -> None:
    assert job_run_state() == "SUCCEEDED"  # nothing ran
    patches.install()
    assert job_run_state() == "STARTING"  # until the local Glue runtime moves it


def writers_passing_one_condition(monkeypatch: pytest.MonkeyPatch) -> int:
    """Two threads write `version = 1 -> 2` at once; how many of them succeed."""
    from moto.dynamodb.models import table as table_module

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    name = f"t{time.monotonic_ns()}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "lease"}, "version": {"N": "1"}})
    evaluate = table_module.get_filter_expression  # type: ignore[attr-defined]

    def slow_condition(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # both writers read the item before either writes, unless writes are serialised
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(table_module, "get_filter_expression", slow_condition)
    passed: list[str] = []

    def write(writer: str) -> None:
        try:
            dynamodb.put_item(
                TableName=name,
                Item={"pk": {"S": "lease"}, "version": {"N": "2"}, "writer": {"S": writer}},
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": "1"}},
            )
            passed.append(writer)
        except ClientError:
            pass

    threads = [threading.Thread(target=write, args=(w,)) for w in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.setattr(table_module, "get_filter_expression", evaluate)
    return len(passed)


def test_a_conditional_write_is_atomic(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert writers_passing_one_condition(monkeypatch) == 2  # a lost update
    patches.install()
    assert writers_passing_one_condition(monkeypatch) == 1


def status_of_an_execution_being_started() -> str:
    from moto.stepfunctions.parser.backend.execution import Execution

    starting = Execution.__new__(Execution)  # as registered by StartExecution, before start() runs
    starting.exec_status = None
    try:
        return str(starting.status)
    except AttributeError as e:
        return type(e).__name__


def test_an_execution_being_started_reads_running(sfn: Any) -> None:
    assert status_of_an_execution_being_started() == "AttributeError"
    patches.install()
    assert status_of_an_execution_being_started() == "RUNNING"


def status_after_moving_the_clock_past_the_timeout(sfn: Any, patience: float) -> str:
    """The status once the execution ended, or RUNNING when it still runs `patience` real seconds after
    the clock first moved two hours on. The clock moves two hours on again every second meanwhile: the
    task's wait may start its count only after the token was sent (a busy machine), and a later move still
    takes it past its timeout."""
    clock = Clock()
    restore = patches.use_clock(clock)
    try:
        arn, _ = waiting_execution(sfn, timeout_seconds=7200)
        deadline = time.monotonic() + patience
        while True:
            clock.advance(7201)  # two hours later, on the local cloud's clock
            status = status_after(sfn, arn, min(1.0, max(0.0, deadline - time.monotonic())))
            if status != "RUNNING" or time.monotonic() >= deadline:
                return status
    finally:
        restore()


def status_after(sfn: Any, arn: str, seconds: float) -> str:
    """The execution's status once it ended, or RUNNING when it still runs after `seconds` (real time)."""
    deadline = time.monotonic() + seconds
    while (status := str(sfn.describe_execution(executionArn=arn)["status"])) == "RUNNING":
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return status


def test_a_task_timeout_counts_on_the_local_clock(sfn: Any) -> None:
    # Unpatched, moto waits two real hours: still running well after the patched wait would have noticed.
    assert status_after_moving_the_clock_past_the_timeout(sfn, 10 * CHECK_SECONDS + 2) == "RUNNING"
    patches.install()
    # Patched: it ends as soon as the waiter notices (CHECK_SECONDS); the deadline is only for a busy machine.
    assert status_after_moving_the_clock_past_the_timeout(sfn, 60) == "FAILED"  # States.Timeout
    arn, token = waiting_execution(sfn, timeout_seconds=7200)
    sfn.send_task_success(taskToken=token, output="{}")  # an answer in time still ends the wait at once
    assert finished(sfn, arn)["status"] == "SUCCEEDED"


def status_of_a_minute_wait_on_a_fast_clock(sfn: Any) -> str:
    """A Wait state of 60 s, on a clock that runs 200 times faster than the wall clock (0.3 s)."""
    restore = patches.use_clock(Clock(rate=200))
    try:
        definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}
        machine = sfn.create_state_machine(
            name=f"m{time.monotonic_ns()}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        return status_after(sfn, sfn.start_execution(stateMachineArn=machine)["executionArn"], 3)
    finally:
        restore()


def test_a_wait_state_counts_on_the_local_clock(sfn: Any) -> None:
    assert status_of_a_minute_wait_on_a_fast_clock(sfn) == "RUNNING"  # moto waits a real minute
    patches.install()
    assert status_of_a_minute_wait_on_a_fast_clock(sfn) == "SUCCEEDED"


def status_of_a_glue_sync_task(sfn: Any) -> str:
    """A state machine that runs a Glue job by startJobRun.sync (moto's own Glue finishes it at once)."""
    glue = boto3.client("glue", region_name=REGION)
    job = f"j{time.monotonic_ns()}"
    glue.create_job(Name=job, Role="arn:aws:iam::123456789012:role/glue", Command={"Name": "glueetl"})
    definition = {
        "StartAt": "Job",
        "States": {
            "Job": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": job},
                "ResultPath": None,  # moto's DescribeExecution cannot serialise GetJobRun's datetimes
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    return str(finished(sfn, sfn.start_execution(stateMachineArn=machine)["executionArn"])["status"])


def test_a_glue_sync_task_waits_for_the_job_and_succeeds(sfn: Any) -> None:
    assert status_of_a_glue_sync_task(sfn) == "FAILED"  # 'NoneType' object has no attribute 'interrupt_all'
    patches.glue_sync_tasks_run()  # alone: install() also hands job runs to the local Glue runtime
    assert status_of_a_glue_sync_task(sfn) == "SUCCEEDED"


def test_the_interpreter_stops_logging_handled_failures_at_error(sfn: Any) -> None:
    log = logging.getLogger("moto.stepfunctions.parser")
    assert log.isEnabledFor(logging.ERROR)
    patches.install()
    assert not log.isEnabledFor(logging.ERROR)
    patches.uninstall()
    assert log.isEnabledFor(logging.ERROR)


def test_a_copy_only_if_the_source_etag_matches_refuses_a_changed_source(sfn: Any) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="landed")
    first = s3.put_object(Bucket="landed", Key="landing/x.csv", Body=b"a\n1\n")["ETag"]
    s3.put_object(Bucket="landed", Key="landing/x.csv", Body=b"a\n2\n")  # overwritten: no versions kept

    def copy() -> None:
        s3.copy_object(
            Bucket="landed",
            Key="staging/0.csv",
            CopySource={"Bucket": "landed", "Key": "landing/x.csv"},
            CopySourceIfMatch=first,
        )

    copy()  # moto 5.2.5 copies the overwritten object
    s3.delete_object(Bucket="landed", Key="staging/0.csv")
    patches.install()
    with pytest.raises(ClientError) as refused:
        copy()
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert "Contents" not in s3.list_objects_v2(Bucket="landed", Prefix="staging/")
    current = s3.head_object(Bucket="landed", Key="landing/x.csv")["ETag"]
    s3.copy_object(
        Bucket="landed",
        Key="staging/0.csv",
        CopySource={"Bucket": "landed", "Key": "landing/x.csv"},
        CopySourceIfMatch=current,
    )
    assert s3.get_object(Bucket="landed", Key="staging/0.csv")["Body"].read() == b"a\n2\n"


def test_sqs_calls_cost_what_they_carry_not_the_depth_of_the_queue(
    sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted in time readings per call (not seconds): moto reads the time for every message in the queue
    on every send and receive; patched, a call reads it a few times whatever the depth."""
    from moto.sqs import models as sqs_models

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="deep")["QueueUrl"]
    for _ in range(100):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(10)])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    readings = 0
    real = sqs_models.unix_time_millis  # type: ignore[attr-defined]

    def counted() -> float:
        nonlocal readings
        readings += 1
        return real()

    monkeypatch.setattr(sqs_models, "unix_time_millis", counted)

    def readings_per_call() -> int:
        nonlocal readings
        readings = 0
        sqs.send_message(QueueUrl=url, MessageBody="one more")
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(received) == 10
        return readings

    assert readings_per_call() > 1000  # moto 5.2.5
    patches.install()
    assert readings_per_call() < 100
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    counts = [attributes[f"ApproximateNumberOfMessages{kind}"] for kind in ("", "NotVisible", "Delayed")]
    assert counts == ["982", "20", "1"]  # the same answers: 1,003 sent, 20 received, 1 delayed


def test_racing_sends_for_one_token_are_accepted_once(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two copies of one Glue event, each sending the step's outcome at the same moment: Step Functions
    accepts one and answers TaskTimedOut to the others. The window between moto's check and its notify is
    widened, so without the patch's serialisation several would be accepted."""
    patches.install()
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.notify

    def slow_notify(self: Any, outcome: Any) -> None:
        time.sleep(0.2)
        original(self, outcome)

    monkeypatch.setattr(CallbackEndpoint, "notify", slow_notify)
    arn, token = waiting_execution(sfn)
    start = threading.Barrier(4)
    answers: list[str] = []

    def send() -> None:
        start.wait(timeout=30)
        try:
            sfn.send_task_success(taskToken=token, output="{}")
            answers.append("accepted")
        except ClientError as e:
            answers.append(str(e.response["Error"]["Code"]))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    finished(sfn, arn)

    assert sorted(answers) == ["TaskTimedOut"] * 3 + ["accepted"], answers


def test_list_crawls_answers_the_newest_crawls_first_page_by_page() -> None:
    """Once a crawler has crawled more than 20 times, its newest crawls must still be listed: the sweeper
    finds the crawl that served a step there, and on_glue_event the crawl an event reports."""
    from datetime import timedelta

    from moto.glue.models import FakeCrawl, glue_backends

    def crawl_ids(glue: Any, **kwargs: Any) -> tuple[list[str], str | None]:
        found = glue.list_crawls(CrawlerName="c", **kwargs)
        return [c["CrawlId"] for c in found["Crawls"]], found.get("NextToken")

    with mock_aws():
        patches.uninstall()
        glue = boto3.client("glue", region_name=REGION)
        glue.create_crawler(Name="c", Role="r", Targets={"S3Targets": [{"Path": "s3://b/p/"}]})
        crawler = glue_backends["123456789012"][REGION].crawlers["c"]
        made = []
        for index in range(25):
            crawl = FakeCrawl("c")
            crawl.start_time += timedelta(minutes=index)
            crawler.crawls.append(crawl)
            made.append(crawl.crawl_id)
        newest_first = made[::-1]
        assert newest_first[0] not in crawl_ids(glue, MaxResults=20)[0]  # stock moto: the 20 oldest
        patches.install()
        try:
            first, token = crawl_ids(glue, MaxResults=20)
            rest, last = crawl_ids(glue, MaxResults=20, NextToken=token)
        finally:
            patches.uninstall()
    assert first == newest_first[:20]
    assert (rest, last) == (newest_first[20:], None)


def nested_execution(sfn: Any) -> dict[str, Any]:
    """A parent that starts a child with startExecution.sync:2 and keeps its answer: the parent's end."""
    role = "arn:aws:iam::123456789012:role/sfn"
    child = sfn.create_state_machine(
        name=f"child{time.monotonic_ns()}",
        roleArn=role,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn.$": "$.machine", "Name": "child-1", "Input": {"rows.$": "$.rows"}},
        "ResultSelector": {"status.$": "$.Status", "output.$": "$.Output", "started.$": "$.StartDate"},
        "End": True,
    }
    parent = sfn.create_state_machine(
        name=f"parent{time.monotonic_ns()}",
        roleArn=role,
        definition=json.dumps({"StartAt": "Child", "States": {"Child": task}}),
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=parent, input=json.dumps({"machine": child, "rows": 3}))[
        "executionArn"
    ]
    ended: dict[str, Any] = eventually(
        lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e,
        timeout=60,
        what="the parent execution's end",
    )
    return ended


def test_a_nested_execution_is_started_and_answered_in_the_api_shapes(sfn: Any) -> None:
    stock = nested_execution(sfn)
    assert stock["status"] == "FAILED" and "'StateMachineArn'" in stock["cause"]
    patches.install()
    ended = nested_execution(sfn)
    assert ended["status"] == "SUCCEEDED", ended.get("cause")
    output = json.loads(ended["output"])
    assert (output["status"], output["output"]) == ("SUCCEEDED", {"rows": 3})
    assert isinstance(output["started"], int) and output["started"] > 1_700_000_000_000  # epoch ms


def status_soon_after_stopping(sfn: Any) -> str:
    """Stop an execution that waits for a task token (for up to 60 s); its status a moment later."""
    arn, _ = waiting_execution(sfn, timeout_seconds=60)
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="by a test")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status: str = sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    return "RUNNING"


def test_a_stopped_execution_waiting_for_a_token_ends_aborted_at_once(sfn: Any) -> None:
    assert status_soon_after_stopping(sfn) == "RUNNING"  # stock moto: until its task times out
    patches.install()
    assert status_soon_after_stopping(sfn) == "ABORTED"
