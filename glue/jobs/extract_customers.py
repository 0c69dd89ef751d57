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

Landed S3 objects are read exactly: each is first copied, by its version id and only if its ETag still
matches, to a safe name under --staging_uri (``00000.csv``, ...), and the copies are read. So a key with
glob characters (``* ? [ ] { }``), spaces or ``%`` reads that one object on Spark and DuckDB alike, and a
key overwritten while the run waited still gives this run the version that landed. The copies are deleted
once the raw output is written.

Output: ``<raw_path>/ingest_date=<date>/run_id=<run>/`` as CSV with a header, every value exactly as read
(no trimming, no reformatting), plus lineage columns.
Summary (``--summary_uri``): rows read and written, inputs, columns; the control plane reads the step's row
counts from it.
"""

from __future__ import annotations

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import DataFrame, SparkSession
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
}
LINEAGE_COLUMNS = ["lineage_source", "lineage_run_id", "lineage_ingested_at"]
CSV_FORMATS = (".csv", ".csv.gz", ".txt")
JSON_LINES_FORMATS = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz")
# RFC 4180 quoting (Spark escapes quotes with backslashes unless told otherwise); quoted newlines allowed.
CSV_READ_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true"}
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


class ExtractError(Exception):
    """The job cannot extract: the message names the source or argument at fault."""


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


def read_landed_file(spark: SparkSession, landed: LandedFile, path: str) -> DataFrame:
    """One landed file (read from `path`, its staged copy), every column as a string, exactly as written."""
    fmt = landed_format(landed.uri)
    try:
        if fmt == "csv":
            return spark.read.options(**CSV_READ_OPTIONS).csv(path)
        return spark.read.json(path, primitivesAsString=True)
    except Exception as e:  # Spark and DuckDB raise engine-specific types; the message names the file
        raise ExtractError(
            f"landed file {landed.uri} cannot be read: {str(e).replace(path, landed.uri)}"
        ) from e


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


def with_lineage(df: DataFrame, source: str, run_id: str, ingested_at: str) -> DataFrame:
    return df.select(
        *[F.col(c) for c in df.columns if c not in LINEAGE_COLUMNS],
        F.lit(source).alias("lineage_source"),
        F.lit(run_id).alias("lineage_run_id"),
        F.lit(ingested_at).alias("lineage_ingested_at"),
    )


@dataclass
class Extracted:
    """The raw frame (source columns as strings, plus lineage), where it came from, and staged copies."""

    raw: DataFrame
    sources: list[str]
    files: list[LandedFile]
    staged: list[str]

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
            with_lineage(read_jdbc(glue_context, args), source, run_id, ingested_at), [source], [], []
        )
    files = input_files(args)
    for landed in files:
        landed_format(landed.uri)  # an unknown format fails before anything is copied
    paths = stage(files, args["staging_uri"])
    # One file at a time, each read to its end (cached) before the next: memory stays flat however many
    # files a run has. Read in one query, every file's scan is open at once (DuckDB gives each CSV scan a
    # 32 MB buffer: 20 files were enough to exhaust the local engine's 512 MB).
    frames = [
        with_lineage(read_landed_file(spark, f, path), f.source, run_id, ingested_at).cache()
        for f, path in zip(files, paths, strict=True)
    ]
    combined = reduce(lambda left, right: left.unionByName(right, allowMissingColumns=True), frames)
    return Extracted(combined, [f.source for f in files], files, paths)


def raw_partition(raw_path: str, ingest_date: str, run_id: str) -> str:
    return f"{raw_path.rstrip('/')}/ingest_date={ingest_date}/run_id={run_id}/"


def write_raw(df: DataFrame, path: str) -> None:
    df.write.mode("overwrite").options(**RAW_CSV_WRITE_OPTIONS).csv(path)


def run(spark: SparkSession, glue_context: GlueContext, args: dict[str, str]) -> dict[str, object]:
    started = datetime.now(UTC)
    ingested_at = started.strftime("%Y-%m-%d %H:%M:%S")
    extracted = extract(spark, glue_context, args, ingested_at)
    raw, sources = extracted.raw.cache(), extracted.sources
    try:
        rows = raw.count()
    except Exception as e:  # the first action is where a lazy engine finds an unreadable source
        read = ", ".join(f.uri for f in extracted.files) or ", ".join(sources)
        raise ExtractError(f"source {read} cannot be read: {extracted.named(str(e))}") from e
    output = raw_partition(args["raw_path"], args["ingest_date"], args["run_id"])
    try:
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
