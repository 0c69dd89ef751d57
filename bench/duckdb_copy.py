"""Job 1's floor: the landed CSV files copied to raw CSV with the lineage columns added, in one DuckDB
pass and nothing else (no checks, no DataFrame API).

``python -m bench.duckdb_copy OUT_DIR RUN_ID INGESTED_AT FILE...`` prints the rows copied.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb

from bench.duckdb_cleanse import sql_text
from gluerelay.glue.engine import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV


def run(out_dir: str, run_id: str, ingested_at: str, files: list[str]) -> int:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(
        config={
            "memory_limit": os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT),
            "preserve_insertion_order": False,
        }
    )
    listed = ", ".join(sql_text(f) for f in files)
    [(rows,)] = conn.execute(
        f"COPY (SELECT *, filename AS lineage_source, {sql_text(run_id)} AS lineage_run_id, "
        f"{sql_text(ingested_at)} AS lineage_ingested_at "
        f"FROM read_csv([{listed}], header=true, all_varchar=true, quote='\"', escape='\"')) "
        f"TO {sql_text(f'{out_dir}/part-0.csv')} (HEADER, QUOTE '\"', ESCAPE '\"')"
    ).fetchall()
    return int(rows)


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))  # the parent reads stdout
