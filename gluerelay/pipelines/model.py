"""A pipeline file (pipelines/<name>.yaml): one typed model, and errors that name the file, field and problem.

The model is the one place the file's shape is defined: loading validates against it, the JSON Schema for
editors (pipelines/pipeline.schema.json) and the reference in the README are generated from it.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from relay.contract import (
    PIPELINE_NAME_PATTERN,
    STEP_ID_PATTERN,
    CatalogPipeline,
    CatalogStep,
    ParamSpec,
    S3Trigger,
    ScheduleTrigger,
    argument_problem,
    resolve_params,
)
from relay.logic.catalog import type_problem
from relay.logic.quality import parse_check
from relay.logic.schedules import ScheduleError, parse
from relay.models import OnDrift, Severity, TableFormat

from gluerelay.quality.dqdl import parse as parse_rule

# What a step argument may use, filled per run: {run_id} ... {param.<name>}. `{{` and `}}` are braces.
MANIFEST_VARIABLE = "manifest_uri"  # a step using it reads the landed objects (a rerun refreshes them)
RUN_VARIABLES = {
    "run_id": "the run's id",
    "pipeline": "the pipeline's name",
    "trigger": "s3, schedule or manual",
    "ingest_date": "the run's date partition, YYYY-MM-DD",
    MANIFEST_VARIABLE: "s3:// URI of the run's manifest (the landed objects); empty for runs without one",
    "bucket": "the stack's data bucket",
}
PARAM_VARIABLE = "param."
MAX_STEP_TIMEOUT_SECONDS = 86_400 * 7


class PipelineError(ValueError):
    """A pipeline file that cannot be used; each problem names the file, the field and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class External(BaseModel):
    """A Glue job or crawler another stack owns, by its Glue name."""

    model_config = ConfigDict(extra="forbid")

    external: str = Field(min_length=1, max_length=255, description="its name in Glue")


class Retry(BaseModel):
    """Start the step again when Glue reports it failed (the job run or crawl failed, or timed out)."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(ge=1, le=10, description="how many times more")
    interval_seconds: int = Field(default=60, ge=1, le=3600, description="wait before the first retry")
    backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0, description="each wait is this times longer")


class Catalog(BaseModel):
    """Register the run's partition of a table in the stack's Data Catalog database, without a crawl. The
    table is created when absent; a table whose schema differs has drifted (see on_drift)."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,254}$", description="the table's name in the stack's database"
    )
    location: str = Field(
        description="the table's folder in the stack's data bucket, e.g. cleansed/customers/"
    )
    format: TableFormat = Field(default="parquet", description="parquet, csv (with a header row) or json")
    partitions: dict[str, str] = Field(
        min_length=1,
        description="the run's partition: each key (in the folders' order) and its value, templated as args",
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="the schema, column name to Hive type (string, bigint, date, ...)"
    )
    columns_from: str | None = Field(
        default=None, description="instead of columns: the job step (needed first) whose summary reports them"
    )
    on_drift: OnDrift = Field(
        default="fail",
        description="when the table's schema differs: fail (the run, naming the columns) or crawl (crawler:)",
    )
    crawler: str | External | None = Field(
        default=None, description="the crawler on_drift: crawl falls back to (a stack-owned name or external)"
    )

    @field_validator("location")
    @classmethod
    def _folder(cls, value: str) -> str:
        if value.startswith(("s3://", "/")) or not value.endswith("/") or "//" in value:
            raise ValueError(
                "a folder in the stack's data bucket, like cleansed/customers/ (no s3://, ending in /)"
            )
        return value

    @field_validator("partitions")
    @classmethod
    def _partition_templates(cls, partitions: dict[str, str]) -> dict[str, str]:
        for name, template in partitions.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,254}", name):
                raise ValueError(f"partition key {name!r}: lower-case letters, digits and '_'")
            try:
                variables(template)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from e
        return partitions

    @field_validator("columns")
    @classmethod
    def _column_types(cls, columns: dict[str, str]) -> dict[str, str]:
        problems = [f"{name}: {p}" for name, hive_type in columns.items() if (p := type_problem(hive_type))]
        problems += [
            f"column {n!r}: lower-case letters, digits and '_'"
            for n in columns
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,254}", n)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return columns

    @model_validator(mode="after")
    def _schema_and_drift(self) -> Catalog:
        if bool(self.columns) == (self.columns_from is not None):
            raise ValueError(
                "a catalog step has exactly one of columns: (declared) or columns_from: (a job step)"
            )
        if self.on_drift == "crawl" and self.crawler is None:
            raise ValueError("on_drift: crawl needs crawler: (the crawler that catalogs a drifted table)")
        if set(self.partitions) & set(self.columns):
            raise ValueError("a partition key is not also a column")
        return self


