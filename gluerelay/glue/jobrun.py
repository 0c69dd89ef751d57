"""Run a Glue script as a local job run: a child process, as Glue runs each job in its own driver."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gluerelay.glue.runner import RESULT_ENV

JobRunState = Literal["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"]
STOP_POLL_SECONDS = 0.2  # how soon a stop request reaches the job's process
GLUE_JOBS_DIR = Path(__file__).resolve().parents[2] / "glue" / "jobs"


@dataclass(frozen=True)
class JobRunResult:
    job_name: str
    job_run_id: str
    state: JobRunState
    error_message: str | None
    started_on: float
    completed_on: float
    log_path: Path

    @property
    def execution_seconds(self) -> float:
        return self.completed_on - self.started_on


def new_job_run_id() -> str:
    """A Glue-shaped job run id (``jr_`` + 64 hex digits)."""
    return "jr_" + secrets.token_hex(32)


def script_path(job_name: str) -> Path:
    return GLUE_JOBS_DIR / f"{job_name}.py"


def _wait(
    process: subprocess.Popen[bytes], deadline: float | None, stop: threading.Event | None
) -> Literal["exited", "TIMEOUT", "STOPPED"]:
    while True:
        remaining = None if deadline is None else deadline - time.time()
        if remaining is not None and remaining <= 0:
            return "TIMEOUT"
        if stop is not None and stop.is_set():
            return "STOPPED"
        wait = STOP_POLL_SECONDS if stop is not None else remaining
        try:
            process.wait(timeout=wait if remaining is None or wait is None else min(wait, remaining))
        except subprocess.TimeoutExpired:
            continue
        return "exited"


def run_job(
    script: Path,
    arguments: Mapping[str, str],
    *,
    job_name: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
    log_dir: Path | None = None,
    job_run_id: str | None = None,
    stop: threading.Event | None = None,
) -> JobRunResult:
    """Run ``script`` with Glue job ``arguments`` (keys ``--name``) and wait for the outcome.

    The child inherits this process's environment plus ``env``; a run past ``timeout_seconds`` is
    killed and reported as TIMEOUT, as Glue does; setting ``stop`` kills it and reports STOPPED.
    """
    name = job_name or script.stem
    run_id = job_run_id or new_job_run_id()
    argv = [
        sys.executable,
        "-m",
        "gluerelay.glue.runner",
        str(script),
        "--JOB_NAME",
        name,
        "--JOB_RUN_ID",
        run_id,
    ]
    for key, value in arguments.items():
        if not key.startswith("--"):
            raise ValueError(f"Glue job argument names start with '--': {key!r}")
        argv += [key, value]
    logs = log_dir or Path(tempfile.gettempdir()) / "gluerelay" / "job-logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}-{run_id[:15]}.log"
    result_path = logs / f"{name}-{run_id[:15]}.result.json"
    child_env = {**os.environ, **(env or {}), RESULT_ENV: str(result_path)}
    started = time.time()
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=child_env)
        ended = _wait(process, started + timeout_seconds if timeout_seconds else None, stop)
        if ended != "exited":
            process.kill()
            process.wait()
            minutes = (timeout_seconds or 0) / 60
            message = f"Job run timed out after {minutes:g} minutes" if ended == "TIMEOUT" else None
            return JobRunResult(name, run_id, ended, message, started, time.time(), log_path)
    completed = time.time()
    if result_path.is_file():
        outcome = json.loads(result_path.read_text())
        result_path.unlink()
    else:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        outcome = {
            "state": "FAILED",
            "error": f"job process exited with status {process.returncode}: {tail[0]}",
        }
    return JobRunResult(name, run_id, outcome["state"], outcome.get("error"), started, completed, log_path)
