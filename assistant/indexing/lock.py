"""The ingest lock: one ingest writes an index folder at a time."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from assistant.errors import IndexBusyError
from assistant.fileio import pid_alive

log = logging.getLogger(__name__)

LOCK = ".ingest.lock"


@contextlib.contextmanager
def ingest_lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the index's ingest lock; wait up to `timeout` seconds for another ingest to end.

    An advisory `flock` on `.ingest.lock`: the kernel releases it when its holder exits, even
    after `kill -9`, so a crash never leaves the index locked.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    path = index_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(path)
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"Another ingest ({holder}) is writing the index in {index_dir}.",
                        "Wait for it to finish and run the command again, or raise "
                        "ASSISTANT_INGEST_LOCK_TIMEOUT (seconds to wait).",
                    ) from None
                if not waited:
                    log.warning("Waiting for another ingest (%s) of %s to end.", holder, index_dir)
                    waited = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # still ours: the next waiter sees no stale pid
    finally:
        os.close(fd)  # releases the lock


def _lock_holder(path: Path) -> str:
    """"pid N" when the file names a live process, else "another process": a holder killed with
    `kill -9` leaves its pid behind, and a new holder writes its own only once it has the lock."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return "another process"
    word, _, number = text.partition(" ")
    if word != "pid" or not number.isdigit() or not pid_alive(int(number)):
        return "another process"
    return f"pid {number}"
