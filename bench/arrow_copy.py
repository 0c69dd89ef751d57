"""The I/O floor: read the raw CSV and write it as Parquet with pyarrow, no transform.

``python -m bench.arrow_copy RAW_DIR OUT_DIR`` prints the row count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def run(raw_dir: str, out_dir: str) -> int:
    files = sorted(Path(raw_dir).glob("*.csv"))
    with pacsv.open_csv(files[0]) as probe:
        names = probe.schema.names
    as_text = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    tables = [pacsv.read_csv(f, convert_options=as_text) for f in files]
    table = pa.concat_tables(tables)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, f"{out_dir}/part-0.parquet", compression="snappy")
    return int(table.num_rows)


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))  # the parent reads stdout
