"""The fault-tolerance scenarios' bookkeeping: what each scenario put in, what came out, and the table.

Every scenario in `test_reliability.py` accounts for its rows from the data itself (the Parquet the runs
wrote under cleansed/ and quarantine/) and from job 2's own dedup count, and records one row. The rows go
to `.gluerelay/chaos/results.json`; `python -m tests.e2e.chaos` prints them (Rich) and writes the table
into RELIABILITY.md between its markers. `make chaos` does both.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gluerelay.local.audit import Figures

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".gluerelay" / "chaos" / "results.json"
RELIABILITY = ROOT / "RELIABILITY.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"


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
