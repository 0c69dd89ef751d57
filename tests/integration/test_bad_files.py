"""Bad landed files through job 1 (and the good ones on through job 2), on the selected engine: the local
engine under `make test`, PySpark 3.5 (what Glue 5.0 runs) under `make test-spark`. One table of files,
one expected outcome each, asserted alike on both engines: whether the run goes on, the rows it reads,
and the reason code a set-aside file gets. Every file is tried alone and batched with a good file, which
must give the bad file the same reason and the good file's rows.

The reason codes and messages come from job 1's own check of each file, made before any engine reads it
and never from an engine's error text, so no engine internals reach the message."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gluerelay.glue import engine
from tests.integration import bad_inputs
from tests.integration.test_jobs import BucketLayout, cleanse, extract, partition, read_parquet, succeeded

pytestmark = [pytest.mark.integration, pytest.mark.spark]

COLUMNS = "customer_id,first_name,last_name,email,phone,date_of_birth,country,updated_at"
REQUIRED = COLUMNS  # what cleanse_customers needs; the customers pipeline passes the same list
ROW = "{n},Zoe,Doe,zoe{n}@example.com,+14155550100,1990-01-31,US,2026-11-01 10:00:00"
GOOD_CSV = "\n".join([COLUMNS, *(ROW.format(n=n) for n in range(1, 6))]) + "\n"


def jsonl(*records: dict[str, object]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def record(n: int, **changes: object) -> dict[str, object]:
    values = dict(zip(COLUMNS.split(","), ROW.format(n=n).split(","), strict=True))
    return {**values, **changes}


@dataclass(frozen=True)
class Case:
    name: str  # the landed file's name: its suffix says its format
    content: bytes
    rows: int | None  # records read, or None when the file is set aside
    reason: str | None = None  # the set-aside reason code
    says: str = ""  # words the message must hold


CASES = [
    Case("plain.csv", GOOD_CSV.encode(), 5),
    Case(
        "quoted.csv",
        (COLUMNS + "\n" + ROW.format(n=1).replace("Zoe", '"Zoe, ""Z""\nline two"') + "\n\n").encode(),
        1,
    ),
    Case("bom.csv", ("\ufeff" + GOOD_CSV).encode(), 5),
    Case("header-only.csv", (COLUMNS + "\n").encode(), 0),
    Case("crlf.csv", GOOD_CSV.replace("\n", "\r\n").encode(), 5),
    Case("plain.csv.gz", gzip.compress(GOOD_CSV.encode()), 5),
    Case("two-members.csv.gz", gzip.compress(GOOD_CSV.encode()) + gzip.compress(b""), 5),
    Case("lines.jsonl", jsonl(record(1), record(2, email=None), record(3, customer_id=3)), 3),
    Case("lines.json", jsonl(record(1)) + b"\n" + jsonl(record(2)), 2),
    Case(
        "latin-1.csv",
        (COLUMNS + "\n" + ROW.format(n=1).replace("Zoe", "Zoë")).encode("latin-1"),
        None,
        "not_utf8",
        "is not UTF-8 text: line 2 holds byte 0xeb",
    ),
    Case(
        "broken.jsonl",
        jsonl(record(1)) + b'{"customer_id": "2", \n' + jsonl(record(3)),
        None,
        "malformed_json",
        "line 2",
    ),
    Case(
        "semicolons.csv", GOOD_CSV.replace(",", ";").encode(), None, "wrong_delimiter", "semicolon-delimited"
    ),
    Case(
        "array.json",
        json.dumps([record(1), record(2)]).encode(),
        None,
        "json_array",
        "holds a JSON array, not JSON Lines",
    ),
    Case(
        "truncated.csv.gz",
        gzip.compress(GOOD_CSV.encode() * 50)[:-40],
        None,
        "truncated_gzip",
        "ends before gzip's end-of-stream marker",
    ),
    Case("not-gzip.csv.gz", GOOD_CSV.encode(), None, "not_gzip", "is not gzip-compressed"),
    Case("empty.csv", b"", None, "empty", "is empty"),
    Case("empty.jsonl", b"", None, "empty", "is empty"),
    Case(
        "narrow.csv",
        b"customer_id,email\n1,a@example.com\n",
        None,
        "missing_columns",
        "lacks required columns: first_name, last_name, phone",
    ),
    Case(
        "ragged.csv",
        (GOOD_CSV + ROW.format(n=9) + ",extra\n").encode(),
        None,
        "ragged_record",
        "record 6 (ending on line 7) has 9 fields, the header 8",
    ),
    Case(
        "long-record.csv",
        (GOOD_CSV + ROW.format(n=9).replace("Zoe", "z" * (3 << 19)) + "\n").encode(),
        None,
        "record_too_long",
        "longer than 1,048,576 bytes, the limit for landed records (line 7)",
    ),
    Case(  # no line break at all: refused as soon as the line passes the limit, never held whole
        "no-line-break.csv",
        (COLUMNS + "\n" + "z" * (3 << 20)).encode(),
        None,
        "record_too_long",
        "the limit for landed records (line 2)",
    ),
    Case(
        "long-line.jsonl",
        jsonl(record(1), record(2, first_name="z" * (3 << 19))),
        None,
        "record_too_long",
        "(line 2)",
    ),
    Case(
        "unclosed-quote.csv",
        (GOOD_CSV + '9,"Zoe\n').encode(),
        None,
        "malformed_csv",
        "the record starting on line 7: a quoted value is never closed",
    ),
    Case(
        "twice.csv",
        (COLUMNS + ",email\n" + ROW.format(n=1) + ",x\n").encode(),
        None,
        "bad_header",
        "names columns twice in its header: email",
    ),
    Case(
        "nested.jsonl",
        jsonl(record(1, phone={"home": "1"})),
        None,
        "nested_json",
        "field 'phone' holds an object",
    ),
    Case(
        "scalar.jsonl", jsonl(record(1)) + b'"just a string"\n', None, "malformed_json", "line 2 is a string"
    ),
]
NAMES = [c.name for c in CASES]


@pytest.fixture(scope="module")
def observed() -> Iterator[dict[str, dict[str, Any]]]:
    """What this engine did with each file, for RELIABILITY.md's table (`make bad-inputs`)."""
    seen: dict[str, dict[str, Any]] = {}
    yield seen
    bad_inputs.save(engine.selected_engine(), seen)


