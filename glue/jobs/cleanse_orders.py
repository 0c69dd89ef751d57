"""Glue 5.0 job ``cleanse_orders``: a run's raw order lines, validated and joined to their order headers,
→ Parquet; lines that fail go to quarantine with the reason.

Self-contained: ``sam deploy`` uploads this file alone. Runs unmodified on AWS Glue 5.0 (Spark 3.5) and
locally on sqlframe/DuckDB through gluerelay's awsglue shim.

Job arguments:
  --run_id          the pipeline run whose raw partitions are cleansed
  --lines_path      raw lines root (``s3://bucket/raw/orders/lines``)
  --headers_path    raw headers root (``s3://bucket/raw/orders/headers``, written by the ERP team's job)
  --cleansed_path   output root, e.g. ``s3://bucket/cleansed/orders``
  --quarantine_path quarantine root, e.g. ``s3://bucket/quarantine/orders``
  --summary_uri     where to write the summary
  --ingest_date     ``YYYY-MM-DD``, or ``today`` (UTC): the raw partitions' date

Each line gets the first rule it fails, in this order, as its ``quarantine_reason``:
  order_id     required                                  missing_order_id
  line_no      a positive integer                        invalid_line_no
  sku          required                                  missing_sku
  quantity     a positive integer                        invalid_quantity
  unit_price   a non-negative amount, at most 2 decimals invalid_unit_price
  (header)     the run's headers describe the order       unknown_order
Valid lines get the order's customer, date and currency, and ``amount`` = quantity * unit_price. The summary
reconciles: rows_read = rows_written + rows_quarantined.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

JOB = "cleanse_orders"
REQUIRED_ARGS = [
    "JOB_NAME",
    "run_id",
    "lines_path",
    "headers_path",
    "cleansed_path",
    "quarantine_path",
    "summary_uri",
    "ingest_date",
]
LINE_COLUMNS = ["order_id", "line_no", "sku", "quantity", "unit_price"]
HEADER_COLUMNS = ["order_id", "customer_id", "order_date", "currency"]
LINEAGE_COLUMNS = ["lineage_source", "lineage_run_id", "lineage_ingested_at"]
WHITESPACE = "[ \t\n\x0b\f\r]"  # what Java's \s matches, written out for every engine
CSV_READ_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true"}
REASONS = [
    "missing_order_id",
    "invalid_line_no",
    "missing_sku",
    "invalid_quantity",
    "invalid_unit_price",
    "unknown_order",
]


class CleanseError(Exception):
    """The job cannot cleanse this input: the message names what is wrong."""


def resolve_args(argv: list[str]) -> dict[str, str]:
    args = getResolvedOptions(argv, REQUIRED_ARGS)
    if args["ingest_date"] == "today":
        args["ingest_date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    return args


def partition(root: str, ingest_date: str, run_id: str) -> str:
    return f"{root.rstrip('/')}/ingest_date={ingest_date}/run_id={run_id}/"


def trimmed(column: Column) -> Column:
    """Whitespace trimmed (spelled out: Spark's and DuckDB's \\s differ); blank → NULL."""
    value = F.regexp_replace(column, f"^{WHITESPACE}+|{WHITESPACE}+$", "")
    return F.when(value != "", value)


def read(spark: SparkSession, path: str, columns: list[str], what: str) -> DataFrame:
    try:
        frame = spark.read.options(**CSV_READ_OPTIONS).csv(path)
    except Exception as e:  # Spark and DuckDB raise engine-specific types; the message names the input
        raise CleanseError(f"{what} {path} cannot be read: {e}") from e
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CleanseError(f"{what} {path} is missing columns: {', '.join(missing)}")
    return frame


def classify(lines: DataFrame, headers: DataFrame) -> DataFrame:
    """Every line with its cleansed values, its header's facts and ``quarantine_reason`` (NULL when valid)."""
    # One header per order (an order exported twice keeps its latest date), named apart from the lines.
    orders = headers.select(
        trimmed(F.col("order_id")).alias("h_order_id"),
        trimmed(F.col("customer_id")).alias("h_customer_id"),
        trimmed(F.col("order_date")).alias("h_order_date"),
        F.upper(trimmed(F.col("currency"))).alias("h_currency"),
    )
    orders = orders.groupBy("h_order_id").agg(
        F.max("h_customer_id").alias("h_customer_id"),
        F.max("h_order_date").alias("h_order_date"),
        F.max("h_currency").alias("h_currency"),
    )
    values = lines.select(
        *[trimmed(F.col(c)).alias(c) for c in LINE_COLUMNS],
        *LINEAGE_COLUMNS,
        *[F.col(c).alias(f"raw_{c}") for c in LINE_COLUMNS],
    )
    joined = values.join(orders, F.col("order_id") == F.col("h_order_id"), "left")
    price_shape = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
    reason = (
        F.when(F.col("order_id").isNull(), F.lit("missing_order_id"))
        .when(
            ~F.coalesce(F.col("line_no").rlike(r"^[1-9][0-9]{0,5}$"), F.lit(False)), F.lit("invalid_line_no")
        )
        .when(F.col("sku").isNull(), F.lit("missing_sku"))
        .when(
            ~F.coalesce(F.col("quantity").rlike(r"^[1-9][0-9]{0,6}$"), F.lit(False)),
            F.lit("invalid_quantity"),
        )
        .when(~F.coalesce(F.col("unit_price").rlike(price_shape), F.lit(False)), F.lit("invalid_unit_price"))
        .when(F.col("h_order_id").isNull(), F.lit("unknown_order"))
    )
    # The reason is a column before anything uses it: each use of an expression is computed again.
    reasoned = joined.select(*joined.columns, reason.alias("quarantine_reason"))
    valid = F.col("quarantine_reason").isNull()
    units = F.when(valid, F.col("quantity").cast("int"))
    unit_price = F.when(valid, F.col("unit_price").cast("decimal(12,2)"))
    customer = F.col("h_customer_id")
    order_date = F.col("h_order_date")
    return reasoned.select(
        "order_id",
        F.when(valid, F.col("line_no").cast("int")).alias("line_no"),
        "sku",
        units.alias("quantity"),
        unit_price.alias("unit_price"),
        (units * unit_price).cast("decimal(14,2)").alias("amount"),
        F.when(valid & customer.rlike(r"^[0-9]{1,18}$"), customer.cast("bigint")).alias("customer_id"),
        F.to_date(
            F.when(
                valid & order_date.rlike(r"^\d{4}-\d{2}-\d{2}$"),
                F.try_to_timestamp(order_date, F.lit("yyyy-MM-dd")),
            )
        ).alias("order_date"),
        F.col("h_currency").alias("currency"),
        *LINEAGE_COLUMNS,
        "quarantine_reason",
        *[f"raw_{c}" for c in LINE_COLUMNS],
    )


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, object]:
    started = datetime.now(UTC)
    run_id, ingest_date = args["run_id"], args["ingest_date"]
    lines_input = partition(args["lines_path"], ingest_date, run_id)
    headers_input = partition(args["headers_path"], ingest_date, run_id)
    lines = read(spark, lines_input, LINE_COLUMNS + LINEAGE_COLUMNS, "raw order lines")
    headers = read(spark, headers_input, HEADER_COLUMNS, "raw order headers")
    classified = classify(lines, headers).cache()
    counts = {
        row["reason"]: int(row["count"])
        for row in classified.groupBy(F.coalesce("quarantine_reason", F.lit("written")).alias("reason"))
        .count()
        .collect()
    }
    rows_read = lines.count()
    quarantined = {reason: counts[reason] for reason in REASONS if counts.get(reason)}
    written = counts.get("written", 0)
    if rows_read != written + sum(quarantined.values()):
        raise CleanseError(
            f"counts do not reconcile: read {rows_read} != written {written} + quarantined {quarantined}"
        )
    cleansed_output = partition(args["cleansed_path"], ingest_date, run_id)
    quarantine_output = partition(args["quarantine_path"], ingest_date, run_id)
    classified.filter(F.col("quarantine_reason").isNull()).drop(
        "quarantine_reason", *[f"raw_{c}" for c in LINE_COLUMNS]
    ).write.mode("overwrite").parquet(cleansed_output)
    classified.filter(F.col("quarantine_reason").isNotNull()).select(
        *[F.col(f"raw_{c}").alias(c) for c in LINE_COLUMNS], *LINEAGE_COLUMNS, "quarantine_reason"
    ).write.mode("overwrite").parquet(quarantine_output)
    summary: dict[str, object] = {
        "job": JOB,
        "run_id": run_id,
        "inputs": {"lines": lines_input, "headers": headers_input},
        "rows_read": rows_read,
        "rows_written": written,
        "rows_quarantined": sum(quarantined.values()),
        "quarantined_by_reason": quarantined,
        "duplicates_removed": 0,
        "outputs": {"cleansed": cleansed_output, "quarantine": quarantine_output},
        "started_at": started.isoformat(),
        "completed_at": datetime.now(UTC).isoformat(),
    }
    bucket, _, key = args["summary_uri"].removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(summary, indent=2).encode())
    return summary


def main() -> None:
    args = resolve_args(sys.argv)
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    summary = run(spark, args)
    glue_context.get_logger().info(f"{JOB} summary: {json.dumps(summary)}")
    job.commit()


if __name__ == "__main__":
    main()
