"""The `gluerelay` command as a user runs it: in its own process, against a local cloud's endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gluerelay.local.cloud import LocalCloud

CLI = str(Path(sys.executable).with_name("gluerelay"))


def gluerelay(
    cloud: LocalCloud, *args: str, endpoint: str | None = None, columns: str | None = "200"
) -> subprocess.CompletedProcess[str]:
    """Run `gluerelay ARGS` with the environment `gluerelay local up` tells an operator to export; its
    output is piped, `columns` wide (None: COLUMNS unset, as in `gluerelay runs list | grep ...`)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "COLUMNS"},
        "AWS_ENDPOINT_URL": endpoint or cloud.endpoint,
        "AWS_DEFAULT_REGION": cloud.env.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def validate(project: Path) -> subprocess.CompletedProcess[str]:
    """`gluerelay pipelines validate --project PROJECT`: it needs no cloud."""
    return subprocess.run(
        [CLI, "pipelines", "validate", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