class QualityRule(BaseModel):
    """A rule with its severity: `warn` records a failure without failing the run."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(min_length=1, description="a DQDL rule, or a summary check")
    severity: Severity = Field(default="error", description="error fails the run; warn records the failure")


class Quality(BaseModel):
    """A gate: checks on a job's summary (summary_of, answered at once, nothing to pay), or Glue Data Quality
    DQDL rules evaluated on the run's partition of a table (table)."""

    model_config = ConfigDict(extra="forbid")

    summary_of: str | None = Field(
        default=None, description="the job step (needed first) whose summary the rules check"
    )
    table: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9_]{0,254}$", description="a table of the stack's database"
    )
    partition: dict[str, str] = Field(
        default_factory=dict, description="with table: the run's partition, templated as args (none: all)"
    )
    rules: list[str | QualityRule] = Field(
        min_length=1,
        description="summary checks (rows_quarantined <= 0.05 * rows_read) or DQDL rules, each a text or "
        "{rule:, severity:}",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Quality:
        if (self.summary_of is None) == (self.table is None):
            raise ValueError("a quality step has exactly one of summary_of: (a job's summary) or table:")
        if self.summary_of is not None and self.partition:
            raise ValueError("partition: goes with table: (a summary has no partitions)")
        problems = []
        for spec in self.specs():
            try:
                if self.summary_of is not None:
                    parse_check(spec.rule)
                else:
                    parse_rule(spec.rule)
            except ValueError as e:
                problems.append(str(e))
        if problems:
            raise ValueError("; ".join(problems))
        for key, template in self.partition.items():
            try:
                variables(template)
            except ValueError as e:
                raise ValueError(f"partition.{key}: {e}") from e
        return self

    def specs(self) -> list[QualityRule]:
        return [r if isinstance(r, QualityRule) else QualityRule(rule=r) for r in self.rules]


class Step(BaseModel):
    """One step: a Glue job run, a crawl, or a catalog registration, started when every step it needs has
    succeeded."""

    model_config = ConfigDict(extra="forbid")

    job: str | External | None = Field(
        default=None, description="a stack-owned job's name, or {external: name}"
    )
    crawler: str | External | None = Field(
        default=None, description="a stack-owned crawler's name, or {external: name}"
    )
    catalog: Catalog | None = Field(
        default=None, description="register the run's partition of a table, no crawl (steps.<id>.catalog)"
    )
    quality: Quality | None = Field(
        default=None, description="a gate on a job's summary or a table's run partition (steps.<id>.quality)"
    )
    needs: list[str] = Field(default_factory=list, description="steps that must succeed first")
    args: dict[str, str] = Field(
        default_factory=dict,
        description="job arguments, templates filled per run: "
        + ", ".join(f"{{{v}}}" for v in RUN_VARIABLES)
        + ", {param.<name>}",
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=60,
        le=MAX_STEP_TIMEOUT_SECONDS,
        description="fail the run when the step takes longer (default: the stack's StepTimeoutSeconds)",
    )
    retry: Retry | None = Field(default=None, description="start the step again when Glue reports a failure")
    description: str = Field(default="", description="for people: shown by `gluerelay pipelines show`")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if sum(kind is not None for kind in (self.job, self.crawler, self.catalog, self.quality)) != 1:
            raise ValueError("a step has exactly one of job:, crawler:, catalog: or quality:")
        if self.job is None and self.args:
            raise ValueError(f"args: only a job step takes arguments (a {self.kind} step has none)")
        return self

    @field_validator("job", "crawler")
    @classmethod
    def _a_name(cls, value: str | External | None) -> str | External | None:
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_]{1,100}", value):
            raise ValueError(
                f"{value!r}: a stack-owned resource is named by letters, digits and '_' "
                "(its Glue name is <stack>_<name>); another stack's is {external: <glue name>}"
            )
        return value

    @field_validator("args")
    @classmethod
    def _script_arguments(cls, args: dict[str, str]) -> dict[str, str]:
        problems = [p for name in args if (p := argument_problem(name))]
        if problems:
            raise ValueError("; ".join(problems))
        for name, template in args.items():
            try:
                variables(template)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from e
        return args

    @property
    def kind(self) -> Literal["job", "crawler", "catalog", "quality"]:
        if self.job is not None:
            return "job"
        if self.crawler is not None:
            return "crawler"
        return "catalog" if self.catalog is not None else "quality"

    @property
    def resource(self) -> str | External:
        """The job, the crawler, the catalog step's table, or what a quality step checks (its table, or the
        job step whose summary it reads)."""
        found = self.job if self.job is not None else self.crawler
        if found is not None:
            return found
        if self.catalog is not None:
            return self.catalog.table
        assert self.quality is not None  # _one_kind
        return self.quality.table or self.quality.summary_of or ""

    def glue_resources(self) -> list[tuple[str, Literal["job", "crawler"], str | External]]:
        """The Glue jobs and crawlers the step uses: (field, kind, stack-owned name or external)."""
        if self.job is not None:
            return [("job", "job", self.job)]
        if self.crawler is not None:
            return [("crawler", "crawler", self.crawler)]
        if self.catalog is not None and self.catalog.crawler:
            return [("catalog.crawler", "crawler", self.catalog.crawler)]
        return []

    def templates(self) -> dict[str, str]:
        """What the step fills per run, by field: its job arguments, a catalog step's partition values."""
        if self.catalog is not None:
            return {f"catalog.partitions.{k}": v for k, v in self.catalog.partitions.items()}
        if self.quality is not None:
            return {f"quality.partition.{k}": v for k, v in self.quality.partition.items()}
        return {f"args.{k}": v for k, v in self.args.items()}

    @property
    def external(self) -> bool:
        return isinstance(self.resource, External)

    @property
    def resource_name(self) -> str:
        """The pipeline's name for the resource (an external's Glue name)."""
        resource = self.resource
        return resource.external if isinstance(resource, External) else resource


