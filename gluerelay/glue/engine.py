"""The local Glue engine: the DataFrame engine that runs unmodified Glue 5.0 scripts on this machine.

``sqlframe`` (the default) runs the PySpark DataFrame API on DuckDB: no JVM, a session in milliseconds.
``pyspark`` is real Spark 3.5 (as in Glue 5.0) for parity checks; it needs Java 17 and ``pip install
.[spark]``. Choose with ``ETL_ENGINE``. The engine must start before a script imports pyspark: sqlframe
works by standing in for the ``pyspark`` modules.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlparse

ENGINE_ENV = "ETL_ENGINE"
EngineName = Literal["sqlframe", "pyspark"]
ENGINES: tuple[EngineName, ...] = ("sqlframe", "pyspark")
MEMORY_LIMIT_ENV = "GLUERELAY_ENGINE_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "512MB"

# Spark settings that Glue 5.0 jobs want locally too (README, "Rules the scripts follow").
SPARK_LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.driver.memory": "2g",
}


class EngineUnavailableError(RuntimeError):
    """The requested engine cannot run here (for example PySpark without Java)."""


def selected_engine() -> EngineName:
    name = os.environ.get(ENGINE_ENV, "sqlframe").strip().lower()
    if name not in ENGINES:
        raise EngineUnavailableError(
            f"{ENGINE_ENV}={name!r} is not an engine; choose one of {', '.join(ENGINES)}"
        )
    return "pyspark" if name == "pyspark" else "sqlframe"


def pyspark_unavailable_reason() -> str | None:
    """Why the PySpark parity engine cannot run here, or None when it can."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java 17 is not installed (PySpark needs a JVM)"
    try:
        importlib.import_module("pyspark.version")
    except ImportError:
        return "pyspark is not installed (make test-spark installs it)"
    return None


_session: Any = None


def session() -> Any:
    """The process's Spark session on the selected engine, started on first use."""
    global _session  # noqa: PLW0603 - one engine per process, like one JVM per Glue driver
    if _session is None:
        _session = _start_pyspark() if selected_engine() == "pyspark" else _start_sqlframe()
    return _session


def _spill_directory() -> str:
    """A folder of this process's own for DuckDB to spill to, removed when the process ends. DuckDB names
    spill files without a process id, so concurrent job runs sharing one folder could clash."""
    folder = tempfile.mkdtemp(prefix="gluerelay-duckdb-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def end_process(code: int) -> NoReturn:
    """End a job run's process once its outputs are written. On the default engine, without Python's
    interpreter teardown: the exit handlers run (the spill folder goes), logs and output are flushed,
    and the process ends; tearing down sqlframe's, sqlglot's and DuckDB's modules object by object
    would add about 0.25 s to every local job run for nothing. PySpark ends normally (its JVM is
    stopped by its own exit handlers)."""
    if _session is None or selected_engine() == "pyspark":
        sys.exit(code)
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _start_sqlframe() -> Any:
    import duckdb
    import sqlframe

    from gluerelay.glue import sqlframe_adapter

    conn = duckdb.connect(
        config={
            # Never downloads (extensions come from their PyPI wheels); an installed one is loaded by
            # DuckDB itself the first time a statement needs it (httpfs: an s3:// path or S3 secret).
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": True,
            "extension_directory": str(_extension_directory()),
            # A Glue worker's memory is its own; locally jobs share a laptop, so DuckDB spills past this.
            "memory_limit": os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT),
            "temp_directory": _spill_directory(),
            # Spark promises no row order without an ORDER BY; keeping it costs DuckDB time and memory.
            "preserve_insertion_order": False,
        }
    )
    # httpfs loads on first s3:// use (36 ms a job that reads local paths never pays); sqlite and
    # postgres load on the first JDBC read.
    install_extension(conn, "httpfs")
    _configure_s3(conn)
    sqlframe.activate("duckdb", conn=conn)
    sqlframe_adapter.install()
    _provide_spark_context_module()
    from pyspark.sql import SparkSession  # the sqlframe stand-in, now that it is active

    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def _extension_directory() -> Path:
    directory = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gluerelay" / "duckdb"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


