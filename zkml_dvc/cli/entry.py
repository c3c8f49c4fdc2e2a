"""The `zkml-dvc` console script: the Click group, then an exit without the interpreter's teardown.

When a command has finished, Python would still tear its heap down object by object (DVC's and
boto3's modules, the DVC index, ruamel's trees): 0.2 s for the imports alone, 0.5 s after a
`pull`, measured on this project's machines, paid by every command and by every stage process of
a run. Nothing in it is needed: files are closed by the code that wrote them (atomic writes), and
the operating system reclaims the memory. So once ``run`` has run a command, and the interpreter
has joined every non-daemon thread and run every atexit handler registered after this module was
imported (the console script imports it first; atexit runs handlers last-registered first), stdout
and stderr are flushed and the process ends with ``os._exit`` and the command's exit code. A
process that imports this module without calling ``run`` exits as usual.
"""

from __future__ import annotations

import atexit
import os
import sys

_status: list[int] = []  # the exit code of the command ``run`` ran, once it has run one


def _code(value: object) -> int:
    """The process exit code of ``SystemExit(value)``, as the interpreter would compute it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    return 1  # a message: the interpreter prints it to stderr and exits 1


def _exit_now() -> None:
    if not _status:
        return
    if "logging" in sys.modules:  # flush its handlers, as its own (later-run) handler would
        sys.modules["logging"].shutdown()
    status = _status[0]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`zkml-dvc ... | head`): as Python does
            status = status or 120
    os._exit(status)


atexit.register(_exit_now)  # first: it runs after every handler registered later


def run() -> None:
    """The console script's entry point: ``main`` (standalone: it always ends in SystemExit)."""
    from .base import main

    _status.append(1)  # an exception escaping main is an internal error
    try:
        main.main()
    except SystemExit as exc:
        _status[0] = _code(exc.code)
        raise
