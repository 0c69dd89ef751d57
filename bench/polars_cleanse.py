"""Job 2's rules hand-written in Polars (lazy): a second reference beside the DuckDB SQL, from another
engine family. Same rules and outputs, row for row (the bench compares them with job 2's).

``python -m bench.polars_cleanse RAW_DIR OUT_DIR INGEST_DATE`` prints the outcome counts as JSON. Polars is
in the bench's extra dependencies only (``pip install .[bench]``; ``make bench`` installs it).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import polars as pl

from bench.duckdb_cleanse import CALLING_CODES, COLUMNS, LINEAGE, NANP, RULES, TIE_BREAK, WHITESPACE


def trimmed(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars(WHITESPACE)
    return pl.when(value != "").then(value)


def calling_code(country: pl.Expr) -> pl.Expr:
    return country.replace_strict(CALLING_CODES, default=None, return_dtype=pl.String)


def date_of_birth(value: pl.Expr) -> pl.Expr:
    parsed = (
        pl.when(value.str.contains("-"))
        .then(value.str.strptime(pl.Date, "%Y-%-m-%-d", strict=False))
        .when(value.str.contains("/"))
        .then(value.str.strptime(pl.Date, "%-m/%-d/%Y", strict=False))
        .otherwise(value.str.strptime(pl.Date, "%-d.%-m.%Y", strict=False))
    )
    return pl.when(value.str.contains(RULES["DATE_OF_BIRTH_SHAPE"])).then(parsed)


def validated(raw_dir: str, ingest_date: str) -> pl.LazyFrame:
    files = sorted(str(p) for p in Path(raw_dir).glob("*.csv"))
    raw = pl.scan_csv(files, infer_schema=False, quote_char='"')
    trim = raw.select(
        *[trimmed(c).alias(c) for c in COLUMNS], *LINEAGE, *[pl.col(c).alias(f"raw_{c}") for c in COLUMNS]
    )
    customer_id, updated_at, phone = pl.col("customer_id"), pl.col("updated_at"), pl.col("phone")
    parsed = trim.with_columns(
        pl.when(customer_id.str.contains(RULES["CUSTOMER_ID_PATTERN"]))
        .then(customer_id.cast(pl.Int64))
        .alias("_id"),
        pl.when(updated_at.str.contains(RULES["UPDATED_AT_SHAPE"]))
        .then(
            updated_at.str.slice(0, 19)
            .str.replace("T", " ", literal=True)
            .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        )
        .alias("_updated_at"),
        pl.col("email").str.to_lowercase().alias("_email"),
        pl.col("country").str.to_uppercase().alias("_country"),
        phone.str.replace_all(r"[^0-9]", "").alias("_digits"),
        date_of_birth(pl.col("date_of_birth")).alias("_date_of_birth"),
    )
    digits, country = pl.col("_digits"), pl.col("_country")
    numbered = parsed.with_columns(
        pl.when(phone.str.starts_with("+"))
        .then(digits)
        .when(digits.str.starts_with("00"))
        .then(digits.str.slice(2))
        .when(country.is_in(NANP) & (digits.str.len_chars() == 10))
        .then(pl.lit("1") + digits)
        .when(country.is_in(NANP))
        .then(digits)
        .otherwise(calling_code(country) + digits.str.replace(r"^0", ""))
        .alias("_number")
    )
    number = pl.col("_number")
    checked = numbered.with_columns(
        pl.when(number.str.contains(RULES["E164_PATTERN"])).then(pl.lit("+") + number).alias("_phone")
    )
    dob = pl.col("_date_of_birth")
    birth_ok = dob.is_between(date(1900, 1, 1), date.fromisoformat(ingest_date))
    reason = (
        pl.when(customer_id.is_null())
        .then(pl.lit("missing_customer_id"))
        .when(pl.col("_id").fill_null(0) <= 0)
        .then(pl.lit("invalid_customer_id"))
        .when(updated_at.is_null())
        .then(pl.lit("missing_updated_at"))
        .when(pl.col("_updated_at").is_null())
        .then(pl.lit("invalid_updated_at"))
        .when(~pl.col("_email").str.contains(RULES["EMAIL_PATTERN"]).fill_null(True))
        .then(pl.lit("invalid_email"))
        .when(phone.is_not_null() & pl.col("_phone").is_null())
        .then(pl.lit("invalid_phone"))
        .when(pl.col("date_of_birth").is_not_null() & ~birth_ok.fill_null(False))
        .then(pl.lit("invalid_date_of_birth"))
        .when(~country.str.contains(RULES["COUNTRY_PATTERN"]).fill_null(True))
        .then(pl.lit("invalid_country"))
    )
    reasoned = checked.with_columns(reason.alias("quarantine_reason"))
    quarantined = pl.col("quarantine_reason").is_not_null()
    return reasoned.select(
        pl.col("_id").alias("customer_id"),
        "first_name",
        "last_name",
        pl.col("_email").alias("email"),
        pl.col("_phone").alias("phone"),
        pl.col("_date_of_birth").alias("date_of_birth"),
        pl.col("_country").alias("country"),
        pl.col("_updated_at").alias("updated_at"),
        *LINEAGE,
        "quarantine_reason",
        *[pl.when(quarantined).then(pl.col(f"raw_{c}")).alias(f"raw_{c}") for c in COLUMNS],
    )


def run(raw_dir: str, out_dir: str, ingest_date: str) -> dict[str, int]:
    out = Path(out_dir)
    (out / "cleansed").mkdir(parents=True, exist_ok=True)
    (out / "quarantine").mkdir(parents=True, exist_ok=True)
    table = validated(raw_dir, ingest_date).collect()
    valid = table.filter(pl.col("quarantine_reason").is_null()).select(*COLUMNS, *LINEAGE)
    keys = ["customer_id", "updated_at", *TIE_BREAK]
    latest = valid.sort(keys, descending=[False, True, *[False] * len(TIE_BREAK)], nulls_last=True).unique(
        subset=["customer_id"], keep="first"
    )
    latest.write_parquet(out / "cleansed" / "part-0.parquet", compression="snappy")
    quarantine = table.filter(pl.col("quarantine_reason").is_not_null()).select(
        *[pl.col(f"raw_{c}").alias(c) for c in COLUMNS], *LINEAGE, "quarantine_reason"
    )
    quarantine.write_parquet(out / "quarantine" / "part-0.parquet", compression="snappy")
    counts = {str(reason): int(n) for reason, n in quarantine.group_by("quarantine_reason").len().iter_rows()}
    counts |= {"written": latest.height, "duplicate": valid.height - latest.height}
    return {k: v for k, v in counts.items() if v}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2], sys.argv[3])))  # the parent reads stdout
