"""Driving DVC: reproduce the pipeline, read dvc.lock, push and pull outputs.

DVC runs in this process through its Python API (no extra interpreter start-up per call), on the
one DVC repository the command's ``Project`` holds open (``Project.dvc()``); the stage commands it
spawns are `zkml-dvc stage ...`, found on PATH next to this interpreter.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import env
from .dvclinks import single_copy
from .errors import (
    CircuitUnsatisfiedError,
    ConfigError,
    InsufficientMemoryError,
    PipelineError,
    StoreError,
    ZkmlError,
)
from .fsutil import load_yaml
from .remote import REMOTE_NAME, own_aws_files
from .uptodate import up_to_date

if TYPE_CHECKING:
    from .project import Project
    from .store import Store

LAST_ERROR = Path(".dvc") / "tmp" / "zkml-dvc" / "last-stage-error.txt"


def prepare_process_env() -> None:
    # Stage commands are `zkml-dvc ...`: make the one installed beside this Python reachable even
    # when the virtualenv is not activated. O3 refuses the default SDK checksum headers.
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path
    env.apply_o3_client_env()
    _dvc_logs_to_stderr()


def _dvc_logs_to_stderr() -> None:
    """DVC logs progress to stdout; ours is for results, so move its handlers to stderr."""
    import logging

    import dvc  # noqa: F401  (importing dvc installs its handlers)

    for name in ("dvc", "dvc_objects", "dvc_data"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)


_VERBOSE = False


def set_verbose(verbose: bool) -> None:
    """`zkml-dvc -v`: let DVC's own log lines through (transfers included)."""
    global _VERBOSE
    _VERBOSE = verbose


