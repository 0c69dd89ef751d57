"""The four handlers through boto3 on moto: DynamoDB (table from template.yaml), Glue, S3, SQS and Step
Functions with moto's ASL interpreter, so task tokens are real and SendTaskSuccess/Failure really move
an execution.

A test state machine hands its token to SQS (``sqs:sendMessage.waitForTaskToken``), the test passes it to
start_step as the pipeline's Lambda task would, and Glue's state change goes to on_glue_event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from relay.adapters import wiring
from relay.adapters.aws import StepFunctionsService
from relay.errors import TaskAlreadyClosedError
from relay.handlers import close_run, on_arrival, on_glue_event, on_schedule, start_step, sweeper

from gluerelay.local import patches
from tests.fakes import load_event
from tests.template import resource
from tests.waiter import finished, next_token, waiter_definition

pytestmark = pytest.mark.integration

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "gluerelay-data"
TABLE = "gluerelay-control"
JOB = "extract_customers"
CRAWLER = "raw_customers"
STACK = "stack"


@dataclass
class Context:
    """The parts of the Lambda context Powertools reads."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function"
    aws_request_id: str = "req-1"


@dataclass
class Aws:
    sfn: Any
    sqs: Any
    glue: Any
    s3: Any
    table: Any
    queue_url: str
    waiter_arn: str

    def waiting_task(self, run_id: str) -> tuple[str, str]:
        """Start an execution that waits on one task; return (execution ARN, its task token)."""
        arn = self.sfn.start_execution(stateMachineArn=self.waiter_arn, name=run_id, input="{}")
        return arn["executionArn"], next_token(self.sqs, self.queue_url)

    def finished(self, arn: str) -> dict[str, Any]:
        return finished(self.sfn, arn)

    def step(self, run_id: str, step: str) -> dict[str, Any]:
        item: dict[str, Any] = self.table.get_item(Key={"pk": f"RUN#{run_id}", "sk": f"STEP#{step}"})["Item"]
        return item


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    wiring.client.cache_clear()
    wiring.table.cache_clear()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        undo = patches.install()
        try:
            yield _build(monkeypatch)
        finally:
            undo()
            wiring.client.cache_clear()
            wiring.table.cache_clear()


