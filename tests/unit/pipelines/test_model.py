"""Pipeline files: every mistake refused with the file, the field and the problem."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from gluerelay.pipelines.model import PipelineError, load
from gluerelay.pipelines.project import ROOT, Project, state_machine_block

GOOD = """
pipeline: demo
triggers:
  s3: {prefix: landing/demo/, batch_size: 10}
params:
  day: {type: date, default: "2026-01-01"}
steps:
  extract_lines: {job: extract_customers, args: {--manifest_uri: "{manifest_uri}", --day: "{param.day}"}}
  crawl: {crawler: raw_customers, needs: [extract_lines]}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, name: str = "demo") -> str:
    with pytest.raises(PipelineError) as raised:
        load(write(tmp_path, name, text), f"pipelines/{name}.yaml")
    return str(raised.value)


def test_a_good_file_loads(tmp_path: Path) -> None:
    pipeline = load(write(tmp_path, "demo", GOOD))
    assert list(pipeline.steps) == ["extract_lines", "crawl"]
    assert pipeline.steps["crawl"].needs == ["extract_lines"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("needs: [extract_lines]", "needs: [extract_line]"),
            "steps.crawl.needs: unknown step 'extract_line' (did you mean 'extract_lines'?)",
        ),
        (("needs: [extract_lines]", "needs: [crawl]"), "steps.crawl.needs: a step cannot need itself"),
        (
            ("{manifest_uri}", "{manifest}"),
            "steps.extract_lines.args.--manifest_uri: unknown variable {manifest}",
        ),
        (("{param.day}", "{param.dya}"), "unknown parameter {param.dya} (did you mean 'day'?)"),
        (("--day:", "--extra-py-files:"), "--extra-py-files is not a script argument"),
        (("--day:", "--run_id:"), "--run_id is set by gluerelay for every job run"),
        (("--day:", "--conf:"), "--conf is reserved by Glue"),
        (
            ("batch_size: 10", "batch_size: 10, window_seconds: 60"),
            "triggers.s3: a pipeline has no batching window of its own: one arrival queue serves every "
            "pipeline, and how long it gathers objects is the stack's ArrivalBatchingWindowSeconds parameter",
        ),
        (("batch_size: 10", "batch_sise: 10"), "triggers.s3.batch_sise: unknown field"),
        (
            ("prefix: landing/demo/", "prefix: raw/demo/"),
            "triggers.s3.prefix: must be a folder under landing/",
        ),
        (
            ("prefix: landing/demo/", "prefix: landing/*.csv/"),
            "triggers.s3.prefix: is a literal folder, not a pattern",
        ),
        (
            ("{job: extract_customers,", "{job: extract_customers, crawler: x,"),
            "steps.extract_lines: a step has exactly one of job:, crawler:, catalog: or quality:",
        ),
        (
            ("{crawler: raw_customers,", "{crawler: raw_customers, args: {--a: b},"),
            "only a job step takes arguments",
        ),
        (('default: "2026-01-01"', "default: someday"), "parameter day='someday' is not a date"),
        (("pipeline: demo", "pipeline: Demo"), "pipeline: String should match pattern"),
        (("steps:", "stepz: {}\nsteps:"), "stepz: unknown field"),
        (("crawl: {", "Crawl-1: {"), "step id 'Crawl-1'"),
        (("{--manifest_uri:", "{--manifest_uri: {bad},"), "extract_lines.args"),
    ],
)
def test_a_mistake_is_named_with_its_file_and_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new))
    assert found.startswith("pipelines/demo.yaml: ") and message in found, found


def test_a_cycle_is_refused_naming_it(tmp_path: Path) -> None:
    text = GOOD.replace('args: {--manifest_uri: "{manifest_uri}", --day: "{param.day}"}}', "needs: [crawl]}")
    assert "steps: needs form a cycle: crawl -> extract_lines -> crawl" in problems(tmp_path, text)


def test_a_duplicate_step_id_is_refused_with_its_line(tmp_path: Path) -> None:
    text = GOOD + "  crawl: {crawler: raw_customers}\n"
    assert "duplicate key 'crawl' (first on line 9)" in problems(tmp_path, text)


def test_the_file_must_be_named_after_its_pipeline(tmp_path: Path) -> None:
    assert "pipeline: 'demo' must match the file name (other.yaml)" in problems(tmp_path, GOOD, name="other")


