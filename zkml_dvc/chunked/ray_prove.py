"""Proving a chunked model's chunks in parallel as Ray tasks.

Witnesses are made first, in order (each chunk's input is the previous chunk's output); the proofs
are independent, so each is one Ray task. A task gets, for each file it needs, the file's sha256
and size plus two ways to obtain it: a path on the driver's machine (used when it exists there
with that hash: a local Ray instance) and its content-addressed key in the store (used otherwise:
workers on other machines read the store with their own credentials; none are sent to them).
The task returns the proof's bytes; the driver checks them and writes them into the workspace.

Each worker process uses its own EZKL_REPO_PATH, so ezkl's per-directory lock (ezkl_adapter) does
not serialise workers that share a machine.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, PipelineError, ZkmlError

ProgressFn = Callable[[str], None]


@dataclass
class FileRef:
    name: str
    sha256: str
    size: int
    local_path: str | None = None
    store_key: str | None = None  # relative to the store root


@dataclass
class StoreRef:
    """Where workers find the store (no credentials: workers use their own environment)."""

    url: str
    endpoint: str | None
    region: str | None


@dataclass
class ProveTask:
    index: int
    witness: FileRef
    compiled: FileRef
    pk: FileRef
    srs: FileRef
    store: StoreRef | None = None


@dataclass
class ProveResult:
    index: int
    proof: bytes
    seconds: float
    max_rss_bytes: int
    fetched: dict[str, str] = field(default_factory=dict)  # file -> "local" | "store"


def _materialize(ref: FileRef, store: StoreRef | None, scratch: Path) -> tuple[Path, str]:
    from ..fsutil import sha256_file

    if ref.local_path:
        p = Path(ref.local_path)
        if p.is_file() and p.stat().st_size == ref.size and sha256_file(p) == ref.sha256:
            return p, "local"
    if store is None or ref.store_key is None:
        raise ConfigError(
            f"chunk input {ref.name} is not on this worker and no store is configured",
            "Configure the project's remote (`zkml-dvc remote set`) so workers can read the store.",
        )
    from ..remote import store_from_config

    s = store_from_config(store.url, endpoint=store.endpoint, region=store.region)
    return s.get_file(ref.store_key, scratch / ref.name, ref.sha256, use_cache=False), "store"


def prove_task(task: ProveTask) -> ProveResult:
    """Run on a Ray worker: obtain the inputs (checked by sha256), prove, return the proof."""
    if not os.environ.get("EZKL_REPO_PATH"):
        # one private (0700, unpredictable) ezkl directory per worker process
        os.environ["EZKL_REPO_PATH"] = tempfile.mkdtemp(prefix="zkml-dvc-ezkl-worker-")
    from .. import ezkl_adapter

    with tempfile.TemporaryDirectory(prefix=f"zkml-chunk{task.index}-") as td:
        scratch = Path(td)
        paths: dict[str, Path] = {}
        fetched: dict[str, str] = {}
        for ref in (task.witness, task.compiled, task.pk, task.srs):
            paths[ref.name], fetched[ref.name] = _materialize(ref, task.store, scratch)
        proof = scratch / "proof.json"
        t0 = time.monotonic()
        ezkl_adapter.prove(paths[task.witness.name], paths[task.compiled.name],
                           paths[task.pk.name], proof, paths[task.srs.name])
        seconds = time.monotonic() - t0
        return ProveResult(index=task.index, proof=proof.read_bytes(), seconds=round(seconds, 3),
                           max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                           fetched=fetched)


# Environment of a local Ray instance, set while it runs and restored after. Ray reads these in the
# driver when it is imported and passes them to every process it starts:
# - RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes the node address the loopback one, and Ray's servers
#   (GCS, raylet, workers, object manager, agents) then listen on 127.0.0.1 only;
# - RAY_AUTH_MODE=token with a fresh random RAY_AUTH_TOKEN: every RPC must carry the token (Ray >= 2.52).
# Ray deserialises task results with cloudpickle: whoever can reach its ports can run code.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    """Start a private Ray instance for this process: loopback only, token-authenticated, no
    dashboard; stopped and the environment restored on exit."""
    import secrets
    import shutil

    # Ray's session files and sockets, and (through TMPDIR, which its processes inherit) every
    # worker's scratch: under one private (0700) directory, removed with the instance. Created
    # first, so this process's own tempfile location is settled before TMPDIR changes. Unix
    # socket paths are limited to 107 bytes: a long TMPDIR falls back to /tmp.
    base = tempfile.gettempdir()
    scratch = tempfile.mkdtemp(prefix="zkml-ray-", dir=base if len(base) <= 40 else "/tmp")
    saved = {k: os.environ.get(k) for k in (_LOOPBACK_ENV, *_AUTH_ENV, "TMPDIR")}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update({_LOOPBACK_ENV: "0", "RAY_AUTH_MODE": "token",
                       "RAY_AUTH_TOKEN": secrets.token_hex(32), "TMPDIR": scratch})
    try:
        import ray
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            # Ray was imported before the variable was set (by the caller's own code).
            raise ConfigError("cannot start a loopback-only Ray instance: Ray was imported before "
                              "zkml-dvc configured it",
                              "Set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or "
                              "pass --ray-address to use a cluster you run.")
        try:
            # address="local" always starts a new instance (a bare ray.init() would join a
            # cluster that `ray start` left running on this machine).
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False,
                     _temp_dir=os.path.join(scratch, "ray"))  # Ray makes its own dir 0777
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            raise ConfigError(f"cannot start a local Ray instance: {str(exc).splitlines()[0]}",
                              "Check that no other Ray instance holds this machine's resources, "
                              "or pass --ray-address.") from None
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(scratch, ignore_errors=True)


def _unauthenticated_warning(ray_address: str) -> str | None:
    if os.environ.get("RAY_AUTH_MODE", "disabled") == "token":
        return None
    return (f"joining Ray at {ray_address} without token authentication (RAY_AUTH_MODE is not "
            "'token'): anyone who reaches the cluster's ports can run code on its workers and "
            "alter proofs before they are checked. Enable Ray token authentication "
            "(RAY_AUTH_MODE=token on every node, Ray >= 2.52).")


@contextmanager
def _joined(ray_address: str, say: ProgressFn) -> Iterator[None]:
    import ray

    warning = _unauthenticated_warning(ray_address)
    if warning:
        say(f"warning: {warning}")
    try:
        ray.init(address=ray_address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:
        raise ConfigError(f"cannot join Ray at {ray_address}: {str(exc).splitlines()[0]}",
                          "Check --ray-address (host:port of the head node, or `auto`) and, with "
                          "token authentication, RAY_AUTH_TOKEN.") from None
    try:
        yield
    finally:
        ray.shutdown()


def prove_all(tasks: list[ProveTask], ray_address: str | None = None,
              progress: ProgressFn | None = None) -> list[ProveResult]:
    """Prove every task as one Ray task each; with ``ray_address`` join that cluster, else start
    (and stop) a private local Ray instance (`local_ray`); a session the caller already opened is
    used as it is. Results in chunk order."""
    if not tasks:
        return []
    say = progress or (lambda _msg: None)
    ray = sys.modules.get("ray")  # not imported here: local_ray must set Ray's variables first
    if ray is not None and ray.is_initialized():  # the caller's own session: theirs to run
        return _prove_on_ray(tasks, say)
    session = (_joined(ray_address, say) if ray_address
               else local_ray(max(len(tasks), os.cpu_count() or 1)))
    with session:
        return _prove_on_ray(tasks, say)


def _prove_on_ray(tasks: list[ProveTask], say: ProgressFn) -> list[ProveResult]:
    import ray

    remote = ray.remote(num_cpus=1, max_retries=1)(prove_task)
    pending = {remote.remote(t): t.index for t in tasks}
    say(f"proving {len(tasks)} chunks on Ray "
        f"({int(ray.cluster_resources().get('CPU', 0))} CPUs)")
    results: dict[int, ProveResult] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done[0])
        try:
            res = ray.get(done[0])
        except Exception as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ZkmlError):
                raise PipelineError(f"chunk {index}: {cause.one_line()}",
                                    "Fix the cause and re-run `zkml-dvc run`.") from None
            raise PipelineError(f"chunk {index} failed on Ray: {str(exc).splitlines()[0]}",
                                "Re-run `zkml-dvc run`; finished chunks are not redone.") from None
        results[index] = res
        say(f"chunk {index} proved in {res.seconds:.1f}s "
            f"({len(results)}/{len(tasks)}; inputs from {sorted(set(res.fetched.values()))})")
    return [results[i] for i in sorted(results)]
