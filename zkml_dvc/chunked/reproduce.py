"""`zkml-dvc run` for a chunked model: DVC for every stage, Ray for the chunk proofs.

1. ``dvc repro`` up to every chunk's witness (plan, compile, setup, witness: the witnesses in
   order, as each chunk reads the previous chunk's output).
2. The chunks whose ``chunk_prove`` stage DVC reports as changed are proved at once as Ray tasks
   (ray_prove.py); their proofs and stage records are written atomically and recorded with
   ``dvc commit`` of those stages, exactly as if DVC had run them. Workers on other machines (with
   ``--ray-address``) read their inputs from the store, so those are pushed first.
3. ``dvc repro`` of ``chunk_verify``: every chunk proof verifies and every link holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import ezkl_adapter, pipeline
from .. import srs as srs_mod
from ..errors import ConfigError, PipelineError
from ..fsutil import atomic_write_bytes, atomic_write_json, read_json, sha256_file
from ..layout import CHUNK_MODEL_STAGES, ModelLayout, dvc_object_key, srs_key
from ..params import chunk_key
from ..records import EzklCall, StageRecord
from ..stages import load_pointer
from ..store import Store
from .plan import load_plan
from .ray_prove import FileRef, ProgressFn, ProveTask, StoreRef, prove_all
from .records import ChunkEntry

if TYPE_CHECKING:
    from ..project import Project


def _ref(root: Path, name: str, rel: Path, md5s: dict[str, str | None]) -> FileRef:
    p = root / rel
    md5 = md5s.get(str(rel))
    return FileRef(name=name, sha256=sha256_file(p), size=p.stat().st_size,
                   local_path=str(p.resolve()), store_key=dvc_object_key(md5) if md5 else None)


def _stale_prove_chunks(project: Project, model: str, n: int) -> list[int]:
    names = [pipeline.stage_name("chunk_prove", chunk_key(model, i)) for i in range(n)]
    with project.dvc() as repo:
        status = repo.status(targets=names)
    return [i for i, name in enumerate(names) if any(k.endswith(name) for k in status)]


def reproduce(project: Project, model: str, n: int, store: Store | None,
              ray_address: str | None, progress: ProgressFn | None,
              force_stage: str | None = None,
              sync: pipeline.Sync | None = None) -> dict[int, float]:
    """Bring the chunked model's pipeline (``n`` chunks) up to date; returns
    {chunk: prove seconds} for the chunks proved in this call. With ``sync``, outputs the store
    holds for dvc.lock are fetched (chunk proofs included) and new ones pushed as they are made."""
    witness_targets = [pipeline.stage_name("chunk_witness", chunk_key(model, i)) for i in range(n)]
    pipeline.repro_targets(project, witness_targets, force_stage and pipeline.stage_name(
        force_stage, model if force_stage in CHUNK_MODEL_STAGES else chunk_key(model, 0)),
        sync=sync)
    prove_names = [pipeline.stage_name("chunk_prove", chunk_key(model, i)) for i in range(n)]
    if sync is not None and force_stage != "chunk_prove":
        pipeline.fetch_unchanged(project, prove_names, sync)
    stale = list(range(n)) if force_stage == "chunk_prove" else _stale_prove_chunks(project, model, n)
    times: dict[int, float] = {}
    if stale:
        times = _prove_on_ray(project, model, stale, store, ray_address, progress)
        if sync is not None:
            proved = [prove_names[i] for i in stale]
            sync.pushed_files += pipeline.push_targets(project, proved)
            sync.pushed += proved
    pipeline.repro_targets(project, [pipeline.stage_name("chunk_verify", model)], sync=sync)
    return times


def _prove_on_ray(project: Project, model: str, chunks: list[int], store: Store | None,
                  ray_address: str | None, progress: ProgressFn | None) -> dict[int, float]:
    root = project.root
    lay = ModelLayout(model)
    pointer = load_pointer(root / lay.srs_pointer)
    store_ref: StoreRef | None = None
    if ray_address:
        if store is None:
            raise ConfigError(
                "--ray-address needs a store: workers on other machines read the chunk inputs "
                "from it", "Configure one with `zkml-dvc remote set ...` (or `zkml-dvc store up`).")
        targets = []
        for i in chunks:
            c = lay.chunk_layout(i)
            targets += [str(c.witness), str(c.compiled), str(c.pk)]
        pipeline.push_targets(project, targets)
        if store.head(srs_key(pointer.sha256)) is None:
            srs_mod.put(store, pointer)
        store_ref = StoreRef(url=store.cfg.url, endpoint=store.cfg.endpoint, region=store.cfg.region)
    md5s = {k: v.get("md5") for k, v in pipeline.lock_outs(root).items()}
    srs_path = srs_mod.path_for(pointer, lambda: project.store)
    srs_ref = FileRef(name="kzg.srs", sha256=pointer.sha256, size=srs_path.stat().st_size,
                      local_path=str(srs_path), store_key=srs_key(pointer.sha256))
    tasks = []
    for i in chunks:
        c = lay.chunk_layout(i)
        tasks.append(ProveTask(
            index=i, witness=_ref(root, "witness.json", c.witness, md5s),
            compiled=_ref(root, "network.compiled", c.compiled, md5s),
            pk=_ref(root, "pk.key", c.pk, md5s), srs=srs_ref, store=store_ref,
        ))
    started = datetime.now(UTC)
    results = prove_all(tasks, ray_address=ray_address, progress=progress)
    ended = datetime.now(UTC)
    for res in results:
        c = lay.chunk_layout(res.index)
        try:
            proof = json.loads(res.proof)
        except ValueError:
            raise PipelineError(f"chunk {res.index}: the worker returned a proof that is not JSON",
                                "Re-run `zkml-dvc run`.") from None
        if not isinstance(proof, dict) or "proof" not in proof:
            raise PipelineError(f"chunk {res.index}: the worker returned no proof", "")
        atomic_write_bytes(root / c.proof, res.proof)
        record = StageRecord(
            stage="chunk_prove", model=model,
            command=f"zkml-dvc stage chunk_prove --model {model} --chunk {res.index} (on Ray)",
            ezkl_calls=[EzklCall(function="prove", args={
                "witness": str(c.witness), "model": str(c.compiled), "pk_path": str(c.pk),
                "proof_path": str(c.proof), "srs_path": f"srs:{srs_path.name}",
                "worker_seconds": res.seconds, "worker_max_rss_bytes": res.max_rss_bytes,
                "inputs_from": res.fetched,
            })],
            started=started, ended=ended, duration_s=res.seconds,
            ezkl_version=ezkl_adapter.version(),
        )
        atomic_write_json(root / c.stage_record("chunk_prove"), record.model_dump(mode="json"))
    pipeline.commit_stages(project, [pipeline.stage_name("chunk_prove", chunk_key(model, r.index))
                                  for r in results])
    return {r.index: r.seconds for r in results}


def chunk_entries(root: Path, model: str, prove_times: dict[int, float]) -> list[ChunkEntry]:
    lay = ModelLayout(model)
    plan = load_plan(root / lay.plan)
    report = read_json(root / lay.verify_report, "verify report")
    counts = {c["index"]: c for c in report["link_counts"]}
    return [ChunkEntry(**c.model_dump(), link_inputs=counts[c.index]["link_inputs"],
                       link_outputs=counts[c.index]["link_outputs"],
                       prove_seconds=prove_times.get(c.index)) for c in plan.chunks]