class Triggers(BaseModel):
    """How runs start: objects landing under a prefix, schedules, and by hand."""

    model_config = ConfigDict(extra="forbid")

    s3: S3Trigger | None = Field(default=None, description="a run per batch of objects landing under prefix")
    schedules: list[ScheduleTrigger] = Field(default_factory=list, description="runs on a clock")
    manual: bool = Field(default=True, description="whether `gluerelay start` may start runs")

    @field_validator("schedules")
    @classmethod
    def _expressions(cls, schedules: list[ScheduleTrigger]) -> list[ScheduleTrigger]:
        for schedule in schedules:
            try:
                parse(schedule.expression)
            except ScheduleError as e:
                raise ValueError(str(e)) from e
        return schedules


class Pipeline(BaseModel):
    """A pipeline: its triggers, parameters and steps."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(pattern=PIPELINE_NAME_PATTERN, description="its name; the file is <name>.yaml")
    description: str = Field(default="", description="for people: shown by `gluerelay pipelines list`")
    triggers: Triggers = Field(
        default_factory=Triggers, description="how runs start (by default only by hand: `gluerelay start`)"
    )
    params: dict[str, ParamSpec] = Field(default_factory=dict, description="run parameters")
    steps: dict[str, Step] = Field(min_length=1, description="the steps, by id")

    @field_validator("steps")
    @classmethod
    def _step_ids(cls, steps: dict[str, Step]) -> dict[str, Step]:
        for step_id in steps:
            if not re.fullmatch(STEP_ID_PATTERN, step_id):
                raise ValueError(
                    f"step id {step_id!r}: lower-case letters, digits and '_', starting with a letter"
                )
        return steps

    @field_validator("params")
    @classmethod
    def _param_names(cls, params: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for name, spec in params.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
                raise ValueError(f"parameter {name!r}: lower-case letters, digits and '_'")
            if spec.default is not None:
                spec.coerce(name, spec.default)
        return params

    def problems(self) -> list[tuple[str, str]]:
        """What the model's field checks cannot see: the graph and the variables. (field, problem) pairs."""
        found: list[tuple[str, str]] = []
        for step_id, step in self.steps.items():
            for needed in step.needs:
                if needed == step_id:
                    found.append((f"steps.{step_id}.needs", "a step cannot need itself"))
                elif needed not in self.steps:
                    found.append(
                        (f"steps.{step_id}.needs", f"unknown step {needed!r}{_suggest(needed, self.steps)}")
                    )
            for name, template in step.templates().items():
                for variable in variables(template):
                    if variable.startswith(PARAM_VARIABLE):
                        param = variable.removeprefix(PARAM_VARIABLE)
                        if param not in self.params:
                            found.append(
                                (
                                    f"steps.{step_id}.{name}",
                                    f"unknown parameter {{{variable}}}{_suggest(param, self.params)}",
                                )
                            )
                    elif variable not in RUN_VARIABLES:
                        known = ", ".join(f"{{{v}}}" for v in RUN_VARIABLES)
                        found.append(
                            (
                                f"steps.{step_id}.{name}",
                                f"unknown variable {{{variable}}} (known: {known}, {{param.<name>}})",
                            )
                        )
            found += self._catalog_problems(step_id, step)
        cycle = find_cycle({s: [n for n in step.needs if n in self.steps] for s, step in self.steps.items()})
        if cycle:
            found.append(("steps", "needs form a cycle: " + " -> ".join([*cycle, cycle[0]])))
        for index, schedule in enumerate(self.triggers.schedules):
            try:
                resolve_params(self.params, schedule.params)
            except ValueError as e:
                found.append((f"triggers.schedules[{index}].params", str(e)))
        return found

    def _catalog_problems(self, step_id: str, step: Step) -> list[tuple[str, str]]:
        """A catalog step's columns_from and a quality step's summary_of: a job step that runs first."""
        if step.catalog is not None and step.catalog.columns_from is not None:
            where, named, what = f"steps.{step_id}.catalog.columns_from", step.catalog.columns_from, "columns"
        elif step.quality is not None and step.quality.summary_of is not None:
            where, named, what = f"steps.{step_id}.quality.summary_of", step.quality.summary_of, "figures"
        else:
            return []
        source = self.steps.get(named)
        if source is None:
            return [(where, f"unknown step {named!r}{_suggest(named, self.steps)}")]
        if source.kind != "job":
            return [(where, f"{named} is a {source.kind} step: only a job's summary reports {what}")]
        if named not in self.upstream(step_id):
            return [(where, f"{named} must run first: add it (or a step after it) to needs")]
        return []

    def upstream(self, step_id: str) -> set[str]:
        """Every step that must succeed before this one (its needs, theirs, ...)."""
        seen: set[str] = set()
        todo = list(self.steps[step_id].needs)
        while todo:
            current = todo.pop()
            if current in seen or current not in self.steps:
                continue
            seen.add(current)
            todo += self.steps[current].needs
        return seen

    def catalog_entry(self) -> CatalogPipeline:
        return CatalogPipeline(
            name=self.pipeline,
            s3=self.triggers.s3,
            schedules=self.triggers.schedules,
            manual=self.triggers.manual,
            params=self.params,
            steps={
                step_id: CatalogStep(
                    needs=step.needs,
                    reads_manifest=any(MANIFEST_VARIABLE in variables(t) for t in step.templates().values()),
                )
                for step_id, step in self.steps.items()
            },
        )


