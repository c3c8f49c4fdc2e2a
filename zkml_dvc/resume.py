"""`zkml-dvc resume`: continue a run's pipeline mid-way with the earlier outputs from the store."""

from __future__ import annotations

from pathlib import Path

from . import runs
from . import srs as srs_mod
from .errors import MissingFileError
from .fsutil import atomic_write_bytes, current_umask
from .layout import check_stage
from .onnx_model import check_input, inspect_model
from .project import Project
from .pull import require_at_run, restore
from .runner import RunResult, run
from .shapes import shape_for_manifest
from .verifier import check_version


def resume(project: Project, run_id: str, from_stage: str = "witness",
           new_input: Path | None = None, new_run_id: str | None = None,
           push: bool | None = None) -> RunResult:
    """Continue a run's pipeline from ``from_stage`` with the stages before it restored from the
    store (no keygen when the keys are there). With ``new_input``, prove a new input with the run's
    keys. Returns the new run's RunResult; its manifest names ``run_id`` as parent."""
    check_stage(from_stage)
    ref, manifest = runs.load_manifest(project.root, run_id)
    check_version(manifest)
    require_at_run(project, ref)
    shape = shape_for_manifest(manifest)
    targets, force = shape.resume_targets(project, manifest, from_stage)
    _, mp = project.params.model(manifest.model)
    if new_input is not None:
        if not new_input.exists():
            raise MissingFileError(new_input, "new input", "")
        check_input(inspect_model(project.root / mp.onnx), new_input)
    store = project.require_store()
    if targets:
        restore(project, manifest, targets, store)
    srs_mod.fetch(store, manifest.srs)
    if new_input is not None:
        # a new file in its place (the old one may be a hard link of a DVC cache object), with
        # the mode a new file gets
        atomic_write_bytes(project.root / mp.input, new_input.read_bytes(),
                           mode=0o666 & ~current_umask())
    return run(project, manifest.model, run_id=new_run_id, push=push, parent_run=run_id,
               force_stage=force)
