"""A process's own peak resident memory, with nothing of another process counted in it.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not that on Linux: the kernel carries it across ``fork``
and ``exec``, so a process started by a large one (a stage started by DVC, a benchmark's prover
started by a driver that had made keys) reports at least its parent's peak at the time it was
started. The high-water mark of the process's own address space (``VmHWM`` in
``/proc/self/status``) starts afresh at ``exec``, and writing ``5`` to ``/proc/self/clear_refs``
resets it to the current size, so a long-lived Ray worker can measure one task. Elsewhere (no
/proc) ``ru_maxrss`` is the fallback.
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _vm_hwm(status: str) -> int | None:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024  # kB
    return None


def peak_rss_bytes() -> int | None:
    """This process's peak RSS in bytes since it started (or since ``reset()``)."""
    try:
        found = _vm_hwm(_STATUS.read_text())
    except OSError:
        found = None
    if found is not None:
        return found
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux


def reset() -> bool:
    """Start measuring the peak afresh from now (Linux >= 4.0); False where it cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
