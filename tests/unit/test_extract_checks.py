"""Job 1's guard behind its file check, on the selected engine (and on PySpark for parity)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.spark


def job_args(extract: ModuleType, tmp_path: Path, run_id: str, inputs: list[str]) -> dict[str, str]:
    """Job 1's resolved arguments for a run of local landed files, writing under `tmp_path`."""
    return {
        **extract.OPTIONAL_ARGS,
        "source": "s3",
        "run_id": run_id,
        "raw_path": str(tmp_path / "raw"),
        "summary_uri": str(tmp_path / "summary.json"),
        "ingest_date": "2026-12-01",
        "input_uris": ",".join(inputs),
    }


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
    args = job_args(extract, tmp_path, "run-x", [str(landed)])
    with pytest.raises(extract.ExtractError) as error:
        extract.run(spark, None, args)
    assert f"the engine read 2 rows from {landed}, whose check counted 3 records" in str(error.value)
    assert not (tmp_path / "raw").exists() and not (tmp_path / "summary.json").exists()
    monkeypatch.setattr(extract, "check_files", counted)  # and with the check's own count, it succeeds
    assert extract.run(spark, None, args)["rows_written"] == 2
    assert json.loads((tmp_path / "summary.json").read_text())["files_read"] == 1


def test_files_sharing_columns_are_read_together_each_row_told_to_its_file(
    spark: Any, extract: ModuleType, tmp_path: Path
) -> None:
    """One read per format and columns (a read per file cost 16 s for 100 small files); within a read each
    row's lineage is its own file's, told by file name. A name an engine may spell otherwise, or one that
    another file of the read shares, reads alone."""
    header = "customer_id,email\n"
    files = {
        "a.csv": header + "1,a@example.com\n2,a@example.com\n",
        "b.csv": header + "3,b@example.com\n",
        "sub/a.csv": header + "4,sub@example.com\n",  # the same name as a.csv
        "c d.csv": header + "5,cd@example.com\n",  # Spark would percent-encode the space
        "e.csv": "email,customer_id\n" + "e@example.com,6\n",  # other columns (order): a read of its own
        "f.jsonl": '{"customer_id": "7", "email": "f@example.com"}\n',
        "g.jsonl": '{"email": "g@example.com", "customer_id": "8"}\n',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    paths = [str(tmp_path / name) for name in files]
    outcomes = extract.check_files([extract.LandedFile(p) for p in paths], paths, [])
    groups = extract.read_groups(list(zip(outcomes, paths, strict=True)))
    assert sorted(sorted(extract.file_name(path) for _, path in group) for group in groups) == [
        ["a.csv"],
        ["a.csv", "b.csv"],
        ["c d.csv"],
        ["e.csv"],
        ["f.jsonl", "g.jsonl"],
    ]
    args = job_args(extract, tmp_path, "run-g", paths)
    assert extract.run(spark, None, args)["rows_written"] == 8
    output = extract.raw_partition(str(tmp_path / "raw"), "2026-12-01", "run-g")
    raw = spark.read.options(**extract.CSV_READ_OPTIONS).csv(output)
    told = {r["customer_id"]: r["lineage_source"] for r in raw.collect()}
    owner = {"1": "a.csv", "2": "a.csv", "3": "b.csv", "4": "sub/a.csv", "5": "c d.csv", "6": "e.csv"}
    assert told == {**{i: str(tmp_path / n) for i, n in owner.items()}, "7": paths[5], "8": paths[6]}
