"""Accounting for runs in a local cloud, by identity: which object version each row came from.

Rows in are read from the object versions each run's manifest lists (the exact versions on_arrival
claimed); rows out are counted from the Parquet the runs wrote under cleansed/ and quarantine/, by the
`lineage_source` each row carries, plus job 2's own dedup count per run (in the control table). So a row
lost from one object and a row written twice from another do not cancel out:

- an object version whose rows out exceed its rows in, or whose rows reached two runs, is duplicated;
- a run whose object versions' rows in exceed its rows out plus its dedup count lost rows;
- a run that wrote nothing and did not succeed (a failed job, a timed-out run) loses nothing only if each
  of its object versions is still in the bucket, unchanged (same version, same ETag), to run again: those
  rows count as retained;
- rows the scenario landed that no run's manifest lists are lost.

The fault-tolerance scenarios (tests/e2e) and the scale benchmark (bench) account with it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
from botocore.exceptions import ClientError
from relay.contract import STEP_SK_PREFIX, LandedObject, Manifest, manifest_key, run_pk

from gluerelay.local.cloud import LocalCloud


@dataclass
class Figures:
    """Rows in and out of a scenario's runs, counted from what the runs wrote, per object version."""

    runs: int
    rows_in: int
    cleansed: int
    quarantined: int
    deduplicated: int
    objects_in_two_runs: int
    stuck: int
    retained: int = 0  # rows of runs that wrote nothing, whose object versions are intact to run again
    duplicates: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)  # each identity mismatch, named

    @property
    def rows_out(self) -> int:
        return self.cleansed + self.quarantined + self.deduplicated