def test_a_bad_schedule_and_a_schedule_parameter_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  s3: {prefix: landing/demo/, batch_size: 10}",
        "  s3: {prefix: landing/demo/, batch_size: 10}\n  schedules: [{expression: rate(5 minute)}]",
    )
    assert "triggers.schedules: 'rate(5 minute)': write rate(1 minute) or rate(5 minutes)" in problems(
        tmp_path, text
    )
    text = text.replace("rate(5 minute)}", "rate(5 minutes), params: {dya: x}}")
    assert "triggers.schedules[0].params: unknown parameter dya (declared: day)" in problems(tmp_path, text)


def project(tmp_path: Path, **files: str) -> Project:
    """A project with the repo's template and these pipeline files."""
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    (tmp_path / "pipelines").mkdir()
    for name, text in files.items():
        write(tmp_path / "pipelines", name, text)
    return Project(tmp_path)


def project_problems(tmp_path: Path, **files: str) -> str:
    with pytest.raises(PipelineError) as raised:
        _ = project(tmp_path, **files).pipelines
    return str(raised.value)


def test_a_misspelled_stack_owned_resource_is_named_with_a_suggestion(tmp_path: Path) -> None:
    found = project_problems(tmp_path, demo=GOOD.replace("job: extract_customers", "job: extract_customer"))
    assert (
        "pipelines/demo.yaml: steps.extract_lines.job: no job 'extract_customer' in template.yaml "
        "(did you mean 'extract_customers'?)"
    ) in found


def test_a_pipeline_without_its_template_block_gets_the_block_to_paste(tmp_path: Path) -> None:
    found = project_problems(tmp_path, demo=GOOD)
    assert "template.yaml: no state machine for pipeline demo; add this block under Resources:" in found
    assert state_machine_block("demo") in found


def test_two_pipelines_cannot_claim_overlapping_prefixes(tmp_path: Path) -> None:
    inner = GOOD.replace("pipeline: demo", "pipeline: inner").replace("landing/demo/", "landing/demo/inner/")
    found = project_problems(tmp_path, demo=GOOD, inner=inner)
    assert (
        "pipelines demo and inner claim overlapping prefixes landing/demo/ and landing/demo/inner/" in found
    )


def test_the_repos_pipelines_are_valid_and_their_compiled_files_current() -> None:
    found = Project()
    assert set(found.pipelines) >= {"customers", "orders"}
    assert found.stale() == [], "run: gluerelay pipelines compile"
    assert found.unused_definitions() == []


CATALOG = """
pipeline: demo
steps:
  extract: {job: extract_customers}
  crawl: {crawler: raw_customers, needs: [extract]}
  register:
    needs: [crawl]
    catalog:
      table: raw_demo
      location: raw/demo/
      format: csv
      partitions: {ingest_date: "{ingest_date}", run_id: "run={run_id}"}
      columns: {id: bigint, amount: "decimal(10, 2)", tags: array<string>}
      on_drift: crawl
      crawler: raw_customers
"""


def test_a_catalog_step_loads_with_its_table_partition_and_schema(tmp_path: Path) -> None:
    step = load(write(tmp_path, "demo", CATALOG)).steps["register"]
    assert (step.kind, step.resource, step.external) == ("catalog", "raw_demo", False)
    assert step.glue_resources() == [("catalog.crawler", "crawler", "raw_customers")]
    assert step.templates() == {
        "catalog.partitions.ingest_date": "{ingest_date}",
        "catalog.partitions.run_id": "run={run_id}",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("array<string>", "array<strng>"),
            "steps.register.catalog.columns: tags: 'array<strng>' is not a Glue column type",
        ),
        (
            ('columns: {id: bigint, amount: "decimal(10, 2)", tags: array<string>}', "columns_from: extract"),
            "",  # valid: extract is a job the step needs (through crawl)
        ),
        (
            ('columns: {id: bigint, amount: "decimal(10, 2)", tags: array<string>}', "columns_from: crawl"),
            "steps.register.catalog.columns_from: crawl is a crawler step: only a job's summary reports",
        ),
        (
            ('columns: {id: bigint, amount: "decimal(10, 2)", tags: array<string>}', "columns_from: extrac"),
            "steps.register.catalog.columns_from: unknown step 'extrac' (did you mean 'extract'?)",
        ),
        (("      crawler: raw_customers\n", ""), "steps.register.catalog: on_drift: crawl needs crawler:"),
        (("run={run_id}", "{run}"), "steps.register.catalog.partitions.run_id: unknown variable {run}"),
        (
            ("location: raw/demo/", "location: s3://bucket/raw/demo/"),
            "steps.register.catalog.location: a folder",
        ),
        (("format: csv", "format: orc"), "steps.register.catalog.format: Input should be"),
        (
            ("    needs: [crawl]\n", "    needs: [crawl]\n    args: {--a: b}\n"),
            "only a job step takes arguments",
        ),
    ],
)
def test_a_catalog_step_mistake_is_named_with_its_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in CATALOG
    text = CATALOG.replace(old, new)
    if not message:
        assert load(write(tmp_path, "demo", text)).steps["register"].catalog is not None
        return
    found = problems(tmp_path, text)
    assert found.startswith("pipelines/demo.yaml: ") and message in found, found


