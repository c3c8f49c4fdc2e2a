"""The structured reference string, kept once per logrows in a content-addressed cache.

``gen_srs`` is random on every call and keys made with one SRS do not verify with another, so an SRS
is made (or fetched) once, stored under its sha256 and pinned by that hash in the pipeline
(``artifacts/<model>/keys/srs.json``, a DVC output) and in every manifest.

Cache layout (``$ZKML_DVC_CACHE_DIR``, default ``~/.cache/zkml-dvc``)::

    blobs/<sha256>              content-addressed files (SRS and verified downloads)
    srs/<source>-k<logrows>     text file: the sha256 of the SRS chosen for that logrows
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from . import env
from .errors import ConfigError, IntegrityError, MissingFileError
from .fsutil import atomic_write_text, sha256_file

Source = Literal["local", "public"]


class SrsPointer(BaseModel):
    """What the `srs` stage writes: which SRS the circuit uses, by hash."""

    logrows: int
    sha256: str
    size: int
    source: Source
    insecure: bool  # a local gen_srs SRS: fine for tests, never for production proofs


def expected_size(logrows: int) -> int:
    return 2**logrows * 128 + 260


def blob_path(sha256: str) -> Path:
    return env.cache_dir() / "blobs" / sha256


def _index_path(source: Source, logrows: int) -> Path:
    return env.cache_dir() / "srs" / f"{source}-k{logrows}"


def cached_pointer(source: Source, logrows: int) -> SrsPointer | None:
    idx = _index_path(source, logrows)
    if not idx.exists():
        return None
    sha = idx.read_text().strip()
    blob = blob_path(sha)
    if not blob.exists():
        return None
    return SrsPointer(
        logrows=logrows, sha256=sha, size=blob.stat().st_size, source=source,
        insecure=source == "local",
    )


def adopt(path: Path, source: Source, logrows: int, expected_sha256: str | None = None) -> SrsPointer:
    """Move an SRS file into the cache under its hash and remember it for ``logrows``."""
    sha = sha256_file(path)
    if expected_sha256 and sha != expected_sha256:
        path.unlink(missing_ok=True)
        raise IntegrityError(f"SRS for logrows {logrows}", expected_sha256, sha)
    size = path.stat().st_size
    if size != expected_size(logrows):
        path.unlink(missing_ok=True)
        raise IntegrityError(
            f"SRS for logrows {logrows} (size {size}, expected {expected_size(logrows)})",
            expected_sha256 or "?" * 12, sha,
        )
    blob = blob_path(sha)
    blob.parent.mkdir(parents=True, exist_ok=True)
    if blob.exists():
        path.unlink()
    else:
        path.replace(blob)
    atomic_write_text(_index_path(source, logrows), sha + "\n")
    return SrsPointer(logrows=logrows, sha256=sha, size=size, source=source, insecure=source == "local")


def obtain(source: Source, logrows: int, fetch_from_store: bool = True) -> SrsPointer:
    """The SRS for ``logrows``: from the cache, else from the store, else made (local) or
    downloaded (public). Never regenerates one that is cached."""
    found = cached_pointer(source, logrows)
    if found:
        return found
    if fetch_from_store:
        fetched = _fetch_from_store(source, logrows)
        if fetched:
            return fetched
    from . import ezkl_adapter

    tmp_dir = env.cache_dir() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as td:
        out = Path(td) / f"kzg{logrows}.srs"
        if source == "local":
            ezkl_adapter.gen_srs(out, logrows)
        else:
            try:
                ezkl_adapter.get_srs(out, logrows)
            except Exception as exc:
                raise ConfigError(
                    f"could not download the public SRS for logrows {logrows} ({exc})",
                    "Connect to the internet once, or set `srs: {source: local}` in params.yaml "
                    "for a local test SRS.",
                ) from None
        return adopt(out, source, logrows)


def _fetch_from_store(source: Source, logrows: int) -> SrsPointer | None:
    """Look for an SRS with this logrows in the project's store; None if none or no store."""
    from .errors import ZkmlError
    from .store import find_project_store

    try:
        store = find_project_store(Path.cwd())
        if store is None:
            return None
        sha = store.find_srs(source, logrows)
        if sha is None:
            return None
        store.fetch_srs(sha, logrows, source)
    except ZkmlError:
        return None  # the store is optional here: fall back to making one
    return cached_pointer(source, logrows)


def path_for(pointer: SrsPointer) -> Path:
    """The cached file for a pinned SRS, fetched from the store if this machine lacks it."""
    blob = blob_path(pointer.sha256)
    if blob.exists():
        return blob
    from .store import find_project_store

    store = find_project_store(Path.cwd())
    if store is not None:
        store.fetch_srs(pointer.sha256, pointer.logrows, pointer.source)
        if blob.exists():
            return blob
    raise MissingFileError(
        blob,
        f"SRS {pointer.sha256[:12]} (logrows {pointer.logrows})",
        "Pull it with `zkml-dvc pull RUN_ID` or configure the remote that holds it.",
    )


def adopt_cached(sha256: str, source: Source, logrows: int) -> SrsPointer:
    """Remember an SRS already in blobs/ (after a verified download) as the one for ``logrows``."""
    blob = blob_path(sha256)
    if blob.stat().st_size != expected_size(logrows):
        blob.unlink()
        raise IntegrityError(f"SRS {sha256[:12]} (wrong size for logrows {logrows})", sha256, "?")
    atomic_write_text(_index_path(source, logrows), sha256 + "\n")
    return SrsPointer(logrows=logrows, sha256=sha256, size=blob.stat().st_size, source=source,
                      insecure=source == "local")