@contextlib.contextmanager
def _transfer_log_quiet() -> Iterator[None]:
    """DVC logs each failed transfer as an ERROR line before raising; the error we raise already
    names the cause, so keep the one-line promise unless -v (or ZKML_DVC_TRACEBACK) asks for more."""
    import logging

    if _VERBOSE or env.flag(env.TRACEBACK):
        yield
        return
    loggers = [logging.getLogger(n) for n in ("dvc", "dvc_objects", "dvc_data")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def open_repo(root: Path) -> Any:
    """The DVC repo at ``root`` (the caller closes it; ``Project.dvc()`` holds one per command)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    prepare_process_env()
    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise ConfigError(
            f"{root} is not a DVC repository", "Run `dvc init` there, or use `zkml-dvc init`."
        ) from None
    # zkml-dvc commits what its commands change (`run` commits and tags), so DVC's closing advice
    # "To track the changes with git, run: git add ..." would only mislead.
    repo.scm_context.quiet = True
    single_copy(repo)  # a proving key copied into DVC's cache once, not twice (dvclinks.py)
    return repo


def stage_name(stage: str, model: str) -> str:
    return f"{stage}@{model}"


def final_stage(project: Project, model: str) -> str:
    """The model's last stage: `metrics`, or `verify` in a project whose dvc.yaml predates it."""
    data = load_yaml((project.root / "dvc.yaml").read_text()) or {}
    return stage_name("metrics" if "metrics" in (data.get("stages") or {}) else "verify", model)


@dataclass
class Sync:
    """What a run exchanged with the store while DVC reproduced its stages (``repro_targets`` with
    a ``Sync``): stages whose outputs were fetched instead of recomputed, and stages whose outputs
    were pushed as soon as they were made."""

    fetched: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    pushed_files: int = 0
    # called with a stage's name after its outputs were pushed (the runner uploads the SRS there)
    after_push: Callable[[str], None] | None = None
    store: Store | None = None  # the same store root: large outputs go up at its full rate


def repro(project: Project, model: str, force_stage: str | None = None,
          sync: Sync | None = None) -> None:
    """Reproduce ``model``'s pipeline up to its final stage; with ``force_stage``, re-run that stage
    (and so everything after it) even if DVC thinks it is up to date."""
    repro_targets(project, [final_stage(project, model)],
                  stage_name(force_stage, model) if force_stage else None,
                  what=f"pipeline of {model}", sync=sync)


def _ran_here(stage: Any, since: float) -> bool:
    """Whether ``stage``'s command ran in this process's run (its stage record, one of its outputs,
    was written after ``since``), as opposed to DVC restoring its outputs from the run cache."""
    import json
    from datetime import datetime

    for out in stage.outs:
        path = Path(str(out.fs_path))
        if "reports/stages" in path.as_posix() and path.suffix == ".json":
            try:
                started = json.loads(path.read_text())["started"]
                return datetime.fromisoformat(started).timestamp() >= since
            except (OSError, ValueError, KeyError):
                return True
    return True


def _push_run_cache_entry(repo: Any, stage: Any) -> None:
    """Upload this stage's entry of DVC's run cache (which outputs these deps and params made),
    and only it: `dvc push --run-cache` re-uploads every entry the project ever made, on each call.
    Uses DVC's own key and layout (`dvc.stage.cache`, dvc 3.x), so `repro --pull` elsewhere finds it."""
    from dvc import fs as dvc_fs
    from dvc.stage.cache import _can_hash, _get_stage_hash

    if not _can_hash(stage):
        return
    local_dir = Path(repo.stage_cache._get_cache_dir(_get_stage_hash(stage)))
    if not local_dir.is_dir():
        return
    local = repo.cache.legacy
    remote = repo.cloud.get_remote_odb(REMOTE_NAME, "push --run-cache", hash_name="md5-dos2unix")
    for entry in sorted(local_dir.iterdir()):
        rel = entry.relative_to(local.path).as_posix()  # runs/<key[:2]>/<key>/<value>
        dvc_fs.generic.copy(local.fs, str(entry), remote.fs, remote.fs.join(remote.path, rel))


def _synced_repro_fn(repo: Any, sync: Sync) -> Any:
    """DVC's per-stage reproduce step, with the store. A stage that is unchanged but whose outputs
    are missing here is pulled (DVC's `repro --pull`); a stage that another machine already ran
    with the same deps and params is restored from DVC's run cache, which the store holds; a
    stage that really ran has its outputs and its run-cache entry pushed at once, so a crash later
    loses at most the stage that was running and another machine can pick up from there."""
    import time

    from dvc.repo.reproduce import _reproduce_stage

    def step(stage: Any, **kwargs: Any) -> Any:
        missing = any(not out.exists for out in stage.outs)
        since = time.time() - 1.0  # a margin for the clock's resolution
        ret = _reproduce_stage(stage, **kwargs)
        if ret is not None and _ran_here(stage, since):
            try:
                with _transfer_log_quiet():
                    from .prefetch import push_outs
                    sync.pushed_files += push_outs(sync.store, repo, list(stage.outs), lambda: (
                        repo.push(targets=[stage.addressing], remote=REMOTE_NAME)))
                    _push_run_cache_entry(repo, stage)
            except Exception as exc:  # noqa: BLE001 (DVC and botocore errors alike)
                raise StoreError(
                    f"stage {stage.addressing} ran, but pushing its outputs to remote "
                    f"'{REMOTE_NAME}' failed: {_dvc_reason(exc)}",
                    "Check the endpoint and credentials (`zkml-dvc remote show`), then re-run "
                    "`zkml-dvc run`: finished stages are not redone.") from exc
            sync.pushed.append(stage.addressing)
            if sync.after_push is not None:
                sync.after_push(stage.addressing)
        elif missing and stage.outs and all(out.exists for out in stage.outs):
            sync.fetched.append(stage.addressing)
        return ret

    return step


def repro_targets(project: Project, targets: list[str], force: str | None = None,
                  what: str = "pipeline", sync: Sync | None = None) -> None:
    """`dvc repro` of ``targets`` (with their upstream stages); ``force`` re-runs that one stage
    first even if DVC thinks it is up to date. With ``sync`` (a remote is set), outputs the store
    holds for the current dvc.lock are fetched instead of recomputed, and each stage's outputs
    are pushed when it succeeds (see ``_synced_repro_fn``)."""
    from dvc.exceptions import DvcException

    last_error = project.root / LAST_ERROR
    last_error.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        # the stage commands DVC runs (they inherit this environment) record a failure for us
        # to report once, naming the stage, instead of printing it too
        stack.enter_context(env.scoped(env.STAGE_QUIET, "1"))
        repo = stack.enter_context(project.dvc())
        kwargs: dict[str, Any] = {}
        if sync is not None:
            stack.enter_context(own_aws_files())
            # `repro_fn` is DVC's own hook for the per-stage step of `reproduce` (dvc exp uses it)
            kwargs = {"pull": True, "repro_fn": _synced_repro_fn(repo, sync)}
        try:
            if force:
                repo.reproduce(force, force=True, single_item=True, **kwargs)
            elif up_to_date(repo, targets):
                return  # what `dvc repro` would find, at the cost of `dvc status`
            for target in targets:
                repo.reproduce(target, **kwargs)
        except DvcException as exc:
            if isinstance(exc.__cause__, StoreError):
                raise exc.__cause__ from None
            failed = _failed_stage(str(exc)) or what
            stage_error = _read_stage_error(last_error)
            kind = _PASSED_THROUGH.get(str(stage_error.get("type")))
            if kind is not None:  # its own exit code and remedy, not "a stage failed"
                raise kind(f"stage {failed} failed: {stage_error['message']}",
                           str(stage_error.get("remedy", ""))) from exc
            detail = stage_error.get("one_line") or _dvc_reason(exc)
            raise PipelineError(
                f"stage {failed} failed: {detail}",
                "Fix the cause, then re-run `zkml-dvc run`: finished stages are not redone.",
            ) from exc


def fetch_unchanged(project: Project, names: list[str], sync: Sync) -> None:
    """Pull the outputs of the named stages that are unchanged but missing here (what
    `dvc repro --pull` does for a stage, for stages zkml-dvc runs itself: the Ray proofs)."""
    from dvc.exceptions import CheckoutError, DvcException
    from dvc.repo import lock_repo

    with own_aws_files(), project.dvc() as repo, _transfer_log_quiet(), lock_repo(repo):
        for name in names:
            stage = repo.stage.collect(name)[0]
            if all(out.exists for out in stage.outs) or stage.changed(allow_missing=True):
                continue
            try:
                repo.pull(targets=[name], remote=REMOTE_NAME)
                stage.checkout()
            except (CheckoutError, DvcException):
                continue  # not in the store: it is recomputed
            if all(out.exists for out in stage.outs):
                sync.fetched.append(name)


def commit_stages(project: Project, names: list[str]) -> None:
    """`dvc commit` of stages whose outputs were made outside `dvc repro` (the Ray proofs)."""
    with project.dvc() as repo:
        for name in names:
            repo.commit(name, force=True)


def push_targets(project: Project, targets: list[str]) -> int:
    """`dvc push` of the given outputs (what remote workers will read)."""
    from dvc.exceptions import DvcException

    with project.dvc() as repo, _transfer_log_quiet():
        try:
            return int(repo.push(targets=targets, remote=REMOTE_NAME) or 0)
        except DvcException as exc:
            raise StoreError(
                f"dvc push to remote '{REMOTE_NAME}' failed: {_dvc_reason(exc)}",
                "Check the endpoint and credentials (`zkml-dvc remote show`), then retry.",
            ) from exc


def _failed_stage(message: str) -> str | None:
    import re

    m = re.search(r"'([a-z_]+@[a-z0-9_-]+)'", message)
    return m.group(1) if m else None


# a stage's errors that `run` reports as themselves (their exit code and remedy), naming the stage
_PASSED_THROUGH: dict[str, type[ZkmlError]] = {
    cls.__name__: cls for cls in (CircuitUnsatisfiedError, InsufficientMemoryError)}


def record_stage_error(root: Path, exc: ZkmlError) -> None:
    """Leave a failed stage's error where `repro_targets` (in the process that ran DVC) finds it."""
    import json

    path = root / LAST_ERROR
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": type(exc).__name__, "message": exc.message,
                                "remedy": exc.remedy, "one_line": exc.one_line()}) + "\n")


