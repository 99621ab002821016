"""The exit deadline: a process asked to stop ends within it, whatever holds it up."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A non-daemon thread that never ends: the interpreter waits for it before exiting, for ever.
STUCK = """
import signal, threading, time
from assistant.interfaces.shutdown import arm_exit_deadline
threading.Thread(target=lambda: time.sleep(3600), daemon=False).start()
arm_exit_deadline(signal.SIGTERM, {seconds})
print("armed", flush=True)
"""


def test_a_process_held_up_after_a_stop_request_ends_at_the_deadline():
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", STUCK.format(seconds=0.5)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + 15, proc.stderr
    assert proc.stdout.strip() == "armed"
    assert "did not stop within 0.5 s" in proc.stderr
    assert time.monotonic() - t0 < 30


def test_a_process_that_exits_in_time_is_not_held_up_by_the_deadline():
    script = ("import signal; from assistant.interfaces.shutdown import arm_exit_deadline; "
              "arm_exit_deadline(signal.SIGTERM, 60); print('done')")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    assert time.monotonic() - t0 < 30  # the 60 s timer did not keep it alive
