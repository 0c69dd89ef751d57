"""Catalog steps: make the run's output queryable without a crawl.

The step creates its table when absent (from the columns the pipeline declares, or those the job's summary
reports), compares the table's schema with those columns, and registers exactly the run's partition
(BatchCreatePartition; a partition that exists is updated, so a rerun registers nothing twice). A table
whose schema differs has *drifted*: the step fails naming the columns, or falls back to its crawler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from relay.contract import SUMMARY_COLUMNS, summary_key
from relay.errors import CatalogError
from relay.models import CatalogRequest, Outcome, Step, TableColumn, TableFormat
from relay.ports import DataBucket, Glue

# How Glue's crawlers describe each format's table (the local crawler writes the same).
TABLE_FORMATS: dict[str, dict[str, Any]] = {
    "csv": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
            "Parameters": {"separatorChar": ",", "quoteChar": '"'},
        },
    },
    "json": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
    },
    "parquet": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    },
}
CREATED_BY = "gluerelay"  # the table parameter `created_by` of the tables catalog steps create

_PRIMITIVE = (
    r"string|boolean|tinyint|smallint|int|integer|bigint|float|double|date|timestamp|binary"
    r"|decimal(\(\d{1,2},\d{1,2}\))?|(var)?char\(\d{1,5}\)"
)


# Spark's names for types the Data Catalog names otherwise (a job reports its DataFrame's simple type names).
_SPARK_NAMES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint", "real": "float"}
_SPARK_TIMESTAMPS = re.compile(r"\btimestamp_(ntz|ltz)\b")  # the catalog has one timestamp type


def normalised_type(hive_type: str) -> str:
    """A column type as the catalog compares it: lower case, no spaces (Spark writes `decimal(10, 2)`),
    Spark's names for Hive's types (`integer`, `timestamp_ntz`, ...) replaced by Hive's."""
    text = _SPARK_TIMESTAMPS.sub("timestamp", re.sub(r"\s+", "", hive_type).lower())
    return re.sub(r"\b[a-z]+\b", lambda m: _SPARK_NAMES.get(m.group(0), m.group(0)), text)


def type_problem(hive_type: str) -> str | None:
    """Why this is not a Hive column type Glue's tables take, or None when it is."""
    text = normalised_type(hive_type)
    # Complex types nest: replace the innermost array<...>, map<...> and struct<name:type,...> by T until
    # one T is left.
    primitive = re.compile(rf"^({_PRIMITIVE})$")
    for _ in range(50):
        if primitive.match(text):
            return None
        inner = re.sub(
            rf"array<({_PRIMITIVE}|T)>|map<({_PRIMITIVE}),({_PRIMITIVE}|T)>"
            rf"|struct<([a-z_][a-z0-9_]*:({_PRIMITIVE}|T),?)+>",
            "T",
            text,
        )
        if inner == text:
            break
        text = inner
    if text == "T":
        return None
    return (
        f"{hive_type!r} is not a Glue column type (string, int, bigint, double, boolean, date, timestamp, "
        "decimal(p,s), array<...>, map<...>, struct<...>)"
    )


@dataclass(frozen=True)
class Drift:
    """How a table's schema differs from the run's columns."""

    table: str
    source: str  # where the run's columns come from: "the pipeline file" or "job step X's summary"
    added: list[TableColumn] = field(default_factory=list)  # in the run's data, not in the table
    removed: list[TableColumn] = field(default_factory=list)  # in the table, not in the run's data
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # name, table's type, data's type
    partition_keys: tuple[list[str], list[str]] | None = None  # the table's, the step's
    reordered: bool = False  # the same columns in another order (matters for CSV)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("not in the table: " + ", ".join(f"{c.name} {c.type}" for c in self.added))
        if self.removed:
            parts.append("not in the data: " + ", ".join(f"{c.name} {c.type}" for c in self.removed))
        if self.changed:
            parts.append(
                "types differ: "
                + ", ".join(f"{n} {old} in the table, {new} in the data" for n, old, new in self.changed)
            )
        if self.partition_keys:
            table_keys, step_keys = self.partition_keys
            parts.append(
                f"partition keys: {', '.join(table_keys) or 'none'} in the table, "
                f"{', '.join(step_keys)} in the step"
            )
        if self.reordered:
            parts.append("the columns are in another order (a CSV table reads them by position)")
        return f"table {self.table} differs from {self.source}: " + "; ".join(parts)

    def facts(self) -> dict[str, Any]:
        return {
            "added": [c.name for c in self.added],
            "removed": [c.name for c in self.removed],
            "changed": [name for name, _, _ in self.changed],
            **({"partition_keys": self.partition_keys[0]} if self.partition_keys else {}),
            **({"reordered": True} if self.reordered else {}),
        }


