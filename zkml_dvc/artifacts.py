"""Typed artifact bundles pushed to and pulled from the store (the Python API).

Subclass ``Artifact`` to declare a bundle: fields typed ``Path`` or ``list[Path]`` (optionally
``| None``) are files; every other field is metadata, validated by pydantic. ``EZKLArtifact`` ships
the ezkl set (model, settings, compiled circuit, SRS, vk, pk, optionally witness and proof).

    ref = "s3://zkml-dvc/team/artifacts/mlp"          # or /some/dir/mlp, file://..., memory://...
    version = push(bundle, ref)                        # a new immutable version every time
    got = pull(EZKLArtifact, ref + ":latest", fields=EZKLArtifact.VERIFY_FIELDS)

Layout under the backend's root (a ref's parent directory, like a run store's root)::

    blobs/<sha256>                               file contents, stored once whatever their name
    artifacts/<name>/versions/<version>/manifest.json

Files are streamed (never read whole into memory), deduplicated by sha256 against what the store
already holds (blobs, ``srs/<sha256>``, and DVC objects a run manifest names), checked by sha256 on
pull (a mismatch is an error and the file is not kept) and cached locally by hash.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from . import env
from .artifact_backends import ArtifactNotFoundError, Backend, FsspecBackend, S3Backend, backend_for
from .bulk import each
from .errors import HashMismatchError, InputError, IntegrityError
from .fsutil import sha256_bytes, sha256_file

__all__ = ["Artifact", "ArtifactNotFoundError", "ArtifactTypeError", "Backend", "EZKLArtifact",
           "FsspecBackend", "S3Backend", "backend_for", "parse_ref", "pull", "push"]

A = TypeVar("A", bound="Artifact")
_REF_RE = re.compile(
    r"^(?P<base>.*?)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,63})(:(?P<version>[A-Za-z0-9._-]+))?$"
)


class ArtifactTypeError(InputError, TypeError):
    """Pulling a bundle into a class other than the one it was pushed as."""


class FileEntry(BaseModel):
    field: str
    index: int | None = None
    path: str = Field(description="path inside the bundle: <field>/<name> or <field>/<i>/<name>")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    object: str = Field(description="key of the content, relative to the backend root")


class ArtifactManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    name: str
    version: str
    created: datetime
    metadata: dict[str, Any]
    files: list[FileEntry]
    zkml_dvc_version: str
    ezkl_version: str


def _file_kind(annotation: Any) -> str | None:
    """'one' for Path (or Path | None), 'many' for list[Path]; None for metadata."""
    origin = typing.get_origin(annotation)
    if annotation is Path:
        return "one"
    if origin in (typing.Union, types.UnionType):
        kinds = {_file_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if origin is list and typing.get_args(annotation) == (Path,):
        return "many"
    return None


class Artifact(BaseModel):
    """Base of typed bundles: Path / list[Path] fields are files, the others metadata."""

    model_config = ConfigDict(extra="forbid")
    _known_objects: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def file_fields(cls) -> dict[str, str]:
        return {n: k for n, f in cls.model_fields.items() if (k := _file_kind(f.annotation))}

    @classmethod
    def type_name(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    def metadata(self) -> dict[str, Any]:
        files = self.file_fields()
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in files}

    def files(self) -> list[tuple[str, int | None, Path]]:
        out: list[tuple[str, int | None, Path]] = []
        for name, kind in self.file_fields().items():
            value = getattr(self, name)
            if value is None:
                continue
            if kind == "one":
                out.append((name, None, Path(value)))
            else:
                out.extend((name, i, Path(p)) for i, p in enumerate(value))
        return out


class EZKLArtifact(Artifact):
    """The ezkl artifacts of one circuit, with what is needed to re-check them."""

    VERIFY_FIELDS: ClassVar[tuple[str, ...]] = ("settings", "vk", "srs", "proof")

    model: Path
    settings: Path
    compiled_circuit: Path
    srs: Path
    vk: Path
    pk: Path
    witness: Path | None = None
    proof: Path | None = None
    ezkl_version: str
    logrows: int = Field(ge=1, le=26)
    srs_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    srs_insecure: bool
    run_id: str | None = None
    project: str | None = None

    @classmethod
    def from_run(cls, run_id: str, root: Path | None = None) -> EZKLArtifact:
        """The bundle of a run in a project workspace at the run's commit, every file checked
        against the run manifest (pull the run first: `zkml-dvc pull RUN_ID --for all`)."""
        from . import srs as srs_mod
        from .layout import ModelLayout, find_root
        from .runs import load_manifest

        root = root or find_root()
        _, m = load_manifest(root, run_id)
        lay = ModelLayout(m.model)
        paths = {"model": Path(m.model_facts.path), "settings": lay.settings,
                 "compiled_circuit": lay.compiled, "vk": lay.vk, "pk": lay.pk,
                 "witness": lay.witness, "proof": lay.proof}
        known: dict[str, str] = {}
        for rel in paths.values():
            entry = m.artifact(rel)
            actual = sha256_file(root / rel) if (root / rel).exists() else "missing"
            if actual != entry.sha256:
                raise HashMismatchError(f"{rel} of run {run_id} in {root}", entry.sha256, actual,
                                     f"Restore it with `zkml-dvc pull {run_id} --for all`.")
            if entry.object_key:
                known[entry.sha256] = entry.object_key
        srs_file = srs_mod.path_for(m.srs)
        known[m.srs.sha256] = f"srs/{m.srs.sha256}"
        bundle = cls(
            **{k: root / v for k, v in paths.items()}, srs=srs_file, ezkl_version=m.tools.ezkl,
            logrows=m.srs.logrows, srs_sha256=m.srs.sha256, srs_insecure=m.srs.insecure,
            run_id=run_id, project=m.project,
        )
        bundle._known_objects = known
        return bundle

    def verify(self) -> None:
        """Run ezkl's verify on this bundle's proof; raises ProofInvalidError if it fails."""
        from . import ezkl_adapter

        if self.proof is None:
            raise InputError("this bundle has no proof to verify", "Pull it with the proof field.")
        ezkl_adapter.verify(self.proof, self.settings, self.vk, self.srs)


# ---- push / pull -------------------------------------------------------------------------------
def parse_ref(ref: str) -> tuple[str, str, str | None]:
    """``<base>/<name>[:<version>]`` -> (base, name, version or None)."""
    m = _REF_RE.match(ref.rstrip("/"))
    if not m or not m.group("base"):
        raise InputError(f"artifact ref {ref!r} is not of the form <store>/<name>[:<version>]",
                         "e.g. s3://bucket/prefix/mlp:latest or ./artifacts/mlp")
    return m.group("base"), m.group("name"), m.group("version")


class LatestPointer(BaseModel):
    """``artifacts/<name>/latest.json``: which version is the latest, and its manifest's sha256."""

    version: str
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def _versions(backend: Backend, name: str) -> list[str]:
    prefix = f"artifacts/{name}/versions"
    return sorted({k.split("/")[3] for k in backend.list(prefix)
                   if k.endswith("/manifest.json") and len(k.split("/")) == 5})


