"""`make bench`, data plane: the Glue jobs against the machine's floor, measured side by side.

Each measurement is a fresh child process: the whole cost a job run pays locally, including Python start,
imports and engine start. Peak memory is the child's maximum resident set (``os.wait4``). Contenders are
interleaved within each repetition so load on the machine affects them alike; the report gives medians.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.measure import Sample, goal_table, measure
from gluerelay import datagen
from gluerelay.glue.jobrun import script_path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".gluerelay" / "bench"
RESULTS = ROOT / "bench" / "results" / "latest.json"
REPORT = ROOT / "BENCHMARKS.md"
INGEST_DATE = "2026-01-01"
SPARK_ENV = {"ETL_ENGINE": "pyspark", "SPARK_LOCAL_IP": "127.0.0.1"}
GOALS = {"job2_rows_per_second": 500_000, "job2_vs_duckdb_ratio": 2.0, "job2_peak_rss_mib": 1024}


@dataclass
class Contender:
    name: str
    what: str
    samples: list[Sample]

    @property
    def median_seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_rss_mib(self) -> float:
        return max(s.peak_rss_mib for s in self.samples)


def same_work(job2_summary: dict[str, Any], reference_outcomes: dict[str, int]) -> None:
    """Refuse a comparison between different work: the reference must classify every row as job 2 did."""
    job2_outcomes = {
        "written": job2_summary["rows_written"],
        "duplicate": job2_summary["duplicates_removed"],
        **job2_summary["quarantined_by_reason"],
    }
    job2_outcomes = {k: v for k, v in job2_outcomes.items() if v}
    if job2_outcomes != reference_outcomes:
        raise RuntimeError(
            f"the DuckDB SQL reference disagrees with job 2: {reference_outcomes} != {job2_outcomes}"
        )


def prepare(rows: int) -> tuple[Path, Path]:
    """The landed file and, after one job 1 run, the raw partition job 2 reads."""
    landed = WORK / "landing" / f"customers-{rows}.csv"
    if not landed.is_file():
        print(f"generating {rows:,} rows → {landed}", flush=True)
        datagen.write(landed, datagen.generate_rows(rows, seed=1), "csv")
    return landed, WORK / "bucket" / "raw" / "customers" / f"ingest_date={INGEST_DATE}" / "run_id=bench"


def job_argv(job: str, arguments: dict[str, str]) -> list[str]:
    argv = [sys.executable, "-m", "gluerelay.glue.runner", str(script_path(job)), "--JOB_NAME", job]
    for key, value in arguments.items():
        argv += [f"--{key}", value]
    return argv


def pyspark_available() -> str | None:
    """Why PySpark parity cannot be measured here, or None when it can (Java and the spark extra)."""
    if shutil.which("java") is None:
        return "no Java on this machine"
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed (make test-spark installs it)"
    return None


def run(rows: int, repeat: int) -> dict[str, Any]:
    shutil.rmtree(WORK / "bucket", ignore_errors=True)
    landed, raw = prepare(rows)
    bucket = WORK / "bucket"
    common = {
        "run_id": "bench",
        "summary_path": str(bucket / "summaries"),
        "ingest_date": INGEST_DATE,
        "raw_path": str(bucket / "raw" / "customers"),
    }
    job1 = job_argv("extract_customers", common | {"source": "s3", "input_uris": str(landed)})
    job2 = job_argv(
        "cleanse_customers",
        common
        | {
            "cleansed_path": str(bucket / "cleansed" / "customers"),
            "quarantine_path": str(bucket / "quarantine" / "customers"),
        },
    )
    # The same job 2 on PySpark 3.5 (the parity engine), into its own outputs.
    spark_job2 = job_argv(
        "cleanse_customers",
        common
        | {
            "summary_path": str(bucket / "pyspark" / "summaries"),
            "cleansed_path": str(bucket / "pyspark" / "cleansed" / "customers"),
            "quarantine_path": str(bucket / "pyspark" / "quarantine" / "customers"),
        },
    )
    spark_missing = pyspark_available()
    duck = [sys.executable, "-m", "bench.duckdb_cleanse", str(raw), str(WORK / "duckdb-out"), INGEST_DATE]
    arrow = [sys.executable, "-m", "bench.arrow_copy", str(raw), str(WORK / "arrow-out")]
    startup = [sys.executable, "-c", "from gluerelay.glue import engine; engine.session()"]
    contenders = {
        "job1": Contender("job 1 extract_customers (sqlframe/DuckDB)", "landed CSV → raw CSV + lineage", []),
        "job2": Contender("job 2 cleanse_customers (sqlframe/DuckDB)", "the Glue script, unmodified", []),
        "duckdb": Contender("job 2 transform, hand-written DuckDB SQL", "same rules and outputs", []),
        "arrow": Contender("pyarrow CSV → Parquet copy", "I/O floor, no transform", []),
        "startup": Contender("local engine start-up", "Python, imports, DuckDB and httpfs; no data", []),
    }
    if spark_missing is None:
        contenders["pyspark"] = Contender(
            "job 2 cleanse_customers (PySpark 3.5, local[*])", "parity engine, same script", []
        )
    for attempt in range(repeat):
        for key, argv in (
            ("job1", job1),
            ("job2", job2),
            ("duckdb", duck),
            ("arrow", arrow),
            ("startup", startup),
            *([("pyspark", spark_job2)] if spark_missing is None else []),
        ):
            sample, printed = measure(argv, SPARK_ENV if key == "pyspark" else None)
            contenders[key].samples.append(sample)
            if key == "duckdb":
                reference_outcomes = json.loads(printed)
            print(
                f"[{attempt + 1}/{repeat}] {key:7s} {sample.seconds:6.2f}s {sample.peak_rss_mib:7.0f} MiB",
                flush=True,
            )
    summary = json.loads((bucket / "summaries" / "bench" / "cleanse_customers.json").read_text())
    same_work(summary, reference_outcomes)
    parity: dict[str, Any] = {"measured": spark_missing is None, "why_not": spark_missing}
    if spark_missing is None:
        spark_summary = json.loads(
            (bucket / "pyspark" / "summaries" / "bench" / "cleanse_customers.json").read_text()
        )
        figures_of = ("rows_read", "rows_written", "rows_quarantined", "duplicates_removed")
        parity |= {
            "same_counts": all(spark_summary[k] == summary[k] for k in figures_of),
            "summary": {k: spark_summary[k] for k in figures_of},
            "vs_sqlframe_ratio": round(
                contenders["pyspark"].median_seconds / contenders["job2"].median_seconds, 2
            ),
        }
    # From the medians as recorded (3 decimals), so the report's tables agree with each other.
    job2_s, duck_s, arrow_s, startup_s = (
        round(contenders[k].median_seconds, 3) for k in ("job2", "duckdb", "arrow", "startup")
    )
    figures = {
        "rows": rows,
        "job1_rows_per_second": round(rows / round(contenders["job1"].median_seconds, 3)),
        "job2_rows_per_second": round(rows / job2_s),
        "job2_rows_per_second_after_startup": round(rows / (job2_s - startup_s)),
        "duckdb_rows_per_second": round(rows / duck_s),
        "job2_vs_duckdb_ratio": round(job2_s / duck_s, 2),
        "job2_vs_io_floor_ratio": round(job2_s / arrow_s, 2),
        "job2_peak_rss_mib": round(contenders["job2"].peak_rss_mib),
        "job2_summary": {
            k: summary[k] for k in ("rows_read", "rows_written", "rows_quarantined", "duplicates_removed")
        },
    }
    return {
        "repeat": repeat,
        "contenders": {
            k: {
                **asdict(c),
                "median_seconds": round(c.median_seconds, 3),
                "peak_rss_mib": round(c.peak_rss_mib),
            }
            for k, c in contenders.items()
        },
        "figures": figures,
        "pyspark_parity": parity,
        "goals": GOALS,
    }


def run_sizes(sizes: list[int], repeat: int) -> dict[str, Any]:
    return {"sizes": [run(rows, repeat) for rows in sizes]}


def render(result: dict[str, Any]) -> list[str]:
    lines = ["## Data plane: job 2 against the machine's floor", ""]
    for size in result.get("sizes", [result]):  # results saved before 100k rows were measured: one size
        lines += render_size(size)
    return lines


def pyspark_line(parity: dict[str, Any]) -> str:
    if not parity["measured"]:
        return f"PySpark parity: not measured ({parity['why_not']})."
    same = "the same" if parity["same_counts"] else "DIFFERENT"
    return (
        f"PySpark parity: the same job 2 script on PySpark 3.5 (local[*], Java 17) took "
        f"{parity['vs_sqlframe_ratio']}x the default engine's time and gave {same} row counts: "
        f"{json.dumps(parity['summary'])}."
    )


def render_size(result: dict[str, Any]) -> list[str]:
    contenders, figures = result["contenders"], result["figures"]
    rows = int(figures["rows"])
    lines = [
        f"### {rows:,} rows",
        "",
        f"Input: {rows:,} generated dirty customer rows (`gluerelay generate`, seed 1) as raw CSV. "
        f"Each figure is the median of {result['repeat']} runs, each a fresh process "
        "(Python start, imports and engine start included), the contenders interleaved within each "
        "repetition. Peak RSS is the largest of the runs.",
        "",
        "| contender | what | median s | rows/s | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
    ]
    for key, contender in contenders.items():
        seconds = float(contender["median_seconds"])
        rate = "n/a" if key == "startup" else f"{rows / seconds:,.0f}"
        lines.append(
            f"| {contender['name']} | {contender['what']} | {seconds:.2f} | {rate} | "
            f"{contender['peak_rss_mib']} |"
        )
    goals = GOALS
    checks = [
        (
            "job 2 throughput",
            f"{figures['job2_rows_per_second']:,} rows/s",
            f"≥ {goals['job2_rows_per_second']:,}",
            float(figures["job2_rows_per_second"]) >= goals["job2_rows_per_second"],
        ),
        (
            "job 2 ÷ hand-written DuckDB",
            f"{figures['job2_vs_duckdb_ratio']}x",
            f"≤ {goals['job2_vs_duckdb_ratio']}x",
            float(figures["job2_vs_duckdb_ratio"]) <= goals["job2_vs_duckdb_ratio"],
        ),
        (
            "job 2 peak memory",
            f"{figures['job2_peak_rss_mib']} MiB",
            f"< {goals['job2_peak_rss_mib']} MiB",
            float(figures["job2_peak_rss_mib"]) < goals["job2_peak_rss_mib"],
        ),
    ]
    lines += [
        *goal_table(checks),
        f"Job 2 ÷ the pyarrow CSV→Parquet copy (the I/O floor): {figures['job2_vs_io_floor_ratio']}x. "
        f"Job 1 (landed CSV → raw CSV): {figures['job1_rows_per_second']:,} rows/s.",
        "",
        f"Job 2's own summary for this input: {json.dumps(figures['job2_summary'])}.",
        "",
        pyspark_line(result.get("pyspark_parity", {"measured": False, "why_not": "not measured then"})),
        "",
        "Reading the goals:",
        "",
        f"The same rules hand-written in DuckDB SQL run at {figures['duckdb_rows_per_second']:,} rows/s. "
        + (
            "That is itself below the throughput goal: the cost is in the rules and the machine "
            "(2 cores), not in the DataFrame layer, which adds "
            f"{(figures['job2_vs_duckdb_ratio'] - 1) * 100:.0f}%. "
            if figures["duckdb_rows_per_second"] < goals["job2_rows_per_second"]
            and figures["job2_vs_duckdb_ratio"] <= goals["job2_vs_duckdb_ratio"]
            else "At this size job 2's fixed costs dominate (process and engine start-up, sqlframe "
            "building its SQL, the catalog and summary writes), which the hand-written SQL mostly skips; "
            "the goals are set for 1,000,000 rows. "
        )
        + "Compared with the research prototype behind the goal, job 2 also trims every value with a "
        "whitespace regex, accepts three date formats, normalises phones to E.164 for 16 countries, gives "
        "every rejected row a reason and keeps its raw values, and breaks dedup ties on every column "
        "(a sort over 8 keys). "
        f"Without the {contenders['startup']['median_seconds']:.2f} s of process and engine start-up "
        f"(measured above), job 2 runs at {figures['job2_rows_per_second_after_startup']:,} rows/s. "
        "DuckDB is capped at the local engine's memory limit (`GLUERELAY_ENGINE_MEMORY_LIMIT`, default "
        "512MB) and spills past it, for both job 2 and the SQL reference.",
        "",
    ]
    return lines
