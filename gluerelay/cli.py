"""The ``gluerelay`` command line."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from relay.contract import RunStatus, Trigger
from rich.console import Console

from gluerelay import datagen
from gluerelay.glue.jobrun import JobRunResult, run_job, script_path
from gluerelay.records import utc_text

app = typer.Typer(help="Event-driven AWS Glue pipelines, on AWS and on this machine.", no_args_is_help=True)
jobs_app = typer.Typer(help="Run one Glue job locally, as a Glue job run.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
local_app = typer.Typer(
    help="The local cloud: template.yaml on emulated AWS, on this machine.", no_args_is_help=True
)
app.add_typer(local_app, name="local")
pipelines_app = typer.Typer(
    help="The pipeline files (pipelines/*.yaml): list, validate, show, compile.", no_args_is_help=True
)
app.add_typer(pipelines_app, name="pipelines")
runs_app = typer.Typer(
    help="Operate a deployed pipeline's runs (on AWS with --stack, or a local cloud with --local).",
    no_args_is_help=True,
)
app.add_typer(runs_app, name="runs")
# Piped output (`| grep`, a file) with no COLUMNS set is as wide as its content: a row stays one line.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 10_000)
err_console = Console(stderr=True)
DEFAULT_STACK = "gluerelay-dev"  # samconfig.toml's default stack_name
LOCAL_STACK = "gluerelay-local"  # the stack a local cloud registers

StackOption = Annotated[
    str | None,
    typer.Option(help=f"The deployed stack (default {DEFAULT_STACK}; {LOCAL_STACK} with --local)"),
]
RegionOption = Annotated[str | None, typer.Option(help="AWS region (default: the profile's)")]
ProfileOption = Annotated[str | None, typer.Option(help="AWS profile from ~/.aws/config")]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Talk to `gluerelay local up` (its endpoint in AWS_ENDPOINT_URL)")
]


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="File to write (.csv, .jsonl or .db)")],
    rows: Annotated[int, typer.Option(min=0, help="Number of export rows")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data")] = 7,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or sqlite (default: from the suffix)")
    ] = None,
) -> None:
    """Write realistic dirty customer data (stray spaces, bad emails, mixed formats, duplicates, updates)."""
    chosen = fmt or {".csv": "csv", ".jsonl": "jsonl", ".db": "sqlite", ".sqlite": "sqlite"}.get(out.suffix)
    if chosen not in datagen.FORMATS:
        raise typer.BadParameter(
            f"cannot tell the format of {out}; pass --format csv|jsonl|sqlite", param_hint="--format"
        )
    count = datagen.write(out, datagen.generate_rows(rows, seed), chosen)
    console.print(f"wrote {count:,} rows to [bold]{out}[/] ({chosen}, seed {seed})")


@jobs_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def jobs_run(
    ctx: typer.Context,
    job: Annotated[
        str, typer.Argument(help="Job name: a script in glue/jobs/ (extract_customers, cleanse_customers)")
    ],
) -> None:
    """Run a Glue script locally with Glue job arguments: gluerelay jobs run JOB --name value ..."""
    script = script_path(job)
    if not script.is_file():
        raise typer.BadParameter(f"no Glue script {script}", param_hint="JOB")
    extra = list(ctx.args)
    if len(extra) % 2:
        raise typer.BadParameter("job arguments come in pairs: --name value")
    arguments = dict(zip(extra[::2], extra[1::2], strict=True))
    result = run_job(script, arguments)
    _print_job(result)
    if result.state != "SUCCEEDED":
        raise typer.Exit(1)


def _print_job(result: JobRunResult) -> None:
    style = "green" if result.state == "SUCCEEDED" else "red"
    console.print(
        f"[{style}]{result.state}[/] {result.job_name} {result.job_run_id[:15]}… "
        f"in {result.execution_seconds:.2f}s  log: {result.log_path}"
    )
    if result.error_message:
        console.print(f"  [red]{result.error_message}[/]")


@local_app.command("run")
def local_run(  # noqa: PLR0917 - Typer maps each parameter to an option
    pipeline: Annotated[
        str, typer.Option(help="The pipeline whose sample data lands (customers, orders)")
    ] = "customers",
    rows: Annotated[int, typer.Option(min=0, help="Rows of generated source data")] = 10_000,
    source: Annotated[
        str, typer.Option(help="s3 (export files land in the bucket) or jdbc (a database table)")
    ] = "s3",
    files: Annotated[int, typer.Option(min=1, help="Export files to land (source s3)")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the generated data")] = 7,
    jdbc_url: Annotated[
        str | None,
        typer.Option(help="jdbc:postgresql://host:5432/db?user=..&password=.. instead of the SQLite sample"),
    ] = None,
    job_start_delay: Annotated[
        float, typer.Option(min=0, help="Seconds Glue takes to start a job run")
    ] = 0.0,
    min_crawl_seconds: Annotated[float, typer.Option(min=0, help="Shortest crawl, in seconds")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON")] = False,
) -> None:
    """Deploy template.yaml into a local cloud, start a run as AWS would, and report it."""
    began = time.perf_counter()
    from gluerelay.local.cloud import CloudOptions, LocalCloud
    from gluerelay.local.glue import GlueTiming
    from gluerelay.local.report import render
    from gluerelay.local.runs import run_from_database, run_from_landing

    timings = {"imports": round(time.perf_counter() - began, 3)}

    if source not in ("s3", "jdbc"):
        raise typer.BadParameter("choose s3 or jdbc", param_hint="--source")
    if jdbc_url and source != "jdbc":
        raise typer.BadParameter("--jdbc-url needs --source jdbc", param_hint="--jdbc-url")
    if source == "jdbc" and pipeline != "customers":
        raise typer.BadParameter(
            "--source jdbc is the customers pipeline's relational source", param_hint="--source"
        )
    from gluerelay.local.runs import SAMPLES

    if pipeline not in SAMPLES:
        raise typer.BadParameter(
            f"no sample data for {pipeline!r} (there is for {', '.join(SAMPLES)}); land your own files "
            "through `gluerelay local up`",
            param_hint="--pipeline",
        )
    options = CloudOptions(timing=GlueTiming(job_start_delay, min_crawl_seconds))
    with LocalCloud(options) as cloud:
        if not as_json:
            console.print(
                f"local cloud up: {len(cloud.template.active())} resources from template.yaml "
                f"({len(cloud.skipped)} access-control and packaging resources recorded, not enforced), "
                f"endpoint {cloud.endpoint}"
            )
        began = time.perf_counter()
        if source == "jdbc":
            reports = [run_from_database(cloud, rows=rows, seed=seed, jdbc_url=jdbc_url)]
        else:
            reports = run_from_landing(cloud, rows=rows, files=files, seed=seed, pipeline=pipeline)
        timings |= cloud.timings | {"runs": round(time.perf_counter() - began, 3)}
        began = time.perf_counter()
        summary = {
            "endpoint": cloud.endpoint,
            "resources": len(cloud.template.active()),
            "recorded_only": cloud.skipped,
        }
    timings["stop"] = round(time.perf_counter() - began, 3)
    if as_json:
        document = {
            "local_cloud": {**summary, "seconds": timings},
            "runs": [json.loads(r.to_json()) for r in reports],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        for report in reports:
            render(report, console)
        console.print(
            "seconds: " + ", ".join(f"{phase} {seconds:.2f}" for phase, seconds in timings.items()),
            style="dim",
        )
    if not all(r.succeeded for r in reports):
        raise typer.Exit(1)


@local_app.command("up")
def local_up(
    data_dir: Annotated[
        Path | None, typer.Option(help="On exit, write the data bucket's objects into this folder")
    ] = None,
    job_start_delay: Annotated[
        float, typer.Option(min=0, help="Seconds Glue takes to start a job run")
    ] = 0.0,
    min_crawl_seconds: Annotated[float, typer.Option(min=0, help="Shortest crawl, in seconds")] = 0.0,
) -> None:
    """Keep a local cloud running until Ctrl-C; objects put into landing/ through its endpoint start runs."""
    from gluerelay.local.cloud import CloudOptions, LocalCloud
    from gluerelay.local.glue import GlueTiming

    with LocalCloud(CloudOptions(timing=GlueTiming(job_start_delay, min_crawl_seconds))) as cloud:
        bucket = cloud.output("DataBucketName")
        console.print(
            f"[bold green]local cloud up[/]: {len(cloud.template.active())} resources from template.yaml"
        )
        # Plain lines (no wrapping): they are meant to be pasted into a shell.
        typer.echo(f"  export AWS_ENDPOINT_URL={cloud.endpoint} AWS_DEFAULT_REGION={cloud.env.region}")
        typer.echo("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        for key, value in sorted(cloud.outputs.items()):
            typer.echo(f"  {key:<28} {value}")
        typer.echo(f"  pipelines: {', '.join(cloud.pipelines)}; land a file under a prefix to start a run:")
        for name in cloud.pipelines:
            s3 = cloud.project.pipeline(name).triggers.s3
            if s3 is not None:
                typer.echo(f"    aws s3 cp {name}.csv s3://{bucket}/{s3.prefix}{name}.csv")
        console.print("Ctrl-C (or SIGTERM) stops it.")
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")
        if data_dir is not None:
            written = cloud.download_bucket(data_dir)
            console.print(f"wrote {written} objects of s3://{bucket} to {data_dir}")


def _target(stack: str | None, region: str | None, profile: str | None, local: bool) -> Any:
    from gluerelay.operate import OperatorError, Target

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if local and not endpoint:
        raise OperatorError(
            "--local needs the local cloud's endpoint: run `gluerelay local up` and export the "
            "AWS_ENDPOINT_URL it prints"
        )
    if local or endpoint:
        return Target(
            stack or LOCAL_STACK,
            region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            profile,
            endpoint,
        )
    return Target(stack or DEFAULT_STACK, region, profile)


def _operator_errors(action: Any) -> Any:
    """Run an operator command; an OperatorError is printed with its fix and exits 1."""
    from gluerelay.operate import OperatorError

    try:
        return action()
    except OperatorError as e:
        err_console.print(f"[bold red]error[/]: {e}")
        raise typer.Exit(1) from e


@runs_app.command("resume")
def runs_resume(  # noqa: PLR0917 - Typer maps each parameter to an option
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id (its record's run_id)")],
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Resume a FAILED or TIMED_OUT run from its failed step; the steps that succeeded are not redone."""
    from gluerelay.operate import resume

    resumed = _operator_errors(lambda: resume(_target(stack, region, profile, local), run_id))
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(resumed), indent=2))
        return
    console.print(f"run [bold]{resumed.run_id}[/] resumed from step [bold]{resumed.resume_from}[/]")
    typer.echo(f"  execution {resumed.execution_arn}")
    typer.echo(f"  previous  {resumed.previous_execution_arn}")


JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON")]


@runs_app.command("rerun")
def runs_rerun(  # noqa: PLR0917 - Typer maps each parameter to an option
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id (its record's run_id)")],
    from_step: Annotated[
        str, typer.Option("--from-step", help="Re-execute this step and every step downstream of it")
    ],
    same_versions: Annotated[
        bool,
        typer.Option(
            "--same-versions",
            help="Read exactly the landed object versions the run read first (default: each one's current)",
        ),
    ] = False,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Rerun a finished run (succeeded too) from a step: that step and what follows it run again with the
    run's inputs, replacing its partitions; the steps before it are not re-executed."""
    from gluerelay.operate import rerun

    done = _operator_errors(
        lambda: rerun(_target(stack, region, profile, local), run_id, from_step, same_versions=same_versions)
    )
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(done), indent=2))
        return
    console.print(
        f"run [bold]{done.run_id}[/] rerun {done.attempt} from step [bold]{done.from_step}[/]: "
        f"re-executes {', '.join(done.steps)}"
    )
    typer.echo(f"  execution {done.execution_arn or done.execution_name + ' (ended already)'}")
    for key in done.replaced:
        typer.echo(f"  reads {key} at its current version")


_SINCE_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def _since(value: str | None) -> timedelta | None:
    """`30m`, `12h`, `2d`, `1w` as a duration."""
    if value is None:
        return None
    number, unit = value[:-1], value[-1:]
    if unit not in _SINCE_UNITS or not number.isdigit():
        raise typer.BadParameter(
            f"{value!r}: a number and m, h, d or w (30m, 12h, 2d, 1w)", param_hint="--since"
        )
    return timedelta(seconds=int(number) * _SINCE_UNITS[unit])


