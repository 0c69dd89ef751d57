"""Where sqlframe-on-DuckDB differs from Spark in ways a Glue script can see, make it behave like Spark.

Every adaptation of the local engine lives here, each with a test in tests/unit/test_sqlframe_adapter.py:

- reads: a path is a file, a glob or a folder of part files (``_SUCCESS`` ignored); CSV without a schema
  and without ``inferSchema`` reads every column as STRING, as Spark does (DuckDB would infer types);
  Spark's reader options are translated, and unknown ones are refused instead of silently ignored;
- writes: a path is a folder of part files; modes error / ignore / overwrite / append as in Spark;
  ``partitionBy`` exists and works (DuckDB ``PARTITION_BY``); Spark's CSV writer options are translated;
- ``cache()`` / ``persist()`` materialise the frame (sqlframe ignores them, re-running the whole plan
  at every action);
- ``union`` / ``unionAll`` / ``unionByName`` return a frame over a view of the result: sqlframe copies the
  whole expression tree of both sides at every set operation, so a chain of N unions (one frame per landed
  file, folded together) cost O(N²) — 40 files took 53 s in expression copying alone;
- ``input_file_name()`` names each row's file (sqlframe's gives the list of every path read, alike on
  every row), in a select directly on a frame read from files; elsewhere it is refused;
- sqlframe's per-function dialect lookup is remembered instead of rebuilt at every call;
- sqlframe's SOUNDEX function is registered before the first statement that calls it, not at session
  start: registering a Python function makes DuckDB import numpy (about 50 ms of every job's start);
- building a plan copies less (same trees): a frame's copy no longer deep-copies the expression it is
  about to replace, turning a frame's query into a CTE copies its WITH chain twice instead of six times,
  and sqlglot's tree copy is replaced by one that makes the same tree at about a third
  of the cost (kept only while sqlglot's node fields are the ones it copies);
- ``spark.conf.set`` accepts the Spark-only settings Glue scripts set for Spark's sake, and sets the
  session time zone without a bound parameter (binding one makes DuckDB import pandas: 0.2 s a job).
"""

from __future__ import annotations

import copy
import logging
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlframe.base import util as sqlframe_util
from sqlframe.base.column import Column
from sqlframe.base.session import _BaseSession
from sqlframe.base.util import ensure_column_mapping, get_tables_from_expression_with_join
from sqlframe.duckdb import functions as sqlframe_functions
from sqlframe.duckdb import session as duckdb_session
from sqlframe.duckdb.dataframe import DuckDBDataFrame
from sqlframe.duckdb.readwriter import DuckDBDataFrameReader, DuckDBDataFrameWriter
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.expressions import core as sqlglot_core

from gluerelay.glue import storage

logger = logging.getLogger(__name__)

# Settings that tune Spark itself and have no counterpart (or no effect) on DuckDB.
SPARK_ONLY_SETTINGS = frozenset(
    {
        "spark.sql.legacy.timeParserPolicy",  # DuckDB parses strictly by format anyway
        "spark.sql.parquet.outputTimestampType",  # DuckDB writes INT64 micros, the portable choice
        "spark.sql.sources.partitionOverwriteMode",
        "spark.sql.shuffle.partitions",
        "spark.sql.adaptive.enabled",
    }
)

_CSV_READ_OPTIONS: Mapping[str, str] = {
    "header": "header",
    "sep": "delim",
    "delimiter": "delim",
    "quote": "quote",
    "escape": "escape",
    "nullValue": "nullstr",
    "encoding": "encoding",
    "comment": "comment",
}
_CSV_WRITE_OPTIONS: Mapping[str, str] = {
    "header": "HEADER",
    "sep": "DELIMITER",
    "delimiter": "DELIMITER",
    "quote": "QUOTE",
    "escape": "ESCAPE",
    "nullValue": "NULLSTR",
    "compression": "COMPRESSION",
}
_EXTENSIONS = {"csv": "csv", "parquet": "parquet", "json": "json"}


class UnsupportedOptionError(ValueError):
    """A Spark reader or writer option the local engine cannot honour."""


def _is_true(value: object) -> bool:
    return str(value).lower() == "true"