def push(artifact: Artifact, ref: str, endpoint: str | None = None) -> str:
    """Push ``artifact`` as a new immutable version of ``ref``'s name; returns the version."""
    from importlib.metadata import version as pkg_version

    from .runs import new_run_id

    base, name, version = parse_ref(ref)
    if version:
        raise InputError(f"cannot push to a given version ({ref})",
                         "Versions are immutable: push to the name alone; a new version is made.")
    backend = backend_for(base, endpoint)
    files = list(artifact.files())
    for field, _, path in files:
        if not path.is_file():
            raise InputError(f"{type(artifact).__name__}.{field}: {path} is not a file", "")

    # each file's bytes are stored once: under an object the store already holds with them (the
    # run's DVC object the bundle came from, blobs/, srs/), else uploaded to blobs/<sha256>
    shas = each([(path.stat().st_size, functools.partial(sha256_file, path))
                 for _, _, path in files])
    candidates = [[k for k in (artifact._known_objects.get(sha), f"blobs/{sha}", f"srs/{sha}") if k]
                  for sha in shas]
    keys = sorted({k for ks in candidates for k in ks})
    present = {k for k, there in zip(keys, backend.exists_many(keys), strict=True) if there}
    stored: list[tuple[str, str]] = []  # (sha256, the object holding those bytes)
    uploads: dict[str, tuple[Path, str, str, int]] = {}
    for (_, _, path), sha, ks in zip(files, shas, candidates, strict=True):
        obj = next((k for k in ks if k in present), f"blobs/{sha}")
        if obj not in present:
            uploads.setdefault(obj, (path, obj, sha, path.stat().st_size))
        stored.append((sha, obj))
    backend.put_files(list(uploads.values()))
    entries: list[FileEntry] = []
    for (field, index, path), (sha, obj) in zip(files, stored, strict=True):
        inner = f"{field}/{path.name}" if index is None else f"{field}/{index}/{path.name}"
        entries.append(FileEntry(field=field, index=index, path=inner, sha256=sha,
                                 size=path.stat().st_size, object=obj))
    new_version = new_run_id()
    existing = _versions(backend, name)
    while existing and new_version <= existing[-1]:  # same millisecond, or a clock behind
        import time

        time.sleep(0.002)
        new_version = new_run_id()
    manifest = ArtifactManifest(
        type=type(artifact).type_name(), name=name, version=new_version,
        created=datetime.now(UTC), metadata=artifact.metadata(), files=entries,
        zkml_dvc_version=pkg_version("zkml-dvc"), ezkl_version=pkg_version("ezkl"),
    )
    body = manifest.model_dump_json(indent=2).encode()
    key = f"artifacts/{name}/versions/{new_version}/manifest.json"
    # Write once: O3 has no conditional writes, so check before and verify after.
    if backend.exists(key):
        raise InputError(f"version {name}:{new_version} already exists at {base}",
                         "Push again: versions are never overwritten.")
    backend.put_bytes(body, key)
    sha = sha256_bytes(body)
    backend.get_bytes(key, sha)  # raises if someone else's bytes landed under our version
    # `latest` is a pointer written after the version and checked on read: a version that merely
    # sorts higher cannot take its place.
    backend.put_bytes(LatestPointer(version=new_version, manifest_sha256=sha).model_dump_json()
                      .encode(), f"artifacts/{name}/latest.json")
    return new_version


