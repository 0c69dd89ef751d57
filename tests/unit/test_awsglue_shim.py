"""The awsglue stand-in behaves as Glue's library does for what the scripts use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gluerelay import datagen
from gluerelay.glue import jdbc
from tests.conftest import needs_sqlite_jdbc_driver


def test_get_resolved_options_returns_the_named_arguments(spark: Any) -> None:
    from awsglue.utils import getResolvedOptions

    argv = ["script.py", "--JOB_NAME", "j", "--run_id", "r1", "--other", "x"]
    assert getResolvedOptions(argv, ["JOB_NAME", "run_id"]) == {"JOB_NAME": "j", "run_id": "r1"}


def test_get_resolved_options_names_missing_arguments(spark: Any) -> None:
    from awsglue.utils import GlueArgumentError, getResolvedOptions

    with pytest.raises(GlueArgumentError, match="--run_id, --raw_path"):
        getResolvedOptions(["script.py", "--JOB_NAME", "j"], ["JOB_NAME", "run_id", "raw_path"])


@pytest.mark.spark
@needs_sqlite_jdbc_driver
def test_jdbc_dynamic_frame_reads_the_table_behind_a_glue_connection(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a SQLite database standing in for the RDS table, configured as Glue connection "crm"
    database = tmp_path / "crm.db"
    datagen.write(database, datagen.generate_rows(25, seed=3), "sqlite")
    monkeypatch.setenv(jdbc.CONNECTIONS_ENV, json.dumps({"crm": f"jdbc:sqlite:{database}"}))
    from awsglue.context import GlueContext
    from pyspark.context import SparkContext

    glue_context = GlueContext(SparkContext.getOrCreate())
    # When read as a Glue job does
    frame = glue_context.create_dynamic_frame.from_options(
        connection_type="postgresql",
        connection_options={
            "useConnectionProperties": "true",
            "connectionName": "crm",
            "dbtable": "customers",
        },
    )
    # Then every row and column is there
    df = frame.toDF()
    assert df.count() == 25
    assert df.columns == datagen.COLUMNS


def test_an_unconfigured_connection_says_how_to_configure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jdbc.CONNECTIONS_ENV, raising=False)
    with pytest.raises(
        jdbc.JdbcSourceError, match="'crm' is not configured locally; set GLUERELAY_GLUE_CONNECTIONS"
    ):
        jdbc.resolve({"connectionName": "crm", "dbtable": "customers"})


def test_postgres_jdbc_urls_become_libpq_uris() -> None:
    database = jdbc.LocalDatabase.from_jdbc_url(
        "jdbc:postgresql://db:5432/crm?user=etl&password=p%40ss&sslmode=disable"
    )
    assert database.kind == "postgres"
    assert database.target == "postgresql://etl:p%40ss@db:5432/crm?sslmode=disable"


def test_unsupported_jdbc_urls_are_refused_with_the_supported_forms() -> None:
    with pytest.raises(jdbc.JdbcSourceError, match=re.escape("jdbc:sqlite:/path/file.db")):
        jdbc.LocalDatabase.from_jdbc_url("jdbc:oracle:thin:@db:1521:orcl")
