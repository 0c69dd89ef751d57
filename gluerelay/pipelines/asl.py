"""A pipeline compiled to its state machine (statemachine/<name>.asl.json): one readable state per step.

Every step is a `lambda:invoke.waitForTaskToken` task named by its id: start_step records it and starts
Glue, Glue's own event completes the token. Steps that may run at once are the branches of a Parallel
state. A failing step's Catch puts the error under `$.failed.<step id>`; inside a branch a Fail state
carries that object out as its Cause, so the step's id travels with the failure from any depth. At the
top, close_run names the step, stops the run's other Glue job runs, records the run and ends it.

Resuming needs no state of its own: start_step answers at once for a step that already succeeded in the
run, so a resumed execution runs exactly the steps that did not.

The definition uses CloudFormation's DefinitionSubstitutions for everything stack-specific (SUBSTITUTIONS).
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

from relay.contract import RUN_PK_PREFIX, RUN_SK, RUN_SORT_SEPARATOR, RunStatus, runs_pk

from gluerelay.pipelines.graph import Node, Parallel, Sequence, Task, steps_of, workflow
from gluerelay.pipelines.model import PARAM_VARIABLE, Catalog, External, Pipeline, Quality, Step

# What the template's state machine block must give every pipeline's definition.
SUBSTITUTIONS = {
    "Partition": "AWS::Partition",
    "ControlTable": "the control table's name",
    "StartStepFunctionArn": "start_step's ARN",
    "CloseRunFunctionArn": "close_run's ARN",
    "GluePrefix": "<stack>_, the start of every stack-owned Glue name",
    "DataBucket": "the data bucket's name",
    "CatalogDatabase": "the stack's Data Catalog database (catalog steps' tables)",
    "DataQualityRoleArn": "the role Glue Data Quality evaluates quality steps' rulesets as",
    "StepTimeoutSeconds": "the default step timeout",
}
RECORD_STARTED = "Record the run as started"
RECORD_SUCCEEDED = "Record the run as succeeded"
SUCCEEDED = "Run succeeded"
CLOSE_RUN = "Close the failed run"
RUN_FAILED = "Run failed"
RUN_NOT_CLOSED = "Run failed, not closed"
FAILED_PATH = "$.failed"
BRANCHES_KEY = "branches"  # where a Parallel's Catch puts a failed branch's error (beside step ids)
STEP_FAILED_ERROR = "StepFailed"  # what a branch's Fail state raises; its Cause holds the failed map
# Glue's failures as start_step, on_glue_event and the sweeper report them (retried by a step's `retry`).
GLUE_FAILURES = [
    "GlueJobFailed",
    "GlueJobTimeout",
    "GlueCrawlFailed",
    "GlueCatalogFailed",
    "GlueQualityFailed",
]
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
DYNAMODB_TRANSIENT = [
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.ThrottlingException",
]
RUN_VARIABLE_PATHS = {
    "run_id": "$.run_id",
    "trigger": "$.trigger",
    "ingest_date": "$.ingest_date",
    "manifest_uri": "$.manifest_uri",
}
MAX_STATE_NAME = 80


def compile_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's state machine definition (before DefinitionSubstitutions)."""
    graph = workflow({step_id: step.needs for step_id, step in pipeline.steps.items()})
    names = _Names(set(pipeline.steps))
    states: dict[str, Any] = {RECORD_STARTED: _record_started(pipeline.pipeline)}
    first = _emit(graph, pipeline, states, names, next_state=RECORD_SUCCEEDED, on_failure=CLOSE_RUN)
    states[RECORD_STARTED]["Next"] = first
    states[RECORD_SUCCEEDED] = _record_succeeded()
    states[SUCCEEDED] = {"Type": "Succeed"}
    states[CLOSE_RUN] = _close_run(pipeline.pipeline)
    states[RUN_FAILED] = {
        "Type": "Fail",
        "Comment": "close_run names the failed step and gives the run's error and cause.",
        "ErrorPath": "$.closed.error",
        "CausePath": "$.closed.cause",
    }
    states[RUN_NOT_CLOSED] = {
        "Type": "Fail",
        "Comment": "close_run itself failed: the run's failure as the steps reported it.",
        "Error": "RunNotClosed",
        "CausePath": f"States.JsonToString({FAILED_PATH})",
    }
    about = f": {pipeline.description.rstrip('.')}" if pipeline.description else ""
    return {
        "Comment": f"gluerelay pipeline {pipeline.pipeline}{about}. "
        "Each step is a callback completed by Glue's own event; nothing polls.",
        "StartAt": RECORD_STARTED,
        "States": _in_run_order(states, RECORD_STARTED),
    }


