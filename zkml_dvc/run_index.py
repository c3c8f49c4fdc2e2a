"""The run index in the store, readable by any S3 client::

    <root>/projects/<project>/runs/<run_id>/manifest.json   written last: its presence means complete
    <root>/projects/<project>/runs/<run_id>/{dvc.lock,params.yaml,dvc.yaml}
    <root>/projects/<project>/runs/<run_id>/{proof.json,settings.json,vk.key}   the verification kit
    <root>/projects/<project>/runs/<run_id>/{input.json,c<i>/{proof.json,settings.json,vk.key}}
                                                            ... of a chunked run
    <root>/srs/<sha256>                                     each SRS once, shared by all runs
    <root>/dvc/files/md5/..                                 DVC's content-addressed objects (pk, ...)

Large artifacts exist only once, in DVC's area; the manifest names their object keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import pipeline, runs
from . import srs as srs_mod
from .errors import IntegrityError, MissingFileError, NotFoundError, StoreError
from .fsutil import sha256_bytes, sha256_file
from .layout import run_index_prefix, srs_key
from .manifest import ArtifactEntry, Manifest, parse_manifest
from .project import Project
from .shapes import shape_for_manifest
from .store import Store

INDEX_FILES = ("dvc.lock", "params.yaml", "dvc.yaml")
SIGNATURE_NAME = "manifest.json.sig"  # detached SSH signature of manifest.json (`run --sign`)


@dataclass
class PushReport:
    run_id: str
    index_url: str
    dvc_files_pushed: int
    repaired_objects: list[str]
    uploaded_files: int
    uploaded_bytes: int
    skipped_files: int


def kit_paths(manifest: Manifest) -> dict[str, Path]:
    """The verification kit: index file name -> the artifact it is a copy of (the run's shape
    decides: one proof, settings and vk, or one per chunk and the claimed input)."""
    return shape_for_manifest(manifest).kit_paths(manifest)


def local_copy(root: Path, entry: ArtifactEntry) -> Path:
    """A local file holding exactly ``entry``'s bytes: the workspace copy or DVC's cache."""
    candidates = [root / entry.path]
    if entry.md5:
        candidates.append(root / ".dvc" / "cache" / "files" / "md5" / entry.md5[:2] / entry.md5[2:])
    for c in candidates:
        if c.exists() and c.stat().st_size == entry.size and sha256_file(c) == entry.sha256:
            return c
    raise MissingFileError(
        entry.path, f"the run's copy of {entry.path}",
        "It is neither in the workspace nor in the DVC cache; `zkml-dvc pull RUN_ID --for all`.",
    )


def push_run(project: Project, run_id: str, store: Store | None = None) -> PushReport:
    """Push a run: its DVC objects (only those the remote lacks), its SRS and its index."""
    root = project.root
    store = store or project.require_store()
    store.check_access()
    ref, manifest = runs.load_manifest(root, run_id)
    before = (store.stats.uploaded_files, store.stats.uploaded_bytes, store.stats.skipped_files)
    from .prefetch import large_of

    large = large_of((a.md5, a.size) for a in manifest.artifacts)
    dvc_files = pipeline.push_rev(project, ref.commit, runs.head_commit(root) == ref.commit,
                                  store, large)
    repaired = _check_dvc_objects(root, store, manifest)

    blob = srs_mod.blob_path(manifest.srs.sha256)
    head = store.head(srs_key(manifest.srs.sha256))
    if not (head and head.get("Metadata", {}).get("sha256") == manifest.srs.sha256):
        if not blob.exists():
            raise MissingFileError(blob, f"SRS {manifest.srs.sha256[:12]} of run {run_id}", "")
        srs_mod.put(store, manifest.srs)

    prefix = run_index_prefix(manifest.project, run_id)
    for name, path in kit_paths(manifest).items():
        entry = manifest.artifact(path)
        store.put_file(local_copy(root, entry), f"{prefix}/{name}", sha256=entry.sha256)
    for name in INDEX_FILES:
        store.put_bytes(runs.read_at(root, ref.commit, name), f"{prefix}/{name}")
    signature = f"{ref.manifest_path}.sig"
    if signature in runs.files_at(root, ref.commit, str(Path(ref.manifest_path).parent)):
        store.put_bytes(runs.read_at(root, ref.commit, signature), f"{prefix}/{SIGNATURE_NAME}")
    # The manifest goes last: a run index without it is an interrupted push, never "complete".
    store.put_bytes(runs.read_at(root, ref.commit, ref.manifest_path), f"{prefix}/manifest.json")
    return PushReport(
        run_id=run_id,
        repaired_objects=repaired,
        index_url=f"s3://{store.bucket}/{store.key(prefix)}/",
        dvc_files_pushed=dvc_files,
        uploaded_files=store.stats.uploaded_files - before[0],
        uploaded_bytes=store.stats.uploaded_bytes - before[1],
        skipped_files=store.stats.skipped_files - before[2],
    )


def _check_dvc_objects(root: Path, store: Store, manifest: Manifest) -> list[str]:
    """After `dvc push`, check that every DVC object of the run is in the store at its full size,
    and re-upload (from the local copy, sha256-checked) any that is missing or of another size.

    An interrupted upload must never leave the run looking pushed; DVC only checks existence.
    """
    repaired = []
    for entry in manifest.artifacts:
        if not entry.object_key:
            continue
        head = store.head(entry.object_key)
        if head is not None and int(head.get("ContentLength", -1)) == entry.size:
            continue
        store.put_file(local_copy(root, entry), entry.object_key, sha256=entry.sha256, force=True)
        head = store.head(entry.object_key)
        if head is None or int(head.get("ContentLength", -1)) != entry.size:
            raise StoreError(
                f"{entry.object_key} ({entry.path}) is not in the store at its full size "
                f"{entry.size} after pushing run {manifest.run_id}",
                "Retry `zkml-dvc push RUN_ID`; if it persists, the store is losing writes.",
            )
        repaired.append(entry.path)
    return repaired


def fetch_manifest_signature(store: Store, project: str, run_id: str) -> bytes:
    """The detached SSH signature of a run's manifest (``manifest.json.sig``); NotFoundError if
    the run was not signed."""
    rel = f"{run_index_prefix(project, runs.validate_run_id(run_id))}/{SIGNATURE_NAME}"
    if store.head(rel) is None:
        raise NotFoundError(f"run {run_id} has no {SIGNATURE_NAME} in the store", "")
    return store.get_bytes(rel)


def fetch_manifest(store: Store, project: str, run_id: str,
                   expected_sha256: str | None = None) -> tuple[Manifest, str]:
    """A run's manifest from the store (untrusted: checked against ``expected_sha256`` if given,
    else against the sha256 stored with it); returns it with its sha256."""
    manifest, sha, _ = fetch_manifest_bytes(store, project, run_id, expected_sha256)
    return manifest, sha


def fetch_manifest_bytes(store: Store, project: str, run_id: str,
                         expected_sha256: str | None = None) -> tuple[Manifest, str, bytes]:
    """``fetch_manifest`` and the manifest's exact bytes (what a signature covers)."""
    runs.validate_run_id(run_id)
    rel = f"{run_index_prefix(project, run_id)}/manifest.json"
    try:
        data = store.get_bytes(rel, expected_sha256)
    except NotFoundError:
        raise NotFoundError(
            f"run {run_id} of project {project} is not in the store {store.where}",
            "Check the run id and --project (`zkml-dvc runs --store ...` lists them), or push it.",
        ) from None
    manifest = parse_manifest(data, f"{store.where}/{rel}")
    if manifest.project != project or manifest.run_id != run_id:
        raise IntegrityError(
            f"the manifest at {rel} names run {manifest.run_id} of project {manifest.project}",
            "The store's run index is inconsistent; do not trust this run.",
        )
    return manifest, sha256_bytes(data), data


def list_store_runs(store: Store, project: str) -> list[str]:
    """Run ids with a complete index (manifest present) in the store."""
    ids = set()
    for obj in store.list(f"projects/{project}/runs"):
        parts = obj["Key"].split("/")
        if len(parts) == 5 and parts[4] == "manifest.json":
            ids.add(parts[3])
    return sorted(ids)
