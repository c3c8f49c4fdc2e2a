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
That process is not started afresh, though: it is forked from a server process (Python's
``forkserver``, started at the run's first stage command that is heavy or has a heavy stage
downstream, so that it starts beside DVC's work) that has already imported the stage code and
ezkl, and it runs the same `zkml-dvc stage` command line there, in the directory and with the
environment DVC gives the command, with DVC ignoring Ctrl-C meanwhile as it does for its own
process: what a new process would spend on starting the interpreter and those imports is spent
once per run instead of once per stage (and not at all by a run whose stages are all light).

DVC's rewrite of dvc.lock after each stage is spared its parse of the text it wrote last
(``lockfile_memo``): the file it writes is the same.
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
HEAVY_STAGES = frozenset({"setup", "prove", "mock", "chunk_setup", "chunk_prove"})
# the light stages with a heavy one downstream in dvc.yaml (verify, evm, metrics and chunk_verify
# have none)
LEAD_TO_HEAVY = frozenset({"settings", "calibrate", "compile", "srs", "witness", "chunk_plan",
                           "chunk_compile", "chunk_witness"})
# what the forked stage processes would import first (the server imports them once)
_PRELOAD = ["zkml_dvc.cli.base", "zkml_dvc.cli.pipeline", "zkml_dvc.stages", "zkml_dvc.estimate",
            "ezkl"]


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

    original, original_run = dvc_run.cmd_run, dvc_run._run
    forks = _Forks()

    def cmd_run(stage: Any, dry: bool = False, run_env: Any = None) -> None:
        parsed = parse_stage_command(stage.cmd)
        if not dry and parsed is not None and not forks.started and _heavy_follows(parsed[0]):
            forks.start()
        if dry or parsed is None or parsed[0] not in LIGHT_STAGES:
            original(stage, dry=dry, run_env=run_env)
            return
        name, model, chunk = parsed
        try:
            _run_here(project, name, model, chunk)
        except ZkmlError as exc:
            on_error(exc)
            raise StageCmdFailedError(stage.cmd, exit_code_for(exc)) from None

    def run_command(executable: Any, cmd: Any, **kwargs: Any) -> None:
        parsed = parse_stage_command(cmd)
        if parsed is None or parsed[0] not in HEAVY_STAGES or not forks.started:
            original_run(executable, cmd, **kwargs)
            return
        code = forks.run(shlex.split(cmd)[1:], dict(kwargs["env"]), str(kwargs["cwd"]))
        if code != 0:
            raise StageCmdFailedError(cmd, code)

    dvc_run.cmd_run, dvc_run._run = cmd_run, run_command
    try:
        yield
    finally:
        dvc_run.cmd_run, dvc_run._run = original, original_run


@contextmanager
def lockfile_memo() -> Iterator[None]:
    """For the block: DVC's rewrite of dvc.lock after each stage (parse the whole file in
    ruamel's round-trip mode, several times slower than its plain parse, update the stage's entry,
    dump) starts from the document it dumped last when the file still holds exactly the text it
    dumped, instead of parsing that text again. What is written is what DVC writes: its parser
    when the text differs, its dumper, the same file, opened as DVC opens it."""
    import io

    import dvc.dvcfile as dvcfile

    try:  # DVC's own reader and dumper (private: a DVC without them keeps its own rewrite)
        from dvc.utils.serialize._common import _load_data
        from dvc.utils.serialize._yaml import _dump, parse_yaml_for_update
    except ImportError:
        yield
        return
    original = dvcfile.modify_yaml
    last: dict[str, tuple[str, Any]] = {}  # path -> (the text dumped there, its document)

    @contextmanager
    def modify_yaml(path: Any, fs: Any = None) -> Iterator[Any]:
        if fs is None or getattr(fs, "protocol", None) != "local":
            with original(path, fs=fs) as theirs:
                yield theirs
            return
        key = os.fspath(path)
        held = last.pop(key, None)  # used once: the block below may change it, then fail
        if not fs.exists(key):
            data: Any = {}
        elif held is not None and _read_text(fs, key) == held[0]:
            data = held[1]
        else:
            data = _load_data(key, parser=parse_yaml_for_update, fs=fs)
        yield data
        stream = io.StringIO()
        _dump(data, stream)
        text = stream.getvalue()
        with fs.open(key, "w+", encoding="utf-8") as fd:
            fd.write(text)
        last[key] = (text, data)

    dvcfile.modify_yaml = modify_yaml
    try:
        yield
    finally:
        dvcfile.modify_yaml = original


def _read_text(fs: Any, path: str) -> str | None:
    try:
        with fs.open(path, encoding="utf-8") as fd:
            return str(fd.read())
    except (OSError, UnicodeDecodeError):
        return None


def _heavy_follows(name: str) -> bool:
    """Whether the stage ``name`` is heavy or, in dvc.yaml's graph, has a heavy stage downstream:
    one that will most likely run next, since a stage that runs changes what its consumers
    depend on (tested against DVC's graph of dvc.yaml)."""
    return name in HEAVY_STAGES or name in LEAD_TO_HEAVY


class _Forks:
    """Stage processes forked from a server that has imported the stage code and ezkl."""

    def __init__(self) -> None:
        self._context: Any = None
        self._failed = False

    @property
    def started(self) -> bool:
        return self._context is not None

    def start(self) -> None:
        """Start the server (it imports in its own process: this one goes on at once)."""
        if self._context is None and not self._failed:
            import multiprocessing
            from multiprocessing import forkserver

            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(_PRELOAD)
                forkserver.ensure_running()
            except (ValueError, OSError):  # no fork here: each stage starts its own process
                self._failed = True
                return
            self._context = context

    def run(self, argv: list[str], environ: dict[str, str], cwd: str) -> int:
        """``zkml-dvc ARGV...`` in a forked process; its exit code (negative: the signal that
        ended it), as the command's own process would end."""
        import signal
        import threading

        process = self._context.Process(target=_stage_process, args=(argv, environ, cwd),
                                        name="zkml-dvc stage")
        process.start()
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            process.join()
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        return int(process.exitcode if process.exitcode is not None else 1)


def _stage_process(argv: list[str], environ: dict[str, str], cwd: str) -> None:
    """The body of a forked stage process: the command line, as its own process would run it."""
    from .cli.base import main

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    sys.argv = ["zkml-dvc", *argv]
    main.main(args=argv, prog_name="zkml-dvc")  # ends in SystemExit, with the exit code


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
