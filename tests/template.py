"""template.yaml and the state machine definitions as data, for tests that must not drift from them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gluerelay.local.template import load_yaml
from gluerelay.pipelines.project import BACKFILL_DEFINITION

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
# Stand-ins for what CloudFormation substitutes into every pipeline's definition.
SUBSTITUTIONS = {
    "Partition": "aws",
    "ControlTable": "control",
    "StartStepFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:start-step",
    "CloseRunFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:close-run",
    "GluePrefix": "stack_",
    "DataBucket": "data-bucket",
    "CatalogDatabase": "stack_catalog",
    "DataQualityRoleArn": "arn:aws:iam::123456789012:role/stack-data-quality",
    "StepTimeoutSeconds": "7200",
    "PrepareRerunFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:prepare-rerun",
    "StateMachineArnPrefix": "arn:aws:states:us-east-1:123456789012:stateMachine:stack_",
}


def load_template() -> dict[str, Any]:
    return load_yaml(TEMPLATE)


def resource(name: str) -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"][name]
    return found


def definition(path: Path, substitutions: dict[str, str] = SUBSTITUTIONS) -> dict[str, Any]:
    """A state machine definition with DefinitionSubstitutions applied, as Step Functions sees it."""
    text = re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], path.read_text())
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def state_machines() -> dict[str, dict[str, Any]]:
    """Every pipeline's state machine in the template: logical id -> its properties (the stack's own,
    the backfill's, is `backfill_machine`)."""
    return {
        name: res["Properties"]
        for name, res in load_template()["Resources"].items()
        if res["Type"] == "AWS::Serverless::StateMachine"
        and res["Properties"]["DefinitionUri"] != BACKFILL_DEFINITION
    }


def backfill_machine() -> dict[str, Any]:
    [found] = [
        res["Properties"]
        for res in load_template()["Resources"].values()
        if res["Type"] == "AWS::Serverless::StateMachine"
        and res["Properties"]["DefinitionUri"] == BACKFILL_DEFINITION
    ]
    return dict(found)


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, its States object) for every state, inside Parallel and Map branches too."""
    for name, state in states.items():
        yield name, state, states
        for branch in state.get("Branches", []):
            yield from all_states(branch["States"])
        if "ItemProcessor" in state:
            yield from all_states(state["ItemProcessor"]["States"])
        if "Iterator" in state:
            yield from all_states(state["Iterator"]["States"])
