"""`zkml-dvc run`: reproduce one model's pipeline through DVC, then record, commit, tag and push."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import chunked_run, pipeline, runs
from .distributed import ProgressFn
from .errors import InputError
from .fsutil import read_json, sha256_file
from .layout import STAGES, ModelLayout, classify, dvc_object_key
from .manifest import ArtifactEntry, ChunkEntry, Manifest, StageRun, tool_versions, write_manifest
from .onnx_model import check_input, inspect_model
from .params import load_params, sync_chunk_stages
from .run_index import PushReport
from .srs import SrsPointer
from .stages import StageRecord


@dataclass
class RunResult:
    manifest: Manifest
    tag: str
    commit: str
    stages_ran: list[str]
    pushed: PushReport | None = None


def _md5(path: Path) -> str:
    import hashlib

    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _artifacts(root: Path, model: str, inputs: list[str],
               stage_keys: set[str] | None = None) -> list[ArtifactEntry]:
    """Entries for the git-tracked ``inputs`` and every DVC output of the model's stages (whose
    names end in ``@<key>`` for a key in ``stage_keys``, default {model}); a directory output
    gets one entry per file (DVC stores each file as its own object)."""
    lock = pipeline.lock_outs(root)
    keys = stage_keys or {model}
    entries: list[ArtifactEntry] = []
    for rel in inputs:
        category, reproducible = classify(Path(rel))
        p = root / rel
        entries.append(ArtifactEntry(
            path=rel, category=category, sha256=sha256_file(p), size=p.stat().st_size,
            reproducible=reproducible,
        ))
    for rel, info in sorted(lock.items()):
        if info["stage"].rpartition("@")[2] not in keys:
            continue
        p = root / rel
        category, reproducible = classify(Path(rel))
        md5 = info.get("md5")
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                fmd5 = _md5(f)
                entries.append(ArtifactEntry(
                    path=str(f.relative_to(root)), category=category, sha256=sha256_file(f),
                    md5=fmd5, size=f.stat().st_size, reproducible=reproducible,
                    stage=info["stage"], object_key=dvc_object_key(fmd5),
                ))
            continue
        entries.append(ArtifactEntry(
            path=rel, category=category, sha256=sha256_file(p), md5=md5,
            size=p.stat().st_size, reproducible=reproducible, stage=info["stage"],
            object_key=dvc_object_key(md5) if md5 else None,
        ))
    return entries


def _stage_runs(root: Path, lay: ModelLayout, started: datetime,
                records: list[tuple[str, Path]] | None = None) -> list[StageRun]:
    out = []
    for stage, path in records or [(s, lay.stage_record(s)) for s in STAGES]:
        rec = StageRecord.model_validate(read_json(root / path, "stage record"))
        out.append(StageRun(
            stage=stage, command=rec.command, ezkl_calls=rec.ezkl_calls, started=rec.started,
            ended=rec.ended, duration_s=rec.duration_s, ran=rec.started >= started,
        ))
    return out


def _git_paths(root: Path, files: list[str], model: str) -> list[str]:
    paths = ["dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config", ".dvc/o3-aws.config",
             ".gitignore", str(ModelLayout(model).base)]
    for rel in files:
        dvc_file = root / f"{rel}.dvc"
        paths.append(f"{rel}.dvc" if dvc_file.exists() else rel)
    return [p for p in paths if (root / p).exists()]


def run(
    root: Path,
    model: str | None = None,
    run_id: str | None = None,
    push: bool | None = None,
    parent_run: str | None = None,
    force_stage: str | None = None,
    chunks: int | None = None,
    link: str | None = None,
    ray_address: str | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run the pipeline of ``model`` and record it as run ``run_id`` (a new id if None).

    Args:
        push: True to push (error if no remote), False not to, None to push if a remote is set.
        chunks, link: for a chunked model, override its `chunks`/`link` in params.yaml (written
            there, so DVC tracks them); ray_address: the Ray cluster that proves the chunks.
    Raises:
        InputError, PipelineError, ConfigError, StoreError (see errors.EXIT_CODES).
    """
    params = load_params(root)
    name, mp = params.model(model)
    is_chunked = name in params.chunked
    if (chunks is not None or link is not None or ray_address) and not is_chunked:
        raise InputError(
            f"model {name} is not chunked: --chunks, --link and --ray-address need a chunked model",
            "Declare it under `chunked:` in params.yaml (see docs/chunked.md).",
        )
    run_id = runs.validate_run_id(run_id or runs.new_run_id())
    tag = runs.tag_name(params.project, run_id)
    if tag in {r.tag for r in runs.list_runs(root, params.project)}:
        raise InputError(f"tag {tag} already exists", "Choose another --run-id.")
    facts = inspect_model(root / mp.onnx)
    check_input(facts, root / mp.input)
    store = None
    if push is not False:
        from .store import find_project_store

        store = find_project_store(root)
        if store is None and push:
            from .errors import ConfigError

            raise ConfigError(
                "no remote is configured to push to",
                "Configure one with `zkml-dvc remote set s3://BUCKET/PREFIX --endpoint URL`, "
                "or pass --no-push.",
            )
        if store is not None:
            store.check_access()  # fail before spending minutes on proving

    source_commit = runs.head_commit(root)
    started = datetime.now(UTC)
    lay = ModelLayout(name)
    chunk_entries: list[ChunkEntry] = []
    if is_chunked:
        overrides: dict[str, object] = {
            k: v for k, v in (("chunks", chunks), ("link", link)) if v is not None}
        sync_chunk_stages(root, {name: overrides} if overrides else None)
        params = load_params(root)
        mp = params.chunked[name]
        prove_times = chunked_run.reproduce(root, name, params, store, ray_address, progress,
                                            force_stage)
        ended = datetime.now(UTC)
        stage_runs = _stage_runs(root, lay, started, chunked_run.stage_records(name, params))
        chunk_entries = chunked_run.chunk_entries(root, name, prove_times)
    else:
        pipeline.repro(root, name, force_stage=force_stage)
        ended = datetime.now(UTC)
        stage_runs = _stage_runs(root, lay, started)
    manifest = Manifest(
        run_id=run_id,
        project=params.project,
        model=name,
        parent_run=parent_run,
        source_commit=source_commit,
        started=started,
        ended=ended,
        tools=tool_versions(),
        model_facts=facts.model_copy(update={"path": mp.onnx}),
        params={"model": mp.model_dump(), "srs": params.srs.model_dump()},
        srs=SrsPointer.model_validate(read_json(root / lay.srs_pointer, "SRS pointer")),
        stages=stage_runs,
        artifacts=_artifacts(root, name, [mp.onnx, mp.input, mp.calibration],
                             stage_keys=chunked_run.stage_keys(name, params) if is_chunked else None),
        link=params.chunked[name].link if is_chunked else None,
        chunk_scale=chunked_run.plan_scale(root, name) if is_chunked else None,
        chunks=chunk_entries,
    )
    write_manifest(root / lay.manifest, manifest)
    ran = [s.stage for s in stage_runs if s.ran]
    commit = runs.commit_and_tag(
        root,
        _git_paths(root, [mp.onnx, mp.input, mp.calibration], name),
        f"zkml-dvc run {run_id}: {name} ({len(ran)} of {len(stage_runs)} stages ran)",
        tag,
        {
            "run_id": run_id, "project": params.project, "model": name,
            "manifest": str(lay.manifest), "manifest_sha256": sha256_file(root / lay.manifest),
        },
    )
    result = RunResult(manifest=manifest, tag=tag, commit=commit, stages_ran=ran)
    if store is not None:
        from .run_index import push_run

        result.pushed = push_run(root, run_id, store=store)
    return result
