"""The local Glue runtime: runs unmodified Glue 5.0 scripts on sqlframe/DuckDB (or PySpark for parity)."""
