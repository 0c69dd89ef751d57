"""Step Functions' own events in the local cloud: when an execution ends, its "Step Functions Execution Status
Change" event goes to the default bus, as on AWS, at the moment moto's interpreter ends it (no polling).

Only the end of an execution is published (SUCCEEDED, FAILED, TIMED_OUT, ABORTED); AWS also publishes
RUNNING when one starts, which nothing here listens for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.stepfunctions.parser.backend import execution as sfn_execution

STATUS_CHANGE = "Step Functions Execution Status Change"
Publish = Callable[[str, str, dict[str, Any], list[str]], None]  # (source, detail-type, detail, resources)


def _epoch_ms(moment: Any) -> int | None:
    if not isinstance(moment, datetime):
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def status_change(execution: Any) -> dict[str, Any]:
    """The event's detail, from moto's execution (the shape AWS documents: DescribeExecution's facts)."""
    output = execution.output
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "inputDetails": {"included": True},
        "output": None if output is None else (output if isinstance(output, str) else json.dumps(output)),
        "outputDetails": None if output is None else {"included": True},
        "error": execution.error,
        "cause": execution.cause,
    }


@dataclass
class ExecutionEvents:
    publish: Publish
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def install(self) -> None:
        communication = sfn_execution.BaseExecutionWorkerCommunication
        original = communication.terminated
        publish = self.publish

        def terminated(self: Any) -> None:
            original(self)
            execution = self.execution
            publish("aws.states", STATUS_CHANGE, status_change(execution), [execution.exec_arn])

        communication.terminated = terminated  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(communication, "terminated", original))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()
