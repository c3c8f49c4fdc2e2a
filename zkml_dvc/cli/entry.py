"""The `zkml-dvc` console script: the Click group, then an exit without the interpreter's teardown.

When a command has finished, Python would still tear its heap down object by object (DVC's and
boto3's modules, the DVC index, ruamel's trees): 0.2 s for the imports alone, 0.5 s after a
`pull`, measured on this project's machines, paid by every command and by every stage process of
a run. Nothing in it is needed: files are closed by the code that wrote them (atomic writes), and
the operating system reclaims the memory. So after the command, once every non-daemon thread has
been joined and every atexit handler has run (the interpreter does both before calling the handler
registered here, which is registered first and so runs last), stdout and stderr are flushed and the
process ends with ``os._exit`` and the command's exit code.
"""

from __future__ import annotations

import atexit
import os
import sys

from .base import main


def _code(value: object) -> int:
    """The process exit code of ``SystemExit(value)``, as the interpreter would compute it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    return 1  # a message: the interpreter prints it to stderr and exits 1


def _exit_now(code: list[int]) -> None:
    if "logging" in sys.modules:  # its own atexit handler was registered before this one
        sys.modules["logging"].shutdown()
    status = code[0]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`zkml-dvc ... | head`): as Python does
            status = status or 120
    os._exit(status)


def run() -> None:
    """The console script's entry point: ``main`` (standalone: it always ends in SystemExit)."""
    code = [1]  # an exception escaping main is an internal error
    atexit.register(_exit_now, code)
    try:
        main.main()
    except SystemExit as exc:
        code[0] = _code(exc.code)
        raise
