"""`make bench`, scale: many objects landing at once, through the whole path, to every run's end.

N export files (10 rows each) are put into landing/ together, as a burst. Each Object Created event goes
through the rule, the SQS buffer and on_arrival (batching as the template says, with the local 1 s window),
which starts the runs; every run is followed to its end. Figures: runs started, wall time from the first put
to the last run's end, peak memory of the whole local cloud (this process, its Lambda workers and Glue job
processes, sampled every 0.1 s), and the rows accounted from the data the runs wrote: duplicates and
losses must be 0.
"""

from __future__ import annotations

import time
from typing import Any

from bench.measure import TreeMemory, goal_table
from gluerelay.local.audit import account
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.runs import land

ARRIVALS = (50, 200)
ROWS_PER_FILE = 10


def burst(arrivals: int) -> dict[str, Any]:
    with TreeMemory() as memory, LocalCloud(CloudOptions()) as cloud:
        known = {e["executionArn"] for e in cloud.executions()}
        began, began_at = time.monotonic(), time.time()
        land(cloud, rows=arrivals * ROWS_PER_FILE, files=arrivals, seed=arrivals)
        landed = time.monotonic() - began
        cloud.wait_for_new_executions(1, known, timeout=120)
        # Runs keep starting while batches drain: follow until none starts for two windows.
        window = float(cloud.template.parameters.get("ArrivalBatchingWindowSeconds", "0"))
        seen: set[str] = set()
        while True:
            started = {e["executionArn"] for e in cloud.executions()} - known
            if started == seen:
                break
            seen = started
            time.sleep(2 * window + 1)
        ended = [cloud.wait_for_execution(arn, timeout=900) for arn in sorted(seen)]
        statuses = [e["status"] for e in ended]
        wall = max(e["stopDate"].timestamp() for e in ended) - began_at  # to the last run's end
        figures = account(cloud, [arn.rsplit(":", 1)[1] for arn in seen], rows_in=arrivals * ROWS_PER_FILE)
    result = {
        "arrivals": arrivals,
        "rows": arrivals * ROWS_PER_FILE,
        "runs_started": len(seen),
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
        f"{arrivals} arrivals: {len(seen)} runs, {wall:.1f} s, {memory.peak_mib:.0f} MiB, "
        f"{figures.duplicates} duplicates, {figures.lost} lost",
        flush=True,
    )
    return result


def run() -> dict[str, Any]:
    return {"bursts": [burst(n) for n in ARRIVALS]}


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Scale: concurrent arrivals",
        "",
        f"Bursts of export files ({ROWS_PER_FILE} rows each) put into landing/ at once, in a fresh local "
        "cloud each: every Object Created event goes through the rule, the SQS buffer and on_arrival "
        "(batch size 100, the local 1 s batching window), which starts the runs; every run is followed to "
        "its end. Wall time runs from the first put to the last run's end; peak memory is the whole local "
        "cloud's (this process, its Lambda workers and Glue job processes), sampled every 0.1 s. Rows are "
        "accounted from the Parquet the runs wrote plus job 2's dedup count.",
        "",
        "| arrivals | runs started | succeeded | landed in s | wall s | peak memory MiB | rows in | "
        "rows out | duplicates | lost |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in result["bursts"]:
        lines.append(
            f"| {b['arrivals']} | {b['runs_started']} | {b['succeeded']} | {b['landed_seconds']:.1f} | "
            f"{b['wall_seconds']:.1f} | {b['peak_memory_mib']} | {b['rows']} | {b['rows_out']} | "
            f"{b['duplicates']} | {b['lost']} |"
        )
    largest = max(result["bursts"], key=lambda b: b["arrivals"])
    checks = [
        (
            f"duplicates and losses at {largest['arrivals']} arrivals",
            f"{largest['duplicates']} and {largest['lost']}",
            "0 and 0",
            largest["duplicates"] == 0 and largest["lost"] == 0 and largest["objects_in_two_runs"] == 0,
        )
    ]

    return lines + goal_table(checks)
