"""`zkml-dvc run`: reproduce one model's pipeline through DVC, then record, commit, tag and push."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from . import env, pipeline, runs
from .errors import ConfigError, InputError
from .fsutil import load_yaml, read_json, sha256_file
from .inprocess import light_stages_here, lockfile_memo
from .layout import LATER_STAGES, ModelLayout, classify, dvc_object_key, git_tracked
from .manifest import ArtifactEntry, Manifest, StageRun, tool_versions, write_manifest
from .onnx_model import check_input, inspect_model
from .project import Project
from .records import StageRecord
from .run_index import PushReport
from .shape import ProgressFn
from .srs import SrsPointer
from .store import Store


@dataclass
class RunResult:
    manifest: Manifest
    tag: str
    commit: str
    stages_ran: list[str]
    pushed: PushReport | None = None
    sync: pipeline.Sync | None = None  # what was fetched from / pushed to the store per stage
    recorded: bool = True  # False: nothing changed, the run above already records this state


def _model_lock(lock_text: str, keys: set[str]) -> dict[str, object]:
    stages = (load_yaml(lock_text) or {}).get("stages") or {}
    return {name: body for name, body in stages.items() if name.rpartition("@")[2] in keys}


def _srs_uploader(pointer_path: Path, store: Store) -> Callable[[str], None]:
    """After a stage's outputs were pushed: once the model's SRS is pinned, upload it (put skips
    it if the store has it), so another machine can continue this run's pipeline from the store."""
    done = False

    def after(_stage: str) -> None:
        nonlocal done
        if done or not pointer_path.exists():
            return
        from . import srs as srs_mod
        from .stages import load_pointer

        srs_mod.put(store, load_pointer(pointer_path))
        done = True

    return after


def run_with_same_state(root: Path, project_name: str, model: str,
                        keys: set[str]) -> runs.RunRef | None:
    """The newest run of ``model`` whose dvc.lock entries for the model's stages (every dep's and
    out's hash and every param) equal the workspace's: a run that already records this state."""
    lock = root / "dvc.lock"
    if not lock.exists():
        return None
    here = _model_lock(lock.read_text(), keys)
    if not here:
        return None
    for ref in reversed(runs.list_runs(root, project_name)):
        if ref.model != model:
            continue
        try:
            then = _model_lock(runs.read_at(root, ref.commit, "dvc.lock").decode(), keys)
        except Exception:  # noqa: BLE001 (a run without a readable lock cannot match)
            continue
        if then == here:
            return ref
    return None


def _md5(path: Path) -> str:
    import hashlib

    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _artifacts(root: Path, inputs: list[str], keys: set[str]) -> list[ArtifactEntry]:
    """Entries for the git-tracked ``inputs`` and every DVC output of the model's stages (whose
    names end in ``@<key>`` for a key in ``keys``); a directory output gets one entry per file
    (DVC stores each file as its own object)."""
    lock = pipeline.lock_outs(root)
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
        in_store = not git_tracked(Path(rel))
        entries.append(ArtifactEntry(
            path=rel, category=category, sha256=sha256_file(p), md5=md5,
            size=p.stat().st_size, reproducible=reproducible, stage=info["stage"],
            object_key=dvc_object_key(md5) if md5 and in_store else None,
        ))
    return entries


def _stage_runs(root: Path, records: list[tuple[str, Path]], started: datetime) -> list[StageRun]:
    out = []
    for stage, path in records:
        if stage in LATER_STAGES and not (root / path).exists():
            continue  # a project whose dvc.yaml predates the stage
        rec = StageRecord.model_validate(read_json(root / path, "stage record"))
        out.append(StageRun(**{**rec.model_dump(), "stage": stage}, ran=rec.started >= started))
    return out


def _solc_of(evm_report: Path) -> str | None:
    """The compiler the run's EVM verifier was compiled with (None: no verifier)."""
    if not evm_report.exists():
        return None
    solc = read_json(evm_report, "EVM report").get("solc")
    return str(solc) if solc else None


def _git_paths(root: Path, files: list[str], model: str) -> list[str]:
    paths = ["dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config",
             ".gitignore", str(ModelLayout(model).base)]
    for rel in files:
        dvc_file = root / f"{rel}.dvc"
        paths.append(f"{rel}.dvc" if dvc_file.exists() else rel)
    return [p for p in paths if (root / p).exists()]


