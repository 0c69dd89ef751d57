"""Measuring a child process: wall seconds and peak memory, the way every benchmark here counts them."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Sample:
    seconds: float
    peak_rss_mib: float


def measure(argv: list[str]) -> tuple[Sample, str]:
    """Run ``argv`` to completion: wall seconds, the child's peak RSS, and what it printed on stdout.

    Output goes to files, not pipes: a child that logs more than a pipe holds would block forever.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            error = err.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(argv[:4])} failed ({process.returncode}): {error[-2000:]}")
        return Sample(elapsed, usage.ru_maxrss / 1024), out.read().decode()


def percentile(samples: list[float], fraction: float) -> float:
    """The value below which `fraction` of the samples fall (linear interpolation between ranks)."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(fraction * 100) - 1]


def goal_table(checks: list[tuple[str, str, str, bool]]) -> list[str]:
    """Markdown rows: each goal, what was measured, the target, and whether it was met."""
    return [
        "",
        "| goal | measured | target | met |",
        "|---|---:|---:|:---:|",
        *[
            f"| {name} | {value} | {target} | {'yes' if met else 'NO'} |"
            for name, value, target, met in checks
        ],
        "",
    ]
