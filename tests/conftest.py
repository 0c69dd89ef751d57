"""Shared fixtures: the local Glue engine and the Glue scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gluerelay import datagen
from gluerelay.glue import engine
from gluerelay.glue.jobrun import GLUE_JOBS_DIR
from gluerelay.glue.runner import SHIM_DIR

# The Lambda functions' Powertools settings in tests: no X-Ray daemon here, metrics under one namespace.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "gluerelay")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "gluerelay")

needs_sqlite_jdbc_driver = pytest.mark.skipif(
    engine.selected_engine() == "pyspark" and not os.environ.get("GLUERELAY_SPARK_JARS"),
    reason="PySpark reads SQLite through JDBC: set GLUERELAY_SPARK_JARS to the sqlite-jdbc jar "
    "(Debian: libxerial-sqlite-jdbc-java)",
)
needs_s3_filesystem = pytest.mark.skipif(
    engine.selected_engine() == "pyspark",
    reason="local PySpark has no s3:// filesystem (Glue has EMRFS; hadoop-aws is not part of pyspark); "
    "the S3 path is covered on the default engine",
)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The Spark session of the selected engine (ETL_ENGINE: sqlframe by default, pyspark for parity)."""
    if engine.selected_engine() == "pyspark" and (reason := engine.pyspark_unavailable_reason()):
        pytest.skip(f"PySpark parity engine unavailable: {reason}")
    session = engine.session()
    if str(SHIM_DIR) not in sys.path:
        sys.path.insert(0, str(SHIM_DIR))
    yield session


def load_glue_script(name: str) -> ModuleType:
    """Import a Glue script as a module (its main() does not run): the engine must already be active."""
    path = GLUE_JOBS_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"glue_jobs_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cleanse(spark: Any) -> ModuleType:
    return load_glue_script("cleanse_customers")


@pytest.fixture(scope="session")
def extract(spark: Any) -> ModuleType:
    return load_glue_script("extract_customers")


RAW_COLUMNS = [*datagen.COLUMNS, "lineage_source", "lineage_run_id", "lineage_ingested_at"]


def raw_customer(**values: str | None) -> dict[str, str | None]:
    """A valid raw row; keyword arguments override its values."""
    row: dict[str, str | None] = {
        "customer_id": "1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "(415) 555-0123",
        "date_of_birth": "1985-12-10",
        "country": "US",
        "updated_at": "2024-01-02 03:04:05",
        "lineage_source": "s3://bucket/landing/a.csv",
        "lineage_run_id": "run-1",
        "lineage_ingested_at": "2026-01-01 00:00:00",
    }
    row.update(values)
    return row


def raw_frame(spark: Any, rows: list[dict[str, str | None]]) -> Any:
    schema = ", ".join(f"{c} STRING" for c in RAW_COLUMNS)
    return spark.createDataFrame([tuple(r[c] for c in RAW_COLUMNS) for r in rows], schema)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
