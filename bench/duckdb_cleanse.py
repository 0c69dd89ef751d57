"""Job 2's rules hand-written in DuckDB SQL: the fastest correct SQL we know for them, the reference the
Glue script is measured against.

Same rules, same outputs (cleansed and quarantine Parquet, row for row: the bench compares them), and no
DataFrame API in between. Where DuckDB has a cheaper form than the script can use on both engines, it is
used here (``regexp_full_match``, ``QUALIFY``, a count of distinct ids instead of a second table).
``python -m bench.duckdb_cleanse RAW_DIR OUT_DIR INGEST_DATE`` prints the outcome counts as JSON.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any

import duckdb

from gluerelay.glue.engine import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV
from gluerelay.glue.jobrun import script_path


def script_constants(path: Path, names: set[str]) -> dict[str, Any]:
    """Literal constants of a Glue script, read without importing it (that would start the engine)."""
    constants = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in names:
            constants[target.id] = ast.literal_eval(node.value)
    missing = names - constants.keys()
    if missing:
        raise LookupError(f"{path} no longer defines {sorted(missing)} as literals")
    return constants


# The rules' data comes from job 2 itself, so a reference cannot drift from what it is compared with.
RULES = script_constants(
    script_path("cleanse_customers"),
    {
        "REQUIRED_COLUMNS",
        "LINEAGE_COLUMNS",
        "CALLING_CODES",
        "NANP",
        "EMAIL_PATTERN",
        "COUNTRY_PATTERN",
        "WHITESPACE",
        "UPDATED_AT_SHAPE",
        "DATE_OF_BIRTH_SHAPE",
        "REASONS",
        "CUSTOMER_ID_PATTERN",
        "E164_PATTERN",
        "TIE_BREAK",
    },
)
COLUMNS: list[str] = RULES["REQUIRED_COLUMNS"]
LINEAGE: list[str] = RULES["LINEAGE_COLUMNS"]
CALLING_CODES: dict[str, str] = RULES["CALLING_CODES"]
NANP: tuple[str, ...] = RULES["NANP"]
WHITESPACE: str = RULES["WHITESPACE"]
TIE_BREAK: list[str] = RULES["TIE_BREAK"]  # the dedup's order after the latest updated_at


def sql_text(value: str) -> str:
    """A DuckDB string literal."""
    return "'" + value.replace("'", "''") + "'"


def full_match(column: str, pattern: str) -> str:
    """`column` matches the whole of one of job 2's anchored patterns (``^...$``)."""
    return f"regexp_full_match({column}, {sql_text(pattern.removeprefix('^').removesuffix('$'))})"


def _trimmed(column: str) -> str:
    edge = f"ascii({column}) <= 32 OR ascii({column}[-1:]) <= 32"
    return f"nullif(CASE WHEN {edge} THEN trim({column}, {sql_text(WHITESPACE)}) ELSE {column} END, '')"


