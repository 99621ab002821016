"""A real `chroma run` server on a free loopback port: one launcher for the benchmarks and the
server-mode tests (tests/test_server_mode.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chroma_executable() -> str:
    candidate = Path(sys.executable).with_name("chroma")
    return str(candidate) if candidate.exists() else "chroma"


class ChromaServer:
    """`chroma run --path DIR --host 127.0.0.1 --port P`, which can be stopped and started again."""

    def __init__(self, path: Path, port: int | None = None, log_path: Path | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or path.parent / f"chroma-{self.port}.log"
        self.startup_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 60.0) -> ChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [chroma_executable(), "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.alive():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"chroma run did not start on port {self.port}; see {self.log_path}")
            time.sleep(0.1)  # polling a child process's start-up, not a test delay
        self.startup_s = time.perf_counter() - t0
        return self

    def alive(self) -> bool:
        try:
            with _LOOPBACK.open(f"{self.url}/api/v2/heartbeat", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def peak_rss_mib(self) -> float | None:
        """The server process's peak resident memory so far (VmHWM), if readable."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass


@contextmanager
def chroma_server(path: Path, log_path: Path, *, timeout: float = 60.0) -> Iterator[ChromaServer]:
    """A started server for the length of a `with` block."""
    server = ChromaServer(path, log_path=log_path).start(timeout)
    try:
        yield server
    finally:
        server.stop()
