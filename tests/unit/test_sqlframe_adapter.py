"""Each adaptation of sqlframe/DuckDB to Spark's behaviour (gluerelay/glue/sqlframe_adapter.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gluerelay.glue import engine
from gluerelay.glue.sqlframe_adapter import UnsupportedOptionError

pytestmark = pytest.mark.skipif(
    engine.selected_engine() != "sqlframe", reason="adapts the sqlframe engine only"
)


def test_csv_without_schema_reads_every_column_as_text_as_spark_does(spark: Any, tmp_path: Path) -> None:
    # Given a CSV whose values DuckDB would infer as numbers and timestamps
    (tmp_path / "a.csv").write_text("id,at,amount\n007,2024-01-02T03:04:05Z,1.50\n")
    # When read like Spark reads it (header, no schema, no inferSchema)
    row = spark.read.option("header", "true").csv(str(tmp_path / "a.csv")).collect()[0]
    # Then the text is exactly what the file holds
    assert row.asDict() == {"id": "007", "at": "2024-01-02T03:04:05Z", "amount": "1.50"}


def test_reading_a_folder_skips_success_markers_and_adds_no_partition_columns(
    spark: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "ingest_date=2026-01-01" / "run_id=r1"
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_text("a\n1\n")
    (folder / "part-1.csv").write_text("a\n2\n")
    (folder / "_SUCCESS").write_text("")
    df = spark.read.option("header", "true").csv(str(folder))
    assert df.columns == ["a"]
    assert sorted(r["a"] for r in df.collect()) == ["1", "2"]


def test_reading_a_missing_path_fails_in_sparks_words(spark: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"PATH_NOT_FOUND.*nowhere"):
        spark.read.csv(str(tmp_path / "nowhere"))


def test_json_primitives_as_strings_keep_their_text(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 7, "at": "2024-01-02T03:04:05Z"}\n{"id": 8, "extra": true}\n')
    rows = spark.read.json(str(tmp_path / "a.jsonl"), primitivesAsString=True).collect()
    assert [r.asDict() for r in rows] == [
        {"id": "7", "at": "2024-01-02T03:04:05Z", "extra": None},
        {"id": "8", "at": None, "extra": "true"},
    ]


def test_unknown_reader_options_are_refused_not_ignored(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a\n1\n")
    with pytest.raises(UnsupportedOptionError, match="columnNameOfCorruptRecord"):
        spark.read.option("columnNameOfCorruptRecord", "_bad").csv(str(tmp_path / "a.csv"))


def test_strict_read_options_are_honoured_and_lenient_ones_refused(spark: Any, tmp_path: Path) -> None:
    """Spark's charset names and FAILFAST work; what DuckDB cannot do (another charset, a PERMISSIVE JSON
    read that would null a malformed line) is refused rather than read differently."""
    (tmp_path / "a.csv").write_text("a,b\n1,é\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n', encoding="utf-8")
    strict = spark.read.options(header="true", sep=",", encoding="UTF-8", mode="FAILFAST")
    assert [tuple(r) for r in strict.csv(str(tmp_path / "a.csv")).collect()] == [("1", "é")]
    json_rows = spark.read.options(mode="FAILFAST", primitivesAsString="true").json(str(tmp_path / "a.jsonl"))
    assert [r["a"] for r in json_rows.collect()] == ["1"]
    with pytest.raises(UnsupportedOptionError, match="encoding 'windows-1252'"):
        spark.read.options(header="true", encoding="windows-1252").csv(str(tmp_path / "a.csv"))
    with pytest.raises(UnsupportedOptionError, match="JSON read mode 'PERMISSIVE'"):
        spark.read.options(mode="PERMISSIVE").json(str(tmp_path / "a.jsonl"))


def test_writes_follow_spark_save_modes(spark: Any, tmp_path: Path) -> None:
    target = str(tmp_path / "out")
    first = spark.createDataFrame([("1",)], "a STRING")
    second = spark.createDataFrame([("2",), ("3",)], "a STRING")
    first.write.parquet(target)
    with pytest.raises(FileExistsError, match="PATH_ALREADY_EXISTS"):
        second.write.parquet(target)
    second.write.mode("ignore").parquet(target)
    assert [r["a"] for r in spark.read.parquet(target).collect()] == ["1"]
    second.write.mode("overwrite").parquet(target)
    assert sorted(r["a"] for r in spark.read.parquet(target).collect()) == ["2", "3"]
    first.write.mode("append").parquet(target)
    assert sorted(r["a"] for r in spark.read.parquet(target).collect()) == ["1", "2", "3"]
    assert all(p.name.startswith("part-") for p in (tmp_path / "out").iterdir())


def test_csv_writes_keep_whitespace_and_quote_rfc4180(spark: Any, tmp_path: Path) -> None:
    df = spark.createDataFrame([(" a ", 'say "hi"')], "x STRING, y STRING")
    df.write.options(
        header="true",
        quote='"',
        escape='"',
        ignoreLeadingWhiteSpace="false",
        ignoreTrailingWhiteSpace="false",
    ).csv(str(tmp_path / "out"))
    (written,) = list((tmp_path / "out").glob("*.csv"))
    assert written.read_text() == 'x,y\n a ,"say ""hi"""\n'


