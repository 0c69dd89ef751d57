"""A pipeline compiled to its state machine: what each step's task sends start_step, and its limits."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from gluerelay.pipelines.asl import compile_pipeline, to_text
from gluerelay.pipelines.model import load
from tests.template import SUBSTITUTIONS, all_states, definition

PIPELINE = """
pipeline: demo
params:
  region: {default: eu}
steps:
  extract:
    job: extract_customers
    timeout_seconds: 900
    retry: {attempts: 2, interval_seconds: 30}
    args:
      --plain: s3
      --date: "{ingest_date}"
      --path: "s3://{bucket}/raw/{pipeline}/{param.region}/run={run_id}/"
      --quoted: "it's {{literal}} {run_id}"
  publish:
    crawler: {external: their_crawler}
    needs: [extract]
"""


def compiled(tmp_path: Path, text: str = PIPELINE) -> dict[str, Any]:
    path = tmp_path / "demo.yaml"
    path.write_text(textwrap.dedent(text))
    source = tmp_path / "demo.asl.json"
    source.write_text(to_text(compile_pipeline(load(path))))
    return definition(source)


def tasks(parsed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s, _ in all_states(parsed["States"]) if s.get("Resource", "").endswith("waitForTaskToken")
    }


def test_each_argument_is_a_literal_a_path_or_a_format_of_paths(tmp_path: Path) -> None:
    arguments = tasks(compiled(tmp_path))["extract"]["Parameters"]["Payload"]["arguments"]
    assert arguments == {
        "--plain": "s3",
        "--date.$": "$.ingest_date",
        "--path.$": "States.Format('s3://data-bucket/raw/demo/{}/run={}/', $.params.region, $.run_id)",
        "--quoted.$": "States.Format('it\\'s \\{literal\\} {}', $.run_id)",
    }


def test_a_step_has_its_own_timeout_and_retries_glue_failures_when_asked(tmp_path: Path) -> None:
    extract = tasks(compiled(tmp_path))["extract"]
    assert extract["TimeoutSeconds"] == 900
    assert extract["Parameters"]["Payload"]["timeout_seconds"] == 900
    glue_retry = extract["Retry"][-1]
    assert glue_retry == {
        "ErrorEquals": [
            "GlueJobFailed",
            "GlueJobTimeout",
            "GlueCrawlFailed",
            "GlueCatalogFailed",
            "GlueQualityFailed",
        ],
        "IntervalSeconds": 30,
        "MaxAttempts": 2,
        "BackoffRate": 2.0,
    }
    publish = tasks(compiled(tmp_path))["publish"]
    assert publish["TimeoutSeconds"] == int(SUBSTITUTIONS["StepTimeoutSeconds"])
    assert all("GlueJobFailed" not in r["ErrorEquals"] for r in publish["Retry"])


def test_stack_owned_resources_get_the_stack_prefix_and_externals_their_own_names(tmp_path: Path) -> None:
    found = tasks(compiled(tmp_path))
    assert found["extract"]["Parameters"]["Payload"]["name"] == "stack_extract_customers"
    assert found["publish"]["Parameters"]["Payload"]["name"] == "their_crawler"
    assert found["publish"]["Parameters"]["Payload"]["kind"] == "crawler"


def test_steps_that_need_nothing_in_common_are_branches_that_end_in_a_fail_state_carrying_the_failure(
    tmp_path: Path,
) -> None:
    parsed = compiled(
        tmp_path,
        """
        pipeline: demo
        steps:
          a: {job: extract_customers}
          b: {job: cleanse_customers}
          c: {crawler: raw_customers, needs: [a, b]}
        """,
    )
    parallel = parsed["States"][parsed["States"]["Record the run as started"]["Next"]]
    assert parallel["Type"] == "Parallel" and parallel["Next"] == "c"
    for branch in parallel["Branches"]:
        [step] = [s for s in branch["States"].values() if s["Type"] == "Task"]
        failed = branch["States"][step["Catch"][0]["Next"]]
        assert failed == {
            "Type": "Fail",
            "Comment": "Carries the failed step's id and error out of the branch.",
            "Error": "StepFailed",
            "CausePath": "States.JsonToString($.failed)",
        }
    # The checked-in text keeps the timeout a bare number placeholder, as CloudFormation substitutes it
    assert '"TimeoutSeconds": ${StepTimeoutSeconds}' in to_text(
        compile_pipeline(load(tmp_path / "demo.yaml"))
    )
    assert json.loads(json.dumps(parsed))  # valid JSON after substitution


def test_a_catalog_step_sends_its_table_folder_run_partition_and_schema(tmp_path: Path) -> None:
    text = """
    pipeline: demo
    steps:
      extract: {job: extract_customers}
      register:
        needs: [extract]
        catalog:
          table: raw_demo
          location: raw/demo/
          partitions: {ingest_date: "{ingest_date}", run_id: "run-{run_id}"}
          columns_from: extract
          on_drift: crawl
          crawler: raw_customers
    """
    register = tasks(compiled(tmp_path, text))["register"]
    payload = register["Parameters"]["Payload"]
    assert (payload["kind"], payload["name"]) == ("catalog", "raw_demo")
    assert payload["catalog"] == {
        "database": "stack_catalog",
        "location": "s3://data-bucket/raw/demo/",
        "format": "parquet",
        "partitions": [
            {"name": "ingest_date", "value.$": "$.ingest_date"},
            {"name": "run_id", "value.$": "States.Format('run-{}', $.run_id)"},
        ],
        "on_drift": "crawl",
        "columns_from": "extract",
        "crawler": "stack_raw_customers",
    }
    assert "arguments" not in payload


def test_a_quality_step_sends_its_rules_and_what_they_check(tmp_path: Path) -> None:
    text = """
    pipeline: demo
    steps:
      extract: {job: extract_customers}
      gate:
        needs: [extract]
        quality: {summary_of: extract, rules: ["rows_written > 0"]}
      verify:
        needs: [gate]
        quality:
          table: raw_demo
          partition: {run_id: "{run_id}"}
          rules: ['RowCount > 0', {rule: 'IsComplete "id"', severity: warn}]
    """
    found = tasks(compiled(tmp_path, text))
    gate, verify = found["gate"]["Parameters"]["Payload"], found["verify"]["Parameters"]["Payload"]
    assert (gate["kind"], gate["name"]) == ("quality", "extract")
    assert gate["quality"] == {
        "rules": [{"rule": "rows_written > 0", "severity": "error"}],
        "summary_of": "extract",
    }
    assert (verify["kind"], verify["name"]) == ("quality", "raw_demo")
    assert verify["quality"] == {
        "rules": [
            {"rule": "RowCount > 0", "severity": "error"},
            {"rule": 'IsComplete "id"', "severity": "warn"},
        ],
        "database": "stack_catalog",
        "partition": [{"name": "run_id", "value.$": "$.run_id"}],
        "ruleset": "stack_demo_verify",
        "role": "arn:aws:iam::123456789012:role/stack-data-quality",
    }
