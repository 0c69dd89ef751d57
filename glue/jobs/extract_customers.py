"""Glue 5.0 job ``extract_customers``: customers from a relational table or landed files → raw CSV.

Self-contained: ``sam deploy`` uploads this file alone. Runs unmodified on AWS Glue 5.0 (Spark 3.5) and
locally on sqlframe/DuckDB through gluerelay's awsglue shim.

Job arguments:
  --source          ``jdbc`` (the table behind a Glue connection) or ``s3`` (the run's landed files)
  --run_id          the pipeline run; names the output partition
  --raw_path        output root, e.g. ``s3://bucket/raw/customers``
  --summary_uri     where to write the summary (gluerelay passes summaries/<run_id>/<step>.json)
  --ingest_date     ``YYYY-MM-DD``, or ``today`` (UTC)
  jdbc:  --connection_name, --connection_type (postgresql | mysql), --table (default ``customers``)
  s3:    --input_uris (comma-separated URIs) and/or --manifest_uri (the run's manifest:
         ``{"objects": [{"bucket": ..., "key": ..., "version_id": ..., "etag": ...}, ...]}``), and
         --staging_uri (gluerelay passes staging/<run_id>/<step>/<attempt>/)
         --required_columns (comma-separated): columns every landed file must have (default: none)

Landed S3 objects are read exactly: each is first copied, by its version id and only if its ETag still
matches, to a safe name under --staging_uri (``00000.csv``, ...), and the copies are read. So a key with
glob characters (``* ? [ ] { }``), spaces or ``%`` reads that one object on Spark and DuckDB alike, and a
key overwritten while the run waited still gives this run the version that landed. The copies are deleted
once the raw output is written.

Landed files are checked before any engine reads them, by this script and not by the engine, so Glue
and the local engine decide alike: each must be UTF-8 text (gzip-compressed whole, when named ``.gz``);
a CSV file comma-delimited RFC 4180 with a header line naming each column once, every record as many
fields as the header; a JSON Lines file one flat JSON object per line. With --required_columns, each
file must hold those columns. A file that fails its check is set aside: it is not read, it stays where it
landed, and the summary and the job's log name it with its problem (a reason code such as ``not_utf8``
and a message). The other files of the run are processed. A run none of whose files can be read fails,
naming each file and its problem. The engine then reads the checked files with explicit, strict options,
and a row count that differs from the records the check counted fails the job rather than pass on rows
an engine parsed differently.

Output: ``<raw_path>/ingest_date=<date>/run_id=<run>/`` as CSV with a header, every value exactly as read
(no trimming, no reformatting), plus lineage columns.
Summary (``--summary_uri``): rows read and written, inputs, columns, each landed file's outcome (``files``)
and the counts ``files_read`` and ``files_set_aside``; the control plane reads the step's figures from it.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

JOB = "extract_customers"
REQUIRED_ARGS = ["JOB_NAME", "source", "run_id", "raw_path", "summary_uri", "ingest_date"]
OPTIONAL_ARGS = {
    "connection_name": "",
    "connection_type": "postgresql",
    "table": "customers",
    "input_uris": "",
    "manifest_uri": "",
    "staging_uri": "",
    "required_columns": "",
}
LINEAGE_COLUMNS = ["lineage_source", "lineage_run_id", "lineage_ingested_at"]
CSV_FORMATS = (".csv", ".csv.gz", ".txt")
JSON_LINES_FORMATS = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz")
# Every read option explicit, so no engine guesses: UTF-8, comma-delimited, RFC 4180 quoting (Spark escapes
# quotes with backslashes unless told otherwise), quoted newlines allowed, and a malformed record fails the
# read instead of being padded, cut or set to null.
CSV_READ_OPTIONS = {
    "header": "true",
    "sep": ",",
    "quote": '"',
    "escape": '"',
    "multiLine": "true",
    "encoding": "UTF-8",
    "mode": "FAILFAST",
}
JSON_READ_OPTIONS = {"primitivesAsString": "true", "mode": "FAILFAST"}
# Delimiters a CSV header with a single column betrays (the file was exported with another delimiter).
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
READ_CHUNK = 1 << 20  # bytes a file check reads at a time
# The longest record (a CSV record, quoted newlines included, or a JSON line) a landed file may hold. Spark
# takes any length; DuckDB refuses a CSV record over 2 MB (max_line_size): one limit below both, enforced
# by the check, gives the same outcome on each.
MAX_RECORD_BYTES = 1 << 20
# Values stay as read: Spark's CSV writer trims whitespace unless told not to.
RAW_CSV_WRITE_OPTIONS = {
    "header": "true",
    "quote": '"',
    "escape": '"',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
STAGING_THREADS = 16  # copies in flight at once (server-side copies: the driver moves no data)
# File names every engine spells alike in input_file_name() (staged copies are named 00000.csv, ...).
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class ExtractError(Exception):
    """The job cannot extract: the message names the source or argument at fault."""


class UnusableFileError(Exception):
    """Why a landed file cannot be read as its name says. `reason` is a stable code for counting and
    alerting; the message completes "landed file <uri> ..."."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def resolve_args(argv: list[str]) -> dict[str, str]:
    present = [name for name in OPTIONAL_ARGS if f"--{name}" in argv]
    args = {**OPTIONAL_ARGS, **getResolvedOptions(argv, REQUIRED_ARGS + present)}
    if args["source"] not in {"jdbc", "s3"}:
        raise ExtractError(f"--source must be jdbc or s3, not {args['source']!r}")
    if not RUN_ID_PATTERN.match(args["run_id"]):
        raise ExtractError(f"--run_id {args['run_id']!r} must be 1-80 letters, digits, '.', '_' or '-'")
    args["ingest_date"] = resolve_ingest_date(args["ingest_date"])
    return args


