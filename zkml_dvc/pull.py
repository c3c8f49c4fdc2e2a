"""`zkml-dvc pull`: restore a run's artifacts from the store, each checked against its manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import pipeline, runs
from . import srs as srs_mod
from .errors import ConfigError, HashMismatchError
from .fsutil import confined, sha256_file
from .layout import run_index_prefix
from .manifest import Manifest
from .project import Project
from .shapes import shape_for_manifest
from .store import Store
from .verifier import check_version

PullTarget = Literal["verify", "prove", "all"]


@dataclass
class PullResult:
    paths: list[str]
    warnings: list[str] = field(default_factory=list)  # what the clone's config set, ignored


def require_at_run(project: Project, ref: runs.RunRef) -> None:
    head = runs.head_commit(project.root)
    if head != ref.commit:
        raise ConfigError(
            f"the workspace is not at run {ref.run_id} (HEAD {str(head)[:8]}, run {ref.commit[:8]})",
            f"Check it out first: git checkout {ref.tag}",
        )


def check_local(project: Project, manifest: Manifest, path: Path) -> None:
    """The workspace copy of ``path`` must hash to the manifest's sha256; a bad one is removed,
    and so is the DVC cache object it was checked out from (DVC does not check what it downloads
    against its name: left there, the next checkout would restore the same bytes)."""
    entry = manifest.artifact(path)
    actual = sha256_file(project.root / path)
    if actual != entry.sha256:
        (project.root / path).unlink()
        if entry.md5:
            pipeline.drop_cache_object(project, entry.md5)
        raise HashMismatchError(f"{path} of run {manifest.run_id}", entry.sha256, actual)


def sha256_by_md5(manifest: Manifest) -> dict[str, str]:
    """{DVC md5: sha256} of the run's DVC-tracked files, as its manifest records them."""
    return {a.md5: a.sha256 for a in manifest.artifacts if a.md5}


def checked_by_pull(manifest: Manifest, path: str, known: dict[str, str]) -> bool:
    """Whether the file at ``path`` already holds the manifest's bytes for it: ``pipeline.pull``
    placed it (``known``, {path: md5}) from the object the manifest names for that path, and
    found that object to have the sha256 the manifest records for the path."""
    a = manifest.artifact(Path(path))
    return a.md5 is not None and known.get(path) == a.md5 \
        and sha256_by_md5(manifest).get(a.md5) == a.sha256


def restore(project: Project, manifest: Manifest, targets: list[str],
            store: Store | None = None) -> None:
    """`dvc pull` of ``targets`` (files or directories), then every restored file of the run
    checked against the manifest's sha256 (but those copied from objects the pull itself
    downloaded and checked against it: ``pipeline.pull``)."""
    known = pipeline.pull(project, targets, store, sha256_by_md5(manifest))
    for a in manifest.artifacts:
        if a.md5 and not checked_by_pull(manifest, a.path, known) and any(
                a.path == t or a.path.startswith(t.rstrip("/") + "/") for t in targets):
            check_local(project, manifest, Path(a.path))


def pull(project: Project, run_id: str, target: PullTarget = "verify") -> PullResult:
    """Restore what ``target`` needs of a run into the workspace, each file checked by sha256.

    verify: the verification kit (+ SRS in the cache). prove: settings, compiled circuit, keys,
    witness. all: every output of the run. The store is reached as a verifier who does not trust
    the clone (``Project.verifier_store``). Returns the paths restored and what was ignored.
    """
    ref, manifest = runs.load_manifest(project.root, run_id)
    check_version(manifest)
    require_at_run(project, ref)
    warnings: list[str] = []
    store = project.verifier_store(warnings)
    store.check_access()
    shape = shape_for_manifest(manifest)
    restored: list[str] = []
    if target == "verify":
        prefix = run_index_prefix(manifest.project, run_id)
        for name, path in shape.kit_paths(manifest).items():
            entry = manifest.artifact(path)
            # confined: a symlinked directory in the workspace must not carry the write elsewhere
            store.get_file(f"{prefix}/{name}", confined(project.root, str(path)), entry.sha256)
            restored.append(str(path))
    else:
        wanted = shape.prove_targets(manifest) if target == "prove" else \
            [Path(a.path) for a in manifest.artifacts if a.md5]
        known = pipeline.pull(project, [str(p) for p in wanted], store, sha256_by_md5(manifest))
        for p in wanted:
            if not checked_by_pull(manifest, p.as_posix(), known):
                check_local(project, manifest, p)
            restored.append(str(p))
    srs_mod.fetch(store, manifest.srs)
    return PullResult(restored, warnings)