def _check_ingest_date(value: str | None) -> str | None:
    """A calendar date written YYYY-MM-DD, checked before anything is called."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat() if len(value) == 10 else _bad_date(value)
    except ValueError:
        return _bad_date(value)


def _date_range(value: str | None) -> tuple[date | None, date | None]:
    """`A..B`, `A..`, `..B` or one date, checked before anything is called."""
    from gluerelay.runindex import QueryError, date_range

    if value is None:
        return None, None
    try:
        return date_range(value)
    except QueryError as e:
        raise typer.BadParameter(str(e), param_hint="--ingest-date") from e


def _bad_date(value: str) -> str:
    raise typer.BadParameter(f"{value!r} is not a date: write YYYY-MM-DD, e.g. 2026-01-31")


def _uniform(value: Any, key: str = "") -> Any:
    """A document with every time in one format, UTC to the millisecond (`2026-01-31T12:00:00.000Z`): the
    records write `+00:00`, Glue's events `Z`, at different precisions; a `*_at` / `*_on` text is a time."""
    if isinstance(value, dict):
        return {k: _uniform(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_uniform(v, key) for v in value]
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, str) and key.endswith(("_at", "_on")):
        try:
            return utc_text(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    return value


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(_uniform(value), indent=2, default=str))


PipelineOption = Annotated[
    str | None, typer.Option(help="Only this pipeline's runs (default: every pipeline)")
]