def test_a_catalog_steps_fallback_crawler_must_exist(tmp_path: Path) -> None:
    found = project_problems(
        tmp_path, demo=CATALOG.replace("crawler: raw_customers\n", "crawler: raw_customer\n")
    )
    assert (
        "pipelines/demo.yaml: steps.register.catalog.crawler: no crawler 'raw_customer' in template.yaml"
        in found
    )


def test_a_catalog_step_takes_columns_only_from_a_job_it_waits_for(tmp_path: Path) -> None:
    text = CATALOG.replace("    needs: [crawl]\n", "").replace(
        'columns: {id: bigint, amount: "decimal(10, 2)", tags: array<string>}', "columns_from: extract"
    )
    assert (
        "steps.register.catalog.columns_from: extract must run first: add it (or a step after it) to needs"
    ) in problems(tmp_path, text)


def test_a_drift_crawler_that_cannot_update_the_schema_is_refused(tmp_path: Path) -> None:
    project(tmp_path, demo=CATALOG)
    template = (tmp_path / "template.yaml").read_text()
    crawler = template.index('Name: !Sub "${AWS::StackName}_raw_customers"')
    incremental = template[:crawler] + template[crawler:].replace(
        "RecrawlBehavior: CRAWL_EVERYTHING", "RecrawlBehavior: CRAWL_NEW_FOLDERS_ONLY", 1
    )
    (tmp_path / "template.yaml").write_text(incremental)
    with pytest.raises(PipelineError) as raised:
        _ = Project(tmp_path).pipelines
    assert (
        "pipelines/demo.yaml: steps.register.catalog.crawler: crawler 'raw_customers' has RecrawlBehavior "
        "CRAWL_NEW_FOLDERS_ONLY and UpdateBehavior UPDATE_IN_DATABASE: the crawl on_drift falls back to must "
        "update the table's schema"
    ) in str(raised.value)


QUALITY = """
pipeline: demo
steps:
  extract: {job: extract_customers}
  gate:
    needs: [extract]
    quality:
      summary_of: extract
      rules: ["rows_written > 0", {rule: "files_set_aside == 0", severity: warn}]
  verify:
    needs: [gate]
    quality:
      table: raw_demo
      partition: {run_id: "{run_id}"}
      rules:
        - 'RowCount > 0'
        - 'ColumnValues "country" in ["GB", "US"]'
        - {rule: 'IsUnique "id"', severity: warn}
"""


def test_quality_steps_load_with_their_rules_and_severities(tmp_path: Path) -> None:
    pipeline = load(write(tmp_path, "demo", QUALITY))
    gate, verify = pipeline.steps["gate"], pipeline.steps["verify"]
    assert (gate.kind, gate.resource, verify.kind, verify.resource) == (
        "quality",
        "extract",
        "quality",
        "raw_demo",
    )
    assert [(r.rule, r.severity) for r in gate.quality.specs()] == [  # type: ignore[union-attr]
        ("rows_written > 0", "error"),
        ("files_set_aside == 0", "warn"),
    ]
    assert verify.templates() == {"quality.partition.run_id": "{run_id}"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("'RowCount > 0'", "'DataFreshness \"at\" <= 24 hours'"),
            "steps.verify.quality: 'DataFreshness \"at\" <= 24 hours': rule type 'DataFreshness' is not one "
            "gluerelay checks",
        ),
        (('"rows_written > 0"', '"rows_writen > 0"'), "'rows_writen' is not a summary figure"),
        (
            ("summary_of: extract", "summary_of: gate"),
            "steps.gate.quality.summary_of: gate is a quality step",
        ),
        (
            ("      summary_of: extract\n", "      summary_of: extract\n      table: t\n"),
            "exactly one of summary_of",
        ),
        (
            ('{run_id: "{run_id}"}', '{run_id: "{run}"}'),
            "steps.verify.quality.partition.run_id: unknown variable",
        ),
        (("severity: warn}]\n  verify", "severity: fatal}]\n  verify"), "Input should be 'error' or 'warn'"),
    ],
)
def test_a_quality_step_mistake_is_named_and_no_rule_is_passed_unchecked(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in QUALITY
    found = problems(tmp_path, QUALITY.replace(old, new))
    assert found.startswith("pipelines/demo.yaml: ") and message in found, found
