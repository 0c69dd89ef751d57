"""The dirty customers generator: reproducible, and dirty in the ways real exports are."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path

import pytest

from gluerelay import datagen


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    assert list(datagen.generate_rows(500, seed=1)) == list(datagen.generate_rows(500, seed=1))
    assert list(datagen.generate_rows(500, seed=1)) != list(datagen.generate_rows(500, seed=2))


def test_rows_carry_every_kind_of_dirt() -> None:
    rows = list(datagen.generate_rows(5000, seed=11))
    ids = [r["customer_id"] for r in rows]
    emails = [r["email"] for r in rows]
    assert any(v != v.strip() for r in rows for v in r.values()), "stray spaces"
    assert any(e != e.lower() for e in emails), "mixed-case emails"
    assert any(e and "@" not in e for e in emails), "invalid emails"
    assert "" in emails and "" in ids, "missing values"
    assert any(i.strip() and not i.strip().isdigit() for i in ids), "malformed ids"
    assert len({i.strip() for i in ids if i.strip().isdigit()}) < len(
        [i for i in ids if i.strip().isdigit()]
    ), "repeated ids (duplicates and later updates)"
    dates = [r["date_of_birth"] for r in rows]
    assert any(re.fullmatch(r"\d{2}/\d{2}/\d{4}", d) for d in dates)
    assert any(re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", d) for d in dates)
    assert any(re.fullmatch(r"\d{4}-\d{1}-\d{1,2}", d) for d in dates), "non-padded dates"
    assert any(d in datagen.GARBAGE_DATES for d in dates)
    phones = [r["phone"] for r in rows]
    assert any(p.startswith("+") for p in phones) and any(p.startswith("(") for p in phones)
    assert any("T" in r["updated_at"] for r in rows) and any(" " in r["updated_at"].strip() for r in rows)


def test_later_updates_of_a_customer_are_newer() -> None:
    rows = [r for r in datagen.generate_rows(3000, seed=5) if r["customer_id"].strip().isdigit()]
    by_id: dict[str, list[str]] = {}
    for row in rows:
        by_id.setdefault(row["customer_id"].strip(), []).append(row["updated_at"])
    assert any(len(set(stamps)) > 1 for stamps in by_id.values())


@pytest.mark.parametrize("fmt", datagen.FORMATS)
def test_every_format_holds_every_row(tmp_path: Path, fmt: datagen.OutputFormat) -> None:
    path = tmp_path / f"out.{fmt}"
    expected = list(datagen.generate_rows(200, seed=9))
    assert datagen.write(path, iter(expected), fmt) == 200
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            assert list(csv.DictReader(handle)) == expected
    elif fmt == "jsonl":
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [{k: v or "" for k, v in line.items()} for line in lines] == expected
    else:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT * FROM customers").fetchall()
        db.close()
        assert [dict(zip(datagen.COLUMNS, (v or "" for v in r), strict=True)) for r in rows] == expected


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="row count must be >= 0"):
        list(datagen.generate_rows(-1))
