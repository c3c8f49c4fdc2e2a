"""`zkml-dvc run` runs the commands of its light stages in its own process.

dvc.yaml's commands are ``zkml-dvc stage NAME --model M [--chunk C]``, and plain `dvc repro` runs
each as a new process. While `zkml-dvc run` reproduces, DVC still decides what runs, hashes deps
and outputs, caches them and writes dvc.lock exactly as for `dvc repro`; only the command of a
light stage is run here, by the function `zkml-dvc stage` itself calls (``stages.run_stage``),
which spares a process start and the imports of ezkl and pydantic per stage.

The stages that build proving structures keep their own process: keygen, proving and the mock
prover (setup, prove, mock, chunk_setup, chunk_prove). Their memory then leaves with their
process instead of staying with this one while the next stage runs, and their records report
their own process's peak memory (the estimate fits to it). A light stage's record has no peak.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import ZkmlError, exit_code_for

if TYPE_CHECKING:
    from .project import Project

LIGHT_STAGES = frozenset({"settings", "calibrate", "compile", "srs", "witness", "verify", "evm",
                          "metrics", "chunk_plan", "chunk_compile", "chunk_witness",
                          "chunk_verify"})


def parse_stage_command(cmd: Any) -> tuple[str, str, int | None] | None:
    """(stage, model, chunk) of a ``zkml-dvc stage`` command exactly as dvc.yaml writes it; None
    for anything else (a user's own command, or one with options this does not know)."""
    if not isinstance(cmd, str):
        return None
    try:
        parts = shlex.split(cmd)
    except ValueError:
        return None
    if len(parts) not in (5, 7) or parts[:2] != ["zkml-dvc", "stage"] or parts[3] != "--model":
        return None
    chunk = None
    if len(parts) == 7:
        if parts[5] != "--chunk" or not parts[6].isdigit():
            return None
        chunk = int(parts[6])
    return parts[2], parts[4], chunk


@contextmanager
def light_stages_here(project: Project, on_error: Callable[[ZkmlError], None]) -> Iterator[None]:
    """For the block: DVC runs the command of a light zkml-dvc stage by calling it here. A
    stage's ZkmlError goes to ``on_error`` and DVC sees the exit code the command would have
    returned, so a failure is reported exactly as for a stage process."""
    import dvc.stage.run as dvc_run
    from dvc.stage.exceptions import StageCmdFailedError

    original = dvc_run.cmd_run

    def cmd_run(stage: Any, dry: bool = False, run_env: Any = None) -> None:
        parsed = parse_stage_command(stage.cmd)
        if dry or parsed is None or parsed[0] not in LIGHT_STAGES:
            original(stage, dry=dry, run_env=run_env)
            return
        name, model, chunk = parsed
        try:
            _run_here(project, name, model, chunk)
        except ZkmlError as exc:
            on_error(exc)
            raise StageCmdFailedError(stage.cmd, exit_code_for(exc)) from None

    dvc_run.cmd_run = cmd_run
    try:
        yield
    finally:
        dvc_run.cmd_run = original


def _run_here(project: Project, name: str, model: str, chunk: int | None) -> None:
    from .stages import run_stage

    # As in `zkml-dvc stage`: ezkl prints reports on stdout, which is not a stage's result.
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        run_stage(project, name, model, chunk, own_process=False)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        _release_freed_memory()


def _release_freed_memory() -> None:
    """Give the heap a stage freed back to the system (glibc keeps it otherwise), so this process
    holds less while the next stage's own process (a setup or prove) runs beside it."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, looked up once in the symbols already loaded; None elsewhere."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
