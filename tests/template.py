"""template.yaml and the state machine definition as data, for tests that must not drift from them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gluerelay.local.template import load_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


def load_template() -> dict[str, Any]:
    return load_yaml(TEMPLATE)


def resource(name: str) -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"][name]
    return found


def definition(substitutions: dict[str, str]) -> dict[str, Any]:
    """The state machine definition with DefinitionSubstitutions applied, as Step Functions sees it."""
    path = ROOT / resource("PipelineStateMachine")["Properties"]["DefinitionUri"]
    text = re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], path.read_text())
    parsed: dict[str, Any] = json.loads(text)
    return parsed