def run(
    project: Project,
    model: str | None = None,
    run_id: str | None = None,
    push: bool | None = None,
    parent_run: str | None = None,
    force_stage: str | None = None,
    chunks: int | None = None,
    link: str | None = None,
    ray_address: str | None = None,
    progress: ProgressFn | None = None,
    signing_key: Path | None = None,
    force: bool = False,
) -> RunResult:
    """Run the pipeline of ``model`` and record it as run ``run_id`` (a new id if None).

    Args:
        push: True to push (error if no remote), False not to, None to push if a remote is set.
        chunks, link: for a chunked model, override its `chunks`/`link` in params.yaml (written
            there, so DVC tracks them); ray_address: the Ray cluster that proves the chunks.
        signing_key: sign the run (an SSH private key): the tag with git's SSH signing, and the
            manifest with a detached signature (``manifest.json.sig``) that goes to the run index.
        force: record a new run even when an existing run already records the resulting state
            (without it, that run is returned with ``recorded=False``), and start setup and
            prove even when the cost estimate says they will not fit in memory.

    With a store, outputs it holds for the current dvc.lock are fetched instead of recomputed and
    each stage's outputs are pushed as soon as the stage succeeds (``result.sync``); the run index
    and the manifest go last.
    Raises:
        InputError, PipelineError (CircuitUnsatisfiedError: mock failed), ConfigError,
        StoreError, InsufficientMemoryError (see errors.EXIT_CODES).
    """
    root = project.root
    from .remote import tracked_secrets

    secrets = tracked_secrets(root)
    if secrets:
        raise ConfigError(
            f"the tracked .dvc/config holds {', '.join(secrets)}: committing the run would "
            "publish it",
            "Move it to git-ignored .dvc/config.local (`dvc remote modify --local o3 KEY VALUE`, "
            "then `dvc remote modify --unset o3 KEY`), or use environment variables.")
    shape = project.shape(model)
    shape.check_options(chunks, link, ray_address)
    run_id = runs.validate_run_id(run_id or runs.new_run_id())
    tag = runs.tag_name(project.params.project, run_id)
    if tag in {r.tag for r in runs.list_runs(root, project.params.project)}:
        raise InputError(f"tag {tag} already exists", "Choose another --run-id.")
    mp = shape.params
    assert mp is not None
    facts = inspect_model(root / mp.onnx)
    check_input(facts, root / mp.input)
    store = None
    if push is not False:
        store = project.store
        if store is None and push:
            raise ConfigError(
                "no remote is configured to push to",
                "Configure one with `zkml-dvc remote set s3://BUCKET/PREFIX --endpoint URL`, "
                "or pass --no-push.",
            )
        if store is not None:
            store.check_access()  # fail before spending minutes on proving

    source_commit = runs.head_commit(root)
    started = datetime.now(UTC)
    shape = shape.prepare(project, chunks, link, ray_address)
    sync = None
    if store is not None:
        sync = pipeline.Sync(after_push=_srs_uploader(root / ModelLayout(shape.model).srs_pointer,
                                                      store), store=store)
    # --force also starts setup/prove when the cost estimate says they will not fit in memory
    with env.scoped(env.IGNORE_MEMORY_ESTIMATE, "1" if force else None), \
            light_stages_here(project, partial(pipeline.record_stage_error, root)), \
            lockfile_memo():
        prove_times = shape.reproduce(project, store, ray_address, progress, force_stage, sync)
    ended = datetime.now(UTC)
    if not force and not force_stage:
        same = run_with_same_state(root, project.params.project, shape.model, shape.stage_keys())
        if same is not None:
            _, existing = runs.load_manifest(root, same.run_id, project.params.project)
            result = RunResult(manifest=existing, tag=same.tag, commit=same.commit,
                               stages_ran=[], sync=sync, recorded=False)
            if store is not None:  # that run may have been made with --no-push: make sure
                from .run_index import push_run

                result.pushed = push_run(project, same.run_id, store=store)
            return result
    stage_runs = _stage_runs(root, shape.stage_records(), started)
    mp = shape.params
    assert mp is not None
    lay = ModelLayout(shape.model)
    manifest = Manifest(
        run_id=run_id,
        project=project.params.project,
        model=shape.model,
        parent_run=parent_run,
        source_commit=source_commit,
        started=started,
        ended=ended,
        tools=tool_versions(solc=_solc_of(root / lay.evm_report)),
        model_facts=facts.model_copy(update={"path": mp.onnx}),
        params={"model": mp.model_dump(), "srs": project.params.srs.model_dump()},
        srs=SrsPointer.model_validate(read_json(root / lay.srs_pointer, "SRS pointer")),
        stages=stage_runs,
        artifacts=_artifacts(root, [mp.onnx, mp.input, mp.calibration], shape.stage_keys()),
        **shape.manifest_fields(project, prove_times),
    )
    write_manifest(root / lay.manifest, manifest)
    signature = root / f"{lay.manifest}.sig"
    signature.unlink(missing_ok=True)  # a signature of an earlier run's manifest must not linger
    if signing_key is not None:
        from .fsutil import atomic_write_bytes
        from .trust import sign

        atomic_write_bytes(signature, sign((root / lay.manifest).read_bytes(), signing_key))
    ran = [s.stage for s in stage_runs if s.ran]
    commit = runs.commit_and_tag(
        root,
        _git_paths(root, [mp.onnx, mp.input, mp.calibration], shape.model),
        f"zkml-dvc run {run_id}: {shape.model} ({len(ran)} of {len(stage_runs)} stages ran)",
        tag,
        {
            "run_id": run_id, "project": project.params.project, "model": shape.model,
            "manifest": str(lay.manifest), "manifest_sha256": sha256_file(root / lay.manifest),
        },
        signing_key=signing_key,
    )
    result = RunResult(manifest=manifest, tag=tag, commit=commit, stages_ran=ran, sync=sync)
    if store is not None:
        from .run_index import push_run

        result.pushed = push_run(project, run_id, store=store)
    return result
