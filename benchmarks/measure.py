"""Measuring helpers: a subprocess's wall time and peak memory, percentiles, summaries."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessRun:
    """One finished subprocess: wall seconds, peak RSS of it and its reaped children, output."""

    wall_s: float
    cpu_s: float  # user + system time of the process (less sensitive to other load than wall)
    max_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_process(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                timeout: float = 900.0) -> ProcessRun:
    """Run a command and wait for it with wait4(), which reports that child's own rusage.

    This is what `/usr/bin/time -f %M` reports: ru_maxrss of the process (and of any children it
    waited for), in KiB on Linux. The process is killed (its whole session) after `timeout` seconds.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
        timer = threading.Timer(timeout, _kill_session, args=(proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return ProcessRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0,
                          proc.returncode,
                          out.read().decode("utf-8", "replace"),
                          err.read().decode("utf-8", "replace"))


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews every figure)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
