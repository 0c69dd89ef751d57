"""Measuring a child process: wall seconds and peak memory, the way every benchmark here counts them."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sample:
    seconds: float
    peak_rss_mib: float


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[Sample, str]:
    """Run ``argv`` to completion: wall seconds, the peak RSS of the child and its descendants (a JVM
    included; sampled every 50 ms), and what it printed on stdout.

    Not ``ru_maxrss``: Linux carries the parent's high-water mark into a forked child across exec, so a
    large benchmark process would lend every child its own size. Output goes to files, not pipes: a child
    that logs more than a pipe holds would block forever.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_rss_mib(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, _ = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            error = err.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(argv[:4])} failed ({process.returncode}): {error[-2000:]}")
        return Sample(elapsed, peak[0]), out.read().decode()


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


class TreeMemory:
    """Peak resident memory of this process and all its descendants together (Lambda workers, Glue job
    processes), sampled every `interval` seconds from /proc while the block runs."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="tree-memory")

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak_mib = max(self.peak_mib, tree_rss_mib(os.getpid()))
            if self._stop.wait(self.interval):
                return


def tree_rss_mib(root: int) -> float:
    """Resident memory of `root` and its descendants, in MiB (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[int(entry.name)] = pages
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree) * os.sysconf("SC_PAGE_SIZE") / 2**20
