"""The `gluerelay` command as a user runs it: in its own process, against a local cloud's endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gluerelay.local.cloud import LocalCloud

CLI = str(Path(sys.executable).with_name("gluerelay"))


def cli_env(cloud: LocalCloud, endpoint: str | None = None, columns: str | None = "200") -> dict[str, str]:
    """The environment `gluerelay local up` tells an operator to export; output `columns` wide (None:
    COLUMNS unset, as in `gluerelay runs list | grep ...`)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "COLUMNS"},
        "AWS_ENDPOINT_URL": endpoint or cloud.endpoint,
        "AWS_DEFAULT_REGION": cloud.env.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def gluerelay(
    cloud: LocalCloud, *args: str, endpoint: str | None = None, columns: str | None = "200"
) -> subprocess.CompletedProcess[str]:
    """Run `gluerelay ARGS` to its end, its output piped."""
    env = cli_env(cloud, endpoint, columns)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


@contextmanager
def following(cloud: LocalCloud, *args: str) -> Iterator[Callable[[], list[str]]]:
    """Run a command that does not end by itself (`gluerelay logs --follow`); yields a function giving the
    lines it has printed so far, and stops it on leaving."""
    process = subprocess.Popen(
        [CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(cloud)
    )
    printed: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield lambda: list(printed)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)


def validate(project: Path) -> subprocess.CompletedProcess[str]:
    """`gluerelay pipelines validate --project PROJECT`: it needs no cloud."""
    return subprocess.run(
        [CLI, "pipelines", "validate", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    """A command's --json output, once it succeeded (its stderr names why when it did not)."""
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