def _translate_csv_read(options: Mapping[str, Any], has_schema: bool) -> dict[str, Any]:
    duck: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or key in {"inferSchema", "multiLine", "enforceSchema"}:
            continue
        if key in {"ignoreLeadingWhiteSpace", "ignoreTrailingWhiteSpace"} and not _is_true(value):
            continue  # Spark's read default; DuckDB never trims
        if key == "mode":
            mode = str(value).upper()
            if mode == "PERMISSIVE":
                duck["null_padding"] = True  # short rows get NULLs, as in Spark
            elif mode != "FAILFAST":
                raise UnsupportedOptionError(f"CSV read mode {value!r} is not supported locally")
            continue
        if key not in _CSV_READ_OPTIONS:
            raise UnsupportedOptionError(f"CSV read option {key!r} is not supported by the local engine")
        translated = _is_true(value) if key == "header" else _encoding(value) if key == "encoding" else value
        duck[_CSV_READ_OPTIONS[key]] = translated
    duck.setdefault("header", False)
    if not has_schema and not _is_true(options.get("inferSchema", False)):
        duck["all_varchar"] = True  # Spark reads every column as STRING unless asked to infer
    return duck


def _encoding(value: object) -> str:
    """Spark's charset name as DuckDB's reader spells it (it knows utf-8, utf-16 and latin-1 only)."""
    name = str(value).lower().replace("_", "-")
    known = {
        "utf-8": "utf-8",
        "utf8": "utf-8",
        "utf-16": "utf-16",
        "iso-8859-1": "latin-1",
        "latin1": "latin-1",
    }
    if name not in known:
        raise UnsupportedOptionError(f"encoding {value!r} is not supported by the local engine")
    return known[name]


def _translate_json_read(options: Mapping[str, Any]) -> None:
    """Spark's JSON reader options the local engine honours. DuckDB's JSON readers take UTF-8 only and
    fail on a malformed line, which is Spark's FAILFAST: PERMISSIVE and DROPMALFORMED are refused."""
    unknown = {k for k, v in options.items() if v is not None} - {
        "multiLine",
        "primitivesAsString",
        "mode",
        "encoding",
    }
    if unknown:
        raise UnsupportedOptionError(
            f"JSON read options {sorted(unknown)} are not supported by the local engine"
        )
    mode = str(options.get("mode") or "FAILFAST").upper()
    if mode != "FAILFAST":
        raise UnsupportedOptionError(f"JSON read mode {mode!r} is not supported locally (FAILFAST is)")
    if options.get("encoding") is not None and _encoding(options["encoding"]) != "utf-8":
        raise UnsupportedOptionError(
            f"JSON encoding {options['encoding']!r} is not supported locally (UTF-8 is)"
        )


def _translate_csv_write(options: Mapping[str, Any], to_strftime: Callable[[str], str]) -> dict[str, Any]:
    duck: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in {"ignoreLeadingWhiteSpace", "ignoreTrailingWhiteSpace"}:
            if _is_true(value):
                raise UnsupportedOptionError(f"{key}=true (trimming on write) is not supported locally")
            continue
        if key in {"timestampFormat", "dateFormat"}:
            duck["TIMESTAMPFORMAT" if key == "timestampFormat" else "DATEFORMAT"] = to_strftime(str(value))
            continue
        if key not in _CSV_WRITE_OPTIONS:
            raise UnsupportedOptionError(f"CSV write option {key!r} is not supported by the local engine")
        duck[_CSV_WRITE_OPTIONS[key]] = _is_true(value) if key == "header" else value
    for trim_option in ("ignoreLeadingWhiteSpace", "ignoreTrailingWhiteSpace"):
        if trim_option not in options:
            # Spark's CSV writer trims by default; DuckDB never does. Say so rather than differ silently.
            logger.warning(
                "CSV write without %s=false: Spark trims values here, the local engine does not", trim_option
            )
    return duck


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_sql_literal(k)}: {_sql_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_sql_literal(v) for v in value) + "]"
    text = str(value).replace("'", "''")
    return f"'{text}'"


def _options_sql(options: Mapping[str, Any], separator: str) -> str:
    return ", ".join(f"{key}{separator}{_sql_literal(value)}" for key, value in options.items())


def _spark_type(duckdb_type: str) -> str:
    return str(exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="spark"))


def _duckdb_type(spark_type: str) -> str:
    return str(exp.DataType.build(spark_type, dialect="spark").sql(dialect="duckdb"))