def _in_run_order(states: dict[str, Any], start: str) -> dict[str, Any]:
    """The states as a reader follows them: along `Next` from the start, then the failure path."""
    ordered: dict[str, Any] = {}
    name: str | None = start
    while name is not None and name not in ordered:
        ordered[name] = states[name]
        name = states[name].get("Next")
    return {**ordered, **{k: v for k, v in states.items() if k not in ordered}}


def to_text(definition: dict[str, Any]) -> str:
    """The checked-in form: readable JSON. `${StepTimeoutSeconds}` stays a bare number placeholder."""
    text = json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
    return text.replace('"${StepTimeoutSeconds}"', "${StepTimeoutSeconds}")


class _Names:
    """Unique state names: step ids are states; Parallels and branch ends get readable names."""

    def __init__(self, taken: set[str]) -> None:
        self._taken = {
            *taken,
            RECORD_STARTED,
            RECORD_SUCCEEDED,
            SUCCEEDED,
            CLOSE_RUN,
            RUN_FAILED,
            RUN_NOT_CLOSED,
        }

    def new(self, wanted: str) -> str:
        name = wanted if len(wanted) <= MAX_STATE_NAME else wanted[: MAX_STATE_NAME - 1] + "…"
        base, number = name, 2
        while name in self._taken:
            suffix = f" ({number})"
            name = base[: MAX_STATE_NAME - len(suffix)] + suffix
            number += 1
        self._taken.add(name)
        return name


def _emit(
    node: Node,
    pipeline: Pipeline,
    states: dict[str, Any],
    names: _Names,
    *,
    next_state: str | None,
    on_failure: str,
) -> str:
    """Add the states of `node` (then `next_state`, or the branch's end when None); its first state."""
    if isinstance(node, Task):
        states[node.step] = _step_task(node.step, pipeline.steps[node.step], pipeline, next_state, on_failure)
        return node.step
    if isinstance(node, Sequence):
        following = next_state
        for item in reversed(node.items):
            following = _emit(item, pipeline, states, names, next_state=following, on_failure=on_failure)
        assert following is not None
        return following
    return _parallel(node, pipeline, states, names, next_state=next_state, on_failure=on_failure)


def _parallel(
    node: Parallel,
    pipeline: Pipeline,
    states: dict[str, Any],
    names: _Names,
    *,
    next_state: str | None,
    on_failure: str,
) -> str:
    branches = []
    for branch in node.branches:
        branch_states: dict[str, Any] = {}
        first_step = steps_of(branch)[0]
        failed = names.new(f"{first_step} branch failed")
        start = _emit(branch, pipeline, branch_states, names, next_state=None, on_failure=failed)
        branch_states[failed] = {
            "Type": "Fail",
            "Comment": "Carries the failed step's id and error out of the branch.",
            "Error": STEP_FAILED_ERROR,
            "CausePath": f"States.JsonToString({FAILED_PATH})",
        }
        branches.append({"StartAt": start, "States": _in_run_order(branch_states, start)})
    heads = [steps_of(branch)[0] for branch in node.branches]
    name = names.new("Run " + " and ".join(heads) + " at once")
    states[name] = {
        "Type": "Parallel",
        "Comment": "When a branch fails, Step Functions stops the others; close_run stops their job runs.",
        "Branches": branches,
        "ResultPath": None,
        "Catch": [
            {"ErrorEquals": ["States.ALL"], "ResultPath": f"{FAILED_PATH}.{BRANCHES_KEY}", "Next": on_failure}
        ],
        **({"Next": next_state} if next_state else {"End": True}),
    }
    return name