def compare(
    table: dict[str, Any], columns: list[TableColumn], keys: list[str], table_format: TableFormat, source: str
) -> Drift | None:
    """The drift between a catalog table (GetTable's `Table`) and the run's columns and partition keys."""
    existing = [
        TableColumn(name=c["Name"].lower(), type=normalised_type(c["Type"]))
        for c in table.get("StorageDescriptor", {}).get("Columns", [])
    ]
    wanted = [TableColumn(name=c.name.lower(), type=normalised_type(c.type)) for c in columns]
    had = {c.name: c.type for c in existing}
    has = {c.name: c.type for c in wanted}
    table_keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
    drift = Drift(
        table=table.get("Name", ""),
        source=source,
        added=[c for c in wanted if c.name not in had],
        removed=[c for c in existing if c.name not in has],
        changed=[(c.name, had[c.name], c.type) for c in wanted if c.name in had and had[c.name] != c.type],
        partition_keys=(table_keys, [k.lower() for k in keys])
        if table_keys != [k.lower() for k in keys]
        else None,
        reordered=table_format == "csv" and set(had) == set(has) and list(had) != list(has),
    )
    differs = drift.added or drift.removed or drift.changed or drift.partition_keys or drift.reordered
    return drift if differs else None


def storage_descriptor(request: CatalogRequest, columns: list[TableColumn], location: str) -> dict[str, Any]:
    parameters: dict[str, str] = {"classification": request.format}
    if request.format == "csv":
        parameters["skip.header.line.count"] = "1"
    return {
        "Columns": [{"Name": c.name, "Type": normalised_type(c.type)} for c in columns],
        "Location": location,
        "Compressed": False,
        "NumberOfBuckets": -1,
        "StoredAsSubDirectories": False,
        "Parameters": parameters,
        **TABLE_FORMATS[request.format],
    }


def table_input(
    table: str, request: CatalogRequest, columns: list[TableColumn], pipeline: str
) -> dict[str, Any]:
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": request.format, "created_by": CREATED_BY, "pipeline": pipeline},
        "PartitionKeys": [{"Name": p.name, "Type": "string"} for p in request.partitions],
        "StorageDescriptor": storage_descriptor(request, columns, request.location),
    }


def run_columns(step: Step, request: CatalogRequest, bucket: DataBucket) -> tuple[list[TableColumn], str]:
    """The run's columns and where they come from; CatalogError when a job's summary reports none."""
    if not request.columns_from:
        return request.columns, "the pipeline file's columns"
    summary = bucket.read_summary(step.run_id, request.columns_from)
    source = f"job step {request.columns_from}'s summary"
    reported = (summary or {}).get(SUMMARY_COLUMNS)
    if not reported:
        raise CatalogError(
            "CatalogNoColumns",
            f"{source} ({summary_key(step.run_id, request.columns_from)}) reports no `{SUMMARY_COLUMNS}`: "
            "the job must write the columns it wrote, or the step must declare them",
        )
    try:
        columns = [TableColumn.model_validate(c) for c in reported]
    except ValueError as e:
        raise CatalogError("CatalogBadColumns", f"{source} reports malformed columns: {e}") from e
    problems = [f"{c.name}: {p}" for c in columns if (p := type_problem(c.type))]
    if problems:
        raise CatalogError("CatalogBadColumns", f"{source}: " + "; ".join(problems))
    return [TableColumn(name=c.name, type=normalised_type(c.type)) for c in columns], source