@runs_app.command("list")
def runs_list(  # noqa: PLR0917 - Typer maps each parameter to an option
    pipeline: PipelineOption = None,
    status: Annotated[
        RunStatus | None, typer.Option(case_sensitive=False, help="Only runs with this status")
    ] = None,
    trigger: Annotated[
        Trigger | None, typer.Option(case_sensitive=False, help="Only runs started this way")
    ] = None,
    ingest_date: Annotated[
        str | None,
        typer.Option(help="Only runs of these ingest dates: 2026-11-01..2026-11-30, 2026-11-01.., one date"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs started within this long: 30m, 12h, 2d, 1w")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many runs")] = 50,
    next_token: Annotated[
        str | None, typer.Option("--next", help="Go on from where the previous page ended (its token)")
    ] = None,
    backfill: Annotated[
        str | None, typer.Option(help="Only the runs this backfill reruns (every one)")
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Runs, newest first, from the control table (kept as long as their records): status, trigger,
    start, duration, failing step; a page at a time."""
    from gluerelay.operate import list_runs
    from gluerelay.views import runs_table

    window = _since(since)
    listing = _operator_errors(
        lambda: list_runs(
            _target(stack, region, profile, local),
            pipeline=pipeline,
            status=status,
            trigger=trigger,
            ingest_dates=_date_range(ingest_date),
            since=window,
            limit=limit,
            token=next_token,
            backfill=backfill,
        )
    )
    if as_json:
        _print_json({"runs": [dataclasses.asdict(r) for r in listing.runs], "next": listing.next_token})
        return
    runs_table(listing.runs, console)
    if listing.next_token:
        more = "more runs may follow" if listing.runs else "none found yet in the runs read"
        console.print(f"{more}: add --next {listing.next_token}", soft_wrap=True)


@runs_app.command("show")
def runs_show(  # noqa: PLR0917 - Typer maps each parameter to an option
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id")],
    html: Annotated[
        Path | None, typer.Option(help="Also write the timeline as an HTML page to this file")
    ] = None,
    png: Annotated[
        Path | None, typer.Option(help="Also write the timeline as a PNG picture to this file")
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """One run: its steps as a timeline, Glue run and crawl ids, rows, quarantine by reason, errors."""
    from gluerelay.operate import run_detail
    from gluerelay.views import detail_html, detail_png, detail_view

    detail = _operator_errors(lambda: run_detail(_target(stack, region, profile, local), run_id))
    if html is not None:
        html.write_text(detail_html(detail), encoding="utf-8")
    if png is not None:
        detail_png(detail, png)
    if as_json:
        _print_json(dataclasses.asdict(detail))
        return
    detail_view(detail, console)
    for written in (html, png):
        if written is not None:
            console.print(f"timeline written to {written}")


@runs_app.command("cost")
def runs_cost(  # noqa: PLR0917 - Typer maps each parameter to an option
    run_id: Annotated[str | None, typer.Argument(metavar="[RUN]", help="One run (or use --since)")] = None,
    pipeline: PipelineOption = None,
    since: Annotated[
        str | None, typer.Option(help="Every run started within this long: 30m, 12h, 2d")
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """What runs cost at AWS list prices: Glue DPU-hours, state transitions, Lambda requests."""
    from gluerelay.operate import every_run, run_costs, total_cost
    from gluerelay.views import costs_table

    if run_id is not None and since is not None:
        raise typer.BadParameter("name one RUN or give --since, not both", param_hint="RUN / --since")
    if run_id is None and since is None:
        raise typer.BadParameter("name one RUN or give --since (30m, 12h, 2d)", param_hint="RUN / --since")
    window = _since(since)

    def costs() -> list[Any]:
        target = _target(stack, region, profile, local)
        runs = [run_id] if run_id else [r.run_id for r in every_run(target, pipeline=pipeline, since=window)]
        return run_costs(target, runs)

    found = _operator_errors(costs)
    total = total_cost(found)
    if as_json:
        _print_json({"runs": [dataclasses.asdict(c) for c in found], "total": dataclasses.asdict(total)})
        return
    costs_table(found, total, console)


backfill_app = typer.Typer(
    help="Rerun many runs of a pipeline from a step, at most N at once, in AWS (it goes on offline).",
)
app.add_typer(backfill_app, name="backfill")


@backfill_app.callback(invoke_without_command=True)
def backfill(  # noqa: PLR0917 - Typer maps each parameter to an option
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="The pipeline whose runs to rerun")] = None,
    from_step: Annotated[
        str | None, typer.Option("--from-step", help="Rerun from this step (default: every step)")
    ] = None,
    runs: Annotated[
        list[str] | None, typer.Option("--runs", help="These runs (repeat it, or separate ids with commas)")
    ] = None,
    ingest_date: Annotated[
        str | None, typer.Option(help="The runs of these ingest dates: 2026-11-01..2026-11-30, one date")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="The runs started within this long: 30m, 12h, 30d")
    ] = None,
    max_concurrent: Annotated[
        int, typer.Option("--max-concurrent", help="At most this many reruns at once (1 to 40)")
    ] = 4,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what it would rerun; start nothing")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Then follow its progress until it ends")] = False,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Rerun the chosen runs (--runs, --ingest-date or --since) of --pipeline from --from-step."""
    if ctx.invoked_subcommand is not None:
        return
    from gluerelay import backfills

    if pipeline is None:
        raise typer.BadParameter("name the pipeline whose runs to rerun", param_hint="--pipeline")
    run_ids = [r.strip() for given in runs or [] for r in given.split(",") if r.strip()]
    window = _since(since)
    dates = _date_range(ingest_date)
    target = _target(stack, region, profile, local)
    chosen = _operator_errors(
        lambda: backfills.plan(
            target,
            pipeline,
            from_step=from_step,
            run_ids=run_ids,
            ingest_dates=dates,
            since=window,
            max_concurrent=max_concurrent,
        )
    )
    if dry_run:
        if as_json:
            _print_json(dataclasses.asdict(chosen))
            return
        console.print(
            f"backfill [bold]{chosen.backfill_id}[/] would rerun {len(chosen.runs)} runs of "
            f"{chosen.pipeline} ({', '.join(chosen.steps)}), {chosen.max_concurrent} at once; nothing started"
        )
        for run_id in chosen.runs:
            typer.echo(f"  {run_id}")
        for run_id in chosen.not_ended:
            typer.echo(f"  {run_id} (left out: still running)")
        return
    done = _operator_errors(lambda: backfills.start(target, chosen))
    if as_json:
        _print_json(dataclasses.asdict(done))
    elif done.started:
        console.print(
            f"backfill [bold]{chosen.backfill_id}[/] started: {len(chosen.runs)} runs of {chosen.pipeline} "
            f"from {chosen.from_step or 'the start'}, {chosen.max_concurrent} at once"
        )
        typer.echo(f"  execution {done.execution_arn}")
        typer.echo(f"  follow it: gluerelay backfill status {chosen.backfill_id} --watch")
    else:
        console.print(
            f"backfill [bold]{chosen.backfill_id}[/] exists already (the same runs from the same step): "
            "nothing new started"
        )
        typer.echo(f"  see it: gluerelay backfill status {chosen.backfill_id}")
    if watch and not as_json:
        _watch_backfill(target, chosen.backfill_id)


def _watch_backfill(target: Any, backfill_id: str) -> None:
    from rich.live import Live

    from gluerelay import backfills
    from gluerelay.views import backfill_view

    found = _operator_errors(lambda: backfills.status(target, backfill_id))
    with Live(backfill_view(found), console=console, refresh_per_second=2) as live:
        while not found.done:
            time.sleep(2)
            found = _operator_errors(lambda: backfills.status(target, backfill_id))
            live.update(backfill_view(found))


@backfill_app.command("status")
def backfill_status(  # noqa: PLR0917 - Typer maps each parameter to an option
    backfill_id: Annotated[str, typer.Argument(metavar="ID", help="The backfill's id")],
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends")] = False,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """How far a backfill got: its runs pending, running, succeeded, failed, refused, cancelled; time left."""
    from gluerelay import backfills
    from gluerelay.views import backfill_view

    target = _target(stack, region, profile, local)
    if watch and not as_json:
        _watch_backfill(target, backfill_id)
        return
    found = _operator_errors(lambda: backfills.status(target, backfill_id))
    if as_json:
        _print_json(dataclasses.asdict(found))
        return
    console.print(backfill_view(found))


@backfill_app.command("cancel")
def backfill_cancel(  # noqa: PLR0917 - Typer maps each parameter to an option
    backfill_id: Annotated[str, typer.Argument(metavar="ID", help="The backfill's id")],
    now: Annotated[
        bool, typer.Option("--now", help="Also stop the reruns running now (they end ABORTED)")
    ] = False,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Start no more of a backfill's reruns; the running ones finish (or, with --now, are stopped)."""
    from gluerelay import backfills

    stopped = _operator_errors(
        lambda: backfills.cancel(_target(stack, region, profile, local), backfill_id, now=now)
    )
    if as_json:
        _print_json({"backfill_id": backfill_id, "cancelled": True, "stopped": stopped})
        return
    console.print(f"backfill [bold]{backfill_id}[/] cancelled: no more of its reruns start")
    for arn in stopped:
        typer.echo(f"  stopped {arn}")


@app.command("start")
def start(  # noqa: PLR0917 - Typer maps each parameter to an option
    pipeline: Annotated[
        str, typer.Option(help="The pipeline to run (gluerelay pipelines list)")
    ] = "customers",
    keys: Annotated[
        str | None, typer.Option(help="Comma-separated keys of landed objects (landing/...) the run reads")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="A run parameter, name=value (repeat for more)", metavar="NAME=VALUE"),
    ] = None,
    ingest_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: today, UTC)", callback=_check_ingest_date)
    ] = None,
    project: ProjectOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Start a run by hand; prints its run id. Parameters are checked against the pipeline file first."""
    from gluerelay.operate import start_run

    given: dict[str, str] = {}
    for item in param or []:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise typer.BadParameter(f"{item!r}: write NAME=VALUE", param_hint="--param")
        given[name] = value
    names = [k.strip() for k in (keys or "").split(",") if k.strip()]
    spec = _pipeline_errors(lambda: _project(project).pipeline(pipeline))
    started = _operator_errors(
        lambda: start_run(
            _target(stack, region, profile, local), spec, keys=names, params=given, ingest_date=ingest_date
        )
    )
    if as_json:
        _print_json(dataclasses.asdict(started))
        return
    typer.echo(started.run_id)


@app.command("logs")
def logs(  # noqa: PLR0917 - Typer maps each parameter to an option
    run: Annotated[
        str | None, typer.Option(help="Only this run: function lines naming it, its Glue job runs' output")
    ] = None,
    since: Annotated[str, typer.Option(help="From this long ago: 30m, 12h, 2d, 1w")] = "1h",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C ends)")
    ] = False,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """The stack's log lines, oldest first: its functions', Glue jobs' and state machines' log groups."""
    from gluerelay.operate import log_events

    window = _since(since)
    assert window is not None
    target = _target(stack, region, profile, local)
    cursor: int | None = None  # after the first poll: the newest stamp seen, less the lookback
    printed: dict[str, int] = {}  # event id -> timestamp, of the events printed since the cursor
    while True:
        found = _operator_errors(
            functools.partial(log_events, target, run_id=run, since=window, after_ms=cursor)
        )
        for event in found:
            if event.event_id in printed:
                continue  # seen by an earlier poll of the overlapping window
            printed[event.event_id] = event.timestamp
            if as_json:
                typer.echo(json.dumps(dataclasses.asdict(event)))
            else:
                source = event.group.rsplit("/", 1)[-1]
                typer.echo(f"{event.at} {source} {event.message}")
        if not follow:
            return
        if printed:
            # Look back on every poll: CloudWatch Logs takes events stamped before ones already seen (a
            # line in the same millisecond, a Glue job's output delivered late); the ids keep each once.
            cursor = max(printed.values()) - FOLLOW_LOOKBACK_MS
            printed = {k: v for k, v in printed.items() if v > cursor}
        time.sleep(FOLLOW_SECONDS)


FOLLOW_SECONDS = 2.0  # how often `gluerelay logs --follow` asks for new lines
FOLLOW_LOOKBACK_MS = 60_000  # how far back each poll looks again for events ingested late


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


ProjectOption = Annotated[
    Path | None, typer.Option(help="The project folder (template.yaml, pipelines/); default: this checkout")
]


def _project(root: Path | None) -> Any:
    from gluerelay.pipelines.project import ROOT, Project

    return Project(root.resolve() if root else ROOT)


def _pipeline_errors(action: Any) -> Any:
    """Run a pipelines command; a PipelineError prints every problem (file: field: problem) and exits 1."""
    from gluerelay.local.template import TemplateError
    from gluerelay.pipelines.model import PipelineError

    try:
        return action()
    except PipelineError as e:
        for problem in e.problems:
            err_console.print(f"[bold red]error[/]: {problem}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from e
    except TemplateError as e:
        err_console.print(f"[bold red]error[/]: {e}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from e


@pipelines_app.command("list")
def pipelines_list(project: ProjectOption = None, as_json: JsonOption = False) -> None:
    """Every pipeline: how its runs start, its steps and parameters."""
    from gluerelay.pipelines.render import describe

    found = _pipeline_errors(lambda: _project(project).pipelines)
    if as_json:
        _print_json(
            {
                name: pipeline.model_dump(mode="json", exclude_defaults=True)
                for name, pipeline in found.items()
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} pipelines", title_justify="left")
    for column in ("pipeline", "starts on", "steps", "params"):
        table.add_column(column)
    for name, pipeline in sorted(found.items()):
        triggers = pipeline.triggers
        starts = [f"{triggers.s3.prefix}" for _ in [0] if triggers.s3] + [
            s.expression for s in triggers.schedules
        ]
        if triggers.manual:
            starts.append("gluerelay start")
        table.add_row(
            f"[bold]{name}[/]\n[dim]{pipeline.description}[/]" if pipeline.description else name,
            "\n".join(starts),
            "\n".join(f"{step_id}: {describe(step)}" for step_id, step in pipeline.steps.items()),
            ", ".join(pipeline.params) or "-",
        )
    console.print(table)


@pipelines_app.command("validate")
def pipelines_validate(project: ProjectOption = None) -> None:
    """Check every pipeline file (alone, against the others and template.yaml) and the compiled files."""
    found = _project(project)
    pipelines = _pipeline_errors(lambda: found.pipelines)
    stale = _pipeline_errors(found.stale)
    if stale:
        for path in stale:
            err_console.print(f"[bold red]stale[/]: {path} (run: gluerelay pipelines compile)")
        raise typer.Exit(1)
    console.print(
        f"{len(pipelines)} pipelines valid ({', '.join(sorted(pipelines))}); compiled files current"
    )


@pipelines_app.command("compile")
def pipelines_compile(
    project: ProjectOption = None,
    check: Annotated[bool, typer.Option("--check", help="Only report stale files (exit 1 if any)")] = False,
) -> None:
    """Write each pipeline's state machine, the functions' catalog, the JSON Schema, the README reference."""
    found = _project(project)
    if check:
        pipelines_validate(project)
        return
    written = _pipeline_errors(found.write)
    for path in written:
        console.print(f"wrote {path}")
    unused = found.unused_definitions()
    for path in unused:
        err_console.print(f"[yellow]unused[/]: {path} belongs to no pipeline: delete it")
    if not written:
        console.print("compiled files current")


@pipelines_app.command("show")
def pipelines_show(
    name: Annotated[str, typer.Argument(metavar="PIPELINE", help="The pipeline's name")],
    png: Annotated[Path | None, typer.Option(help="Also draw the graph into this PNG file")] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the graph as an HTML page to this file")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """One pipeline as Step Functions runs it: steps in order, what runs at once, what each needs."""
    from gluerelay.pipelines import render

    pipeline = _pipeline_errors(lambda: _project(project).pipeline(name))
    console.print(render.tree(pipeline))
    if png is not None:
        render.write_png(pipeline, png)
        console.print(f"graph drawn to {png}")
    if html is not None:
        html.write_text(render.page(pipeline), encoding="utf-8")
        console.print(f"graph written to {html}")


def main() -> None:
    """The console script. It leaves with os._exit once the command is done and its output flushed: after a
    local cloud, Python's own teardown of moto's state takes over a second and does nothing useful (every
    child process is stopped and every file closed by then)."""
    code: int = 0
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            typer.echo(e.code, err=True)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