def resolve_ingest_date(value: str) -> str:
    if value == "today":
        return datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        return datetime.strptime(value, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError as e:
        raise ExtractError(f"--ingest_date must be YYYY-MM-DD or today, not {value!r}") from e


def landed_format(uri: str) -> str:
    name = uri.lower()
    if name.endswith(CSV_FORMATS):
        return "csv"
    if name.endswith(JSON_LINES_FORMATS):
        return "json"
    raise ExtractError(
        f"landed file {uri} has an unknown format: expected CSV ({', '.join(CSV_FORMATS)}) "
        f"or JSON Lines ({', '.join(JSON_LINES_FORMATS)})"
    )


def read_text(uri: str) -> str:
    if uri.startswith("s3://"):
        import boto3

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return str(body.decode("utf-8"))
    return Path(uri).read_text(encoding="utf-8")


def write_text(uri: str, text: str) -> None:
    if uri.startswith("s3://"):
        import boto3

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        boto3.client("s3").put_object(
            Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json"
        )
        return
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    Path(uri).write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class LandedFile:
    """One landed object as this run takes it: the version that landed (if the bucket is versioned)."""

    uri: str  # s3://bucket/key as landed, or a local path
    version_id: str | None = None
    etag: str | None = None

    @property
    def source(self) -> str:
        """Lineage: the exact version read."""
        return f"{self.uri}?versionId={self.version_id}" if self.version_id else self.uri


def input_files(args: dict[str, str]) -> list[LandedFile]:
    """The landed files of this run: explicit URIs, plus the object versions a manifest lists."""
    files = [LandedFile(u.strip()) for u in args["input_uris"].split(",") if u.strip()]
    if args["manifest_uri"]:
        try:
            manifest = json.loads(read_text(args["manifest_uri"]))
        except (OSError, ValueError) as e:
            raise ExtractError(f"manifest {args['manifest_uri']} cannot be read: {e}") from e
        files += manifest_files(manifest, args["manifest_uri"])
    if not files:
        raise ExtractError("--source s3 needs --input_uris or --manifest_uri naming the landed files")
    return list(dict.fromkeys(files))


def manifest_files(manifest: object, where: str) -> list[LandedFile]:
    """The object versions of a run's manifest: ``{"objects": [{"bucket": ..., "key": ...}, ...]}``."""
    listed = manifest.get("objects") if isinstance(manifest, dict) else None
    if not isinstance(listed, list) or not all(
        isinstance(o, dict) and isinstance(o.get("bucket"), str) and isinstance(o.get("key"), str)
        for o in listed
    ):
        raise ExtractError(
            f'manifest {where} must be {{"objects": [{{"bucket": "...", "key": "..."}}, ...]}}'
        )
    return [
        LandedFile(f"s3://{o['bucket']}/{o['key']}", o.get("version_id") or None, o.get("etag") or None)
        for o in listed
    ]


def format_suffix(uri: str) -> str:
    """The file's format suffix as written (``.csv.gz``), which the readers detect compression from."""
    landed_format(uri)  # refuses an unknown format, naming the file
    name = uri.lower()
    return max((s for s in CSV_FORMATS + JSON_LINES_FORMATS if name.endswith(s)), key=len)


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def stage(files: list[LandedFile], staging_uri: str) -> list[str]:
    """What the engine reads for each file: a copy of its landed version under a safe name (S3), or the
    local path itself."""
    if any(f.uri.startswith("s3://") for f in files) and not staging_uri.startswith("s3://"):
        raise ExtractError("landed S3 objects need --staging_uri s3://... (gluerelay passes it to every job)")
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    folder = staging_uri.rstrip("/") + "/"

    def copy(numbered: tuple[int, LandedFile]) -> str:
        number, landed = numbered
        if not landed.uri.startswith("s3://"):
            return landed.uri
        bucket, key = split_s3(landed.uri)
        target_bucket, target_key = split_s3(f"{folder}{number:05d}{format_suffix(landed.uri)}")
        source = {
            "Bucket": bucket,
            "Key": key,
            **({"VersionId": landed.version_id} if landed.version_id else {}),
        }
        try:
            s3.copy(
                source,
                target_bucket,
                target_key,
                ExtraArgs={"CopySourceIfMatch": f'"{landed.etag}"'} if landed.etag else None,
            )
        except ClientError as e:
            raise ExtractError(staging_problem(landed, e.response.get("Error", {}).get("Code", ""), e)) from e
        return f"s3://{target_bucket}/{target_key}"

    with ThreadPoolExecutor(max_workers=STAGING_THREADS) as pool:
        return list(pool.map(copy, enumerate(files)))


def staging_problem(landed: LandedFile, code: str, error: Exception) -> str:
    if code in {"PreconditionFailed", "412"}:
        return (
            f"landed file {landed.uri} was overwritten after it landed (its ETag is no longer {landed.etag}) "
            "and the bucket keeps no versions: its new content is a run of its own"
        )
    if code in {"NoSuchKey", "NoSuchVersion", "404"}:
        return f"landed file {landed.source} no longer exists"
    return f"landed file {landed.source} cannot be staged: {error}"


def unstage(paths: list[str], files: list[LandedFile]) -> None:
    """Delete the staged copies (a lifecycle rule on staging/ expires any a failed run leaves)."""
    staged = [split_s3(p) for p, f in zip(paths, files, strict=True) if p != f.uri]
    if not staged:
        return
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = boto3.client("s3")
    for start in range(0, len(staged), 1000):  # DeleteObjects takes at most 1,000 keys
        chunk = staged[start : start + 1000]
        try:
            s3.delete_objects(
                Bucket=chunk[0][0], Delete={"Objects": [{"Key": k} for _, k in chunk], "Quiet": True}
            )
        except (BotoCoreError, ClientError) as e:  # never fail (or mask a failure) over scratch copies
            print(f"{JOB}: staged copies under {chunk[0][1].rsplit('/', 1)[0]}/ left to expire: {e}")


@dataclass(frozen=True)
class FileOutcome:
    """What the check made of one landed file: read (with its record count) or set aside (why)."""

    landed: LandedFile
    rows: int = 0
    columns: tuple[str, ...] = ()  # as the check found them (CSV: the header's order)
    reason: str | None = None  # set aside when not None
    problem: str = ""

    @property
    def usable(self) -> bool:
        return self.reason is None

    def summary(self) -> dict[str, object]:
        if self.usable:
            return {"file": self.landed.source, "outcome": "read", "rows": self.rows}
        return {
            "file": self.landed.source,
            "outcome": "set aside",
            "reason": self.reason,
            "problem": self.problem,
        }

    def told(self) -> str:
        return f"landed file {self.landed.source} {self.problem}"


def check_landed_file(landed: LandedFile, path: str, required: list[str]) -> FileOutcome:
    """Read `path` (the file's staged copy) to its end and check it is what its name says."""
    name = landed.uri.lower()
    try:
        data: Iterable[bytes] = file_chunks(path)
        if name.endswith(".gz"):
            data = gunzipped(data)
        raw_lines = Measured(split_lines(data))
        lines = text_lines(raw_lines)
        if landed_format(landed.uri) == "csv":
            rows, columns = check_csv(lines, raw_lines, required)
        else:
            rows, columns = check_json_lines(lines, raw_lines, required)
    except UnusableFileError as e:
        return FileOutcome(landed, reason=e.reason, problem=str(e))
    except OSError as e:  # not the file's content at fault: the run fails, as for a missing S3 object
        raise ExtractError(f"landed file {landed.uri} cannot be read: {e.strerror or e}") from e
    return FileOutcome(landed, rows=rows, columns=columns)


def file_chunks(path: str) -> Iterator[bytes]:
    if path.startswith("s3://"):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(path)
        try:
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        except (BotoCoreError, ClientError) as e:
            raise OSError(f"its staged copy {path} cannot be read: {e}") from e
        yield from iter(lambda: bytes(body.read(READ_CHUNK)), b"")
        return
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(READ_CHUNK), b"")


def gunzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of gzip data, read to its end: every member (Spark reads concatenated
    members too), each of which must end with its end-of-stream marker."""
    inflater, fed = zlib.decompressobj(wbits=31), False
    for chunk in chunks:
        pending = chunk
        while pending:
            fed = True
            try:
                yield inflater.decompress(pending)
            except zlib.error as e:
                if "header" in str(e):
                    raise UnusableFileError("not_gzip", "is named .gz but is not gzip-compressed") from e
                raise UnusableFileError(
                    "corrupt_gzip", "is corrupt gzip data: it cannot be decompressed"
                ) from e
            pending = b""
            if inflater.eof and inflater.unused_data:  # the next member
                pending, inflater = inflater.unused_data, zlib.decompressobj(wbits=31)
    if fed and not inflater.eof:
        raise UnusableFileError(
            "truncated_gzip", "is truncated: its gzip data ends before gzip's end-of-stream marker"
        )


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines with their line ends (a CSV value may hold a quoted newline). A line longer than a record may
    be is refused as soon as it is, so a file without line breaks is never held whole in memory."""
    pending, number = b"", 0
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            number += 1
            yield line + b"\n"
        if len(pending) > MAX_RECORD_BYTES:
            raise too_long(f"line {number + 1}")
    if pending:
        yield pending


