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
WHITESPACE = " \t\n\x0b\f\r"  # what Java's \s matches, written out for every engine
CSV_READ_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "multiLine": "true"}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
CUSTOMER_ID_PATTERN = r"^[0-9]{1,18}$"
# Country code 1 (NANP) numbers have exactly 11 digits; E.164 allows 8 to 15 in all.
E164_PATTERN = r"^(1[0-9]{10}|[2-9][0-9]{7,14})$"
UPDATED_AT_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}Z?$"
# yyyy-MM-dd (also non-padded), MM/dd/yyyy, dd.MM.yyyy (a mixed separator passes here, then fails to parse)
DATE_OF_BIRTH_SHAPE = r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[/.][0-9]{1,2}[/.][0-9]{4})$"
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
    The characters are spelled out: Java's \\s (Spark) matches a vertical tab, DuckDB's does not. Only a
    value with a space or control character at either end (an empty one too) is trimmed: few are, and the
    check costs a third of the trim."""
    edged = (F.ascii(column) <= 32) | (F.ascii(F.substring(column, -1, 1)) <= 32)
    trimmed = F.btrim(column, F.lit(WHITESPACE))
    return F.when(edged, F.when(trimmed != "", trimmed)).otherwise(column)


def parse_updated_at(value: Column) -> Column:
    """``yyyy-MM-dd HH:mm:ss``, or the same with ``T`` between date and time and an optional ``Z``. Every
    parse of dirty text is guarded by its shape: DuckDB raises on a bad cast where Spark returns NULL."""
    return F.when(
        value.rlike(UPDATED_AT_SHAPE),
        F.try_to_timestamp(F.translate(F.substring(value, 1, 19), "T", " "), F.lit("yyyy-MM-dd HH:mm:ss")),
    )


def parse_date_of_birth(value: Column) -> Column:
    """One shape check for the three formats, then one parse, chosen by the separator."""
    parsed = (
        F.when(value.contains("-"), F.try_to_timestamp(value, F.lit("yyyy-M-d")))
        .when(value.contains("/"), F.try_to_timestamp(value, F.lit("M/d/yyyy")))
        .otherwise(F.try_to_timestamp(value, F.lit("d.M.yyyy")))
    )
    return F.to_date(F.when(value.rlike(DATE_OF_BIRTH_SHAPE), parsed))


def calling_code(country: Column) -> Column:
    calling_codes = iter(CALLING_CODES.items())
    first_iso, first_code = next(calling_codes)
    code = F.when(country == first_iso, F.lit(first_code))
    for iso, code_of_country in calling_codes:
        code = code.when(country == iso, F.lit(code_of_country))
    return code


def phone_number(phone: Column, digits: Column, country: Column) -> Column:
    """The digits of an E.164 number, country code first (not yet checked): numbers with ``+`` or ``00``
    carry their country code, national numbers take the country's (dropping a trunk 0)."""
    return (
        F.when(phone.startswith("+"), digits)
        .when(digits.startswith("00"), F.substring(digits, 3, 20))
        .when(country.isin(*NANP) & (F.length(digits) == 10), F.concat(F.lit("1"), digits))
        .when(country.isin(*NANP), digits)
        .otherwise(F.concat(calling_code(country), F.regexp_replace(digits, "^0", "")))
    )


def validate(raw: DataFrame, ingest_date: str) -> DataFrame:
    """Every raw row with its cleansed values and ``quarantine_reason`` (NULL when valid); a quarantined
    row keeps its raw values as ``raw_<column>`` (NULL on valid rows, which need none).

    Each value is derived once, in stages, and later stages refer to it by name: an expression reused
    inline would be computed again at every use."""
    trimmed = raw.select(
        *[trimmed_or_null(F.col(c)).alias(c) for c in REQUIRED_COLUMNS],
        *LINEAGE_COLUMNS,
        *[F.col(c).alias(f"raw_{c}") for c in REQUIRED_COLUMNS],
    )
    customer_id = F.col("customer_id")
    parsed = trimmed.select(
        "*",
        F.when(customer_id.rlike(CUSTOMER_ID_PATTERN), customer_id.cast("bigint")).alias("_id"),
        parse_updated_at(F.col("updated_at")).alias("_updated_at"),
        F.lower(F.col("email")).alias("_email"),
        F.upper(F.col("country")).alias("_country"),
        F.regexp_replace(F.col("phone"), r"[^0-9]", "").alias("_digits"),
        parse_date_of_birth(F.col("date_of_birth")).alias("_date_of_birth"),
    )
    numbered = parsed.select(
        "*", phone_number(F.col("phone"), F.col("_digits"), F.col("_country")).alias("_number")
    )
    number = F.col("_number")
    checked = numbered.select(
        "*",
        F.when(number.rlike(E164_PATTERN), F.concat(F.lit("+"), number)).alias("_phone"),
    )
    date_of_birth = F.col("_date_of_birth")
    birth_ok = (date_of_birth >= F.lit("1900-01-01").cast("date")) & (
        date_of_birth <= F.lit(ingest_date).cast("date")
    )
    reason = (
        F.when(customer_id.isNull(), F.lit("missing_customer_id"))
        .when(F.coalesce(F.col("_id"), F.lit(0)) <= 0, F.lit("invalid_customer_id"))
        .when(F.col("updated_at").isNull(), F.lit("missing_updated_at"))
        .when(F.col("_updated_at").isNull(), F.lit("invalid_updated_at"))
        .when(~F.coalesce(F.col("_email").rlike(EMAIL_PATTERN), F.lit(True)), F.lit("invalid_email"))
        .when(F.col("phone").isNotNull() & F.col("_phone").isNull(), F.lit("invalid_phone"))
        .when(
            F.col("date_of_birth").isNotNull() & ~F.coalesce(birth_ok, F.lit(False)),
            F.lit("invalid_date_of_birth"),
        )
        .when(~F.coalesce(F.col("_country").rlike(COUNTRY_PATTERN), F.lit(True)), F.lit("invalid_country"))
    )
    reasoned = checked.select("*", reason.alias("quarantine_reason"))
    quarantined = F.col("quarantine_reason").isNotNull()
    return reasoned.select(
        F.col("_id").alias("customer_id"),
        "first_name",
        "last_name",
        F.col("_email").alias("email"),
        F.col("_phone").alias("phone"),
        F.col("_date_of_birth").alias("date_of_birth"),
        F.col("_country").alias("country"),
        F.col("_updated_at").alias("updated_at"),
        *LINEAGE_COLUMNS,
        "quarantine_reason",
        *[F.when(quarantined, F.col(f"raw_{c}")).alias(f"raw_{c}") for c in REQUIRED_COLUMNS],
    )