def _read_stage_error(path: Path) -> dict[str, str]:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lock_outs(root: Path) -> dict[str, dict[str, Any]]:
    """Every output in dvc.lock: path -> {"md5", "size", "stage"}."""
    lock_path = root / "dvc.lock"
    if not lock_path.exists():
        return {}
    data = load_yaml(lock_path.read_text()) or {}
    outs: dict[str, dict[str, Any]] = {}
    for stage, body in (data.get("stages") or {}).items():
        for out in body.get("outs", []):
            outs[out["path"]] = {"md5": out.get("md5"), "size": out.get("size"), "stage": stage}
    return outs


def pull(project: Project, targets: list[str], store: Store | None = None,
         sha256_of: dict[str, str] | None = None) -> dict[str, str]:
    """`dvc pull` of the given outputs from the o3 remote (DVC does not check them against their
    md5 names: the caller checks their sha256), as a verifier who does not trust the clone: the
    AWS config and credentials files are the user's own, whatever the remote's ``configpath`` /
    ``credentialpath`` say (DVC re-reads its config on every operation, so the files are pinned
    through the environment DVC consults first). With ``store`` (the same store root), the store
    client first fetches the objects into DVC's cache (prefetch.py; checked against ``sha256_of``,
    {md5: sha256} from a run manifest); if all came, only the checkout runs. Returns {path: md5}
    (paths relative to the project) of the files copied or hard-linked from objects downloaded
    here and found to have ``sha256_of[md5]``; every other restored file is for the caller to check."""
    from dvc.exceptions import DvcException

    from .prefetch import checkout, fetch_objects, target_objects

    verified: set[str] = set()
    with own_aws_files(), project.dvc() as repo, _transfer_log_quiet():
        try:
            if store and fetch_objects(store, repo, target_objects(repo, targets), sha256_of,
                                       verified):
                copied = checkout(repo, targets)
                return {Path(os.path.relpath(path, repo.root_dir)).as_posix(): md5
                        for path, md5 in copied.items() if md5 in verified}
            _retry_transfers(lambda: repo.pull(targets=targets, remote=REMOTE_NAME))
        except DvcException as exc:
            raise StoreError(
                f"dvc pull from remote '{REMOTE_NAME}' failed: {_dvc_reason(exc)}",
                "Check that the run was pushed (`zkml-dvc push RUN_ID` on the producing machine) "
                "and that the endpoint and credentials are right.",
            ) from exc
    return {}