def _load(
    self: DuckDBDataFrameReader,
    path: str | list[str] | None = None,
    format: str | None = None,
    schema: Any = None,
    **options: Any,
) -> DuckDBDataFrame:
    if path is None:
        raise ValueError("a path is required to read files")
    fmt = (format or self.state_format_to_read or "parquet").lower()
    options = {**self.state_options, **options}
    files = [f for p in ([path] if isinstance(path, str) else path) for f in storage.data_files(p)]
    spark_schema: dict[str, str] | None = dict(ensure_column_mapping(schema)) if schema else None
    duck: dict[str, Any]
    if fmt == "csv":
        duck = _translate_csv_read(options, has_schema=spark_schema is not None)
        reader = "read_csv"
    elif fmt == "json":
        _translate_json_read(options)
        duck = {"sample_size": -1}
        # JSON Lines unless multiLine: read_ndjson; read_json detects arrays and multi-line documents.
        reader = "read_json" if _is_true(options.get("multiLine", False)) else "read_ndjson"
    elif fmt == "parquet":
        duck, reader = {}, "read_parquet"
    else:
        raise UnsupportedOptionError(f"reading format {fmt!r} is not supported by the local engine")
    # Spark adds partition columns only when it discovers k=v folders below the path it was given; a
    # leaf folder or file gets none. DuckDB would derive them from any k=v in the path.
    duck["hive_partitioning"] = False
    if spark_schema is None:
        probe = f"{reader}({_sql_literal(files)}{', ' if duck else ''}{_options_sql(duck, '=')})"
        described = self.session._conn.execute(f"DESCRIBE SELECT * FROM {probe}").fetchall()
        as_strings = fmt == "csv" or (fmt == "json" and _is_true(options.get("primitivesAsString", False)))
        # Spark keeps the text of every CSV value (and of JSON primitives when asked); DuckDB would
        # infer types and reformat dates and numbers.
        spark_schema = {row[0]: "string" if as_strings else _spark_type(row[1]) for row in described}
        duck.pop("all_varchar", None)
    if fmt in {"csv", "json"}:
        duck["columns"] = {name: _duckdb_type(kind) for name, kind in spark_schema.items()}
    duck.pop("sample_size", None)
    self.state_options = {}  # translated above; sqlframe would pass Spark's names through to DuckDB
    # sqlframe takes a {name: type} mapping as a schema too (its annotation says StructType | str).
    schema_mapping: Any = spark_schema
    fmt_name = reader.removeprefix("read_")
    loaded: DuckDBDataFrame = _original_load(self, path=files, format=fmt_name, schema=schema_mapping, **duck)

    def with_file_name() -> DuckDBDataFrame:
        if _FILE_COLUMN in spark_schema:
            raise UnsupportedOptionError(
                f"input_file_name() cannot be used locally on files with a column named {_FILE_COLUMN!r}"
            )
        # DuckDB's filename option adds the column, and sqlframe selects it with the others.
        reread: DuckDBDataFrame = _original_load(
            self, path=files, format=fmt_name, schema=schema_mapping, **duck, filename=True
        )
        return reread

    _file_name_readers[loaded] = with_file_name
    return loaded


_original_load = DuckDBDataFrameReader.load


def _copy_options(fmt: str, options: dict[str, Any], to_strftime: Callable[[str], str]) -> dict[str, Any]:
    """DuckDB COPY options for a Spark write of ``fmt`` with Spark's writer ``options``."""
    if fmt == "csv":
        return {"FORMAT": "csv", **_translate_csv_write(options, to_strftime)}
    if fmt == "parquet":
        compression = options.pop("compression", None) or "snappy"
        if options:
            raise UnsupportedOptionError(f"Parquet write options {sorted(options)} are not supported locally")
        return {"FORMAT": "parquet", "COMPRESSION": compression}
    return {"FORMAT": "json"}


