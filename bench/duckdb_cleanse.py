"""Job 2's transform hand-written in DuckDB SQL: the reference the Glue script is measured against.

Same rules, same outputs (cleansed and quarantine Parquet), no DataFrame API in between.
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

from gluerelay import datagen
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


# The rules' data comes from job 2 itself, so the reference cannot drift from what it is compared with.
RULES = script_constants(
    script_path("cleanse_customers"),
    {"LINEAGE_COLUMNS", "CALLING_CODES", "NANP", "EMAIL_PATTERN", "COUNTRY_PATTERN"},
)
COLUMNS = datagen.COLUMNS
LINEAGE: list[str] = RULES["LINEAGE_COLUMNS"]
CALLING_CODES: dict[str, str] = RULES["CALLING_CODES"]
NANP = ", ".join(f"'{code}'" for code in RULES["NANP"])


def _padded(value: str, pattern: str, year: int, month: int, day: int) -> str:
    return (
        f"CASE WHEN regexp_full_match({value}, '{pattern}') THEN "
        f"regexp_extract({value}, '{pattern}', {year}) || '-' || lpad(regexp_extract({value}, '{pattern}', {month}), 2, '0')"
        f" || '-' || lpad(regexp_extract({value}, '{pattern}', {day}), 2, '0') END"
    )


def cleanse_sql(raw_glob: str, ingest_date: str) -> str:
    trimmed = ",\n".join(
        f"nullif(regexp_replace({c}, '^\\s+|\\s+$', '', 'g'), '') AS {c}, {c} AS raw_{c}" for c in COLUMNS
    )
    codes = " ".join(f"WHEN '{iso}' THEN '{code}'" for iso, code in CALLING_CODES.items())
    iso, us, european = (
        r"(\d{4})-(\d{1,2})-(\d{1,2})",
        r"(\d{1,2})/(\d{1,2})/(\d{4})",
        r"(\d{1,2})\.(\d{1,2})\.(\d{4})",
    )
    dob = (
        f"coalesce({_padded('date_of_birth', iso, 1, 2, 3)}, {_padded('date_of_birth', us, 3, 1, 2)}, "
        f"{_padded('date_of_birth', european, 3, 2, 1)})"
    )
    return f"""
    CREATE TABLE validated AS
    WITH trimmed AS (
      SELECT {trimmed}, {", ".join(LINEAGE)} FROM read_csv('{raw_glob}', header=true, all_varchar=true,
        quote='"', escape='"', hive_partitioning=false)
    ), parsed AS (
      SELECT *,
        CASE WHEN regexp_full_match(customer_id, '[0-9]{{1,18}}') THEN customer_id::BIGINT END AS id,
        try_strptime(regexp_replace(replace(updated_at, 'T', ' '), 'Z$', ''), '%Y-%m-%d %H:%M:%S') AS updated,
        lower(email) AS email_l,
        upper(country) AS country_u,
        regexp_replace(phone, '[^0-9]', '', 'g') AS digits,
        try_strptime({dob}, '%Y-%m-%d')::DATE AS dob
      FROM trimmed
    ), phoned AS (
      SELECT *, CASE
          WHEN starts_with(phone, '+') THEN digits
          WHEN starts_with(digits, '00') THEN substr(digits, 3)
          WHEN country_u IN ({NANP}) AND length(digits) = 10 THEN '1' || digits
          WHEN country_u IN ({NANP}) THEN digits
          ELSE (CASE country_u {codes} END) || regexp_replace(digits, '^0', '')
        END AS number
      FROM parsed
    )
    SELECT id AS customer_id, first_name, last_name, email_l AS email,
      CASE WHEN regexp_full_match(number, '1[0-9]{{10}}|[2-9][0-9]{{7,14}}') THEN '+' || number END AS phone_e164,
      dob AS date_of_birth, country_u AS country, updated AS updated_at, {", ".join(LINEAGE)},
      CASE
        WHEN customer_id IS NULL THEN 'missing_customer_id'
        WHEN coalesce(id, 0) <= 0 THEN 'invalid_customer_id'
        WHEN updated_at IS NULL THEN 'missing_updated_at'
        WHEN updated IS NULL THEN 'invalid_updated_at'
        WHEN NOT coalesce(regexp_matches(email_l, '{RULES["EMAIL_PATTERN"]}'), true)
          THEN 'invalid_email'
        WHEN phone IS NOT NULL AND NOT coalesce(regexp_full_match(number, '1[0-9]{{10}}|[2-9][0-9]{{7,14}}'), false)
          THEN 'invalid_phone'
        WHEN date_of_birth IS NOT NULL AND NOT coalesce(dob BETWEEN DATE '1900-01-01' AND DATE '{ingest_date}', false)
          THEN 'invalid_date_of_birth'
        WHEN NOT coalesce(regexp_matches(country_u, '{RULES["COUNTRY_PATTERN"]}'), true) THEN 'invalid_country'
      END AS quarantine_reason,
      {", ".join(f"raw_{c}" for c in COLUMNS)}
    FROM phoned;
    CREATE TABLE classified AS
    SELECT *, CASE WHEN quarantine_reason IS NOT NULL THEN quarantine_reason
      WHEN row_number() OVER (PARTITION BY CASE WHEN quarantine_reason IS NULL THEN customer_id END
        ORDER BY updated_at DESC NULLS LAST, email, phone_e164, date_of_birth, country, first_name, last_name,
        lineage_source) = 1 THEN 'written' ELSE 'duplicate' END AS outcome
    FROM validated;
    """


def run(raw_dir: str, out_dir: str, ingest_date: str) -> dict[str, int]:
    out = Path(out_dir)
    (out / "cleansed").mkdir(parents=True, exist_ok=True)
    (out / "quarantine").mkdir(parents=True, exist_ok=True)
    # The same memory cap as the local engine gives job 2, so the two are compared like for like.
    conn = duckdb.connect(config={"memory_limit": os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)})
    conn.execute(cleanse_sql(f"{raw_dir.rstrip('/')}/*.csv", ingest_date))
    cleansed_columns = ", ".join(
        [
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "phone_e164 AS phone",
            "date_of_birth",
            "country",
            "updated_at",
            *LINEAGE,
        ]
    )
    conn.execute(
        f"COPY (SELECT {cleansed_columns} FROM classified WHERE outcome = 'written') "
        f"TO '{out}/cleansed/part-0.parquet' (FORMAT parquet, COMPRESSION snappy)"
    )
    raw_columns = ", ".join(f"raw_{c} AS {c}" for c in COLUMNS)
    conn.execute(
        f"COPY (SELECT {raw_columns}, {', '.join(LINEAGE)}, quarantine_reason FROM classified "
        f"WHERE quarantine_reason IS NOT NULL) TO '{out}/quarantine/part-0.parquet' "
        "(FORMAT parquet, COMPRESSION snappy)"
    )
    return {
        str(k): int(v)
        for k, v in conn.execute("SELECT outcome, count(*) FROM classified GROUP BY 1").fetchall()
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2], sys.argv[3])))  # the parent reads stdout