def _parquet(cloud: LocalCloud, prefix: str, run_ids: set[str]) -> list[tuple[str, Any]]:
    s3 = cloud.client("s3")
    bucket = cloud.output("DataBucketName")
    tables = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            run = next((part.split("=", 1)[1] for part in key.split("/") if part.startswith("run_id=")), None)
            if run in run_ids and key.endswith(".parquet"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                tables.append((run, pq.read_table(io.BytesIO(body))))
    return tables


def data_rows(key: str, body: bytes) -> int:
    """The data rows in a landed file: CSV (a header, then rows; gzip too), JSON Lines, or Parquet."""
    name = key.lower()
    if name.endswith(".gz"):
        body, name = gzip.decompress(body), name.removesuffix(".gz")
    if name.endswith(".parquet"):
        return int(pq.read_metadata(io.BytesIO(body)).num_rows)
    text = body.decode("utf-8")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return sum(1 for line in text.splitlines() if line.strip())
    if name.endswith((".csv", ".txt")):
        rows = [r for r in csv.reader(io.StringIO(text)) if any(field.strip() for field in r)]
        return max(0, len(rows) - 1)
    raise ValueError(f"cannot count the rows of landed file {key}: not CSV, JSON Lines or Parquet")


def _manifest(cloud: LocalCloud, run_id: str) -> Manifest | None:
    s3 = cloud.client("s3")
    try:
        body = s3.get_object(Bucket=cloud.output("DataBucketName"), Key=manifest_key(run_id))["Body"].read()
    except ClientError:
        return None  # a run started by hand (the relational source): no landed objects
    return Manifest.model_validate_json(body)


def _version(cloud: LocalCloud, obj: LandedObject) -> bytes | None:
    """The object version's bytes, if it is still there unchanged (same version and ETag)."""
    s3 = cloud.client("s3")
    extra = {"VersionId": obj.version_id} if obj.version_id else {}
    try:
        found = s3.get_object(Bucket=obj.bucket, Key=obj.key, **extra)
    except ClientError:
        return None
    return bytes(found["Body"].read()) if found["ETag"].strip('"') == obj.etag.strip('"') else None


def _dedup(cloud: LocalCloud, run_id: str) -> int:
    items = cloud.client("dynamodb").query(
        TableName=cloud.output("ControlTableName"),
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": run_pk(run_id)}, ":s": {"S": STEP_SK_PREFIX}},
    )["Items"]
    removed = 0
    for item in items:
        outcome = json.loads(item.get("outcome_json", {}).get("S", "{}"))
        removed += int((outcome.get("facts") or {}).get("rows", {}).get("duplicates_removed", 0))
    return removed


@dataclass
class _Ledger:
    """What the runs took (rows per object version) and what they wrote, run by run."""

    cloud: LocalCloud
    figures: Figures
    out: dict[str, Counter[str]]  # run -> lineage source -> rows written (cleansed + quarantined)
    taken: dict[str, int] = field(default_factory=dict)  # lineage source -> its rows in
    intact: set[str] = field(default_factory=set)  # lineage sources still there, same version and ETag
    runs_of: dict[str, set[str]] = field(default_factory=dict)  # lineage source -> runs that took or wrote it

    def take(self, run: str, objects: list[LandedObject]) -> int:
        """The rows in of a run's object versions (each version read once, whichever run took it)."""
        rows = 0
        for obj in objects:
            source = obj.lineage_source
            self.runs_of.setdefault(source, set()).add(run)
            if source not in self.taken:
                body = _version(self.cloud, obj)
                if body is None:
                    self.figures.problems.append(f"{source} (taken by {run}) is gone or changed")
                    continue
                self.taken[source] = data_rows(obj.key, body)
                self.intact.add(source)
            rows += self.taken[source]
        return rows

    def settle(self, run: str, status: str, manifest: Manifest | None, objects: list[LandedObject]) -> None:
        figures, written = self.figures, sum(self.out[run].values())
        dedup = _dedup(self.cloud, run)
        figures.deduplicated += dedup
        rows_in = self.take(run, objects)
        own = {o.lineage_source for o in objects}
        for source, rows in self.out[run].items():
            self.runs_of.setdefault(source, set()).add(run)
            if manifest is not None and source not in own:
                written -= rows  # counted here, once, not again in the run's balance below
                figures.duplicates += rows
                figures.problems.append(f"{run} wrote {rows} rows of {source}, which it did not take")
        if written == 0 and dedup == 0 and status != "SUCCEEDED":
            intact = sum(self.taken[o.lineage_source] for o in objects if o.lineage_source in self.intact)
            figures.retained += intact
            if intact < rows_in:
                figures.lost += rows_in - intact
                figures.problems.append(f"{run} ({status}) wrote nothing and its inputs are not all intact")
            return
        gap = rows_in - written - dedup
        if manifest is not None and gap:
            figures.problems.append(f"{run}: {rows_in} rows in, {written} written, {dedup} removed as dups")
            figures.lost += max(0, gap)
            figures.duplicates += max(0, -gap)


def account(
    cloud: LocalCloud,
    run_ids: Iterable[str],
    rows_in: int,
    carries_rows: Callable[[str], bool] = lambda key: True,
) -> Figures:
    """Account for `rows_in` landed rows across these runs, by object version. `carries_rows(key)` says
    which landed files' rows the runs must account for (a file joined into others' rows, such as the
    orders example's headers, has none of its own)."""
    runs = sorted(set(run_ids))
    cleansed, quarantined = _parquet(cloud, "cleansed/", set(runs)), _parquet(cloud, "quarantine/", set(runs))
    out: dict[str, Counter[str]] = {run: Counter() for run in runs}
    for run, table in (*cleansed, *quarantined):
        if "lineage_source" in table.column_names:
            out[run].update(str(s) for s in table.column("lineage_source").to_pylist())
        else:
            out[run]["(no lineage)"] += table.num_rows
    figures = Figures(
        runs=len(runs),
        rows_in=rows_in,
        cleansed=sum(t.num_rows for _, t in cleansed),
        quarantined=sum(t.num_rows for _, t in quarantined),
        deduplicated=0,
        objects_in_two_runs=0,
        stuck=0,
    )
    ledger = _Ledger(cloud, figures, out)
    sfn = cloud.client("stepfunctions")
    for run in runs:
        status = sfn.describe_execution(executionArn=cloud.execution_arn(run))["status"]
        figures.stuck += status == "RUNNING"
        manifest = _manifest(cloud, run)
        objects = [o for o in (manifest.objects if manifest else []) if carries_rows(o.key)]
        ledger.settle(run, status, manifest, objects)
    for source, rows in ledger.taken.items():
        produced = sum(out[run][source] for run in runs)
        if produced > rows:
            figures.duplicates += produced - rows
            figures.problems.append(f"{source}: {rows} rows in, {produced} out")
    figures.objects_in_two_runs = sum(1 for found in ledger.runs_of.values() if len(found) > 1)
    if ledger.taken:
        untraced = rows_in - sum(ledger.taken.values())
        if untraced > 0:
            figures.lost += untraced
            figures.problems.append(f"{untraced} landed rows are in no run's manifest")
    else:  # runs without landed objects (a relational source): totals are all there is
        figures.lost += max(0, rows_in - figures.rows_out - figures.retained)
        figures.duplicates += max(0, figures.rows_out - rows_in)
    return figures
