"""The backfill state machine (statemachine/backfill.asl.json): rerun many runs of a pipeline, at most N at
a time, in AWS (the operator's laptop may go offline once it has started).

One inline Map over the backfill's run ids with MaxConcurrency from the input. Each iteration:
1. reads the backfill's record: a cancelled backfill starts nothing more (`gluerelay backfill cancel`);
2. prepare_rerun claims the run's rerun for the backfill and answers with the execution's name and input
   (asked again, the same: a retried iteration starts nothing new);
3. starts that execution of the pipeline's state machine and waits for it to end
   (`states:startExecution.sync:2`): so at most N reruns run at once;
4. a rerun that fails, or that prepare_rerun refuses, is kept on the backfill's record (`refused`) or in
   its run's record, and the backfill goes on with the others.

The Map's results are dropped (ResultPath null): a backfill's figures are read from the control table
(`gluerelay backfill status`), and its output stays far below Step Functions' 256 KiB.
"""

from __future__ import annotations

from typing import Any

from relay.contract import BACKFILL_PK_PREFIX, BACKFILL_SK, MAX_BACKFILL_CONCURRENCY

from gluerelay.pipelines.asl import DYNAMODB_TRANSIENT, LAMBDA_TRANSIENT

SUBSTITUTIONS = {
    "Partition": "AWS::Partition",
    "ControlTable": "the control table's name",
    "PrepareRerunFunctionArn": "prepare_rerun's ARN",
    "StateMachineArnPrefix": "arn:…:stateMachine:<stack>_, a pipeline's state machine is this plus its name",
}
MAP = "Rerun each run, at most max_concurrent at once"
CHECK = "Is the backfill cancelled?"
PREPARE = "Prepare the rerun"
RERUN = "Run the rerun and wait for it"
RECORD_DONE = "Record the backfill as finished"


def _backfill_key() -> dict[str, Any]:
    return {
        "pk": {"S.$": f"States.Format('{BACKFILL_PK_PREFIX}{{}}', $.backfill_id)"},
        "sk": {"S": BACKFILL_SK},
    }


def _dynamodb_retry() -> list[dict[str, Any]]:
    return [{"ErrorEquals": DYNAMODB_TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2}]


def _end(comment: str, outcome: str) -> dict[str, Any]:
    return {"Type": "Pass", "Comment": comment, "Result": {"outcome": outcome}, "End": True}


def compile_backfill() -> dict[str, Any]:
    iteration: dict[str, Any] = {
        CHECK: {
            "Type": "Task",
            "Comment": "`gluerelay backfill cancel` sets cancelled: the runs not started yet are skipped.",
            "Resource": "arn:${Partition}:states:::dynamodb:getItem",
            "Parameters": {
                "TableName": "${ControlTable}",
                "Key": _backfill_key(),
                "ProjectionExpression": "cancelled",
                "ConsistentRead": True,
            },
            "ResultSelector": {"cancelled.$": "$.Item.cancelled.BOOL"},
            "ResultPath": "$.check",
            "Retry": _dynamodb_retry(),
            "Next": "Cancelled?",
        },
        "Cancelled?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.check.cancelled", "BooleanEquals": True, "Next": "Skipped: cancelled"}
            ],
            "Default": PREPARE,
        },
        "Skipped: cancelled": _end(
            "The backfill was cancelled before this run's rerun started.", "CANCELLED"
        ),
        PREPARE: {
            "Type": "Task",
            "Comment": "Claims the run's rerun for this backfill (idempotently) and names its execution.",
            "Resource": "arn:${Partition}:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "${PrepareRerunFunctionArn}",
                "Payload": {
                    "backfill_id.$": "$.backfill_id",
                    "run_id.$": "$.run_id",
                    "from_step.$": "$.from_step",
                },
            },
            "ResultSelector": {"execution_name.$": "$.Payload.execution_name", "input.$": "$.Payload.input"},
            "ResultPath": "$.rerun",
            "Retry": [
                {
                    "ErrorEquals": [*LAMBDA_TRANSIENT, "ConditionFailedError"],
                    "IntervalSeconds": 2,
                    "MaxAttempts": 6,
                    "BackoffRate": 2,
                    "JitterStrategy": "FULL",
                }
            ],
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.refusal", "Next": "Record the refusal"}
            ],
            "Next": RERUN,
        },
        "Record the refusal": {
            "Type": "Task",
            "Comment": "Why this run was not rerun (a run still running, a landed file replaced, ...).",
            "Resource": "arn:${Partition}:states:::dynamodb:updateItem",
            "Parameters": {
                "TableName": "${ControlTable}",
                "Key": _backfill_key(),
                "UpdateExpression": "SET refused.#run = :cause",
                "ExpressionAttributeNames": {"#run.$": "$.run_id"},
                "ExpressionAttributeValues": {":cause": {"S.$": "$.refusal.Cause"}},
            },
            "ResultPath": None,
            "Retry": _dynamodb_retry(),
            "Next": "Refused",
        },
        "Refused": _end("prepare_rerun refused the run: its cause is on the backfill's record.", "REFUSED"),
        RERUN: {
            "Type": "Task",
            "Comment": "Starts <run>-rerun-<n> and waits for it: what bounds the reruns running at once.",
            "Resource": "arn:${Partition}:states:::states:startExecution.sync:2",
            "Parameters": {
                "StateMachineArn.$": "States.Format('${StateMachineArnPrefix}{}', $.pipeline)",
                "Name.$": "$.rerun.execution_name",
                "Input.$": "$.rerun.input",
            },
            "ResultSelector": {"status.$": "$.Status"},
            "ResultPath": "$.result",
            "Catch": [
                {
                    "ErrorEquals": ["StepFunctions.ExecutionAlreadyExistsException"],
                    "ResultPath": None,
                    "Next": "Ran already",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Rerun did not succeed"},
            ],
            "Next": "Rerun succeeded",
        },
        "Ran already": _end("A repeated iteration: the rerun's execution exists already.", "RAN_ALREADY"),
        "Rerun did not succeed": _end("The run's record says how (close_run recorded it).", "FAILED"),
        "Rerun succeeded": _end("The run's record says SUCCEEDED.", "SUCCEEDED"),
    }
    return {
        "Comment": "gluerelay backfill: reruns a pipeline's runs from a step, at most max_concurrent at "
        "once. Its figures are in the control table (gluerelay backfill status).",
        "StartAt": MAP,
        "States": {
            MAP: {
                "Type": "Map",
                "Comment": f"Inline: at most {MAX_BACKFILL_CONCURRENCY} iterations run at once.",
                "ItemsPath": "$.runs",
                "ItemSelector": {
                    "run_id.$": "$$.Map.Item.Value",
                    "backfill_id.$": "$.backfill_id",
                    "pipeline.$": "$.pipeline",
                    "from_step.$": "$.from_step",
                },
                "MaxConcurrencyPath": "$.max_concurrent",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": CHECK,
                    "States": iteration,
                },
                "ResultPath": None,
                "Next": RECORD_DONE,
            },
            RECORD_DONE: {
                "Type": "Task",
                "Resource": "arn:${Partition}:states:::dynamodb:updateItem",
                "Parameters": {
                    "TableName": "${ControlTable}",
                    "Key": _backfill_key(),
                    "UpdateExpression": "SET finished_at = :now",
                    "ExpressionAttributeValues": {":now": {"S.$": "$$.State.EnteredTime"}},
                },
                "ResultPath": None,
                "Retry": _dynamodb_retry(),
                "End": True,
            },
        },
    }
