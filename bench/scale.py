"""`make bench`, scale: many objects landing at once, through the whole path, to every run's end.

Each burst puts export files (10 rows each) under one or more pipelines' landing prefixes together. Each
Object Created event goes through the rule, the SQS buffer and on_arrival (which routes it to its pipeline
by prefix and batches as the pipeline file says, with the local 1 s window), which starts the runs; every
run is followed to its end. Figures: runs started per pipeline, wall time from the first put to the last
run's end, peak memory of the whole local cloud (this process, its Lambda workers and Glue job processes,
sampled every 0.1 s), and the rows accounted from the data the runs wrote: duplicates and losses must be 0.

The three-pipeline burst deploys the project with a third pipeline added as a user adds one
(`bench/pipelines/partners.yaml`: partner exports through the customers jobs and crawlers, so its runs
share crawler leases with the customers runs), next to customers and orders.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import TreeMemory, goal_table
from gluerelay.local.audit import account
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.runs import carries_rows, land, rows_landed, runs_taking
from gluerelay.pipelines.project import extended

ROWS_PER_FILE = 10
PARTNERS = Path(__file__).resolve().parent / "pipelines" / "partners.yaml"


@dataclass(frozen=True)
class Landing:
    pipeline: str
    files: int  # export files; an orders export is two objects (its lines and its headers)
    sample: str  # whose sample data it lands (partners land customers exports)


BURSTS: tuple[tuple[Landing, ...], ...] = (
    (Landing("customers", 50, "customers"),),
    (Landing("customers", 200, "customers"),),
    (
        Landing("customers", 100, "customers"),
        Landing("orders", 49, "orders"),  # 50 objects: the headers file and 49 lines files
        Landing("partners", 100, "customers"),
    ),
)


def burst(landings: tuple[Landing, ...]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gluerelay-bench-") as scratch:
        template = None
        if any(landing.pipeline == "partners" for landing in landings):
            template = extended(Path(scratch), pipelines=[PARTNERS]).template_path
        options = CloudOptions(template=template) if template else CloudOptions()
        with TreeMemory() as memory, LocalCloud(options) as cloud:
            return _burst(cloud, memory, landings)


def _burst(cloud: LocalCloud, memory: TreeMemory, landings: tuple[Landing, ...]) -> dict[str, Any]:
    began, began_at = time.monotonic(), time.time()
    rows_in, keys, objects = 0, [], {}
    for index, landing in enumerate(landings):
        rows, seed = landing.files * ROWS_PER_FILE, 100 + index
        landed_keys = land(
            cloud, rows=rows, files=landing.files, seed=seed, pipeline=landing.pipeline, sample=landing.sample
        )
        keys += landed_keys
        objects[landing.pipeline] = len(landed_keys)
        rows_in += rows_landed(landing.sample, rows=rows, seed=seed)
    landed = time.monotonic() - began
    # The runs that took the objects, from their manifests: every landed object must be in one.
    seen = {run_id: manifest.pipeline for run_id, manifest in runs_taking(cloud, keys, timeout=600).items()}
    ended = [cloud.wait_for_execution(cloud.execution_arn(run_id), timeout=1800) for run_id in sorted(seen)]
    statuses = [e["status"] for e in ended]
    wall = max(e["stopDate"].timestamp() for e in ended) - began_at  # to the last run's end
    figures = account(cloud, seen, rows_in=rows_in, carries_rows=carries_rows)
    result = {
        "landings": [{"pipeline": p, "objects": n} for p, n in objects.items()],
        "arrivals": len(keys),
        "rows": rows_in,
        "runs_started": len(seen),
        "runs_by_pipeline": dict(sorted(Counter(seen.values()).items())),
        "succeeded": statuses.count("SUCCEEDED"),
        "landed_seconds": round(landed, 2),
        "wall_seconds": round(wall, 2),
        "peak_memory_mib": round(memory.peak_mib),
        "rows_out": figures.rows_out,
        "duplicates": figures.duplicates,
        "lost": figures.lost,
        "objects_in_two_runs": figures.objects_in_two_runs,
        "stuck": figures.stuck,
    }
    print(
        f"{_label(result)}: {len(seen)} runs, {wall:.1f} s, {memory.peak_mib:.0f} MiB, "
        f"{figures.duplicates} duplicates, {figures.lost} lost",
        flush=True,
    )
    return result


def _label(burst_result: dict[str, Any]) -> str:
    return " + ".join(f"{x['objects']} {x['pipeline']}" for x in burst_result["landings"])


def run() -> dict[str, Any]:
    return {"bursts": [burst(landings) for landings in BURSTS]}


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Scale: concurrent arrivals",
        "",
        f"Bursts of export files ({ROWS_PER_FILE} rows each) put under one or more pipelines' landing "
        "prefixes at once, in a fresh local cloud each: every Object Created event goes through the rule, "
        "the SQS buffer and on_arrival, which routes it to its pipeline by prefix and batches it (batch "
        "size 100 in every pipeline file, the local 1 s batching window) into runs; every run is followed "
        "to its end. Wall time runs from the first put to the last run's end; peak memory is the whole local "
        "cloud's (this process, its Lambda workers and Glue job processes), sampled every 0.1 s. Rows are "
        "accounted from the Parquet the runs wrote plus job 2's dedup count. The three-pipeline burst adds "
        "a third pipeline to the project as a user would (`bench/pipelines/partners.yaml`: partner exports "
        "through the customers jobs and crawlers, sharing their crawler leases). An orders export is one "
        "headers file and lines files (50 objects here, one run's batch_size): rows in are the lines, "
        "counted from the files; lines whose run did not get their headers would be quarantined as "
        "unknown_order, still accounted.",
        "",
        "| landed | runs started | succeeded | landed in s | wall s | peak memory MiB | rows in | "
        "rows out | duplicates | lost |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in result["bursts"]:
        runs = ", ".join(f"{n} {p}" for p, n in b["runs_by_pipeline"].items())
        lines.append(
            f"| {_label(b)} | {runs} | {b['succeeded']} | {b['landed_seconds']:.1f} | "
            f"{b['wall_seconds']:.1f} | {b['peak_memory_mib']} | {b['rows']} | {b['rows_out']} | "
            f"{b['duplicates']} | {b['lost']} |"
        )
    checks = [
        (
            f"duplicates and losses, {_label(b)}",
            f"{b['duplicates']} and {b['lost']}",
            "0 and 0",
            b["duplicates"] == 0 and b["lost"] == 0 and b["objects_in_two_runs"] == 0 and b["stuck"] == 0,
        )
        for b in result["bursts"]
        if b["arrivals"] >= 200
    ]
    return lines + goal_table(checks)