@dataclass(frozen=True)
class Registered:
    """What a catalog step did: the table (created or found), and the run's partitions."""

    database: str
    table: str
    table_created: bool
    partitions_created: int
    partitions_updated: int
    partition: list[str]
    columns_from: str

    def outcome(self) -> Outcome:
        return Outcome(
            succeeded=True,
            facts={
                "database": self.database,
                "table": self.table,
                "table_created": self.table_created,
                "partition": self.partition,
                "partitions_created": self.partitions_created,
                "partitions_updated": self.partitions_updated,
                "columns_from": self.columns_from,
                "dpu_seconds": 0,
            },
        )


def register(step: Step, request: CatalogRequest, glue: Glue, bucket: DataBucket) -> Registered | Drift:
    """Create the table if absent, compare its schema, register the run's partition. CatalogError carries
    Glue's own error when the catalog refuses."""
    columns, source = run_columns(step, request, bucket)
    keys = [p.name for p in request.partitions]
    table = glue.get_table(request.database, step.resource)
    created = False
    if table is None:
        created = glue.create_table(
            request.database, table_input(step.resource, request, columns, step.pipeline or "")
        )
        if not created:  # another run's catalog step created it meanwhile: compare with what it made
            table = glue.get_table(request.database, step.resource)
    if table is not None:
        drift = compare(table, columns, keys, request.format, source)
        if drift is not None:
            return drift
        descriptor = table.get("StorageDescriptor", {})
    else:
        descriptor = storage_descriptor(request, columns, request.location)
    values = [p.value for p in request.partitions]
    partition = {
        "Values": values,
        "StorageDescriptor": {
            **{k: v for k, v in descriptor.items() if k in _PARTITION_DESCRIPTOR},
            "Location": request.partition_location(),
        },
    }
    creating = glue.batch_create_partition(request.database, step.resource, [partition])
    exists = [e for e in creating if e.get("ErrorDetail", {}).get("ErrorCode") == "AlreadyExistsException"]
    _refused(creating, exists, "BatchCreatePartition")
    if exists:
        updating = glue.batch_update_partition(
            request.database, step.resource, [{"PartitionValueList": values, "PartitionInput": partition}]
        )
        _refused(updating, [], "BatchUpdatePartition")
    return Registered(
        database=request.database,
        table=step.resource,
        table_created=created,
        partitions_created=1 - len(exists),
        partitions_updated=len(exists),
        partition=values,
        columns_from=source,
    )


# What a partition's storage descriptor takes from its table's (its own location replaces the table's).
_PARTITION_DESCRIPTOR = (
    "Columns",
    "InputFormat",
    "OutputFormat",
    "SerdeInfo",
    "Compressed",
    "NumberOfBuckets",
    "StoredAsSubDirectories",
    "Parameters",
)


def _refused(errors: list[dict[str, Any]], expected: list[dict[str, Any]], operation: str) -> None:
    unexpected = [e for e in errors if e not in expected]
    if unexpected:
        detail = unexpected[0].get("ErrorDetail", {})
        raise CatalogError(
            str(detail.get("ErrorCode") or "GlueCatalogFailed"),
            f"{operation}: {detail.get('ErrorMessage') or 'refused'}",
        )


def drift_outcome(drift: Drift) -> Outcome:
    return Outcome(
        succeeded=False,
        facts={"table": drift.table, "drift": drift.facts(), "dpu_seconds": 0},
        error="SchemaDrift",
        cause=drift.describe(),
    )


def refused_outcome(step: Step, error: CatalogError) -> Outcome:
    return Outcome(
        succeeded=False,
        facts={"table": step.resource, "dpu_seconds": 0},
        error="GlueCatalogFailed",
        cause=f"catalog step {step.step} (table {step.resource}): {error.code}: {error.message}",
    )
