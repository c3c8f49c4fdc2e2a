"""A process's own peak RSS (zkml_dvc/peakrss.py): nothing of the process that started it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from zkml_dvc import peakrss

MB = 1024 * 1024

CHILD = textwrap.dedent("""
    import json, resource
    from zkml_dvc import peakrss
    print(json.dumps({"own": peakrss.peak_rss_bytes(),
                      "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""")


def _touch(n: int) -> bytearray:
    block = bytearray(n)
    for i in range(0, n, 4096):
        block[i] = 1
    return block


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_a_child_of_a_large_process_reports_only_its_own_peak() -> None:
    held = _touch(400 * MB)
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    del held
    report = json.loads(out.stdout)
    # the kernel's ru_maxrss carries the parent's peak into the child; VmHWM does not
    assert report["ru_maxrss"] > 400 * MB
    assert report["own"] < 200 * MB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="clear_refs is Linux's")
def test_reset_measures_the_peak_afresh() -> None:
    held = _touch(300 * MB)
    before = peakrss.peak_rss_bytes()
    assert before is not None and before > 300 * MB
    del held
    assert peakrss.reset()
    after = peakrss.peak_rss_bytes()
    assert after is not None and after < before - 200 * MB


def test_status_parsing() -> None:
    assert peakrss._vm_hwm("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n") == 2048 * 1024
    assert peakrss._vm_hwm("Name:\tpython\n") is None