def _write(
    self: DuckDBDataFrameWriter, path: str, mode: str | None, format: str = "parquet", **options: Any
) -> None:
    path = storage.normalise(path)
    mode = (mode or "error").lower()
    fmt = format.lower()
    if fmt not in _EXTENSIONS:
        raise UnsupportedOptionError(f"writing format {fmt!r} is not supported by the local engine")
    if storage.exists(path):
        if mode in {"error", "errorifexists", "default"}:
            raise FileExistsError(
                f"[PATH_ALREADY_EXISTS] Path {path} already exists. Set mode as 'overwrite'"
            )
        if mode == "ignore":
            return
        if mode == "overwrite":
            storage.remove(path)
    partition_by = options.pop("partitionBy", None)
    session = self._df.session
    copy = _copy_options(fmt, options, lambda spark_format: str(session.format_strftime(spark_format).this))
    part = f"part-{uuid.uuid4()}"
    storage.make_dirs(path)
    if partition_by:
        copy["PARTITION_BY"] = [partition_by] if isinstance(partition_by, str) else list(partition_by)
        copy["FILENAME_PATTERN"] = part + "-{i}"
        copy["APPEND" if mode == "append" else "OVERWRITE_OR_IGNORE"] = True
        target = path
    else:
        target = f"{path.rstrip('/')}/{part}.{_EXTENSIONS[fmt]}"
    session = self._df.session
    *setup, query = self._df._get_expressions()
    for expression in setup:
        session._execute(session._to_sql(expression))
    partition_sql = ""
    if "PARTITION_BY" in copy:
        partition_sql = "PARTITION_BY (" + ", ".join(f'"{c}"' for c in copy.pop("PARTITION_BY")) + "), "
    options_sql = partition_sql + _options_sql(copy, " ")
    session._execute(f"COPY ({session._to_sql(query)}) TO {_sql_literal(target)} ({options_sql})")


# input_file_name(): the frames read from files, each with how to read it again with a column naming each
# row's file (a frame made by any other operation is not here: it has no files of its own).
_FILE_COLUMN = "filename"  # what DuckDB's filename option names the column
_FILE_NAME_MARKER = "__gluerelay_input_file_name__"
_file_name_readers: weakref.WeakKeyDictionary[DuckDBDataFrame, Callable[[], DuckDBDataFrame]] = (
    weakref.WeakKeyDictionary()
)


def _input_file_name() -> Column:
    """Spark's ``input_file_name()``: stands for the file each row was read from (sqlframe's gives the
    whole list of paths read, the same text on every row). Resolved by ``select`` on a frame read from
    files; anywhere else it is refused."""
    return Column(exp.column(_FILE_NAME_MARKER))


def _asks_file_name(column: object) -> bool:
    return isinstance(column, Column) and any(
        c.name == _FILE_NAME_MARKER for c in column.expression.find_all(exp.Column)
    )


def _file_uri() -> exp.Expression:
    """The file's URI as Spark gives it: ``file://`` before a local path, an s3:// URI as it is."""
    name = exp.column(_FILE_COLUMN)
    return exp.If(
        this=exp.func("starts_with", name.copy(), exp.Literal.string("/")),
        true=exp.DPipe(this=exp.Literal.string("file://"), expression=name.copy()),
        false=name.copy(),
    )


def _select_with_file_name(original: Callable[..., DuckDBDataFrame]) -> Callable[..., DuckDBDataFrame]:
    def select(self: DuckDBDataFrame, *cols: Any, **kwargs: Any) -> DuckDBDataFrame:
        requested = list(cols[0]) if cols and isinstance(cols[0], list) else list(cols)
        if not any(_asks_file_name(c) for c in requested):
            return original(self, *cols, **kwargs)
        reread = _file_name_readers.get(self)
        if reread is None:
            raise UnsupportedOptionError(
                "input_file_name() works on the local engine only in a select directly on a frame read "
                "from files, as in spark.read.csv(paths).select(..., input_file_name())"
            )
        resolved: list[Any] = []
        for column in requested:
            if isinstance(column, str) and column == "*":
                resolved += self.columns  # the read's own columns, not the file name column
            elif _asks_file_name(column):
                resolved.append(
                    Column(
                        column.expression.transform(
                            lambda node: (
                                _file_uri()
                                if isinstance(node, exp.Column) and node.name == _FILE_NAME_MARKER
                                else node
                            )
                        )
                    )
                )
            else:
                resolved.append(column)
        return original(reread(), *resolved, **kwargs)

    select.__name__ = original.__name__
    select.__doc__ = original.__doc__
    inner = getattr(original, "__wrapped__", None)
    if inner is not None:  # sqlframe's withColumns calls select.__wrapped__ (select without its operation)
        select.__wrapped__ = _select_with_file_name(inner)  # type: ignore[attr-defined]
    return select


