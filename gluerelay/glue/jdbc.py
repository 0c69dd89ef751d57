"""JDBC sources for the local engine: a Glue connection name resolves to a local database URL.

On AWS, ``create_dynamic_frame.from_options(connection_type="postgresql", connection_options=
{"useConnectionProperties": "true", "connectionName": ..., "dbtable": ...})`` reads through the Glue
connection (URL and Secrets Manager credentials). Locally the same call resolves ``connectionName``
through ``GLUERELAY_GLUE_CONNECTIONS`` (JSON ``{"name": "jdbc:..."}``) to a SQLite file (the default
sample source) or a PostgreSQL server, read with DuckDB's sqlite/postgres extensions (no JVM).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from gluerelay.glue import engine

CONNECTIONS_ENV = "GLUERELAY_GLUE_CONNECTIONS"
GLUE_JDBC_CONNECTION_TYPES = frozenset({"postgresql", "mysql", "sqlserver", "oracle", "redshift"})


class JdbcSourceError(ValueError):
    """A JDBC source that cannot be resolved or read; the message names it."""


@dataclass(frozen=True)
class LocalDatabase:
    """A database the local engine can attach: ``kind`` is ``sqlite`` or ``postgres``."""

    kind: str
    target: str  # a file path for SQLite, a libpq URI for PostgreSQL
    jdbc_url: str

    @classmethod
    def from_jdbc_url(cls, url: str, user: str | None = None, password: str | None = None) -> LocalDatabase:
        if url.startswith("jdbc:sqlite:"):
            return cls("sqlite", url.removeprefix("jdbc:sqlite:"), url)
        if url.startswith("jdbc:postgresql://"):
            parts = urlsplit(url.removeprefix("jdbc:"))
            query = dict(parse_qsl(parts.query))
            user = user or query.pop("user", None)
            password = password or query.pop("password", None)
            credentials = ""
            if user:
                credentials = (
                    quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
                )
            rest = "&".join(f"{k}={v}" for k, v in query.items())
            target = f"postgresql://{credentials}{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
            return cls("postgres", target, url)
        raise JdbcSourceError(
            f"JDBC URL {url!r} is not supported locally: use jdbc:sqlite:/path/file.db or "
            "jdbc:postgresql://host:port/database?user=...&password=..."
        )


def configured_connections() -> dict[str, str]:
    raw = os.environ.get(CONNECTIONS_ENV, "").strip()
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as e:
        raise JdbcSourceError(f"{CONNECTIONS_ENV} is not valid JSON: {e}") from e
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise JdbcSourceError(
            f'{CONNECTIONS_ENV} must map connection names to JDBC URLs: {{"name": "jdbc:..."}}'
        )
    return mapping


def resolve(options: dict[str, str]) -> LocalDatabase:
    """The database behind Glue ``connection_options`` (``url`` or ``connectionName``)."""
    url = options.get("url")
    if not url:
        name = options.get("connectionName")
        if not name:
            raise JdbcSourceError("connection_options need a connectionName (or a url)")
        url = configured_connections().get(name)
        if not url:
            raise JdbcSourceError(
                f"Glue connection {name!r} is not configured locally; set {CONNECTIONS_ENV} "
                f'to {{"{name}": "jdbc:sqlite:/path/customers.db"}} or a jdbc:postgresql:// URL'
            )
    return LocalDatabase.from_jdbc_url(url, options.get("user"), options.get("password"))


def read_table(spark: Any, connection_type: str, options: dict[str, str]) -> Any:
    table = options.get("dbtable")
    if not table:
        raise JdbcSourceError("connection_options need a dbtable")
    database = resolve(options)
    if engine.selected_engine() == "pyspark":
        reader = spark.read.format("jdbc").option("url", database.jdbc_url).option("dbtable", table)
        if database.kind == "sqlite":
            reader = reader.option("driver", "org.sqlite.JDBC")
        return reader.load()
    import duckdb

    conn = spark._conn
    alias = f"src_{uuid.uuid4().hex[:12]}"
    view = f"_gluerelay_jdbc_{alias}"
    target = database.target.replace("'", "''")
    engine.load_extension(conn, database.kind)
    try:
        conn.execute(f"ATTACH '{target}' AS {alias} (TYPE {database.kind}, READ_ONLY)")
        # A view of the main schema: sqlframe resolves the columns of main objects only.
        conn.execute(f'CREATE VIEW "{view}" AS SELECT * FROM {alias}.{_quote_table(table)}')
    except duckdb.Error as e:
        raise JdbcSourceError(f"cannot read table {table!r} from {database.jdbc_url}: {e}") from e
    return spark.table(view)


def _quote_table(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
