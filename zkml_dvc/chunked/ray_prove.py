"""Proving a chunked model's chunks in parallel as Ray tasks.

Witnesses are made first, in order (each chunk's input is the previous chunk's output); the proofs
are independent, so each is one Ray task. A task obtains its files as ``raywork.materialize``
says (the driver's copy if it has the recorded hash, else the store) and returns the proof's
bytes; the driver checks them and writes them into the workspace.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import peakrss
from ..errors import PipelineError, ZkmlError
from ..raywork import FileRef, ProgressFn, StoreRef, materialize, private_ezkl_dir, session

__all__ = ["FileRef", "ProgressFn", "ProveResult", "ProveTask", "StoreRef", "prove_all"]


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


def prove_task(task: ProveTask) -> ProveResult:
    """Run on a Ray worker: obtain the inputs (checked by sha256), prove, return the proof."""
    private_ezkl_dir()
    from .. import ezkl_adapter

    with tempfile.TemporaryDirectory(prefix=f"zkml-chunk{task.index}-") as td:
        scratch = Path(td)
        paths: dict[str, Path] = {}
        fetched: dict[str, str] = {}
        for ref in (task.witness, task.compiled, task.pk, task.srs):
            paths[ref.name], fetched[ref.name] = materialize(ref, task.store, scratch)
        proof = scratch / "proof.json"
        peakrss.reset()  # a Ray worker lives on: count this task's peak only
        t0 = time.monotonic()
        ezkl_adapter.prove(paths[task.witness.name], paths[task.compiled.name],
                           paths[task.pk.name], proof, paths[task.srs.name])
        seconds = time.monotonic() - t0
        return ProveResult(index=task.index, proof=proof.read_bytes(), seconds=round(seconds, 3),
                           max_rss_bytes=peakrss.peak_rss_bytes() or 0,
                           fetched=fetched)


def prove_all(tasks: list[ProveTask], ray_address: str | None = None,
              progress: ProgressFn | None = None) -> list[ProveResult]:
    """Prove every task as one Ray task each, in a ``raywork.session`` (the cluster at
    ``ray_address``, else a private local instance). Results in chunk order."""
    if not tasks:
        return []
    say = progress or (lambda _msg: None)
    with session(ray_address, max(len(tasks), os.cpu_count() or 1), say):
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