def _existing_object(backend: Backend, sha: str, hint: str | None) -> str | None:
    for key in (hint, f"blobs/{sha}", f"srs/{sha}"):
        if key and backend.exists(key):
            return key
    return None


def _latest(backend: Backend, name: str, versions: list[str]) -> tuple[str, str | None]:
    """The version ``latest`` points to, with the manifest sha256 it pins (stores written
    before the pointer existed: the newest version, unpinned)."""
    key = f"artifacts/{name}/latest.json"
    if not backend.exists(key):
        return versions[-1], None
    try:
        pointer = LatestPointer.model_validate_json(backend.get_bytes(key))
    except ValidationError:
        raise IntegrityError(f"the latest pointer of artifact {name!r} is malformed",
                             "Pull a version by its id.") from None
    return pointer.version, pointer.manifest_sha256


def pull(cls: type[A], ref: str, fields: typing.Iterable[str] | None = None,
         dest: Path | None = None, endpoint: str | None = None, sha256: str | None = None) -> A:
    """Pull version ``ref`` (``name``, ``name:latest`` or ``name:<version>``) into ``cls``.

    Only ``fields`` are downloaded when given (the other file fields are None). Files land in
    ``dest`` (default: the user cache) under their bundle paths; each is checked by sha256.
    ``latest`` follows the pointer the last push wrote (checked against the manifest it pins);
    ``sha256`` pins the version's manifest itself. Raises ArtifactNotFoundError,
    ArtifactTypeError, IntegrityError, or InputError when the stored metadata does not validate
    against ``cls``.
    """
    base, name, version = parse_ref(ref)
    backend = backend_for(base, endpoint)
    versions = _versions(backend, name)
    if not versions:
        raise ArtifactNotFoundError(f"no artifact {name!r} at {base}", "Push one first.")
    pinned = sha256
    if version in (None, "latest"):
        chosen, latest_sha = _latest(backend, name, versions)
        pinned = pinned or latest_sha
    else:
        chosen = version
    if chosen not in versions:
        raise ArtifactNotFoundError(f"artifact {name!r} has no version {chosen!r}",
                                    f"Known versions: {', '.join(versions[-5:])}.")
    raw = backend.get_bytes(f"artifacts/{name}/versions/{chosen}/manifest.json", pinned)
    try:
        manifest = ArtifactManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise InputError(f"manifest of {name}:{chosen} is invalid ({exc.errors()[0]['msg']})",
                         "") from None
    if manifest.type != cls.type_name():
        raise ArtifactTypeError(
            f"{name}:{chosen} is a {manifest.type}, not a {cls.type_name()}",
            f"Pull it with the class it was pushed as ({manifest.type.rsplit('.', 1)[-1]}).",
        )
    file_fields = cls.file_fields()
    wanted = set(fields) if fields is not None else set(file_fields)
    unknown = wanted - set(file_fields)
    if unknown:
        raise InputError(f"{cls.__name__} has no file fields {sorted(unknown)}",
                         f"Use some of: {', '.join(file_fields)}.")
    target = dest or env.cache_dir() / "artifacts" / name / chosen
    from .fsutil import confined

    values: dict[str, Any] = {}
    chosen_files = [(e, confined(target, e.path)) for e in manifest.files if e.field in wanted]
    backend.get_files([(e.object, local, e.sha256, e.size) for e, local in chosen_files])
    for e, local in chosen_files:
        if file_fields.get(e.field) == "many":
            values.setdefault(e.field, []).append((e.index or 0, local))
        else:
            values[e.field] = local
    for f, v in list(values.items()):
        if isinstance(v, list):
            values[f] = [p for _, p in sorted(v)]
    missing: dict[str, Any] = {f: (Path("/dev/null") if k == "one" else []) for f, k in file_fields.items()
               if f not in values}
    try:
        obj = cls.model_validate({**manifest.metadata, **values, **missing})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(
            f"metadata of {name}:{chosen} does not validate as {cls.__name__}: "
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}", "") from None
    return obj.model_copy(update={f: None for f in missing})