class Measured:
    """Byte lines passed through, counting the bytes passed so far (a record's size is the difference
    between two counts: the CSV reader takes lines only as it needs them)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self.lines, self.bytes = lines, 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self.lines:
            self.bytes += len(line)
            yield line


def too_long(where: str) -> UnusableFileError:
    return UnusableFileError(
        "record_too_long",
        f"has a record longer than {MAX_RECORD_BYTES:,} bytes, the limit for landed records ({where})",
    )


def text_lines(lines: Iterable[bytes]) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UnusableFileError(
                "not_utf8",
                f"is not UTF-8 text: line {number} holds byte 0x{line[e.start]:02x}, which UTF-8 does not "
                "allow there (saved as Latin-1 or Windows-1252? Landed files must be UTF-8)",
            ) from e
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]  # a byte order mark says "UTF-8"; it is not part of the first column's name
        yield text


def check_csv(lines: Iterator[str], measured: Measured, required: list[str]) -> tuple[int, tuple[str, ...]]:
    """The number of records and the columns of a comma-delimited CSV file with a header line."""
    csv.field_size_limit(MAX_RECORD_BYTES)  # a longer value makes a longer record anyway
    records = csv.reader(lines, delimiter=",", quotechar='"', doublequote=True, strict=True)
    rows, starts, before = 0, 1, 0  # the line the record being read starts on, the bytes before it
    try:
        header = next(records, None)
        if header is None:
            raise UnusableFileError("empty", "is empty: a CSV file needs at least a header line")
        check_header(header, required)
        starts, before = records.line_num + 1, measured.bytes
        for record in records:
            if measured.bytes - before > MAX_RECORD_BYTES:
                raise too_long(f"line {starts}")
            if record:  # a blank line is no record on any engine
                if len(record) != len(header):
                    raise UnusableFileError(
                        "ragged_record",
                        f"is not rectangular: record {rows + 1} (ending on line {records.line_num}) has "
                        f"{len(record)} fields, the header {len(header)}",
                    )
                rows += 1
            starts, before = records.line_num + 1, measured.bytes
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise too_long(f"line {starts}") from e
        problem = "a quoted value is never closed" if "end of data" in str(e) else str(e)
        raise UnusableFileError(
            "malformed_csv", f"is not valid CSV: the record starting on line {starts}: {problem}"
        ) from e
    return rows, tuple(header)


def check_header(header: list[str], required: list[str]) -> None:
    if header in ([], [""]):
        raise UnusableFileError("no_header", "has a blank first line: a CSV file starts with its header line")
    unnamed = [str(i) for i, name in enumerate(header, start=1) if not name.strip()]
    if unnamed:
        raise UnusableFileError(
            "bad_header", f"has columns without a name in its header (column {', '.join(unnamed)})"
        )
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise UnusableFileError("bad_header", f"names columns twice in its header: {', '.join(twice)}")
    if len(header) == 1:
        seen = [word for mark, word in OTHER_DELIMITERS.items() if mark in header[0]]
        if seen:
            raise UnusableFileError(
                "wrong_delimiter",
                f"is not comma-delimited: its header looks {seen[0]}-delimited ({header[0][:80]!r}), "
                "and landed CSV files must be comma-delimited",
            )
    missing = [c for c in required if c not in header]
    if missing:
        raise UnusableFileError("missing_columns", f"lacks required columns: {', '.join(missing)}")


def check_json_lines(
    lines: Iterator[str], measured: Measured, required: list[str]
) -> tuple[int, tuple[str, ...]]:
    """The number of records and the columns (in sorted order, as Spark's JSON reader gives them) of a
    JSON Lines file: one flat JSON object per line, blank lines allowed."""
    columns: dict[str, None] = {}
    rows, before = 0, 0
    for number, line in enumerate(lines, start=1):
        if measured.bytes - before > MAX_RECORD_BYTES:
            raise too_long(f"line {number}")
        before = measured.bytes
        text = line.strip()
        if not text:
            continue
        if rows == 0 and text.startswith("["):
            raise UnusableFileError(
                "json_array", "holds a JSON array, not JSON Lines: landed JSON files hold one object per line"
            )
        try:
            record = json.loads(text)
        except ValueError as e:
            detail = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)
            raise UnusableFileError(
                "malformed_json", f"has a line that is not JSON: line {number}: {detail}"
            ) from e
        if not isinstance(record, dict):
            raise UnusableFileError(
                "malformed_json",
                f"has a line that is not a JSON object: line {number} is {json_kind(record)}",
            )
        nested = [key for key, value in record.items() if isinstance(value, dict | list)]
        if nested:
            raise UnusableFileError(
                "nested_json",
                f"has a nested value: line {number}, field {nested[0]!r} holds "
                f"{json_kind(record[nested[0]])}; landed records are flat",
            )
        columns.update(dict.fromkeys(record))
        rows += 1
    if rows == 0:
        raise UnusableFileError("empty", "is empty: it holds no JSON Lines record")
    missing = [c for c in required if c not in columns]
    if missing:
        raise UnusableFileError("missing_columns", f"lacks required columns: {', '.join(missing)}")
    return rows, tuple(sorted(columns))


def json_kind(value: object) -> str:
    kinds = ((dict, "an object"), (list, "an array"), (str, "a string"), (bool, "a boolean"))
    return next(
        (word for kind, word in kinds if isinstance(value, kind)), "a number" if value is not None else "null"
    )


def check_files(files: list[LandedFile], paths: list[str], required: list[str]) -> list[FileOutcome]:
    """Every landed file checked (S3 reads overlap); the outcomes in the run's order."""
    with ThreadPoolExecutor(max_workers=STAGING_THREADS) as pool:
        return list(
            pool.map(
                lambda pair: check_landed_file(pair[0], pair[1], required), zip(files, paths, strict=True)
            )
        )


def read_landed_files(spark: SparkSession, files: list[tuple[LandedFile, str]]) -> DataFrame:
    """Landed files of one format (each read from its staged copy), every column as a string, exactly as
    written, in one read."""
    paths = [path for _, path in files]
    try:
        if landed_format(files[0][0].uri) == "csv":
            return spark.read.options(**CSV_READ_OPTIONS).csv(paths)
        return spark.read.options(**JSON_READ_OPTIONS).json(paths)
    except Exception as e:  # Spark and DuckDB raise engine-specific types; the message names the files
        message = str(e)
        for landed, path in files:
            message = message.replace(path, landed.uri)
        named = ", ".join(landed.uri for landed, _ in files)
        raise ExtractError(
            f"landed file{'s' if len(files) > 1 else ''} {named} cannot be read: {message}"
        ) from e


def file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def read_groups(usable: list[tuple[FileOutcome, str]]) -> list[list[tuple[LandedFile, str]]]:
    """The checked files in as few reads as can be: one per format and set of columns, so each read has
    one schema. Within a read, each row's file is told by its file name: a file whose name an engine
    might spell otherwise (percent-encoded), or that an earlier file of its read has, is read alone."""
    groups: dict[tuple[object, ...], list[tuple[LandedFile, str]]] = {}
    for outcome, path in usable:
        key: tuple[object, ...] = (format_suffix(outcome.landed.uri), outcome.columns)
        groups.setdefault(key, []).append((outcome.landed, path))
    reads: list[list[tuple[LandedFile, str]]] = []
    for files in groups.values():
        shared: dict[str, tuple[LandedFile, str]] = {}
        for landed, path in files:
            name = file_name(path)
            if SAFE_FILE_NAME.match(name) and name not in shared:
                shared[name] = (landed, path)
            else:
                reads.append([(landed, path)])
        if shared:
            reads.append(list(shared.values()))
    return reads


def with_lineage(df: DataFrame, source: Column, run_id: str, ingested_at: str) -> DataFrame:
    return df.select(
        *[F.col(c) for c in df.columns if c not in LINEAGE_COLUMNS],
        source.alias("lineage_source"),
        F.lit(run_id).alias("lineage_run_id"),
        F.lit(ingested_at).alias("lineage_ingested_at"),
    )


def read_with_lineage(
    spark: SparkSession, files: list[tuple[LandedFile, str]], run_id: str, ingested_at: str
) -> DataFrame:
    """One read of `files`, each row's lineage_source the landed file (version) it came from."""
    df = read_landed_files(spark, files)
    if len(files) == 1:
        return with_lineage(df, F.lit(files[0][0].source), run_id, ingested_at)
    by_name = F.create_map(*[F.lit(v) for landed, path in files for v in (file_name(path), landed.source)])
    source = by_name[F.regexp_extract(F.input_file_name(), r"[^/]*$", 0)]
    return with_lineage(df, source, run_id, ingested_at)


def read_jdbc(glue_context: GlueContext, args: dict[str, str]) -> DataFrame:
    if not args["connection_name"]:
        raise ExtractError("--source jdbc needs --connection_name (the Glue connection to the database)")
    options = {
        "useConnectionProperties": "true",
        "connectionName": args["connection_name"],
        "dbtable": args["table"],
    }
    try:
        frame = glue_context.create_dynamic_frame.from_options(
            connection_type=args["connection_type"],
            connection_options=options,
            transformation_ctx="customers_source",
        )
        df = frame.toDF()
    except Exception as e:  # JDBC drivers raise their own types; the message names table and connection
        raise ExtractError(
            f"table {args['table']} through connection {args['connection_name']} cannot be read: {e}"
        ) from e
    return df.select(*[F.col(c).cast("string").alias(c) for c in df.columns])


@dataclass
class Extracted:
    """The raw frame (source columns as strings, plus lineage), where it came from, and staged copies."""

    raw: DataFrame
    sources: list[str]
    files: list[LandedFile]
    staged: list[str]
    outcomes: list[FileOutcome]  # each landed file's, in the run's order (none for jdbc)

    def named(self, message: str) -> str:
        """An engine's message with each staged copy called by the landed file it copies."""
        for landed, path in zip(self.files, self.staged, strict=True):
            message = message.replace(path, landed.uri)
        return message


def extract(
    spark: SparkSession, glue_context: GlueContext, args: dict[str, str], ingested_at: str
) -> Extracted:
    run_id = args["run_id"]
    if args["source"] == "jdbc":
        source = f"jdbc:{args['connection_name']}/{args['table']}"
        return Extracted(
            with_lineage(read_jdbc(glue_context, args), F.lit(source), run_id, ingested_at),
            [source],
            [],
            [],
            [],
        )
    files = input_files(args)
    for landed in files:
        landed_format(landed.uri)  # an unknown format fails before anything is copied
    paths = stage(files, args["staging_uri"])
    required = [c.strip() for c in args["required_columns"].split(",") if c.strip()]
    outcomes = check_files(files, paths, required)
    for outcome in outcomes:
        if not outcome.usable:
            print(f"{JOB}: {outcome.told()}; set aside ({outcome.reason}), the run's other files go on")
    usable = [(o, path) for o, path in zip(outcomes, paths, strict=True) if o.usable]
    if not usable:
        unstage(paths, files)
        raise ExtractError(unusable_run(outcomes))
    # One read per format and set of columns, not one per file: a read and a union per file cost
    # every engine more than the data does once runs have many small files. Reads of several groups are
    # each taken to their end (cached) before the next: unioned lazily, every read's scan would be open at
    # once (DuckDB gives each CSV scan a 32 MB buffer: 20 scans exhausted the local engine's 512 MB).
    groups = read_groups(usable)
    frames = [read_with_lineage(spark, group, run_id, ingested_at) for group in groups]
    if len(frames) > 1:
        frames = [frame.cache() for frame in frames]
    combined = reduce(lambda left, right: left.unionByName(right, allowMissingColumns=True), frames)
    return Extracted(combined, [o.landed.source for o, _ in usable], files, paths, outcomes)


def reconcile(by_source: dict[str | None, int], read: list[FileOutcome]) -> None:
    """Each checked file must have given the engine as many rows as its check counted records, and every
    row must be told to its file: otherwise nothing is written rather than rows parsed differently."""
    problems = [
        f"the engine read {by_source.get(o.landed.source, 0)} rows from {o.landed.source}, whose check "
        f"counted {o.rows} records"
        for o in read
        if by_source.get(o.landed.source, 0) != o.rows
    ]
    known = {o.landed.source for o in read}
    unknown = sum(n for source, n in by_source.items() if source not in known)
    if unknown:
        problems.append(f"the engine read {unknown} rows it could not tell to a landed file")
    if problems:
        raise ExtractError("; ".join(problems) + ": nothing is written rather than rows parsed differently")


def unusable_run(outcomes: list[FileOutcome], shown: int = 10) -> str:
    """The failure of a run none of whose files can be read: each file and its problem."""
    told = "; ".join(o.told() for o in outcomes[:shown])
    more = f"; and {len(outcomes) - shown} more (the job's log names each)" if len(outcomes) > shown else ""
    return f"no landed file of this run can be read, so each is set aside: {told}{more}"


def raw_partition(raw_path: str, ingest_date: str, run_id: str) -> str:
    return f"{raw_path.rstrip('/')}/ingest_date={ingest_date}/run_id={run_id}/"


def write_raw(df: DataFrame, path: str) -> None:
    df.write.mode("overwrite").options(**RAW_CSV_WRITE_OPTIONS).csv(path)


def run(spark: SparkSession, glue_context: GlueContext, args: dict[str, str]) -> dict[str, object]:
    started = datetime.now(UTC)
    ingested_at = started.strftime("%Y-%m-%d %H:%M:%S")
    extracted = extract(spark, glue_context, args, ingested_at)
    raw, sources = extracted.raw.cache(), extracted.sources
    output = raw_partition(args["raw_path"], args["ingest_date"], args["run_id"])
    try:
        try:
            by_source = {
                row["lineage_source"]: int(row["count"])
                for row in raw.groupBy("lineage_source").count().collect()
            }
        except Exception as e:  # the first action is where a lazy engine finds an unreadable source
            read = ", ".join(sources)
            raise ExtractError(f"source {read} cannot be read: {extracted.named(str(e))}") from e
        rows = sum(by_source.values())
        if extracted.outcomes:
            reconcile(by_source, [o for o in extracted.outcomes if o.usable])
        write_raw(raw, output)
    finally:
        unstage(extracted.staged, extracted.files)
    summary: dict[str, object] = {
        "job": JOB,
        "run_id": args["run_id"],
        "source": args["source"],
        "inputs": sources,
        "ingest_date": args["ingest_date"],
        "rows_read": rows,
        "rows_written": rows,
        "columns": raw.columns,
        "output": output,
        **(
            {
                "files": [o.summary() for o in extracted.outcomes],
                "files_read": sum(o.usable for o in extracted.outcomes),
                "files_set_aside": sum(not o.usable for o in extracted.outcomes),
            }
            if extracted.outcomes
            else {}
        ),
        "started_at": started.isoformat(),
        "completed_at": datetime.now(UTC).isoformat(),
    }
    write_text(args["summary_uri"], json.dumps(summary, indent=2))
    return summary


def main() -> None:
    args = resolve_args(sys.argv)
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    summary = run(spark, glue_context, args)
    glue_context.get_logger().info(f"{JOB} summary: {json.dumps(summary)}")
    job.commit()


if __name__ == "__main__":
    main()