CLEANSED_COLUMNS = [*REQUIRED_COLUMNS, *LINEAGE_COLUMNS]
LATEST = "latest"
# After the latest updated_at, every other column decides between copies, so the kept row is deterministic.
TIE_BREAK = ["email", "phone", "date_of_birth", "country", "first_name", "last_name", "lineage_source"]


def deduplicate(validated: DataFrame) -> DataFrame:
    """The valid rows only, each with ``latest``: true for the one row kept per customer_id (the latest
    updated_at, ties broken by the other columns so the choice is deterministic), false for the older or
    identical copies. Quarantined rows never compete, and the window sorts no more than the valid rows."""
    latest_first = Window.partitionBy("customer_id").orderBy(
        F.col("updated_at").desc_nulls_last(), *[F.col(c).asc_nulls_last() for c in TIE_BREAK]
    )
    valid = validated.filter(F.col("quarantine_reason").isNull()).select(*CLEANSED_COLUMNS)
    return valid.select(*CLEANSED_COLUMNS, (F.row_number().over(latest_first) == 1).alias(LATEST))


def cleansed_rows(deduplicated: DataFrame) -> DataFrame:
    return deduplicated.filter(F.col(LATEST)).select(*CLEANSED_COLUMNS)


def quarantined_rows(validated: DataFrame) -> DataFrame:
    flagged = validated.filter(F.col("quarantine_reason").isNotNull())
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


def catalog_columns(frame: DataFrame) -> list[dict[str, str]]:
    """The columns written, by Spark's simple type names (Hive's, but for names such as timestamp_ntz,
    which gluerelay's catalog step reads as the catalog's timestamp)."""
    return [{"name": f.name, "type": f.dataType.simpleString().replace(" ", "")} for f in frame.schema]


def summarise(by_reason: dict[str | None, int], kept: dict[bool, int]) -> dict[str, object]:
    """The summary's figures from the rows counted by quarantine reason (None: valid) and the valid rows
    counted by whether the dedup kept them; refuses counts where the dedup did not account for every
    valid row exactly once."""
    unknown = {reason for reason in by_reason if reason is not None} - set(REASONS)
    if unknown:
        raise CleanseError(f"unexpected quarantine reasons {sorted(unknown)}")
    quarantined = {reason: by_reason[reason] for reason in REASONS if by_reason.get(reason)}
    valid, written, duplicates = by_reason.get(None, 0), kept.get(True, 0), kept.get(False, 0)
    if valid != written + duplicates:
        raise CleanseError(
            f"counts do not reconcile: {valid} valid rows != written {written} + duplicates removed "
            f"{duplicates}"
        )
    return {
        "rows_read": sum(by_reason.values()),
        "rows_written": written,
        "rows_quarantined": sum(quarantined.values()),
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
    # Materialised once each: the counts and the writes then read them instead of re-deriving the rules or
    # re-sorting for the dedup. Quarantined rows carry their raw values; valid rows carry none.
    validated = validate(raw, ingest_date).cache()
    by_reason = {
        row["quarantine_reason"]: int(row["count"])
        for row in validated.groupBy("quarantine_reason").count().collect()
    }
    deduplicated = deduplicate(validated).cache()
    kept = {bool(row[LATEST]): int(row["count"]) for row in deduplicated.groupBy(LATEST).count().collect()}
    figures = summarise(by_reason, kept)  # reconciled across the two materialisations
    cleansed_output = partition(args["cleansed_path"], ingest_date, run_id)
    quarantine_output = partition(args["quarantine_path"], ingest_date, run_id)
    cleansed = cleansed_rows(deduplicated)
    cleansed.write.mode("overwrite").parquet(cleansed_output)
    quarantined_rows(validated).write.mode("overwrite").parquet(quarantine_output)
    summary: dict[str, object] = {
        "job": JOB,
        "run_id": run_id,
        "ingest_date": ingest_date,
        "input": source,
        **figures,
        "outputs": {"cleansed": cleansed_output, "quarantine": quarantine_output},
        # What a catalog step (columns_from) creates and checks the cleansed table with.
        "columns": catalog_columns(cleansed),
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
