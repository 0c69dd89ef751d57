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

Output: ``<raw_path>/ingest_date=<date>/run_id=<run>/`` as CSV with a header, plus lineage columns.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from functools import reduce

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

JOB = "extract_order_lines"
REQUIRED_ARGS = ["JOB_NAME", "run_id", "manifest_uri", "raw_path", "summary_uri", "ingest_date"]
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


def landed_files(manifest_uri: str, prefix: str) -> list[str]:
    """The manifest's objects this job reads: CSV files whose name starts with `prefix`."""
    bucket, key = split_uri(manifest_uri)
    try:
        manifest = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        objects = manifest["objects"]
    except (KeyError, TypeError, ValueError) as e:
        raise ExtractError(f"manifest {manifest_uri} is not a gluerelay manifest: {e}") from e
    return [
        f"s3://{o['bucket']}/{o['key']}"
        for o in objects
        if o["key"].rsplit("/", 1)[-1].startswith(prefix) and o["key"].endswith(".csv")
    ]


def read_lines(spark: SparkSession, uri: str, run_id: str, ingested_at: str) -> DataFrame:
    try:
        frame = spark.read.options(**CSV_READ_OPTIONS).csv(uri)
    except Exception as e:  # Spark and DuckDB raise engine-specific types; the message names the file
        raise ExtractError(f"landed file {uri} cannot be read: {e}") from e
    return frame.select(
        *[F.col(c) for c in frame.columns],
        F.lit(uri).alias("lineage_source"),
        F.lit(run_id).alias("lineage_run_id"),
        F.lit(ingested_at).alias("lineage_ingested_at"),
    )


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, object]:
    started = datetime.now(UTC)
    files = landed_files(args["manifest_uri"], args["name_prefix"])
    if not files:
        raise ExtractError(f"manifest {args['manifest_uri']} names no {args['name_prefix']}*.csv file")
    ingested_at = started.strftime("%Y-%m-%d %H:%M:%S")
    frames = [read_lines(spark, uri, args["run_id"], ingested_at).cache() for uri in files]
    lines = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames).cache()
    rows = lines.count()
    output = f"{args['raw_path'].rstrip('/')}/ingest_date={args['ingest_date']}/run_id={args['run_id']}/"
    lines.write.mode("overwrite").options(**RAW_CSV_WRITE_OPTIONS).csv(output)
    summary: dict[str, object] = {
        "job": JOB,
        "run_id": args["run_id"],
        "inputs": files,
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
