"""The data-plane benchmark's own checks: a figure compared with a reference is only reported when both
did the same work, row for row."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from bench.dataplane import row_differences, same_work


def write(folder: Path, rows: list[tuple[int, str, str]], kind: str = "TIMESTAMP") -> None:
    (folder / "ingest_date=2026-01-01").mkdir(parents=True)
    values = ", ".join(f"({i}, '{name}', '{at}'::{kind})" for i, name, at in rows)
    duckdb.execute(
        f"COPY (SELECT * FROM (VALUES {values}) AS t(customer_id, name, updated_at)) "
        f"TO '{folder}/ingest_date=2026-01-01/part-0.parquet' (FORMAT parquet)"
    )


def test_row_differences_counts_rows_either_side_lacks(tmp_path: Path) -> None:
    rows = [(1, "Ada", "2024-01-01 00:00:00"), (2, "Bob", "2024-01-02 00:00:00")]
    write(tmp_path / "a", rows)
    write(tmp_path / "b", list(reversed(rows)), kind="TIMESTAMPTZ")  # order and UTC adjustment: alike
    assert row_differences(tmp_path / "a", tmp_path / "b") == 0
    write(tmp_path / "c", [rows[0], (2, "Bo", "2024-01-02 00:00:00")])
    assert row_differences(tmp_path / "a", tmp_path / "c") == 2  # one row missing, one extra
    write(tmp_path / "d", [*rows, rows[0]])
    assert row_differences(tmp_path / "a", tmp_path / "d") == 1  # a duplicated row counts


def test_a_reference_that_classified_rows_otherwise_is_refused() -> None:
    summary = {"rows_written": 5, "duplicates_removed": 1, "quarantined_by_reason": {"invalid_email": 2}}
    same_work(summary, {"written": 5, "duplicate": 1, "invalid_email": 2}, "ref")
    with pytest.raises(RuntimeError, match="ref disagrees with job 2"):
        same_work(summary, {"written": 6, "invalid_email": 2}, "ref")
