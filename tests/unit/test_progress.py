"""The elapsed-time line of long ezkl steps: on a terminal only, erased when the step ends."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

SNIPPET = """
import time
from zkml_dvc.progress import elapsed_line
with elapsed_line("setup@mlp (logrows 15)", after_s=0.2):
    time.sleep(1.4)
print("done")
"""


def _run(stderr_tty: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ZKML_DVC_NO_PROGRESS"}
    if not stderr_tty:
        proc = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True,
                              env=env, timeout=60, check=True)
        return proc.stderr
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", SNIPPET], stdout=subprocess.DEVNULL,
                            stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode()


def test_a_terminal_sees_the_stage_its_logrows_and_the_seconds_then_a_cleared_line() -> None:
    shown = _run(stderr_tty=True)
    assert "setup@mlp (logrows 15): 1 s elapsed" in shown, repr(shown)
    assert shown.endswith("\r\x1b[2K"), repr(shown[-20:])


def test_a_pipe_sees_nothing() -> None:
    assert _run(stderr_tty=False) == ""
