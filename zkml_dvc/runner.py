"""`zkml-dvc run`: reproduce one model's pipeline through DVC, then record, commit, tag and push."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import pipeline, runs
from .errors import InputError
from .fsutil import read_json, sha256_file
from .layout import STAGES, ModelLayout, classify, dvc_object_key
from .manifest import ArtifactEntry, Manifest, StageRun, tool_versions, write_manifest
from .onnx_model import check_input, inspect_model
from .params import load_params
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


def _artifacts(root: Path, model: str, inputs: list[str]) -> list[ArtifactEntry]:
    lock = pipeline.lock_outs(root)
    entries: list[ArtifactEntry] = []
    for rel in inputs:
        category, reproducible = classify(Path(rel))
        p = root / rel
        entries.append(ArtifactEntry(
            path=rel, category=category, sha256=sha256_file(p), size=p.stat().st_size,
            reproducible=reproducible,
        ))
    suffix = f"@{model}"
    for rel, info in sorted(lock.items()):
        if not info["stage"].endswith(suffix):
            continue
        p = root / rel
        category, reproducible = classify(Path(rel))
        md5 = info.get("md5")
        entries.append(ArtifactEntry(
            path=rel, category=category, sha256=sha256_file(p), md5=md5,
            size=p.stat().st_size, reproducible=reproducible, stage=info["stage"],
            object_key=dvc_object_key(md5) if md5 else None,
        ))
    return entries


def _stage_runs(root: Path, lay: ModelLayout, started: datetime) -> list[StageRun]:
    out = []
    for stage in STAGES:
        rec = StageRecord.model_validate(read_json(root / lay.stage_record(stage), "stage record"))
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
) -> RunResult:
    """Run the pipeline of ``model`` and record it as run ``run_id`` (a new id if None).

    Args:
        push: True to push (error if no remote), False not to, None to push if a remote is set.
    Raises:
        InputError, PipelineError, ConfigError, StoreError (see errors.EXIT_CODES).
    """
    params = load_params(root)
    name, mp = params.model(model)
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
    pipeline.repro(root, name, force_stage=force_stage)
    ended = datetime.now(UTC)

    lay = ModelLayout(name)
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
        artifacts=_artifacts(root, name, [mp.onnx, mp.input, mp.calibration]),
    )
    write_manifest(root / lay.manifest, manifest)
    ran = [s.stage for s in stage_runs if s.ran]
    commit = runs.commit_and_tag(
        root,
        _git_paths(root, [mp.onnx, mp.input, mp.calibration], name),
        f"zkml-dvc run {run_id}: {name} ({len(ran)} of {len(STAGES)} stages ran)",
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