_installed_extensions: set[str] = set()
_loaded_extensions: set[str] = set()


def install_extension(conn: Any, name: str) -> None:
    """Install a DuckDB extension from its PyPI wheel (no download from extensions.duckdb.org), once per
    process; DuckDB can then load it when a statement needs it."""
    if name in _installed_extensions:
        return
    import duckdb

    module = importlib.import_module(f"duckdb_extension_{name}")
    binary = (
        Path(module.__file__ or "").parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{name}.duckdb_extension"
    )
    if not binary.is_file():
        raise EngineUnavailableError(
            f"DuckDB extension {name} for duckdb {duckdb.__version__} is missing at {binary}; "
            "duckdb and duckdb-extension-* must have the same version"
        )
    conn.execute(f"INSTALL '{binary}'")
    _installed_extensions.add(name)


def load_extension(conn: Any, name: str) -> None:
    """Install and load a DuckDB extension, once per process: every JDBC read asks for its extension."""
    if name in _loaded_extensions:
        return
    install_extension(conn, name)
    conn.execute(f"LOAD {name}")
    _loaded_extensions.add(name)


def _configure_s3(conn: Any) -> None:
    """Point DuckDB's s3:// at the same endpoint and credentials boto3 uses (moto locally)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    key_id = os.environ.get("AWS_ACCESS_KEY_ID")
    if not endpoint and not key_id:
        return
    settings = {
        "TYPE": "s3",
        "REGION": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
    }
    if key_id:
        settings["KEY_ID"] = key_id
        settings["SECRET"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if os.environ.get("AWS_SESSION_TOKEN"):
            settings["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    if endpoint:
        parsed = urlparse(endpoint)
        settings["ENDPOINT"] = parsed.netloc or parsed.path
        settings["URL_STYLE"] = "path"
        settings["USE_SSL"] = "true" if parsed.scheme == "https" else "false"
    body = ", ".join(f"{k} {v}" if k in {"TYPE", "USE_SSL"} else f"{k} '{v}'" for k, v in settings.items())
    conn.execute(f"CREATE OR REPLACE SECRET gluerelay_s3 ({body})")


class _LocalSparkContext:
    """``pyspark.context.SparkContext`` for sqlframe: Glue scripts call ``SparkContext.getOrCreate()``."""

    _instance: _LocalSparkContext | None = None

    def __init__(self, spark_session: Any) -> None:
        self.spark_session = spark_session

    @classmethod
    def getOrCreate(cls, conf: object = None) -> _LocalSparkContext:
        if cls._instance is None:
            cls._instance = cls(session())
        return cls._instance

    def setLogLevel(self, level: str) -> None:
        """Spark's log level has no meaning for DuckDB."""


def _provide_spark_context_module() -> None:
    module = types.ModuleType("pyspark.context")
    module.SparkContext = _LocalSparkContext  # type: ignore[attr-defined]
    sys.modules["pyspark.context"] = module


def spark_session_for(spark_context: Any) -> Any:
    """The session behind a ``SparkContext`` (GlueContext.spark_session), on either engine."""
    if isinstance(spark_context, _LocalSparkContext):
        return spark_context.spark_session
    from pyspark.sql import SparkSession

    return SparkSession(spark_context)


def _start_pyspark() -> Any:
    reason = pyspark_unavailable_reason()
    if reason:
        raise EngineUnavailableError(f"{ENGINE_ENV}=pyspark cannot run: {reason}")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("gluerelay-local")
    for key, value in SPARK_LOCAL_CONF.items():
        builder = builder.config(key, value)
    jars = os.environ.get("GLUERELAY_SPARK_JARS")
    if jars:
        builder = builder.config("spark.jars", jars)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
