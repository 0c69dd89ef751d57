"""Glue 5.0 job ``cleanse_customers``: a run's raw customers → validated, de-duplicated Parquet.

Self-contained: ``sam deploy`` uploads this file alone. Runs unmodified on AWS Glue 5.0 (Spark 3.5) and
locally on sqlframe/DuckDB through gluerelay's awsglue shim.

Job arguments:
  --run_id          the pipeline run whose raw partition is cleansed
  --raw_path        raw root, e.g. ``s3://bucket/raw/customers``
  --cleansed_path   output root, e.g. ``s3://bucket/cleansed/customers``
  --quarantine_path quarantine root, e.g. ``s3://bucket/quarantine/customers``
  --summary_uri     where to write the summary (gluerelay passes summaries/<run_id>/<step>.json)
  --ingest_date     ``YYYY-MM-DD``, or ``today`` (UTC): the raw partition's date

Rules (each row gets the first failing rule as its ``quarantine_reason``, in this order):
  customer_id    required; a positive integer                     missing_customer_id, invalid_customer_id
  updated_at     required; ``yyyy-MM-dd HH:mm:ss`` or ISO 8601 (T, optional Z)
                                                                  missing_updated_at, invalid_updated_at
  email          optional; lower-cased, must look like an address invalid_email
  phone          optional; normalised to E.164 using the country   invalid_phone
  date_of_birth  optional; yyyy-MM-dd (also non-padded), MM/dd/yyyy, dd.MM.yyyy; 1900 to ingest date
                                                                  invalid_date_of_birth
  country        optional; upper-cased ISO 3166 alpha-2 shape     invalid_country
Every string is trimmed; blank means missing. Valid rows are de-duplicated by customer_id keeping the
latest updated_at (ties broken by the other columns, so the choice is deterministic).

Outputs, all under ``ingest_date=<date>/run_id=<run>/`` so a re-run replaces only its own output:
cleansed Parquet, quarantined rows (raw values + reason) as Parquet, and a summary (``--summary_uri``)
that reconciles:
rows_read = rows_written + rows_quarantined + duplicates_removed.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

JOB = "cleanse_customers"
REQUIRED_ARGS = [
    "JOB_NAME",
    "run_id",
    "raw_path",
    "cleansed_path",
    "quarantine_path",
    "summary_uri",
    "ingest_date",
]
REQUIRED_COLUMNS = [
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "country",
    "updated_at",
]
LINEAGE_COLUMNS = ["lineage_source", "lineage_run_id", "lineage_ingested_at"]
WHITESPACE = "[ \t\n\x0b\f\r]"  # what Java's \s matches, written out for every engine
CSV_READ_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true"}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
# Country calling codes for national-format numbers (numbers with + or 00 carry their own).
CALLING_CODES = {
    "US": "1",
    "CA": "1",
    "GB": "44",
    "IE": "353",
    "DE": "49",
    "FR": "33",
    "ES": "34",
    "IT": "39",
    "NL": "31",
    "BE": "32",
    "AU": "61",
    "NZ": "64",
    "MX": "52",
    "BR": "55",
    "IN": "91",
    "JP": "81",
}
NANP = ("US", "CA")
REASONS = [
    "missing_customer_id",
    "invalid_customer_id",
    "missing_updated_at",
    "invalid_updated_at",
    "invalid_email",
    "invalid_phone",
    "invalid_date_of_birth",
    "invalid_country",
]
DUPLICATE = "duplicate"


class CleanseError(Exception):
    """The job cannot cleanse this input: the message names what is wrong."""


def resolve_args(argv: list[str]) -> dict[str, str]:
    args = getResolvedOptions(argv, REQUIRED_ARGS)
    if not RUN_ID_PATTERN.match(args["run_id"]):
        raise CleanseError(f"--run_id {args['run_id']!r} must be 1-80 letters, digits, '.', '_' or '-'")
    if args["ingest_date"] == "today":
        args["ingest_date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        datetime.strptime(args["ingest_date"], "%Y-%m-%d")
    except ValueError as e:
        raise CleanseError(f"--ingest_date must be YYYY-MM-DD or today, not {args['ingest_date']!r}") from e
    return args


def trimmed_or_null(column: Column) -> Column:
    """Leading and trailing whitespace removed (tabs too: Spark's trim strips spaces only); blank → NULL.
    The class is spelled out: Java's \\s (Spark) matches a vertical tab, DuckDB's does not."""
    trimmed = F.regexp_replace(column, f"^{WHITESPACE}+|{WHITESPACE}+$", "")
    return F.when(trimmed != "", trimmed)


def parse_timestamp(value: Column, shape: str, spark_format: str) -> Column:
    """NULL unless ``value`` has ``shape`` and parses: the same on Spark and DuckDB (DuckDB raises on a
    bad cast where Spark returns NULL, so the shape is checked before parsing)."""
    return F.when(value.rlike(shape), F.try_to_timestamp(value, F.lit(spark_format)))


def parse_updated_at(value: Column) -> Column:
    iso = F.regexp_replace(F.regexp_replace(value, "T", " "), "Z$", "")
    return parse_timestamp(iso, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "yyyy-MM-dd HH:mm:ss")


def _padded_date(value: Column, pattern: str, year: int, month: int, day: int) -> Column:
    """``value`` rewritten as ``yyyy-MM-dd`` from the capture groups of ``pattern`` (NULL if no match)."""
    return F.when(
        value.rlike(pattern),
        F.concat(
            F.regexp_extract(value, pattern, year),
            F.lit("-"),
            F.lpad(F.regexp_extract(value, pattern, month), 2, "0"),
            F.lit("-"),
            F.lpad(F.regexp_extract(value, pattern, day), 2, "0"),
        ),
    )


def parse_date_of_birth(value: Column) -> Column:
    canonical = F.coalesce(
        _padded_date(value, r"^(\d{4})-(\d{1,2})-(\d{1,2})$", 1, 2, 3),
        _padded_date(value, r"^(\d{1,2})/(\d{1,2})/(\d{4})$", 3, 1, 2),
        _padded_date(value, r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$", 3, 2, 1),
    )
    return F.to_date(parse_timestamp(canonical, r"^\d{4}-\d{2}-\d{2}$", "yyyy-MM-dd"))


def normalise_phone(phone: Column, country: Column) -> Column:
    """E.164 (``+<country code><number>``), or NULL when the number cannot be made valid: numbers with
    ``+`` or ``00`` carry their country code, national numbers take the country's (dropping a trunk 0)."""
    digits = F.regexp_replace(phone, r"[^0-9]", "")
    calling_codes = iter(CALLING_CODES.items())
    first_iso, first_code = next(calling_codes)
    code = F.when(country == first_iso, F.lit(first_code))
    for iso, calling_code in calling_codes:
        code = code.when(country == iso, F.lit(calling_code))
    number = (
        F.when(phone.startswith("+"), digits)
        .when(digits.startswith("00"), F.substring(digits, 3, 20))
        .when(country.isin(*NANP) & (F.length(digits) == 10), F.concat(F.lit("1"), digits))
        .when(country.isin(*NANP), digits)
        .otherwise(F.concat(code, F.regexp_replace(digits, "^0", "")))
    )
    # Country code 1 (NANP) numbers have exactly 11 digits; E.164 allows 8 to 15 in all.
    return F.when(number.rlike(r"^(1[0-9]{10}|[2-9][0-9]{7,14})$"), F.concat(F.lit("+"), number))


def validate(raw: DataFrame, ingest_date: str) -> DataFrame:
    """Every raw row with its cleansed values and ``quarantine_reason`` (NULL when valid); the raw values
    are kept as ``raw_<column>`` for the quarantine."""
    trimmed = raw.select(
        *[trimmed_or_null(F.col(c)).alias(c) for c in REQUIRED_COLUMNS],
        *LINEAGE_COLUMNS,
        *[F.col(c).alias(f"raw_{c}") for c in REQUIRED_COLUMNS],
    )
    customer_id = F.col("customer_id")
    parsed_id = F.when(customer_id.rlike(r"^[0-9]{1,18}$"), customer_id.cast("bigint"))
    updated_at = parse_updated_at(F.col("updated_at"))
    email = F.lower(F.col("email"))
    country = F.upper(F.col("country"))
    phone = normalise_phone(F.col("phone"), country)
    date_of_birth = parse_date_of_birth(F.col("date_of_birth"))
    birth_ok = (date_of_birth >= F.lit("1900-01-01").cast("date")) & (
        date_of_birth <= F.lit(ingest_date).cast("date")
    )
    reason = (
        F.when(customer_id.isNull(), F.lit("missing_customer_id"))
        .when(F.coalesce(parsed_id, F.lit(0)) <= 0, F.lit("invalid_customer_id"))
        .when(F.col("updated_at").isNull(), F.lit("missing_updated_at"))
        .when(updated_at.isNull(), F.lit("invalid_updated_at"))
        .when(~F.coalesce(email.rlike(EMAIL_PATTERN), F.lit(True)), F.lit("invalid_email"))
        .when(F.col("phone").isNotNull() & phone.isNull(), F.lit("invalid_phone"))
        .when(
            F.col("date_of_birth").isNotNull() & ~F.coalesce(birth_ok, F.lit(False)),
            F.lit("invalid_date_of_birth"),
        )
        .when(~F.coalesce(country.rlike(COUNTRY_PATTERN), F.lit(True)), F.lit("invalid_country"))
    )
    return trimmed.select(
        parsed_id.alias("customer_id"),
        "first_name",
        "last_name",
        email.alias("email"),
        phone.alias("phone"),
        date_of_birth.alias("date_of_birth"),
        country.alias("country"),
        updated_at.alias("updated_at"),
        *LINEAGE_COLUMNS,
        reason.alias("quarantine_reason"),
        *[f"raw_{c}" for c in REQUIRED_COLUMNS],
    )


def classify(validated: DataFrame) -> DataFrame:
    """Adds ``outcome``: ``written``, ``duplicate`` (an older or identical copy of a valid customer), or
    the quarantine reason. Only valid rows compete for a customer_id."""
    # A named key column: sqlframe cannot partition a window by an inline expression.
    keyed = validated.withColumn(
        "dedup_key", F.when(F.col("quarantine_reason").isNull(), F.col("customer_id"))
    )
    latest_first = Window.partitionBy("dedup_key").orderBy(
        F.col("updated_at").desc_nulls_last(),
        *[
            F.col(c).asc_nulls_last()
            for c in (
                "email",
                "phone",
                "date_of_birth",
                "country",
                "first_name",
                "last_name",
                "lineage_source",
            )
        ],
    )
    rank = F.row_number().over(latest_first)
    outcome = (
        F.when(F.col("quarantine_reason").isNotNull(), F.col("quarantine_reason"))
        .when(rank == 1, F.lit("written"))
        .otherwise(F.lit(DUPLICATE))
    )
    # Only quarantined rows need their raw values: NULL elsewhere keeps the working set small.
    return keyed.select(
        *[c for c in validated.columns if not c.startswith("raw_")],
        outcome.alias("outcome"),
        *[
            F.when(F.col("quarantine_reason").isNotNull(), F.col(f"raw_{c}")).alias(f"raw_{c}")
            for c in REQUIRED_COLUMNS
        ],
    )


CLEANSED_COLUMNS = [*REQUIRED_COLUMNS, *LINEAGE_COLUMNS]


def cleansed_rows(classified: DataFrame) -> DataFrame:
    return classified.filter(F.col("outcome") == "written").select(*CLEANSED_COLUMNS)


def quarantined_rows(classified: DataFrame) -> DataFrame:
    flagged = classified.filter(F.col("quarantine_reason").isNotNull())
    return flagged.select(
        *[F.col(f"raw_{c}").alias(c) for c in REQUIRED_COLUMNS], *LINEAGE_COLUMNS, "quarantine_reason"
    )


def check_columns(raw: DataFrame, source: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS + LINEAGE_COLUMNS if c not in raw.columns]
    if missing:
        raise CleanseError(f"raw input {source} is missing required columns: {', '.join(missing)}")


def partition(root: str, ingest_date: str, run_id: str) -> str:
    return f"{root.rstrip('/')}/ingest_date={ingest_date}/run_id={run_id}/"


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


def summarise(rows_read: int, outcomes: dict[str, int]) -> dict[str, object]:
    """Counts by outcome → the summary's figures; refuses figures that do not reconcile with the rows read."""
    unknown = set(outcomes) - {*REASONS, DUPLICATE, "written"}
    if unknown:
        raise CleanseError(f"unexpected row outcomes {sorted(unknown)}")
    quarantined = {reason: outcomes[reason] for reason in REASONS if outcomes.get(reason)}
    written = outcomes.get("written", 0)
    duplicates = outcomes.get(DUPLICATE, 0)
    total_quarantined = sum(quarantined.values())
    if rows_read != written + total_quarantined + duplicates:
        raise CleanseError(
            f"counts do not reconcile: read {rows_read} != written {written} + quarantined "
            f"{total_quarantined} + duplicates removed {duplicates}"
        )
    return {
        "rows_read": rows_read,
        "rows_written": written,
        "rows_quarantined": total_quarantined,
        "quarantined_by_reason": quarantined,
        "duplicates_removed": duplicates,
    }


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, object]:
    started = datetime.now(UTC)
    run_id, ingest_date = args["run_id"], args["ingest_date"]
    source = partition(args["raw_path"], ingest_date, run_id)
    try:
        raw = spark.read.options(**CSV_READ_OPTIONS).csv(source)
    except Exception as e:  # Spark and DuckDB raise engine-specific types; the message names the input
        raise CleanseError(f"raw input {source} cannot be read: {e}") from e
    check_columns(raw, source)
    # Materialised once: the outcome counts and both writes then read it instead of re-deriving it.
    classified = classify(validate(raw, ingest_date)).cache()
    outcomes = {row["outcome"]: int(row["count"]) for row in classified.groupBy("outcome").count().collect()}
    # Counted on the input itself, so the reconciliation checks the transform rather than restating it.
    figures = summarise(raw.count(), outcomes)
    cleansed_output = partition(args["cleansed_path"], ingest_date, run_id)
    quarantine_output = partition(args["quarantine_path"], ingest_date, run_id)
    cleansed_rows(classified).write.mode("overwrite").parquet(cleansed_output)
    quarantined_rows(classified).write.mode("overwrite").parquet(quarantine_output)
    summary: dict[str, object] = {
        "job": JOB,
        "run_id": run_id,
        "ingest_date": ingest_date,
        "input": source,
        **figures,
        "outputs": {"cleansed": cleansed_output, "quarantine": quarantine_output},
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
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    summary = run(spark, args)
    glue_context.get_logger().info(f"{JOB} summary: {json.dumps(summary)}")
    job.commit()


if __name__ == "__main__":
    main()