def test_partitioned_writes_make_hive_folders(spark: Any, tmp_path: Path) -> None:
    df = spark.createDataFrame([("1", "d1"), ("2", "d2")], "a STRING, day STRING")
    df.write.mode("overwrite").partitionBy("day").parquet(str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["day=d1", "day=d2"]


def test_cache_materialises_the_frame(spark: Any) -> None:
    df = spark.createDataFrame([("1",)], "a STRING")
    cached = df.cache()
    assert "_gluerelay_cache_" in cached.sql(), "later actions read the materialised table"
    assert cached.collect()[0]["a"] == "1"


def test_union_by_name_keeps_sparks_semantics(spark: Any) -> None:
    left = spark.createDataFrame([("1", "x")], "a STRING, b STRING")
    right = spark.createDataFrame([("y", "2", "z")], "b STRING, a STRING, c STRING")
    merged = left.unionByName(right, allowMissingColumns=True)
    assert merged.columns == ["a", "b", "c"], "left's columns first, then the new ones, as in Spark"
    rows = sorted(tuple(r) for r in merged.collect())
    assert rows == [("1", "x", None), ("2", "y", "z")]
    positional = left.union(spark.createDataFrame([("3", "w")], "b STRING, a STRING"))
    assert sorted(tuple(r) for r in positional.collect()) == [("1", "x"), ("3", "w")]


def test_a_chain_of_unions_stays_small(spark: Any) -> None:
    # sqlframe copies both sides' expression trees at every union: folding 40 frames took 53 s.
    # Each union's result reads a view, so the query of the hundredth union is as small as the first's.
    frames = [spark.createDataFrame([(str(i),)], "a STRING").cache() for i in range(100)]
    combined = frames[0].unionByName(frames[1])
    first_size = len(combined.sql())
    for frame in frames[2:]:
        combined = combined.unionByName(frame, allowMissingColumns=True)
    assert "_gluerelay_union_" in combined.sql()
    assert len(combined.sql()) <= 2 * first_size, "the query does not grow with the chain"
    assert sorted(int(r["a"]) for r in combined.collect()) == list(range(100))


def test_spark_only_settings_are_accepted_and_remembered(spark: Any) -> None:
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    assert spark.conf.get("spark.sql.legacy.timeParserPolicy") == "CORRECTED"
    with pytest.raises(NotImplementedError):
        spark.conf.set("spark.some.unknown.setting", "1")


ROOT = Path(__file__).resolve().parents[2]  # the probe imports this checkout's gluerelay
SPILL_PROBE = """
from pathlib import Path
from gluerelay.glue import engine
spark = engine.session()
[(folder,)] = spark._conn.execute("SELECT current_setting('temp_directory')").fetchall()
print(folder, Path(folder).is_dir(), flush=True)
"""


def test_each_job_process_spills_to_a_folder_of_its_own_removed_when_it_ends() -> None:
    """DuckDB names spill files without a process id: two job runs sharing a folder could clash."""
    env = {**os.environ, "ETL_ENGINE": "sqlframe"}
    seen = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", SPILL_PROBE],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        folder, existed = done.stdout.split()
        seen.append(folder)
        assert existed == "True"
        assert not Path(folder).exists(), "the spill folder outlived its process"
    assert seen[0] != seen[1]


def test_input_file_name_names_each_rows_file(spark: Any, tmp_path: Path) -> None:
    """sqlframe's own gives the list of every path read, alike on every row."""
    for name, ids in (("a.csv", "1\n2\n"), ("b.csv", "3\n")):
        (tmp_path / name).write_text("id\n" + ids)
    frame = spark.read.option("header", "true").csv([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    from pyspark.sql import functions as F  # noqa: N812 - as scripts spell it (the engine must be up first)

    rows = frame.select("*", F.input_file_name().alias("file")).collect()
    assert sorted((r["id"], r["file"]) for r in rows) == [
        ("1", f"file://{tmp_path}/a.csv"),
        ("2", f"file://{tmp_path}/a.csv"),
        ("3", f"file://{tmp_path}/b.csv"),
    ], "a local file is named by its file:// URI, as Spark names it"
    named = frame.select(F.regexp_extract(F.input_file_name(), r"[^/]*$", 0).alias("name"), "id")
    assert named.columns == ["name", "id"]
    assert sorted((r["name"], r["id"]) for r in named.collect()) == [
        ("a.csv", "1"),
        ("a.csv", "2"),
        ("b.csv", "3"),
    ]


def test_input_file_name_away_from_a_read_is_refused_not_wrong(spark: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F  # noqa: N812 - as scripts spell it (the engine must be up first)

    (tmp_path / "a.csv").write_text("id,filename\n1,x\n")
    frame = spark.read.option("header", "true").csv(str(tmp_path / "a.csv"))
    with pytest.raises(UnsupportedOptionError, match="only in a select directly on a frame read"):
        frame.filter(F.col("id") == "1").select(F.input_file_name())
    with pytest.raises(UnsupportedOptionError, match="column named 'filename'"):
        frame.select(F.input_file_name())


PROBE_IMPORTS = """
import sys
from gluerelay.glue import engine
spark = engine.session()
from pyspark.sql import functions as F
spark.conf.set("spark.sql.session.timeZone", "UTC")
spark.read.option("header", "true").csv(sys.argv[1]).select(F.upper("v")).collect()
zone = spark.conf.get("spark.sql.session.timeZone")
[(httpfs,)] = spark._conn.execute(
    "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
).fetchall()
print(zone, *(name in sys.modules for name in ("pandas", "sqlglot.dialects.tsql", "numpy", "boto3")), httpfs)
"""


def test_the_engine_starts_without_what_a_local_read_does_not_need(tmp_path: Path) -> None:
    """What a job reading local files does not need is not loaded: setting the time zone through a bound
    parameter made DuckDB import pandas, sqlframe's dialect lookup imported every sqlglot dialect, its
    SOUNDEX registration imported numpy, the storage module boto3, and httpfs was loaded up front (about
    0.65 s of every local job run's start together; sqlframe's createDataFrame imports pandas itself)."""
    (tmp_path / "v.csv").write_text("v\na\n")
    done = subprocess.run(
        [sys.executable, "-c", PROBE_IMPORTS, str(tmp_path / "v.csv")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ETL_ENGINE": "sqlframe"},
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["UTC", "False", "False", "False", "False", "False"]


def test_soundex_is_registered_when_a_statement_first_calls_it(spark: Any) -> None:
    """SOUNDEX is sqlframe's Python function, registered on first use instead of at session start."""
    from pyspark.sql import functions as F  # noqa: N812 - as scripts spell it

    frame = spark.createDataFrame([("Robert",), ("Tymczak",), (None,)], ["name"])
    codes = [row["code"] for row in frame.select(F.soundex("name").alias("code")).collect()]
    assert codes == ["R163", "T522", None]  # Spark's codes; NULL stays NULL
    assert spark.sql("SELECT soundex('Ashcraft') AS code").collect()[0]["code"] == "A261"


def _nodes(tree: Any) -> list[Any]:
    from sqlglot.expressions import core

    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        for value in node.args.values():
            if isinstance(value, core.Expr):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(item for item in value if isinstance(item, core.Expr))
    return found


def test_a_tree_copy_is_sqlglots_copy_node_for_node(spark: Any) -> None:
    """The adapter's faster tree copy against sqlglot's own, on a sqlframe plan (names and ids in each
    node's metadata, a window, CTEs) and on parsed SQL with comments, types and cached hashes."""
    import sqlglot
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - as scripts spell it
    from sqlglot.expressions import core

    from gluerelay.glue import sqlframe_adapter

    frame = spark.createDataFrame([(1, "a")], ["x", "y"])
    latest = Window.partitionBy("y").orderBy(F.col("x").desc())
    plan = (
        frame.select("x", F.trim("y").alias("z"), F.row_number().over(latest).alias("r"))
        .filter(F.col("r") == 1)
        .select("x", F.upper("z").alias("u"))
        .expression
    )
    parsed = sqlglot.parse_one(
        "WITH a AS (SELECT 1 AS x /* note */) SELECT CAST(x AS INT), ARRAY(1, 2) FROM a "
        "JOIN b ON a.x = b.x WHERE x IN (1, 2) QUALIFY ROW_NUMBER() OVER (PARTITION BY x ORDER BY y) = 1"
    )
    hashed = parsed.copy()
    hash(hashed)
    trees: list[Any] = [plan, parsed, hashed]
    for tree in trees:
        expected = sqlframe_adapter._sqlglot_copy_tree(tree, {})
        copied = tree.copy()
        assert core.Expression.__deepcopy__ is sqlframe_adapter._copy_tree
        assert copied.sql() == expected.sql() == tree.sql()
        pairs = list(zip(_nodes(copied), _nodes(expected), _nodes(tree), strict=True))
        assert any(node._meta for node, _, _ in pairs) or tree is not plan
        for node, twin, original in pairs:
            assert node is not original
            assert node._meta is None or node._meta is not original._meta
            assert type(node) is type(twin)
            assert (node.arg_key, node.index, node.comments, node._meta, node._hash) == (
                twin.arg_key,
                twin.index,
                twin.comments,
                twin._meta,
                twin._hash,
            )
            assert node.parent is None if twin.parent is None else type(node.parent) is type(twin.parent)
            assert node._type == twin._type
            assert node.parent is None or any(child is node for child in _nodes(node.parent)[1:])


ENDING_SCRIPT = """
import sys
from pyspark.context import SparkContext
spark = SparkContext.getOrCreate().spark_session
[(folder,)] = spark._conn.execute("SELECT current_setting('temp_directory')").fetchall()
print(folder, flush=False)  # left in the buffer: the runner must flush it before the process ends
if sys.argv[1:] == ["--fail", "yes"]:
    raise ValueError("the script failed")
"""


@pytest.mark.parametrize(("argv", "code"), [([], 0), (["--fail", "yes"], 1)])
def test_a_job_process_ends_with_its_outcome_output_flushed_and_spill_folder_removed(
    tmp_path: Path, argv: list[str], code: int
) -> None:
    script = tmp_path / "job.py"
    script.write_text(ENDING_SCRIPT)
    result = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "gluerelay.glue.runner", str(script), *argv],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Buffered output, as a job process has unless PYTHONUNBUFFERED is set.
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
            "ETL_ENGINE": "sqlframe",
            "GLUERELAY_JOB_RESULT": str(result),
        },
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    folder = Path(done.stdout.strip())
    assert folder.name.startswith("gluerelay-duckdb-")
    assert not folder.exists(), "the spill folder outlived its process"
    assert ("ValueError: the script failed" in result.read_text()) == (code == 1)


def test_a_frame_copy_copies_what_it_keeps_and_takes_what_it_is_given(spark: Any) -> None:
    """A frame's copy owns every attribute it keeps (sqlframe's contract: frames never share a tree);
    what the caller passes replaces the attribute without a copy made first and dropped."""
    from pyspark.sql import functions as F  # noqa: N812 - as scripts spell it

    frame = spark.createDataFrame([(1, "a")], ["x", "y"]).select("x", F.upper("y").alias("u"))
    twin = frame.copy()
    assert twin.expression is not frame.expression
    assert twin.expression.sql() == frame.expression.sql()
    assert twin.pending_hints is not frame.pending_hints
    assert twin.join_on_uuid != frame.join_on_uuid
    given = frame.expression.where("x = 1")
    assert frame.copy(expression=given).expression is given
    assert frame.filter(F.col("x") == 1).collect() == [(1, "A")]
    assert frame.collect() == [(1, "A")]


def _plans(spark: Any) -> list[Any]:
    """Frames whose plans go through every path of turning a query into a CTE: staged selects, a filter,
    a window, a join (alias names carried to the wrapper), an aggregate, a self-join through aliases."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - as scripts spell it

    frame = spark.createDataFrame([(1, " a", "x"), (2, "b ", "y"), (3, "c", "x")], ["id", "name", "kind"])
    latest = Window.partitionBy("kind").orderBy(F.col("id").desc())
    staged = frame.select("id", F.trim("name").alias("name"), "kind")
    staged = staged.select("id", "name", "kind", F.upper("name").alias("upper"))
    staged = staged.filter(F.col("id") > 1).select(
        "id", "upper", "kind", F.row_number().over(latest).alias("n")
    )
    joined = staged.join(frame.select("id", F.col("kind").alias("k2")), on="id").select(
        "id", "upper", "k2", "n"
    )
    grouped = joined.groupBy("k2").agg(F.count("*").alias("c"))
    pair = frame.alias("a").join(frame.alias("b"), F.col("a.id") == F.col("b.id"))
    return [staged, joined, grouped, pair.select(F.col("a.name"), F.col("b.kind"))]


def _normalised(sql: str) -> str:
    """A plan's SQL with the names that differ between two builds of it (hashes of generated names,
    VALUES aliases, random tie-breaking literals) numbered in order of appearance."""
    import re

    seen: dict[str, str] = {}
    return re.sub(r"`[ta]\d+`|'[0-9a-f]{32}'", lambda m: seen.setdefault(m.group(0), f"<{len(seen)}>"), sql)


def test_turning_a_query_into_a_cte_builds_sqlframes_plan(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapter's _convert_leaf_to_cte (fewer whole-chain copies) against sqlframe's own: the same SQL
    and the same rows for every kind of plan."""
    from sqlframe.base.dataframe import BaseDataFrame
    from sqlframe.duckdb.dataframe import DuckDBDataFrame

    from gluerelay.glue import sqlframe_adapter

    assert DuckDBDataFrame._convert_leaf_to_cte is sqlframe_adapter._convert_leaf_to_cte
    ours = [(_normalised(f.sql(optimize=False)), sorted(map(tuple, f.collect()))) for f in _plans(spark)]
    monkeypatch.setattr(DuckDBDataFrame, "_convert_leaf_to_cte", BaseDataFrame._convert_leaf_to_cte)
    theirs = [(_normalised(f.sql(optimize=False)), sorted(map(tuple, f.collect()))) for f in _plans(spark)]
    assert ours == theirs
    assert [len(rows) for _, rows in ours] == [2, 2, 2, 3]