def validated_sql(raw_glob: str, ingest_date: str) -> str:
    trimmed = ", ".join(f"{_trimmed(c)} AS {c}" for c in COLUMNS)
    raw = ", ".join(f"{c} AS raw_{c}" for c in COLUMNS)
    codes = " ".join(f"WHEN {sql_text(iso)} THEN {sql_text(code)}" for iso, code in CALLING_CODES.items())
    nanp = ", ".join(sql_text(code) for code in NANP)
    kept_raw = ", ".join(f"CASE WHEN reason IS NOT NULL THEN raw_{c} END AS raw_{c}" for c in COLUMNS)
    return f"""
    CREATE TEMP TABLE validated AS
    WITH trimmed AS (
      SELECT {trimmed}, {", ".join(LINEAGE)}, {raw}
      FROM read_csv({sql_text(raw_glob)}, header=true, all_varchar=true, quote='"', escape='"',
        hive_partitioning=false)
    ), parsed AS (
      SELECT *,
        CASE WHEN {full_match("customer_id", RULES["CUSTOMER_ID_PATTERN"])} THEN customer_id::BIGINT END AS id,
        CASE WHEN {full_match("updated_at", RULES["UPDATED_AT_SHAPE"])}
          THEN try_strptime(translate(updated_at[:19], 'T', ' '), '%Y-%m-%d %H:%M:%S') END AS updated,
        lower(email) AS email_l,
        upper(country) AS country_u,
        regexp_replace(phone, '[^0-9]', '', 'g') AS digits,
        CASE WHEN {full_match("date_of_birth", RULES["DATE_OF_BIRTH_SHAPE"])} THEN
          CASE WHEN contains(date_of_birth, '-') THEN try_strptime(date_of_birth, '%Y-%-m-%-d')
            WHEN contains(date_of_birth, '/') THEN try_strptime(date_of_birth, '%-m/%-d/%Y')
            ELSE try_strptime(date_of_birth, '%-d.%-m.%Y') END::DATE END AS dob
      FROM trimmed
    ), numbered AS (
      SELECT *, CASE
          WHEN starts_with(phone, '+') THEN digits
          WHEN starts_with(digits, '00') THEN digits[3:]
          WHEN country_u IN ({nanp}) AND length(digits) = 10 THEN '1' || digits
          WHEN country_u IN ({nanp}) THEN digits
          ELSE (CASE country_u {codes} END)
            || CASE WHEN starts_with(digits, '0') THEN digits[2:] ELSE digits END
        END AS number
      FROM parsed
    ), checked AS (
      SELECT *, CASE WHEN {full_match("number", RULES["E164_PATTERN"])} THEN '+' || number END AS e164 FROM numbered
    ), reasoned AS (
      SELECT *, CASE
        WHEN customer_id IS NULL THEN 'missing_customer_id'
        WHEN coalesce(id, 0) <= 0 THEN 'invalid_customer_id'
        WHEN updated_at IS NULL THEN 'missing_updated_at'
        WHEN updated IS NULL THEN 'invalid_updated_at'
        WHEN NOT coalesce(regexp_matches(email_l, {sql_text(RULES["EMAIL_PATTERN"])}), true) THEN 'invalid_email'
        WHEN phone IS NOT NULL AND e164 IS NULL THEN 'invalid_phone'
        WHEN date_of_birth IS NOT NULL
          AND NOT coalesce(dob BETWEEN DATE '1900-01-01' AND DATE {sql_text(ingest_date)}, false)
          THEN 'invalid_date_of_birth'
        WHEN NOT coalesce(regexp_matches(country_u, {sql_text(RULES["COUNTRY_PATTERN"])}), true)
          THEN 'invalid_country'
      END AS reason
      FROM checked
    )
    SELECT id AS customer_id, first_name, last_name, email_l AS email, e164 AS phone, dob AS date_of_birth,
      country_u AS country, updated AS updated_at, {", ".join(LINEAGE)}, reason, {kept_raw}
    FROM reasoned
    """


def run(raw_dir: str, out_dir: str, ingest_date: str) -> dict[str, int]:
    out = Path(out_dir)
    (out / "cleansed").mkdir(parents=True, exist_ok=True)
    (out / "quarantine").mkdir(parents=True, exist_ok=True)
    # The same memory cap as the local engine gives job 2, so the two are compared like for like.
    conn = duckdb.connect(
        config={
            "memory_limit": os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT),
            "preserve_insertion_order": False,
        }
    )
    conn.execute(validated_sql(f"{raw_dir.rstrip('/')}/*.csv", ingest_date))
    order = ", ".join(["updated_at DESC NULLS LAST", *(f"{c} ASC NULLS LAST" for c in TIE_BREAK)])
    conn.execute(
        f"COPY (SELECT {', '.join([*COLUMNS, *LINEAGE])} FROM validated WHERE reason IS NULL "
        f"QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY {order}) = 1) "
        f"TO '{out}/cleansed/part-0.parquet' (FORMAT parquet, COMPRESSION snappy)"
    )
    conn.execute(
        f"COPY (SELECT {', '.join(f'raw_{c} AS {c}' for c in COLUMNS)}, {', '.join(LINEAGE)}, "
        "reason AS quarantine_reason FROM validated WHERE reason IS NOT NULL) "
        f"TO '{out}/quarantine/part-0.parquet' (FORMAT parquet, COMPRESSION snappy)"
    )
    counts: dict[str, int] = {}
    for reason, rows, customers in conn.execute(
        "SELECT reason, count(*), count(DISTINCT customer_id) FROM validated GROUP BY ALL"
    ).fetchall():
        if reason is None:
            counts |= {"written": int(customers), "duplicate": int(rows - customers)}
        else:
            counts[str(reason)] = int(rows)
    return {k: v for k, v in counts.items() if v}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2], sys.argv[3])))  # the parent reads stdout
