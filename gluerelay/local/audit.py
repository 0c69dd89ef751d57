"""Accounting for runs in a local cloud, from the data they wrote: rows in and out, duplicates, losses.

Rows out are counted from the Parquet the runs wrote under cleansed/ and quarantine/ plus job 2's own dedup
count (in the control table); an object whose rows reached two runs counts as processed twice. The
fault-tolerance scenarios (tests/e2e) and the scale benchmark (bench) account with it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from relay.contract import STEP_SK_PREFIX, run_pk

from gluerelay.local.cloud import LocalCloud


@dataclass
class Figures:
    """Rows in and out of a scenario's runs, counted from what the runs wrote."""

    runs: int
    rows_in: int
    cleansed: int
    quarantined: int
    deduplicated: int
    objects_in_two_runs: int
    stuck: int
    retained: int = 0  # rows of failed runs whose input objects are still there, untouched, to resume

    @property
    def rows_out(self) -> int:
        return self.cleansed + self.quarantined + self.deduplicated

    @property
    def duplicates(self) -> int:
        return max(0, self.rows_out - self.rows_in)

    @property
    def lost(self) -> int:
        return max(0, self.rows_in - self.rows_out - self.retained)


def _parquet(cloud: LocalCloud, prefix: str, run_ids: set[str]) -> list[Any]:
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


def account(cloud: LocalCloud, run_ids: Iterable[str], rows_in: int) -> Figures:
    """Count what the runs produced: cleansed and quarantined rows, job 2's dedup, objects seen twice."""
    runs = set(run_ids)
    cleansed = _parquet(cloud, "cleansed/", runs)
    quarantined = _parquet(cloud, "quarantine/", runs)
    sources: dict[str, set[str]] = {}
    for run, table in cleansed + quarantined:
        if "lineage_source" in table.column_names:
            for source in set(table.column("lineage_source").to_pylist()):
                sources.setdefault(str(source), set()).add(run)
    deduplicated = 0
    stuck = 0
    sfn = cloud.client("stepfunctions")
    dynamodb = cloud.client("dynamodb")
    for run in runs:
        if sfn.describe_execution(executionArn=cloud.execution_arn(run))["status"] == "RUNNING":
            stuck += 1
        items = dynamodb.query(
            TableName=cloud.output("ControlTableName"),
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": {"S": run_pk(run)}, ":s": {"S": STEP_SK_PREFIX}},
        )["Items"]
        for item in items:
            outcome = json.loads(item.get("outcome_json", {}).get("S", "{}"))
            deduplicated += int((outcome.get("facts") or {}).get("rows", {}).get("duplicates_removed", 0))
    return Figures(
        runs=len(runs),
        rows_in=rows_in,
        cleansed=sum(t.num_rows for _, t in cleansed),
        quarantined=sum(t.num_rows for _, t in quarantined),
        deduplicated=deduplicated,
        objects_in_two_runs=sum(1 for found in sources.values() if len(found) > 1),
        stuck=stuck,
    )