def _partition_by(self: DuckDBDataFrameWriter, *cols: str | list[str]) -> DuckDBDataFrameWriter:
    columns = [c for col in cols for c in ([col] if isinstance(col, str) else col)]
    self.state_options = {**self.state_options, "partitionBy": columns}  # type: ignore[dict-item]
    return self


def _as_relation(df: DuckDBDataFrame, kind: str, prefix: str) -> DuckDBDataFrame:
    """``df`` as a new frame reading a TABLE (materialised) or VIEW (lazy) made of its query."""
    session = df.session
    *setup, query = df._get_expressions()
    for expression in setup:
        session._execute(session._to_sql(expression))
    name = f"{prefix}{uuid.uuid4().hex}"
    # In the main schema of the in-memory database: sqlframe resolves columns of main relations only.
    session._execute(f'CREATE {kind} "{name}" AS {session._to_sql(query)}')
    return session.table(name)  # type: ignore[no-any-return]


def _cache(self: DuckDBDataFrame, storageLevel: Any = None) -> DuckDBDataFrame:
    return _as_relation(self, "TABLE", "_gluerelay_cache_")


def _flat_set_operation(original: Callable[..., DuckDBDataFrame]) -> Callable[..., DuckDBDataFrame]:
    """Wrap a sqlframe set operation so its result is a small frame over a view (same semantics)."""

    def flat(self: DuckDBDataFrame, other: DuckDBDataFrame, *args: Any, **kwargs: Any) -> DuckDBDataFrame:
        return _as_relation(original(self, other, *args, **kwargs), "VIEW", "_gluerelay_union_")

    flat.__name__ = original.__name__
    flat.__doc__ = original.__doc__
    return flat


def _start_session(
    self: duckdb_session.DuckDBSession,
    conn: Any = None,
    *args: Any,
    eager_validation: bool | None = None,
    **kwargs: Any,
) -> None:
    """sqlframe's ``DuckDBSession.__init__`` (sqlframe 4.10) without registering SOUNDEX: see ``_execute``."""
    if eager_validation is not None and not isinstance(eager_validation, bool):
        raise ValueError("sqlframe.eager_validation must be a boolean")
    if eager_validation is not None or not hasattr(self, "eager_validation"):
        self.eager_validation = bool(eager_validation)
    if not hasattr(self, "_conn"):
        import duckdb

        conn = conn or duckdb.connect()
        self._udf_conn = conn.cursor()
        _BaseSession.__init__(self, conn, *args, **kwargs)
        self._last_result = None


def _execute(self: duckdb_session.DuckDBSession, sql: str) -> None:
    """sqlframe's ``_execute``, registering its SOUNDEX function first when the statement calls it."""
    if _SOUNDEX not in self.__dict__ and "soundex" in sql.lower():
        from duckdb.sqltypes import VARCHAR

        self._udf_conn.create_function("SOUNDEX", sqlframe_util.soundex, return_type=VARCHAR)  # as sqlframe
        self.__dict__[_SOUNDEX] = True
    self._last_result = self._cur.execute(sql)  # type: ignore[assignment]  # sqlframe declares None


_SOUNDEX = "_gluerelay_soundex_registered"


def _copy_frame(self: DuckDBDataFrame, **kwargs: Any) -> DuckDBDataFrame:
    """sqlframe's ``DataFrame.copy`` without copying what ``kwargs`` replaces: sqlframe deep-copies every
    attribute, the whole expression tree included, then drops the copies the caller passed new values
    for (every select, filter and CTE step passes a new expression)."""
    kwargs["join_on_uuid"] = str(uuid.uuid4())
    kept = {
        name: value.copy() if hasattr(value, "copy") else copy.copy(value)
        for name, value in vars(self).items()
        if name not in kwargs
    }
    return self.__class__(**kept, **kwargs)


