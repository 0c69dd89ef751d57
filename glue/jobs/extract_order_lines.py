"""Glue 5.0 job ``extract_order_lines``: a run's landed order-line files → raw CSV, values exactly as read.

Self-contained: ``sam deploy`` uploads this file alone. Runs unmodified on AWS Glue 5.0 (Spark 3.5) and
locally on sqlframe/DuckDB through gluerelay's awsglue shim.

Job arguments:
  --run_id          the pipeline run; names the output partition
  --manifest_uri    the run's manifest ``{"objects": [{"bucket": ..., "key": ...}, ...]}``; the files whose
                    name starts with --name_prefix (default ``order-lines``) are this job's
  --raw_path        output root, e.g. ``s3://bucket/raw/orders/lines``
  --summary_uri     where to write the summary (rows read and written)
  --ingest_date     ``YYYY-MM-DD``, or ``today`` (UTC)
  --staging_uri     where the landed versions are copied before they are read (gluerelay passes it)

Each landed object is copied by its version id (and only if its ETag still matches) to a safe name under
--staging_uri and read from there, as extract_customers does: keys with glob characters read exactly one
object, and an overwrite after landing does not change what this run reads.

Output: ``<raw_path>/ingest_date=<date>/run_id=<run>/`` as CSV with a header, plus lineage columns.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import reduce
from typing import Any

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from botocore.exceptions import BotoCoreError, ClientError
from pyspark.context import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

JOB = "extract_order_lines"
REQUIRED_ARGS = [
    "JOB_NAME",
    "run_id",
    "manifest_uri",
    "raw_path",
    "summary_uri",
    "ingest_date",
    "staging_uri",
]
CSV_READ_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true"}
RAW_CSV_WRITE_OPTIONS = {
    "header": "true",
    "quote": '"',
    "escape": '"',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}


class ExtractError(Exception):
    """The job cannot extract: the message names the file or argument at fault."""


def resolve_args(argv: list[str]) -> dict[str, str]:
    present = ["name_prefix"] if "--name_prefix" in argv else []
    args = {"name_prefix": "order-lines", **getResolvedOptions(argv, REQUIRED_ARGS + present)}
    if args["ingest_date"] == "today":
        args["ingest_date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    return args


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def landed_files(manifest_uri: str, prefix: str) -> list[dict[str, Any]]:
    """The manifest's objects this job reads: CSV files whose name starts with `prefix`."""
    bucket, key = split_uri(manifest_uri)
    try:
        manifest = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        objects = manifest["objects"]
        return [
            o
            for o in objects
            if o["key"].rsplit("/", 1)[-1].startswith(prefix) and o["key"].lower().endswith(".csv")
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise ExtractError(f"manifest {manifest_uri} is not a gluerelay manifest: {e}") from e


def source_of(obj: dict[str, Any]) -> str:
    """Lineage: the exact object version read."""
    uri = f"s3://{obj['bucket']}/{obj['key']}"
    return f"{uri}?versionId={obj['version_id']}" if obj.get("version_id") else uri


def stage(objects: list[dict[str, Any]], staging_uri: str) -> list[str]:
    """Copy each landed version to a safe name under `staging_uri`; the copies' URIs."""
    s3 = boto3.client("s3")
    folder_bucket, folder = split_uri(staging_uri.rstrip("/") + "/")

    def copy(numbered: tuple[int, dict[str, Any]]) -> str:
        number, obj = numbered
        source = {"Bucket": obj["bucket"], "Key": obj["key"]}
        if obj.get("version_id"):
            source["VersionId"] = obj["version_id"]
        extra = {"CopySourceIfMatch": f'"{obj["etag"]}"'} if obj.get("etag") else None  # an entity tag
        target = f"{folder}{number:05d}.csv"
        try:
            s3.copy(source, folder_bucket, target, ExtraArgs=extra)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in {"PreconditionFailed", "412"}:
                raise ExtractError(f"landed file {source_of(obj)} was overwritten after it landed") from e
            raise ExtractError(f"landed file {source_of(obj)} cannot be staged: {e}") from e
        return f"s3://{folder_bucket}/{target}"

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(copy, enumerate(objects)))


def unstage(staged: list[str]) -> None:
    """Delete the staged copies (a lifecycle rule on staging/ expires any a failed run leaves)."""
    s3 = boto3.client("s3")
    for start in range(0, len(staged), 1000):
        keys = [split_uri(uri) for uri in staged[start : start + 1000]]
        try:
            s3.delete_objects(
                Bucket=keys[0][0], Delete={"Objects": [{"Key": k} for _, k in keys], "Quiet": True}
            )
        except (BotoCoreError, ClientError) as e:  # never fail (or mask a failure) over scratch copies
            print(f"{JOB}: staged copies left to expire: {e}")


def read_lines(spark: SparkSession, source: str, path: str, run_id: str, ingested_at: str) -> DataFrame:
    try:
        frame = spark.read.options(**CSV_READ_OPTIONS).csv(path)
    except Exception as e:  # Spark and DuckDB raise engine-specific types; the message names the file
        raise ExtractError(f"landed file {source} cannot be read: {e}") from e
    return frame.select(
        *[F.col(c) for c in frame.columns],
        F.lit(source).alias("lineage_source"),
        F.lit(run_id).alias("lineage_run_id"),
        F.lit(ingested_at).alias("lineage_ingested_at"),
    )


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, object]:
    started = datetime.now(UTC)
    files = landed_files(args["manifest_uri"], args["name_prefix"])
    if not files:
        raise ExtractError(f"manifest {args['manifest_uri']} names no {args['name_prefix']}*.csv file")
    ingested_at = started.strftime("%Y-%m-%d %H:%M:%S")
    staged = stage(files, args["staging_uri"])
    try:
        sources = [source_of(o) for o in files]
        frames = [
            read_lines(spark, source, path, args["run_id"], ingested_at).cache()
            for source, path in zip(sources, staged, strict=True)
        ]
        lines = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames).cache()
        rows = lines.count()
        output = f"{args['raw_path'].rstrip('/')}/ingest_date={args['ingest_date']}/run_id={args['run_id']}/"
        lines.write.mode("overwrite").options(**RAW_CSV_WRITE_OPTIONS).csv(output)
    finally:
        unstage(staged)
    summary: dict[str, object] = {
        "job": JOB,
        "run_id": args["run_id"],
        "inputs": sources,
        "rows_read": rows,
        "rows_written": rows,
        "output": output,
        "started_at": started.isoformat(),
        "completed_at": datetime.now(UTC).isoformat(),
    }
    bucket, key = split_uri(args["summary_uri"])
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(summary, indent=2).encode())
    return summary


def main() -> None:
    args = resolve_args(sys.argv)
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    summary = run(glue_context.spark_session, args)
    glue_context.get_logger().info(f"{JOB} summary: {json.dumps(summary)}")
    job.commit()


if __name__ == "__main__":
    main()
