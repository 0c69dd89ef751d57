"""Completing a step's token: at most once, whoever notices first (an event, a duplicate, the sweeper)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relay.errors import ConditionFailedError, TaskAlreadyClosedError
from relay.models import Outcome, Step, StepStatus
from relay.observability import logger
from relay.ports import StepStore, Workflow


def complete(
    step: Step,
    outcome: Outcome,
    store: StepStore,
    workflow: Workflow,
    now: datetime,
    *,
    repaired_by: str | None = None,
) -> bool:
    """Decide the step's outcome and send it. False when the step was already decided (a duplicate or
    late event): nothing is sent twice."""
    if step.drift is not None:  # a catalog step its crawler completes: the drift that made it crawl stays
        outcome = outcome.model_copy(update={"facts": {**outcome.facts, "drift": step.drift}})
    try:
        decided = store.begin_completion(step, outcome, now, repaired_by)
    except ConditionFailedError:
        logger.info("step already completed; event ignored", extra={"run_id": step.run_id, "step": step.step})
        return False
    deliver(decided, store, workflow, now)
    return True


def deliver(step: Step, store: StepStore, workflow: Workflow, now: datetime) -> StepStatus:
    """Send a decided (COMPLETING) step's outcome to Step Functions and close the step."""
    outcome = step.outcome
    if outcome is None:
        raise ValueError(f"step {step.run_id}/{step.step} has no outcome to deliver")
    try:
        if outcome.succeeded:
            workflow.send_success(step.token, step_output(step, outcome))
            status = StepStatus.SUCCEEDED
        else:
            workflow.send_failure(step.token, outcome.error or "GlueStepFailed", outcome.cause or "")
            status = StepStatus.FAILED
    except TaskAlreadyClosedError:
        # The task timed out or its execution ended before Glue finished: the run is already decided.
        logger.warning(
            "Step Functions no longer waits for this step", extra={"run_id": step.run_id, "step": step.step}
        )
        status = StepStatus.CLOSED
    store.finish_completion(step, status, now)
    return status


def step_output(step: Step, outcome: Outcome) -> dict[str, Any]:
    """What the state machine receives for a successful step (kept under the run's ``steps``)."""
    return {
        "step": step.step,
        "kind": step.kind.value,
        "resource": step.resource,
        "attempt": step.attempt,
        **outcome.facts,
        **({"repaired_by": step.repaired_by} if step.repaired_by else {}),
    }