def _convert_leaf_to_cte(
    self: DuckDBDataFrame, sequence_id: str | None = None, name: str | None = None
) -> DuckDBDataFrame:
    """sqlframe's ``_convert_leaf_to_cte`` (sqlframe 4.10): the frame's query becomes the last CTE of its
    WITH chain. The same CTEs and names, with four whole-chain copies fewer: sqlframe copied the frame,
    then its expression again, then the expression once more only to drop its WITH, and its ``from_``
    and ``select`` builders copied the new outer query; the frame's copy is this call's own to reuse.
    What still copies the chain: that frame copy, and the SQL generation that names the CTE."""
    df = self._resolve_pending_hints()  # a copy: df.expression belongs to this call
    sequence_id = sequence_id or df.sequence_id
    expression = df.expression
    from_sequence_ids: set[str] = set()
    if expression.args.get("joins"):
        # Alias names that pointed to the joined CTEs must also point to the wrapper CTE.
        from_tables = {table.alias_or_name for table in get_tables_from_expression_with_join(expression)}
        from_sequence_ids = {
            cte.args["sequence_id"]
            for cte in expression.ctes
            if cte.alias_or_name in from_tables and "sequence_id" in cte.args
        }
    cte_name = name or df._create_hash_from_expression(expression)
    ctes = list(expression.ctes)
    with_ = expression.args.get("with_")
    recursive = bool(with_ and with_.args.get("recursive"))
    expression.set("with_", None)
    cte = exp.Select().with_(cte_name, as_=expression, copy=False).ctes[0]
    cte.set("branch_id", self.branch_id)
    cte.set("sequence_id", sequence_id)
    outer = df._add_ctes_to_expression(exp.Select(), [*ctes, cte])
    if recursive:
        outer.args["with_"].set("recursive", True)
    columns = [column.expression for column in df._get_outer_select_columns(cte)]
    outer = outer.from_(cte_name, copy=False).select(*columns, copy=False)
    if from_sequence_ids:
        for sequence_ids in df.session.name_to_sequence_id_mapping.values():
            if any(s in from_sequence_ids for s in sequence_ids) and sequence_id not in sequence_ids:
                sequence_ids.append(sequence_id)
    return df.copy(expression=outer, sequence_id=sequence_id)


_PLAIN_VALUES = (str, int, float, bool, type(None))


def _copy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A node's metadata as ``copy.deepcopy`` copies it: plain values shared (immutable), trees copied,
    anything else deep-copied."""
    copied: dict[str, Any] = {}
    for key, value in meta.items():
        if type(value) in _PLAIN_VALUES:
            copied[key] = value
        elif isinstance(value, sqlglot_core.Expr):
            copied[key] = value.copy()
        elif type(value) is list and all(type(item) in _PLAIN_VALUES for item in value):
            copied[key] = list(value)
        else:
            copied[key] = copy.deepcopy(value)
    return copied


_sqlglot_copy_tree = sqlglot_core.Expression.__deepcopy__
# The node fields _copy_tree copies: a sqlglot that adds one keeps its own copy (see install).
_TREE_FIELDS = ("args", "parent", "arg_key", "index", "comments", "_type", "_meta", "_hash")


def _copy_tree(self: sqlglot_core.Expression, memo: Any) -> Any:
    """sqlglot's ``Expression.__deepcopy__`` (sqlglot 30.29), the same tree made with less work: nodes are
    made without ``__init__`` (sqlglot calls it with no arguments, which only blanks the fields set here)
    and linked to their parents directly instead of through ``set``/``append``, and metadata is copied by
    ``_copy_meta``. sqlframe copies a frame's whole plan several times at every operation, so this was
    most of a job's plan-building time. Tested node for node against sqlglot's own copy."""
    expr = sqlglot_core.Expr
    deepcopy = copy.deepcopy
    make = object.__new__

    def blank(node: Any) -> Any:
        twin = make(type(node))
        twin.args = {}
        twin.parent = twin.arg_key = twin.index = None
        twin.comments = None if node.comments is None else deepcopy(node.comments)
        twin._type = None if node._type is None else deepcopy(node._type)
        twin._meta = None if node._meta is None else _copy_meta(node._meta)
        twin._hash = None
        return twin

    root = blank(self)
    stack: list[tuple[Any, Any]] = [(self, root)]
    while stack:
        node, twin = stack.pop()
        linked = False  # sqlglot's set/append drop the copied hash of a node given children
        args = twin.args
        for key, values in node.args.items():
            if isinstance(values, expr):
                child = blank(values)
                child.parent, child.arg_key = twin, key
                args[key] = child
                stack.append((values, child))
                linked = True
            elif type(values) is list:
                items: list[Any] = []
                for value in values:
                    if isinstance(value, expr):
                        child = blank(value)
                        child.parent, child.arg_key, child.index = twin, key, len(items)
                        stack.append((value, child))
                        items.append(child)
                        continue
                    if isinstance(value, list):
                        twin._set_parent(key, value)  # as sqlglot's append does: a nested list is shared
                    items.append(value)
                args[key] = items
                linked = linked or bool(items)
            else:
                args[key] = values
        if not linked:
            twin._hash = node._hash
    return root


class _RuntimeConfig(duckdb_session._DuckDBRuntimeConfig):
    """sqlframe's config plus the Spark-only settings, recorded so ``get`` returns what was set."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self._spark_only: dict[str, str] = {}

    def set(self, key: str, value: str) -> None:
        if key in SPARK_ONLY_SETTINGS:
            self._spark_only[key] = str(value)
            return
        if key == duckdb_session._SPARK_TIMEZONE_KEY:
            # A literal, not sqlframe's bound parameter: binding one makes DuckDB import pandas (0.2 s).
            self._session._conn.execute(f"SET SESSION TimeZone = {_sql_literal(str(value))}")
            return
        super().set(key, value)

    def get(self, key: str) -> str:
        if key in SPARK_ONLY_SETTINGS:
            return self._spark_only[key]
        return str(super().get(key))


