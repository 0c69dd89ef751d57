"""The ``gluerelay`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gluerelay import datagen
from gluerelay.glue.jobrun import JobRunResult, run_job, script_path
from gluerelay.local_pipeline import PipelineRun, Source, run_pipeline

app = typer.Typer(help="Event-driven AWS Glue pipelines, on AWS and on this machine.", no_args_is_help=True)
jobs_app = typer.Typer(help="Run one Glue job locally, as a Glue job run.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
console = Console()
DEFAULT_DATA_DIR = Path(".gluerelay/local")


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


@app.command()
def run(  # noqa: PLR0917 - Typer maps each parameter to an option
    rows: Annotated[int, typer.Option(min=0, help="Rows of generated source data")] = 10_000,
    source: Annotated[
        str, typer.Option(help="s3 (landed CSV export files) or jdbc (a relational table)")
    ] = "s3",
    files: Annotated[int, typer.Option(min=1, help="Landed files (source s3)")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the generated data")] = 7,
    jdbc_url: Annotated[
        str | None,
        typer.Option(help="jdbc:postgresql://host/db?user=..&password=.. instead of the SQLite sample"),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Where the local bucket, source and logs live")
    ] = DEFAULT_DATA_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON")] = False,
) -> None:
    """Run the customers pipeline's jobs locally: job 1 extract, then job 2 cleanse."""
    if source not in ("s3", "jdbc"):
        raise typer.BadParameter("choose s3 or jdbc", param_hint="--source")
    if jdbc_url and source != "jdbc":
        raise typer.BadParameter("--jdbc-url needs --source jdbc", param_hint="--jdbc-url")
    chosen: Source = "jdbc" if source == "jdbc" else "s3"
    progress = None if as_json else _print_job
    result = run_pipeline(
        data_dir.resolve(),
        rows=rows,
        source=chosen,
        seed=seed,
        files=files,
        jdbc_url=jdbc_url,
        on_job_done=progress,
    )
    if as_json:
        console.print_json(json.dumps(_run_as_dict(result)))
    else:
        _print_report(result)
    if not result.succeeded:
        raise typer.Exit(1)


def _print_job(result: JobRunResult) -> None:
    style = "green" if result.state == "SUCCEEDED" else "red"
    console.print(
        f"[{style}]{result.state}[/] {result.job_name} {result.job_run_id[:15]}… "
        f"in {result.execution_seconds:.2f}s  log: {result.log_path}"
    )
    if result.error_message:
        console.print(f"  [red]{result.error_message}[/]")


def _run_as_dict(run: PipelineRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": "SUCCEEDED" if run.succeeded else "FAILED",
        "source": run.source,
        "ingest_date": run.ingest_date,
        "inputs": run.inputs,
        "jobs": [
            {
                "job": j.job_name,
                "job_run_id": j.job_run_id,
                "state": j.state,
                "error": j.error_message,
                "seconds": round(j.execution_seconds, 3),
                "log": str(j.log_path),
            }
            for j in run.jobs
        ],
        "summaries": run.summaries,
    }


def _print_report(run: PipelineRun) -> None:
    status = "[green]SUCCEEDED[/]" if run.succeeded else "[red]FAILED[/]"
    console.rule(f"run {run.run_id}  {status}")
    extract = run.summaries.get("extract_customers")
    cleanse = run.summaries.get("cleanse_customers")
    if extract:
        console.print(f"extract_customers: {extract['rows_read']:,} rows from {', '.join(extract['inputs'])}")
        console.print(f"  raw CSV → {extract['output']}")
    if cleanse:
        table = Table(title="cleanse_customers", show_header=True)
        table.add_column("rows")
        table.add_column("count", justify="right")
        table.add_row("read", f"{cleanse['rows_read']:,}")
        table.add_row("written", f"{cleanse['rows_written']:,}")
        table.add_row("duplicates removed", f"{cleanse['duplicates_removed']:,}")
        table.add_row("quarantined", f"{cleanse['rows_quarantined']:,}")
        for reason, count in cleanse["quarantined_by_reason"].items():
            table.add_row(f"  {reason}", f"{count:,}")
        console.print(table)
        console.print(f"  cleansed Parquet → {cleanse['outputs']['cleansed']}")
        console.print(f"  quarantine      → {cleanse['outputs']['quarantine']}")
    failed = run.failed_job
    if failed:
        console.print(
            f"[red]{failed.job_name} {failed.state}: {failed.error_message}[/]  (log: {failed.log_path})"
        )