def _build(monkeypatch: pytest.MonkeyPatch) -> Aws:
    properties = resource("ControlTable")["Properties"]
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    table = dynamodb.create_table(
        TableName=TABLE,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    glue = boto3.client("glue", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="glue", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    job = resource("ExtractCustomersJob")["Properties"]
    glue.create_job(
        Name=JOB,
        Role=role,
        GlueVersion=job["GlueVersion"],
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/{JOB}.py"},
        ExecutionProperty={"MaxConcurrentRuns": 10},
    )
    glue.create_database(DatabaseInput={"Name": "customers"})
    glue.create_crawler(
        Name=CRAWLER,
        Role=role,
        DatabaseName="customers",
        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/customers/"}]},
    )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    # The waiter stands in for the customers pipeline's state machine (<stack>_customers).
    waiter_arn = sfn.create_state_machine(
        name=f"{STACK}_customers", definition=waiter_definition(queue_url), roleArn=role
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN_PREFIX", waiter_arn.removesuffix("customers"))
    return Aws(sfn, sqs, glue, s3, table, queue_url, waiter_arn)


def job_event(name: str, *, job_run_id: str, state: str = "SUCCEEDED", message: str = "") -> dict[str, Any]:
    event = load_event(name)
    event["detail"].update(jobName=JOB, jobRunId=job_run_id, state=state)
    if message:
        event["detail"]["message"] = message
    return event


def glue_ends(glue_run_id: str, state: str) -> None:
    """Glue's own record of the run moves on, as it does before Glue sends the run's event (moto's job run
    is frozen RUNNING by the patches)."""
    from moto.glue.models import glue_backends

    [run] = [r for r in glue_backends[ACCOUNT][REGION].jobs[JOB].job_runs if r.job_run_id == glue_run_id]
    run.status = state


def start(run_id: str, token: str, *, kind: str = "job", name: str = JOB, step: str = "extract") -> Any:
    request = {
        "pipeline": "customers",
        "kind": kind,
        "name": name,
        "run_id": run_id,
        "step": step,
        "token": token,
        "execution_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}_customers:{run_id}",
    }
    return start_step.handler(request, Context())


def test_a_job_step_records_its_token_then_starts_glue_with_the_run_id(aws: Aws) -> None:
    _, token = aws.waiting_task("run-1")
    result = start("run-1", token)

    runs = aws.glue.get_job_runs(JobName=JOB)["JobRuns"]
    assert [r["Id"] for r in runs] == [result["glue_run_id"]]
    assert runs[0]["Arguments"]["--run_id"] == "run-1"
    assert runs[0]["Arguments"]["--gluerelay_step"] == "extract"
    assert runs[0]["Arguments"]["--summary_uri"] == f"s3://{BUCKET}/summaries/run-1/extract.json"
    step = aws.step("run-1", "extract")
    assert (
        step["status"] == "OPEN" and step["token"] == token and step["glue_run_id"] == result["glue_run_id"]
    )


def test_a_succeeded_job_event_completes_the_real_task_with_the_step_facts(aws: Aws) -> None:
    arn, token = aws.waiting_task("run-2")
    glue_run_id = start("run-2", token)["glue_run_id"]
    summary = {"rows_read": 10, "rows_written": 9, "rows_quarantined": 1}
    aws.s3.put_object(Bucket=BUCKET, Key="summaries/run-2/extract.json", Body=json.dumps(summary).encode())
    glue_ends(glue_run_id, "SUCCEEDED")

    verdict = on_glue_event.handler(job_event("glue-job-succeeded", job_run_id=glue_run_id), Context())

    assert verdict["completed"] == 1
    execution = aws.finished(arn)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["step"] == "extract" and output["glue_run_id"] == glue_run_id
    assert output["rows"]["rows_written"] == 9
    assert aws.step("run-2", "extract")["status"] == "SUCCEEDED"


def test_a_failed_job_fails_the_task_with_glues_message_and_a_duplicate_changes_nothing(aws: Aws) -> None:
    arn, token = aws.waiting_task("run-3")
    glue_run_id = start("run-3", token)["glue_run_id"]
    message = "ExtractError: landed file s3://b/landing/a.csv cannot be read"
    event = job_event("glue-job-failed", job_run_id=glue_run_id, state="FAILED", message=message)
    glue_ends(glue_run_id, "FAILED")

    on_glue_event.handler(event, Context())
    again = on_glue_event.handler(event, Context())

    execution = aws.finished(arn)
    assert execution["status"] == "FAILED"
    history = aws.sfn.get_execution_history(executionArn=arn)["events"]
    failed = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed["error"] == "GlueJobFailed"
    assert message in failed["cause"]
    assert again["completed"] == 0


def test_a_job_event_glue_does_not_confirm_ends_nothing_until_glue_does(aws: Aws) -> None:
    # Given a job run Glue still reports STARTING
    arn, token = aws.waiting_task("run-9")
    glue_run_id = start("run-9", token)["glue_run_id"]
    event = job_event("glue-job-failed", job_run_id=glue_run_id, state="FAILED", message="not Glue's word")
    # When a FAILED event for it arrives
    early = on_glue_event.handler(event, Context())
    # Then the step stays open and the run keeps waiting
    assert early["completed"] == 0
    assert (
        early["verdict"]
        == f"ignored: Glue reports job run {glue_run_id} STARTING, not ended: the event is not its end"
    )
    assert aws.step("run-9", "extract")["status"] == "OPEN"
    assert aws.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    # And when Glue's record says the run SUCCEEDED, a FAILED event completes it as Glue says
    glue_ends(glue_run_id, "SUCCEEDED")
    late = on_glue_event.handler(event, Context())
    assert late["completed"] == 1
    assert aws.finished(arn)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    "detail",
    [
        {"jobName": JOB, "jobRunId": "", "state": "FAILED", "message": "x"},
        {"jobName": "", "jobRunId": "jr_1", "state": "SUCCEEDED"},
        {"crawlerName": "", "state": "Failed", "message": "Crawler Failed"},
    ],
    ids=["empty-job-run-id", "empty-job-name", "empty-crawler-name"],
)
def test_glue_events_with_empty_identifiers_are_rejected_not_raised(aws: Aws, detail: dict[str, Any]) -> None:
    kind = "Glue Crawler State Change" if "crawlerName" in detail else "Glue Job State Change"
    event = {**load_event("glue-job-failed"), "detail-type": kind, "detail": detail}
    assert on_glue_event.handler(event, Context())["verdict"] == "rejected: malformed event"


def test_a_crawler_step_completes_on_the_crawl_it_started(aws: Aws) -> None:
    arn, token = aws.waiting_task("run-4")
    start("run-4", token, kind="crawler", name=CRAWLER, step="crawl_raw")
    assert aws.glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "RUNNING"

    event = load_event("glue-crawler-succeeded")
    event["detail"]["crawlerName"] = CRAWLER
    event["detail"].update({"completionDate": datetime.now(UTC).isoformat(), "runningTime (sec)": "1"})
    verdict = on_glue_event.handler(event, Context())

    assert verdict["completed"] == 1
    assert aws.finished(arn)["status"] == "SUCCEEDED"


def test_events_for_jobs_we_did_not_start_and_malformed_events_are_skipped(aws: Aws) -> None:
    foreign = on_glue_event.handler(job_event("glue-job-succeeded", job_run_id="jr_unknown"), Context())
    malformed = on_glue_event.handler({"detail-type": "Glue Job State Change", "detail": {}}, Context())
    assert foreign["verdict"].startswith("ignored")
    assert malformed["verdict"].startswith("rejected")


def test_a_token_of_a_finished_execution_is_a_closed_task_not_an_error(aws: Aws) -> None:
    arn, token = aws.waiting_task("run-5")
    service = StepFunctionsService(aws.sfn, None)
    service.send_success(token, {"ok": True})
    assert aws.finished(arn)["status"] == "SUCCEEDED"
    with pytest.raises(TaskAlreadyClosedError):
        service.send_failure(token, "Late", "the event came after the run ended")


def test_arrivals_start_one_named_execution_per_batch_and_a_redelivery_starts_none(aws: Aws) -> None:
    event = load_event("s3-object-created")
    event["detail"]["bucket"]["name"] = BUCKET
    batch = {"Records": [_sqs_record(event)]}

    first = on_arrival.handler(batch, Context())
    again = on_arrival.handler(batch, Context())

    assert first == again == {"batchItemFailures": []}
    executions = aws.sfn.list_executions(stateMachineArn=aws.waiter_arn)["executions"]
    assert len(executions) == 1 and executions[0]["name"].startswith("customers-s3-")
    manifest = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="manifests/")["Contents"]
    assert [m["Key"] for m in manifest] == [f"manifests/{executions[0]['name']}.json"]


def test_an_object_created_event_without_an_etag_is_rejected_and_claims_nothing(aws: Aws) -> None:
    event = load_event("s3-object-created")
    event["detail"]["bucket"]["name"] = BUCKET
    del event["detail"]["object"]["etag"]
    assert on_arrival.handler({"Records": [_sqs_record(event)]}, Context()) == {"batchItemFailures": []}
    assert aws.sfn.list_executions(stateMachineArn=aws.waiter_arn)["executions"] == []
    assert aws.table.scan()["Items"] == []  # no claim under an empty etag


def test_the_sweeper_completes_a_step_whose_event_was_lost(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPAIR_AFTER_SECONDS", "0")
    arn, token = aws.waiting_task("run-6")
    glue_run_id = start("run-6", token)["glue_run_id"]
    # The run finished in Glue, but its event never arrived: moto's job run is frozen RUNNING by the patches,
    # so move it on as Glue would.
    from moto.glue.models import glue_backends

    glue_backends[ACCOUNT][REGION].jobs[JOB].job_runs[0].status = "SUCCEEDED"
    time.sleep(0.01)

    report = sweeper.handler({}, Context())

    assert report["repaired"] == [f"run-6/extract: job run {glue_run_id} SUCCEEDED, event lost"]
    assert aws.finished(arn)["status"] == "SUCCEEDED"
    assert aws.step("run-6", "extract")["repaired_by"] == "sweeper"


def test_a_failed_run_is_closed_once_from_the_workflow_and_again_from_its_status_event(aws: Aws) -> None:
    # Given a run whose execution failed at cleanse while crawl_raw's crawl was still going
    arn, token = aws.waiting_task("run-7")
    start("run-7", token, kind="crawler", name=CRAWLER, step="crawl_raw")
    aws.table.put_item(
        Item={
            "pk": "RUN#run-7",
            "sk": "RUN",
            "run_id": "run-7",
            "pipeline": "customers",
            "status": "RUNNING",
            "execution_arn": arn,
            "executions": 1,
        }
    )
    failed = {"cleanse": {"Error": "GlueJobFailed", "Cause": "cleanse_customers jr_1 FAILED: no columns"}}
    request = {"pipeline": "customers", "run_id": "run-7", "execution_arn": arn, "failed": failed}
    # When the workflow's failure path closes it
    closed = close_run.handler(request, Context())
    # Then it names the step and Glue's message, closes the run's open step, and ends the record
    assert closed["status"] == "FAILED" and closed["step"] == "cleanse" and closed["error"] == "GlueJobFailed"
    assert closed["closed_steps"] == ["crawl_raw"]
    record = aws.table.get_item(Key={"pk": "RUN#run-7", "sk": "RUN"})["Item"]
    assert (record["status"], record["failed_step"]) == ("FAILED", "cleanse")
    # And Step Functions' own event for the same end changes nothing
    event = load_event("sfn-execution-aborted")
    event["detail"].update(executionArn=arn, status="FAILED", name="run-7", input=None, error="GlueJobFailed")
    again = close_run.handler(event, Context())
    assert again["closed_steps"] == []
    assert aws.table.get_item(Key={"pk": "RUN#run-7", "sk": "RUN"})["Item"]["status"] == "FAILED"


def test_an_aborted_execution_ends_its_run_aborted(aws: Aws) -> None:
    arn, _ = aws.waiting_task("customers-manual-20260101T000000-a1b2c3")
    aws.table.put_item(
        Item={
            "pk": "RUN#customers-manual-20260101T000000-a1b2c3",
            "sk": "RUN",
            "pipeline": "customers",
            "run_id": "customers-manual-20260101T000000-a1b2c3",
            "status": "RUNNING",
            "execution_arn": arn,
        }
    )
    event = load_event("sfn-execution-aborted")
    event["detail"]["executionArn"] = arn
    closed = close_run.handler(event, Context())
    assert (closed["status"], closed["error"]) == ("ABORTED", "RunAborted")


def test_the_pipeline_clock_starts_nothing_when_no_schedule_is_due(aws: Aws) -> None:
    # The repo's pipelines have no schedules: a tick starts no run (the schedules' logic has unit tests)
    tick = {
        "version": "0",
        "id": "x",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-01-05T03:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {},
    }
    assert on_schedule.handler(tick, Context()) == {"minute": "2026-01-05T03:00:00+00:00", "runs": []}


def _sqs_record(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1767225600000",
            "SenderId": "events",
            "ApproximateFirstReceiveTimestamp": "1767225600000",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:arrivals",
        "awsRegion": REGION,
    }
