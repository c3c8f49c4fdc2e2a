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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def prove_all(tasks: list[ProveTask], ray_address: str | None = None,
              progress: ProgressFn | None = None) -> list[ProveResult]:
    """Prove every task as one Ray task each; with ``ray_address`` join that cluster, else start
    (and stop) a local Ray instance. Results in chunk order."""
    if not tasks:
        return []
    import ray

    say = progress or (lambda _msg: None)
    started_here = False
    try:
        if not ray.is_initialized():
            # address="local" always starts a new instance (a bare ray.init() would join a
            # cluster that `ray start` left running on this machine).
            kwargs: dict[str, Any] = {"address": ray_address} if ray_address else {
                "address": "local", "num_cpus": max(len(tasks), os.cpu_count() or 1),
                "include_dashboard": False}
            ray.init(logging_level=logging.ERROR, log_to_driver=False, **kwargs)
            started_here = True
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
        where = ray_address or "a local instance"
        raise ConfigError(f"cannot start or join Ray at {where}: {str(exc).splitlines()[0]}",
                          "Check --ray-address (host:port of the head node, or `auto`).") from None
    try:
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
    finally:
        if started_here:
            ray.shutdown()