def _step_task(
    step_id: str, step: Step, pipeline: Pipeline, next_state: str | None, on_failure: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "pipeline": pipeline.pipeline,
        "run_id.$": "$.run_id",
        "step": step_id,
        "kind": step.kind,
        "name": _glue_name(step.resource) if step.kind in {"job", "crawler"} else step.resource,
        "token.$": "$$.Task.Token",
        "execution_arn.$": "$$.Execution.Id",
        "timeout_seconds": _timeout(step),
    }
    if step.kind == "job":
        payload["arguments"] = dict(
            _argument(name_, template, pipeline) for name_, template in step.args.items()
        )
    if step.catalog is not None:
        payload["catalog"] = _catalog(step.catalog, pipeline)
    if step.quality is not None:
        payload["quality"] = _quality(step_id, step.quality, pipeline)
    retry: list[dict[str, Any]] = [
        {
            "ErrorEquals": [*LAMBDA_TRANSIENT, "ConditionFailedError"],
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "JitterStrategy": "FULL",
        }
    ]
    if step.kind == "job":
        retry.append(
            {
                "ErrorEquals": ["ConcurrentRunsExceededException"],
                "IntervalSeconds": 30,
                "MaxAttempts": 10,
                "BackoffRate": 1.5,
                "JitterStrategy": "FULL",
            }
        )
    if step.retry is not None:
        retry.append(
            {
                "ErrorEquals": GLUE_FAILURES,
                "IntervalSeconds": step.retry.interval_seconds,
                "MaxAttempts": step.retry.attempts,
                "BackoffRate": step.retry.backoff_rate,
            }
        )
    where = f"{step.resource_name} (another stack's)" if step.external else step.resource_name
    summary = step.quality is not None and step.quality.summary_of is not None
    about = {
        "catalog": f"Catalog table {where}: start_step registers the run's partition, completes the token.",
        "quality": f"Quality gate on job step {where}'s summary: start_step judges it, completes the token."
        if summary
        else f"Quality rules on table {where}: Glue Data Quality evaluates them; its event completes it.",
    }.get(step.kind, f"Glue {step.kind} {where}: start_step starts it; Glue's own event completes the token.")
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": step.description or about,
        "Resource": "arn:${Partition}:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "${StartStepFunctionArn}", "Payload": payload},
        "TimeoutSeconds": _timeout(step),
        "ResultPath": None,
        "Retry": retry,
        "Catch": [
            {"ErrorEquals": ["States.ALL"], "ResultPath": f"{FAILED_PATH}.{step_id}", "Next": on_failure}
        ],
    }
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


def _glue_name(resource: str | External) -> str:
    """A job's or crawler's Glue name in the definition: an external's as it is, the stack's prefixed."""
    return resource.external if isinstance(resource, External) else "${GluePrefix}" + resource


def _catalog(spec: Catalog, pipeline: Pipeline) -> dict[str, Any]:
    """A catalog step's CatalogRequest: the stack's database, the table's folder, the run's partition."""
    request: dict[str, Any] = {
        "database": "${CatalogDatabase}",
        "location": "s3://${DataBucket}/" + spec.location,
        "format": spec.format,
        "partitions": [
            dict([("name", key), _argument("value", template, pipeline)])
            for key, template in spec.partitions.items()
        ],
        "on_drift": spec.on_drift,
    }
    if spec.columns:
        request["columns"] = [{"name": name, "type": hive_type} for name, hive_type in spec.columns.items()]
    else:
        request["columns_from"] = spec.columns_from
    if spec.crawler is not None:
        request["crawler"] = _glue_name(spec.crawler)
    return request


def _quality(step_id: str, spec: Quality, pipeline: Pipeline) -> dict[str, Any]:
    """A quality step's QualityRequest: the rules, and a job step's summary or the table's run partition."""
    rules = [spec_.model_dump() for spec_ in spec.specs()]
    if spec.summary_of is not None:
        return {"rules": rules, "summary_of": spec.summary_of}
    return {
        "rules": rules,
        "database": "${CatalogDatabase}",
        "partition": [
            dict([("name", key), _argument("value", template, pipeline)])
            for key, template in spec.partition.items()
        ],
        "ruleset": "${GluePrefix}" + f"{pipeline.pipeline}_{step_id}",
        "role": "${DataQualityRoleArn}",
    }


def _timeout(step: Step) -> int | str:
    return step.timeout_seconds if step.timeout_seconds is not None else "${StepTimeoutSeconds}"


def _argument(name: str, template: str, pipeline: Pipeline) -> tuple[str, str]:
    """A job argument as a Payload entry: a literal, a path, or States.Format over paths."""
    literal = {"pipeline": pipeline.pipeline, "bucket": "${DataBucket}"}
    pieces: list[str] = []  # the format string, escaped for an intrinsic function
    paths: list[str] = []
    plain: list[str] = []  # the literal text, when nothing varies per run
    for text, field, _, _ in string.Formatter().parse(template):
        pieces.append(_escape(text))
        plain.append(text)
        if field is None:
            continue
        if field in literal:  # no characters to escape: a bucket's name, a pipeline's, or ${DataBucket}
            pieces.append(literal[field])
            plain.append(literal[field])
        else:
            pieces.append("{}")
            paths.append(_path(field))
    if not paths:
        return name, "".join(plain)
    if len(paths) == 1 and "".join(plain) == "":
        return f"{name}.$", paths[0]
    return f"{name}.$", "States.Format('" + "".join(pieces) + "', " + ", ".join(paths) + ")"


