"""`make run`'s command as a user runs it: `gluerelay local run` in its own process, JSON out."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.cli_process import CLI

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_local_run_prints_the_cloud_and_the_run_as_json() -> None:
    done = subprocess.run(
        [CLI, "local", "run", "--rows", "400", "--files", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    cloud = document["local_cloud"]
    assert cloud["resources"] > 40
    assert cloud["endpoint"].startswith("http://127.0.0.1:")
    assert set(cloud["seconds"]) == {
        "imports",
        "template",
        "services",
        "deploy",
        "land",
        "report",
        "runs",
        "stop",
    }
    [run] = document["runs"]
    assert (run["run"]["status"], run["run"]["pipeline"]) == ("SUCCEEDED", "customers")
    assert run["rows"]["rows_read"] == 400
    assert [s["step"] for s in run["steps"]] == [
        "extract",
        "crawl_raw",
        "cleanse",
        "check_cleansed",
        "catalog_cleansed",
    ]
    assert [s["status"] for s in run["steps"]] == ["SUCCEEDED"] * 5
    assert [t["state"] for t in run["transitions"]][-1] == "Run succeeded"
    assert len(run["transitions"]) == run["state_transitions"]
    assert run["local"]["alarms_in_alarm"] == []
    assert run["local"]["lambda_invocations"]["StartStepFunction"] == 5


def test_local_run_refuses_a_jdbc_url_without_the_jdbc_source() -> None:
    done = subprocess.run(
        [CLI, "local", "run", "--jdbc-url", "jdbc:postgresql://db/x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "--jdbc-url needs --source jdbc" in done.stderr
