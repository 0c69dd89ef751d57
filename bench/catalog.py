"""`make bench`, catalog: the customers example, whose catalog step registers each run's cleansed partition,
against the same pipeline crawling its cleansed table instead (as it did before catalog steps), side by side.

One local cloud runs both, alternately, one run at a time, over the same landed object. The crawled
variant is the customers pipeline with its `catalog_cleansed` step replaced by `crawl_cleansed`, a crawl by
the catalog step's drift crawler (bench/variants.py); it runs on the customers state machine, redeployed
(UpdateStateMachine) for each of its runs and restored after, so `gluerelay runs cost` reads both
variants' runs the same way.

Figures per variant (medians over the runs, the first of each variant a warm-up):
- cost per run at AWS list prices with minimum billing (`runs cost`: job runs at Glue's 1-minute minimum,
  crawls at their 10-minute minimum, state transitions, Lambda requests);
- from job 2's end to the cleansed table holding the run's partition: the catalog step in real
  milliseconds (the job's end, on_glue_event's hand-off, start_step, the Data Catalog calls); the crawler
  as its hand-offs in real time plus its crawl's duration on the local cloud's clock, set to an AWS-like
  crawl (CRAWL_SECONDS).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from relay.contract import RUN_ID_ARG, ExecutionInput, Trigger, resolve_params

from bench.measure import goal_table
from bench.orchestration import put_source
from bench.variants import CATALOG_STEP, CRAWL_STEP, crawled_variant, deployable
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.glue import GlueTiming
from gluerelay.operate import PRICE_DPU_HOUR, run_costs, write_manifest
from gluerelay.pipelines.project import Project

# A small crawl on AWS takes a minute or two from StartCrawler to its event (start-up, classification,
# catalog writes); 90 s is taken here. Crawls bill 10 minutes at least whatever they take.
CRAWL_SECONDS = 90
CLOCK_RATE = 10.0  # clock seconds per real second: a 90 s crawl lasts 9 real seconds
VARIANTS = ("catalog step", "crawler")
GOALS = {"cost_ratio": 1 / 3, "queryable_ms": 200.0}


@dataclass
class Run:
    variant: str
    run_id: str
    total_usd: float
    glue_usd: float
    crawls: int
    job_dpu_hours: float
    crawl_dpu_hours: float
    queryable_seconds: float  # job 2's end to the run's partition in the table (through the gate, if any)
    step_seconds: float  # the cataloging step's own part: from the end of the step it needs


def run_once(
    cloud: LocalCloud,
    variant: str,
    name: str,
    key: str,
    *,
    definitions: dict[str, str],
    previous: dict[str, str],
) -> Run:
    sfn = cloud.client("stepfunctions")
    machine = cloud.state_machine_arn("customers")
    target = cloud.target()
    manifest = write_manifest(target, name, "customers", [key])
    params = resolve_params(Project().pipeline("customers").params, {})
    execution_input = ExecutionInput(
        run_id=name,
        trigger=Trigger.MANUAL,
        ingest_date=datetime.now(UTC).date().isoformat(),
        manifest_uri=manifest,
        params=params,
    )
    sfn.update_state_machine(stateMachineArn=machine, definition=definitions[variant])
    crawls_before = len(cloud.glue.crawls)
    try:
        arn = sfn.start_execution(stateMachineArn=machine, name=name, input=execution_input.to_json())[
            "executionArn"
        ]
        execution = cloud.wait_for_execution(arn, timeout=600)
    finally:
        sfn.update_state_machine(stateMachineArn=machine, definition=definitions[VARIANTS[0]])
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(f"{variant} run {name} ended {execution['status']}: {execution.get('cause')}")
    history = [
        event
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        for event in page["events"]
    ]
    registered = max(  # the last step's end: the partition is in the table by then
        e["timestamp"].timestamp()
        for e in history
        if e["type"] == "TaskStateExited"
        and e["stateExitedEventDetails"]["name"] == (CRAWL_STEP if variant == "crawler" else CATALOG_STEP)
    )
    [before] = [  # the end of the step the cataloging step needs (the gate, or job 2's step)
        e["timestamp"].timestamp()
        for e in history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == previous[variant]
    ]
    cleanse = cloud.template.physical_name("CleanseCustomersJob")
    [glue_run] = [
        r["Id"]
        for r in cloud.client("glue").get_job_runs(JobName=cleanse)["JobRuns"]
        if r["Arguments"].get(RUN_ID_ARG) == name
    ]
    [job2] = [r for r in cloud.glue.job_runs if r.run_id == glue_run]
    assert job2.completed is not None
    crawls = cloud.glue.crawls[crawls_before:]
    cleansed = cloud.template.physical_name("CleansedCustomersCrawler")
    if variant == "crawler":
        [crawl] = [c for c in crawls if c.crawler == cleansed]
        assert crawl.completed is not None
        # Real hand-offs either side of the crawl, and the crawl itself in clock seconds
        crawled = (crawl.completed - crawl.started) * cloud.clock.rate
        queryable = (crawl.started - job2.completed) + crawled + (registered - crawl.completed)
        step = (crawl.started - before) + crawled + (registered - crawl.completed)
    else:
        assert not [c for c in crawls if c.crawler == cleansed]
        queryable, step = registered - job2.completed, registered - before
    [cost] = run_costs(target, [name])
    return Run(
        variant=variant,
        run_id=name,
        total_usd=round(cost.total_usd, 6),
        glue_usd=cost.glue_usd,
        crawls=len(cost.crawls),
        job_dpu_hours=cost.job_dpu_hours,
        crawl_dpu_hours=cost.crawl_dpu_hours,
        queryable_seconds=round(queryable, 4),
        step_seconds=round(step, 4),
    )


def run(repeat: int) -> dict[str, Any]:
    example = Project().pipeline("customers")
    options = CloudOptions(
        timing=GlueTiming(min_crawl_seconds=CRAWL_SECONDS),
        clock_rate=CLOCK_RATE,
        alarm_evaluation_seconds=CLOCK_RATE,  # once a real second, as at real speed
    )
    runs: list[Run] = []
    with LocalCloud(options) as cloud:
        sfn = cloud.client("stepfunctions")
        deployed = sfn.describe_state_machine(stateMachineArn=cloud.state_machine_arn("customers"))[
            "definition"
        ]
        assert json.loads(deployed) == json.loads(deployable(cloud, example)), (
            "the deployed customers state machine is not the example's compiled file"
        )
        crawled = crawled_variant(example)
        definitions = {VARIANTS[0]: deployed, VARIANTS[1]: deployable(cloud, crawled)}
        previous = {
            VARIANTS[0]: example.steps[CATALOG_STEP].needs[0],
            VARIANTS[1]: crawled.steps[CRAWL_STEP].needs[0],
        }
        key = put_source(cloud)
        for index in range(repeat + 1):
            for variant in VARIANTS:
                name = f"customers-bench-{variant.split()[-1]}-{index}"
                measured = run_once(cloud, variant, name, key, definitions=definitions, previous=previous)
                print(
                    f"[catalog {index}/{repeat}] {variant:12s} ${measured.total_usd:.4f} per run, "
                    f"{measured.crawls} crawls, queryable {measured.queryable_seconds:.3f} s after job 2"
                    + (" (warm-up)" if index == 0 else ""),
                    flush=True,
                )
                if index:
                    runs.append(measured)
                time.sleep(0.2)
    return {
        "repeat": repeat,
        "crawl_seconds": CRAWL_SECONDS,
        "runs": [asdict(r) for r in runs],
        **summarise(runs),
    }


def summarise(runs: list[Run]) -> dict[str, Any]:
    def median(variant: str, attribute: str) -> float:
        return float(statistics.median(getattr(r, attribute) for r in runs if r.variant == variant))

    table = {
        variant: {
            a: median(variant, a)
            for a in (
                "total_usd",
                "glue_usd",
                "crawls",
                "job_dpu_hours",
                "crawl_dpu_hours",
                "queryable_seconds",
                "step_seconds",
            )
        }
        for variant in VARIANTS
    }
    catalog, crawler = table[VARIANTS[0]], table[VARIANTS[1]]
    return {
        "by_variant": table,
        "cost_ratio": round(catalog["total_usd"] / crawler["total_usd"], 3),
        "queryable_ratio": round(crawler["queryable_seconds"] / catalog["queryable_seconds"], 1),
        "step_ratio": round(crawler["step_seconds"] / catalog["step_seconds"], 1),
    }


def render(result: dict[str, Any]) -> list[str]:
    catalog, crawler = (result["by_variant"][v] for v in VARIANTS)
    lines = [
        "## Catalog step: the customers run cataloged without a crawl, against crawling its cleansed table",
        "",
        "The customers example (`check_cleansed`, its gate on the cleanse's counts, then `catalog_cleansed`, "
        "which registers the run's partition) and the same pipeline as it was before (job 2, then a crawl of "
        "the cleansed table), alternately in one local cloud, "
        f"{result['repeat']} runs each after a warm-up; medians. Cost is `gluerelay runs cost` at AWS list "
        "prices with minimum billing (a job run 1 minute, a crawl 10 minutes, at least). Queryable is the "
        "time until the run's partition is in the cleansed table, from job 2's end (the example's gate "
        "included) and from the end of the step before the cataloging step (the step's own part): the "
        "catalog step in real time; the crawler's hand-offs in real time plus its crawl at an AWS-like "
        f"{result['crawl_seconds']} s on the local cloud's clock. Both keep the raw table's crawl (its "
        "columns are whatever landed).",
        "",
        "| variant | cost per run USD | Glue USD | crawls | job DPU-h | crawl DPU-h | queryable after job 2 "
        "| the step's own part |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in zip(VARIANTS, (catalog, crawler), strict=True):
        lines.append(
            f"| {name} | {row['total_usd']:.4f} | {row['glue_usd']:.4f} | {row['crawls']:g} | "
            f"{row['job_dpu_hours']:.4f} | {row['crawl_dpu_hours']:.4f} | "
            f"{_duration(row['queryable_seconds'])} | {_duration(row['step_seconds'])} |"
        )
    lines += goal_table(
        [
            (
                "cost per run, catalog step / crawler",
                f"{result['cost_ratio']:.2f}",
                f"<= {GOALS['cost_ratio']:.2f}",
                result["cost_ratio"] <= GOALS["cost_ratio"],
            ),
            (
                "catalog step: from the step before it to queryable",
                f"{catalog['step_seconds'] * 1000:.0f} ms",
                f"< {GOALS['queryable_ms']:.0f} ms",
                catalog["step_seconds"] * 1000 < GOALS["queryable_ms"],
            ),
        ]
    )
    lines.append(
        f"The catalog step makes the run's partition queryable {result['step_ratio']:g} times sooner than "
        f"the crawl it replaces ({result['queryable_ratio']:g} times from job 2's end, the gate's hand-off "
        "included: each step is a Step Functions transition and a start_step invocation, about "
        f"{_duration(catalog['queryable_seconds'] - catalog['step_seconds'])} here)."
    )
    raw_crawl = catalog["crawl_dpu_hours"] * PRICE_DPU_HOUR  # the one crawl left: the raw table's
    if result["cost_ratio"] > GOALS["cost_ratio"] and raw_crawl > crawler["total_usd"] * GOALS["cost_ratio"]:
        lines.append(
            f"The raw table's crawl alone, at its 10-minute minimum, costs {raw_crawl:.4f} USD: "
            f"{raw_crawl / crawler['total_usd']:.0%} of the crawled run, so no run that keeps it can reach "
            "a third."
        )
    return [*lines, ""]


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