def _path(variable: str) -> str:
    if variable.startswith(PARAM_VARIABLE):
        return "$.params." + variable.removeprefix(PARAM_VARIABLE)
    return RUN_VARIABLE_PATHS[variable]


def _escape(text: str) -> str:
    """Literal text inside an intrinsic function's string: ' { } \\ are escaped with a backslash."""
    return re.sub(r"([\\'{}])", r"\\\1", text)


# contract.run_sort as the state machine writes it: the first execution's start, then the run id.
_RUN_SORT = f"States.Format('{{}}{_escape(RUN_SORT_SEPARATOR)}{{}}', $$.Execution.StartTime, $.run_id)"


def _record_started(pipeline: str) -> dict[str, Any]:
    """The run record: created RUNNING by the first execution, set RUNNING again by a resumed one."""
    return {
        "Type": "Task",
        "Comment": "A resumed run keeps its trigger, start and input, and counts its executions. "
        "runs_pk and run_sort place the run in the run index (by pipeline, newest first).",
        "Resource": "arn:${Partition}:states:::dynamodb:updateItem",
        "Parameters": {
            "TableName": "${ControlTable}",
            "Key": _run_key(),
            "UpdateExpression": (
                "SET #status = :running, run_id = :run, pipeline = :pipeline, execution_arn = :execution, "
                "#trigger = if_not_exists(#trigger, :trigger), "
                "started_at = if_not_exists(started_at, :started), "
                "runs_pk = :runs, run_sort = if_not_exists(run_sort, :sort), "
                "ingest_date = if_not_exists(ingest_date, :date), #input = if_not_exists(#input, :input), "
                "executions = if_not_exists(executions, :zero) + :one "
                "REMOVE ended_at, failed_step, #error, cause"
            ),
            "ExpressionAttributeNames": {
                "#status": "status",
                "#trigger": "trigger",
                "#input": "input",
                "#error": "error",
            },
            "ExpressionAttributeValues": {
                ":running": {"S": RunStatus.RUNNING.value},
                ":run": {"S.$": "$.run_id"},
                ":pipeline": {"S": pipeline},
                ":execution": {"S.$": "$$.Execution.Id"},
                ":trigger": {"S.$": "$.trigger"},
                ":started": {"S.$": "$$.Execution.StartTime"},
                ":runs": {"S": runs_pk(pipeline)},
                ":sort": {"S.$": _RUN_SORT},
                ":date": {"S.$": "$.ingest_date"},
                ":input": {"S.$": "States.JsonToString($)"},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
            },
        },
        "ResultPath": None,
        "Retry": [
            {"ErrorEquals": DYNAMODB_TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2}
        ],
    }


def _record_succeeded() -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:${Partition}:states:::dynamodb:updateItem",
        "Parameters": {
            "TableName": "${ControlTable}",
            "Key": _run_key(),
            "UpdateExpression": "SET #status = :succeeded, ended_at = :ended",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":succeeded": {"S": RunStatus.SUCCEEDED.value},
                ":ended": {"S.$": "$$.State.EnteredTime"},
            },
        },
        "ResultPath": None,
        "Retry": [
            {"ErrorEquals": DYNAMODB_TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2}
        ],
        "Next": SUCCEEDED,
    }


def _close_run(pipeline: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Names the failed step, stops the run's other Glue job runs and records the run.",
        "Resource": "arn:${Partition}:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": "${CloseRunFunctionArn}",
            "Payload": {
                "pipeline": pipeline,
                "run_id.$": "$.run_id",
                "execution_arn.$": "$$.Execution.Id",
                "failed.$": FAILED_PATH,
            },
        },
        "ResultSelector": {"error.$": "$.Payload.error", "cause.$": "$.Payload.cause"},
        "ResultPath": "$.closed",
        "Retry": [
            {
                "ErrorEquals": LAMBDA_TRANSIENT,
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.close_failure", "Next": RUN_NOT_CLOSED}],
        "Next": RUN_FAILED,
    }


def _run_key() -> dict[str, Any]:
    return {"pk": {"S.$": f"States.Format('{RUN_PK_PREFIX}{{}}', $.run_id)"}, "sk": {"S": RUN_SK}}
