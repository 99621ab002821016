"""Stopping on request (SIGTERM, Ctrl+C): promptly, completely, and within a bounded time.

A signal is turned into a normal exit (`KeyboardInterrupt`, `SystemExit`, or uvicorn's graceful
shutdown), so a local model server is stopped on the way out by `atexit`. Two things can defeat a
normal exit, and each has its own guard here:

- **The exception is lost.** Python runs a signal handler in the main thread between two
  bytecodes; when those happen to be inside a `__del__` (the garbage collector finalising an
  asyncio event loop while the UI is built, say), the exception it raises is printed as
  "Exception ignored in ..." and dropped, and the program goes on as if nothing had been asked.
  So the handlers installed here also *record* the request: `stop_requested()` tells a long-running
  loop (the server's tick) to stop anyway.
- **The exit waits on something that does not end**: a library's non-daemon thread (the
  interpreter joins those before `atexit` runs), or a web framework's shutdown step. So the first
  stop request also arms a deadline: if the process is still alive `EXIT_DEADLINE_S` later, the
  local model servers are killed and the process ends at once with the signal's exit status.

No orphan server, and no process that outlives its stop request by more than the deadline.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

EXIT_DEADLINE_S = 10.0
_armed = threading.Event()
_requested: list[int] = []  # the signals received since the handlers were installed


def install_stop_handlers() -> Callable[[], None] | None:
    """Handle SIGINT and SIGTERM (unless ignored): record the request, arm the deadline, then
    raise `KeyboardInterrupt` (SIGINT) or `SystemExit(128 + signum)` (SIGTERM). A function that
    puts the previous handlers back; None off the main thread (where none can be installed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _requested.clear()

    def on_signal(signum: int, frame: Any) -> None:
        _requested.append(signum)
        arm_exit_deadline(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    # a signal ignored at start stays ignored: a non-interactive shell starts `cmd &` with SIGINT
    # ignored so that Ctrl+C in the terminal does not reach it (Python keeps that too)
    previous = {
        sig: signal.signal(sig, on_signal)
        for sig in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(sig) is not signal.SIG_IGN
    }

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def stop_requested() -> int | None:
    """The first stop signal received since `install_stop_handlers`, or None."""
    return _requested[0] if _requested else None


def arm_exit_deadline(signum: int, seconds: float = EXIT_DEADLINE_S) -> None:
    """After `seconds`, kill the local model servers and end the process (status 128+signum).
    Only the first call counts; the timer is a daemon thread, so a process that exits in time
    is not held up by it. Nothing it does on expiry takes a lock another thread may hold."""
    if _armed.is_set():
        return
    _armed.set()

    def force() -> None:
        try:
            os.write(2, f"The process did not stop within {seconds:g} s of the stop request; "
                        "stopping it now.\n".encode())
            from assistant.llm.local import kill_all

            kill_all()
        finally:
            os._exit(128 + signum)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.name = "assistant-exit-deadline"
    timer.start()