def variables(template: str) -> list[str]:
    """The {variables} a step argument uses; ValueError for a malformed template."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as e:
        raise ValueError(f"{template!r}: {e} (write {{{{ and }}}} for literal braces)") from e


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle in `needs` (node -> the nodes it needs), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for needed in edges.get(node, []):
            if state.get(needed) == 1:
                return path[path.index(needed) :]
            if needed not in state and (cycle := visit(needed)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML whose mappings refuse duplicate keys (PyYAML keeps the last one silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load(path: Path, display: str | None = None) -> Pipeline:
    """A pipeline file, validated; PipelineError lists every problem as `file: field: problem`."""
    name = display or str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except OSError as e:
        raise PipelineError([f"{name}: cannot be read: {e}"]) from e
    except yaml.YAMLError as e:
        raise PipelineError([f"{name}: not valid YAML: {e}"]) from e
    if not isinstance(data, dict):
        raise PipelineError([f"{name}: a pipeline file is a mapping (pipeline:, triggers:, params:, steps:)"])
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as e:
        raise PipelineError(
            [f"{name}: {_where(error['loc'])}: {_message(error)}" for error in e.errors()]
        ) from e
    problems = [f"{name}: {field}: {problem}" for field, problem in pipeline.problems()]
    if path.stem != pipeline.pipeline:
        problems.append(
            f"{name}: pipeline: {pipeline.pipeline!r} must match the file name ({path.stem}.yaml)"
        )
    if problems:
        raise PipelineError(problems)
    return pipeline


def _where(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        elif part in {"str", "External", "function-after[_a_name(), str]"} or part.startswith(
            ("function-", "union")
        ):
            continue
        else:
            parts.append(str(part))
    return ".".join(parts) or "(file)"


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (see the pipeline file reference in the README)"
    if error["type"] == "missing":
        return "required field is missing"
    return message