def drop_cache_object(project: Project, md5: str) -> None:
    """Remove DVC's cache object ``md5`` (one whose bytes were found not to be what they claim)."""
    with project.dvc() as repo:
        Path(repo.cache.local.oid_to_path(md5)).unlink(missing_ok=True)


TRANSFER_ROUNDS = 3


def _retry_transfers(transfer: Callable[[], Any]) -> Any:
    """Run a DVC push or pull again (at most TRANSFER_ROUNDS in all) while some files failed to
    transfer: DVC then moves only what is still missing. s3fs retries failed requests, but not a
    body cut short in its concurrent ranged download of a large file, which fails that file whole;
    what DVC did transfer is md5-checked either way."""
    from dvc.exceptions import DownloadError, UploadError

    for round_ in range(1, TRANSFER_ROUNDS + 1):
        try:
            return transfer()
        except (DownloadError, UploadError):
            if round_ == TRANSFER_ROUNDS:
                raise
    raise AssertionError("unreachable")


def _dvc_reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    parts: list[str] = []
    while cause is not None and len(parts) < 3:
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        if text and text not in parts:
            parts.append(text)
        cause = cause.__cause__ or cause.__context__
    return ": ".join(parts) or type(exc).__name__


def status_clean(project: Project, model: str) -> bool:
    """True if nothing in the model's pipeline would re-run."""
    with project.dvc() as repo:
        return not repo.status(targets=[final_stage(project, model)], with_deps=True)


def push_rev(project: Project, commit: str, at_head: bool, store: Store | None = None,
             large: dict[str, int] | None = None) -> int:
    """Every DVC object referenced at ``commit`` (a run's commit) into the store: at HEAD all by
    ``store``'s client where it can (prefetch.py); else the ``large`` ones first, then `dvc push`."""
    from dvc.exceptions import DvcException

    from .prefetch import push_outs, upload_large

    kwargs: dict[str, Any] = {} if at_head else {"revs": [commit], "workspace": False}
    with project.dvc() as repo, _transfer_log_quiet():
        def dvc_push() -> Any:
            return _retry_transfers(lambda: repo.push(remote=REMOTE_NAME, **kwargs))
        try:
            if at_head:  # the workspace's outputs: all by the store client if it can
                return push_outs(store, repo, list(repo.index.outs), dvc_push)
            if store is not None and large:
                upload_large(store, repo, large)
            return int(dvc_push() or 0)
        except DvcException as exc:
            raise StoreError(
                f"dvc push to remote '{REMOTE_NAME}' failed: {_dvc_reason(exc)}",
                "Check the endpoint and credentials (`zkml-dvc remote show`), then retry: "
                "uploads already finished are not repeated.",
            ) from exc