def _conf(self: Any) -> _RuntimeConfig:
    config: _RuntimeConfig | None = self.__dict__.get("_gluerelay_conf")
    if config is None:
        config = self.__dict__["_gluerelay_conf"] = _RuntimeConfig(self)
    return config


_dialect_names: dict[type, str] = {}
_original_dialect_to_string = sqlframe_util.dialect_to_string


def _dialect_to_string(dialect: Any) -> str:
    """sqlframe's dialect name lookup, remembered and without importing every sqlglot dialect: sqlframe
    maps all of them (importing each, 0.17 s) at every call, and calls it for every function a script
    uses. The dialects registered so far are looked at first; sqlframe's lookup is the fallback."""
    kind = type(dialect)
    name = _dialect_names.get(kind)
    if name is None:
        registered = {klass: key for key, klass in Dialect._classes.items()}
        name = _dialect_names[kind] = registered.get(kind) or str(_original_dialect_to_string(dialect))
    return name


_installed = False


def install() -> None:
    """Apply the adaptations to sqlframe's DuckDB classes (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide patch, applied once
    if _installed:
        return
    setattr(DuckDBDataFrameReader, "load", _load)  # noqa: B010 - patching classes we do not own
    setattr(DuckDBDataFrameWriter, "_write", _write)  # noqa: B010
    setattr(DuckDBDataFrameWriter, "partitionBy", _partition_by)  # noqa: B010
    setattr(DuckDBDataFrame, "cache", _cache)  # noqa: B010
    setattr(DuckDBDataFrame, "persist", _cache)  # noqa: B010
    for name in ("union", "unionAll", "unionByName"):
        setattr(DuckDBDataFrame, name, _flat_set_operation(getattr(DuckDBDataFrame, name)))
    setattr(duckdb_session.DuckDBSession, "conf", property(_conf))  # noqa: B010
    setattr(sqlframe_util, "dialect_to_string", _dialect_to_string)  # noqa: B010
    setattr(DuckDBDataFrame, "select", _select_with_file_name(DuckDBDataFrame.select))  # noqa: B010
    setattr(sqlframe_functions, "input_file_name", _input_file_name)  # noqa: B010
    setattr(duckdb_session.DuckDBSession, "__init__", _start_session)  # noqa: B010
    setattr(duckdb_session.DuckDBSession, "_execute", _execute)  # noqa: B010
    setattr(DuckDBDataFrame, "copy", _copy_frame)  # noqa: B010
    setattr(DuckDBDataFrame, "_convert_leaf_to_cte", _convert_leaf_to_cte)  # noqa: B010
    if tuple(sqlglot_core.Expression.__slots__) == _TREE_FIELDS:
        setattr(sqlglot_core.Expression, "__deepcopy__", _copy_tree)  # noqa: B010
    else:
        logger.warning(
            "sqlglot's expression fields are %s, not %s: its own (slower) tree copy is kept",
            sqlglot_core.Expression.__slots__,
            _TREE_FIELDS,
        )
    _installed = True