@pytest.fixture
def bucket(tmp_path: Path) -> BucketLayout:
    return BucketLayout(tmp_path / "bucket")


def land(bucket: BucketLayout, name: str, content: bytes) -> Path:
    path = bucket.landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def summary_of(bucket: BucketLayout, run_id: str, step: str) -> dict[str, Any]:
    return dict(json.loads(bucket.summary(run_id, step).read_text()))


@pytest.mark.parametrize("case", CASES, ids=NAMES)
def test_a_landed_file_alone_is_read_whole_or_fails_its_run_naming_it(
    bucket: BucketLayout, case: Case, observed: dict[str, dict[str, Any]]
) -> None:
    path = land(bucket, case.name, case.content)
    result = extract(bucket, "run-1", input_uris=str(path), required_columns=REQUIRED)
    message = result.error_message or ""
    problem = message.partition(f"landed file {path} ")[2]
    observed[case.name] = {
        "alone": "run fails at extract" if result.state == "FAILED" else f"{case.rows} rows read",
        "message": f"landed file …/{case.name} {problem}" if problem else "",
        "went": "stays in landing/, unread" if case.rows is None else "raw/ then cleansed/ or quarantine/",
    }
    if case.rows is None:
        assert result.state == "FAILED", f"{case.name} was read: {result.log_path.read_text()[-2000:]}"
        assert f"no landed file of this run can be read, so each is set aside: landed file {path} " in message
        assert case.says in message, message
        assert not (bucket.raw).exists(), "a failed extract writes nothing"
        return
    succeeded(result)
    extracted = summary_of(bucket, "run-1", "extract")
    assert (extracted["rows_read"], extracted["files_read"], extracted["files_set_aside"]) == (
        case.rows,
        1,
        0,
    )
    assert extracted["files"] == [{"file": str(path), "outcome": "read", "rows": case.rows}]
    succeeded(cleanse(bucket, "run-1"))
    cleansed = summary_of(bucket, "run-1", "cleanse")
    assert cleansed["rows_read"] == case.rows
    written = read_parquet(partition(bucket.cleansed, "run-1")) if case.rows else []
    assert len(written) == cleansed["rows_written"]
    observed[case.name]["alone"] = f"{extracted['rows_read']} rows read, {len(written)} cleansed"
    # Every value arrived whole: the same text the file holds, not a replacement character or a cut.
    assert all("\ufffd" not in str(value) for row in written for value in row.values())
    if case.name == "quoted.csv":
        assert [r["first_name"] for r in written] == ['Zoe, "Z"\nline two']
    if case.name == "bom.csv":
        assert sorted(r["customer_id"] for r in written) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.rows is None], ids=[c.name for c in CASES if c.rows is None]
)
def test_a_bad_file_batched_with_a_good_one_is_set_aside_with_the_same_reason(
    bucket: BucketLayout, case: Case, observed: dict[str, dict[str, Any]]
) -> None:
    good = land(bucket, "good.csv", GOOD_CSV.encode())
    bad = land(bucket, case.name, case.content)
    result = extract(bucket, "run-2", input_uris=f"{bad},{good}", required_columns=REQUIRED)
    succeeded(result)
    extracted = summary_of(bucket, "run-2", "extract")
    assert (extracted["rows_read"], extracted["files_read"], extracted["files_set_aside"]) == (5, 1, 1)
    set_aside, read = extracted["files"]
    observed.setdefault(case.name, {}).update(
        reason=set_aside.get("reason"),
        batched=f"{set_aside['outcome']}, the good file's {read.get('rows')} rows read",
    )
    assert read == {"file": str(good), "outcome": "read", "rows": 5}
    assert (set_aside["file"], set_aside["outcome"], set_aside["reason"]) == (
        str(bad),
        "set aside",
        case.reason,
    )
    assert case.says in set_aside["problem"]
    assert extracted["inputs"] == [str(good)]
    log = result.log_path.read_text()
    assert f"landed file {bad} " in log and f"set aside ({case.reason})" in log
    assert bad.read_bytes() == case.content, "a set-aside file stays where it landed, unchanged"
