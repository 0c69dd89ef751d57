"""The fault-tolerance scenarios' bookkeeping: what each scenario put in, what came out, and the table.

Every scenario in `test_reliability.py` accounts for its rows from the data itself (the Parquet the runs
wrote under cleansed/ and quarantine/) and from job 2's own dedup count, and records one row. The rows go
to `.gluerelay/chaos/results.json`; `python -m tests.e2e.chaos` prints them (Rich) and writes the table
into RELIABILITY.md between its markers. `make chaos` does both.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from gluerelay.local.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".gluerelay" / "chaos" / "results.json"
RELIABILITY = ROOT / "RELIABILITY.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"


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


@dataclass
class Row:
    scenario: str
    runs: int
    rows_in: int
    rows_out: int
    duplicates: int
    lost: int
    stuck: int
    result: str
    note: str = ""


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
    cleansed = _parquet(cloud, "cleansed/customers/", runs)
    quarantined = _parquet(cloud, "quarantine/customers/", runs)
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
            ExpressionAttributeValues={":p": {"S": f"RUN#{run}"}, ":s": {"S": "STEP#"}},
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


def row(scenario: str, figures: Figures, note: str = "") -> Row:
    return Row(
        scenario,
        figures.runs,
        figures.rows_in,
        figures.rows_out,
        figures.duplicates,
        figures.lost,
        figures.stuck,
        "pass",
        note,
    )


def save(rows: list[Row]) -> None:
    """Merge this session's rows into the results file (a scenario's newest row wins)."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    merged = {r["scenario"]: r for r in previous}
    merged.update({r.scenario: asdict(r) for r in rows})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(sorted(merged.values(), key=lambda r: r["scenario"]), indent=2) + "\n")


def markdown(rows: list[dict[str, Any]]) -> str:
    header = "| scenario | runs | rows in | rows out | duplicates | lost | stuck | result | what it shows |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['runs']} | {r['rows_in']:,} | {r['rows_out']:,} | {r['duplicates']} | "
            f"{r['lost']} | {r['stuck']} | {r['result']} | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    if not RESULTS.is_file():
        print(f"no results at {RESULTS}: run the scenarios first (make chaos)", file=sys.stderr)
        return 1
    rows = json.loads(RESULTS.read_text())
    table = Table(title="fault-tolerance scenarios", title_justify="left")
    for column in ("scenario", "runs", "rows in", "rows out", "duplicates", "lost", "stuck", "result"):
        table.add_column(column, justify="left" if column in ("scenario", "result") else "right")
    for r in rows:
        colour = "green" if r["result"] == "pass" else "red"
        table.add_row(
            r["scenario"],
            str(r["runs"]),
            f"{r['rows_in']:,}",
            f"{r['rows_out']:,}",
            str(r["duplicates"]),
            str(r["lost"]),
            str(r["stuck"]),
            f"[{colour}]{r['result']}[/]",
        )
    Console().print(table)
    text = RELIABILITY.read_text()
    if BEGIN not in text or END not in text:
        print(f"{RELIABILITY} has no {BEGIN} … {END} markers; table not written", file=sys.stderr)
        return 1
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    RELIABILITY.write_text(f"{head}{BEGIN}\n{markdown(rows)}\n{END}{tail}")
    return 0 if all(r["result"] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
