"""The pipeline file reference, written from the model's own fields (the README's copy cannot drift)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from relay.contract import ParamSpec, S3Trigger, ScheduleTrigger

from gluerelay.pipelines.model import (
    RUN_VARIABLES,
    Catalog,
    External,
    Pipeline,
    Quality,
    QualityRule,
    Retry,
    Step,
    Triggers,
)

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("the file", Pipeline),
    ("triggers", Triggers),
    ("triggers.s3", S3Trigger),
    ("triggers.schedules[]", ScheduleTrigger),
    ("params.<name>", ParamSpec),
    ("steps.<id>", Step),
    ("steps.<id>.retry", Retry),
    ("steps.<id>.catalog", Catalog),
    ("steps.<id>.quality", Quality),
    ("steps.<id>.quality.rules[] (as a mapping)", QualityRule),
    ("{external: ...}", External),
]


def reference_markdown() -> str:
    lines: list[str] = []
    for title, model in SECTIONS:
        lines += [f"**{title}**", "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            lines.append(f"| `{name}` | {_type(info.annotation)} | {_default(info)} | {_meaning(info)} |")
        lines.append("")
    lines += [
        "**variables in `args`, `catalog.partitions` and `quality.partition`** (filled per run)",
        "",
        "| variable | value |",
        "|---|---|",
    ]
    lines += [f"| `{{{name}}}` | {meaning} |" for name, meaning in RUN_VARIABLES.items()]
    lines += ["| `{param.<name>}` | the run's value of a declared parameter |", ""]
    return "\n".join(lines)


def _type(annotation: Any) -> str:  # noqa: PLR0911 - one answer per kind of annotation
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in arguments if a is not type(None)) + (
            "" if type(None) not in arguments else " (optional)"
        )
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in arguments)
    if origin is list:
        return f"list of {_type(arguments[0])}"
    if origin is dict:
        return f"map of {_type(arguments[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"External": "`{external: name}`"}.get(annotation.__name__, "mapping")
    if isinstance(annotation, type):
        return {"str": "text", "int": "integer", "float": "number", "bool": "true/false"}.get(
            annotation.__name__, annotation.__name__
        )
    if typing.get_origin(annotation) is None and str(annotation).startswith("typing."):
        return str(annotation).removeprefix("typing.")
    return "value"


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        made = info.default_factory()  # type: ignore[call-arg]
        if isinstance(made, BaseModel):
            return "its fields' defaults"
        return "none" if made in ({}, []) else f"`{made}`"
    if info.default is PydanticUndefined or info.default is None:
        return "none"
    if info.default == "":
        return "empty"
    return f"`{info.default}`"


def _meaning(info: FieldInfo) -> str:
    text = info.description or ""
    for constraint in info.metadata:
        for attribute, word in (("ge", "≥"), ("le", "≤"), ("min_length", "at least"), ("pattern", "matches")):
            value = getattr(constraint, attribute, None)
            if value is not None:
                text += f" ({word} `{value}`)" if attribute == "pattern" else f" ({word} {value})"
    return text.replace("|", "\\|") or "-"
