"""A bounded exit once the user has asked the process to stop (SIGTERM, Ctrl+C).

A signal is turned into a normal exit (`SystemExit`, or uvicorn's graceful shutdown), so a local
model server is stopped on the way out by `atexit`. A normal exit can still wait on something
that does not end: a library's non-daemon thread (the interpreter joins those before `atexit`
runs), or a web framework's shutdown step. So the first stop request also arms a deadline: if
the process is still alive `EXIT_DEADLINE_S` later, the local model servers are stopped and the
process ends at once with the signal's exit status. No orphan server, and no process that
outlives its stop request by more than the deadline, whichever library holds it up.
"""

from __future__ import annotations

import os
import sys
import threading

EXIT_DEADLINE_S = 10.0
_armed = threading.Event()


def arm_exit_deadline(signum: int, seconds: float = EXIT_DEADLINE_S) -> None:
    """After `seconds`, stop the local model servers and end the process (status 128+signum).
    Only the first call counts; the timer is a daemon thread, so a process that exits in time
    is not held up by it."""
    if _armed.is_set():
        return
    _armed.set()

    def force() -> None:
        try:
            print(f"The process did not stop within {seconds:g} s of the stop request; "
                  "stopping it now.", file=sys.stderr, flush=True)
            from assistant.llm.local import stop_all

            stop_all()
        finally:
            os._exit(128 + signum)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.name = "assistant-exit-deadline"
    timer.start()
