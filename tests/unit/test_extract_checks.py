"""Job 1's guard behind its file check, on the selected engine (and on PySpark for parity)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.spark


def test_an_engine_row_count_unlike_the_checks_fails_the_job_and_writes_nothing(
    spark: Any, extract: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should an engine parse a checked file into another number of rows than the check counted, the job
    fails naming both counts instead of writing rows parsed differently (here the check is made to count
    one record more than the file holds)."""
    landed = tmp_path / "a.csv"
    landed.write_text("customer_id,email\n1,a@example.com\n2,b@example.com\n")
    counted = extract.check_files
    monkeypatch.setattr(
        extract,
        "check_files",
        lambda *args: [dataclasses.replace(o, rows=o.rows + 1) for o in counted(*args)],
    )
    args = {
        **extract.OPTIONAL_ARGS,
        "source": "s3",
        "run_id": "run-x",
        "raw_path": str(tmp_path / "raw"),
        "summary_uri": str(tmp_path / "summary.json"),
        "ingest_date": "2026-12-01",
        "input_uris": str(landed),
    }
    with pytest.raises(extract.ExtractError) as error:
        extract.run(spark, None, args)
    assert f"the engine read 2 rows from {landed}, whose check counted 3 records" in str(error.value)
    assert not (tmp_path / "raw").exists() and not (tmp_path / "summary.json").exists()
    monkeypatch.setattr(extract, "check_files", counted)  # and with the check's own count, it succeeds
    assert extract.run(spark, None, args)["rows_written"] == 2
    assert json.loads((tmp_path / "summary.json").read_text())["files_read"] == 1
