"""The structured reference string, kept once per logrows in a content-addressed cache.

``gen_srs`` is random on every call and keys made with one SRS do not verify with another, so an SRS
is made (or fetched) once, stored under its sha256 and pinned by that hash in the pipeline
(``artifacts/<model>/keys/srs.json``, a DVC output) and in every manifest.

Cache layout (``$ZKML_DVC_CACHE_DIR``, default ``~/.cache/zkml-dvc``)::

    blobs/<sha256>              content-addressed files (SRS and verified downloads; cache.py)
    srs/<source>-k<logrows>     text file: the sha256 of the SRS chosen for that logrows

In the store, each SRS is ``srs/<sha256>`` (layout.srs_key). The functions that touch the store
receive it: this module never looks for a project on its own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from . import cache, env
from .cache import blob_path
from .errors import ConfigError, HashMismatchError, IntegrityError, MissingFileError
from .fsutil import atomic_write_text, sha256_file
from .layout import srs_key
from .store import Store

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


def _index_path(source: Source, logrows: int) -> Path:
    return env.cache_dir() / "srs" / f"{source}-k{logrows}"


def _pointer(sha256: str, source: Source, logrows: int) -> SrsPointer:
    return SrsPointer(logrows=logrows, sha256=sha256, size=blob_path(sha256).stat().st_size,
                      source=source, insecure=source == "local")


def cached_pointer(source: Source, logrows: int) -> SrsPointer | None:
    """The SRS this machine chose for ``logrows``, if its blob is still there and still hashes to
    its name (re-hashed on every use: a blob edited in place is never used)."""
    idx = _index_path(source, logrows)
    if not idx.exists():
        return None
    sha = idx.read_text().strip()
    if cache.verified_blob(sha) is None:
        return None
    return _pointer(sha, source, logrows)


def adopt(path: Path, source: Source, logrows: int, expected_sha256: str | None = None) -> SrsPointer:
    """Move an SRS file into the cache under its hash and remember it for ``logrows``."""
    sha = sha256_file(path)
    if expected_sha256 and sha != expected_sha256:
        path.unlink(missing_ok=True)
        raise HashMismatchError(f"SRS for logrows {logrows}", expected_sha256, sha)
    size = path.stat().st_size
    if size != expected_size(logrows):
        path.unlink(missing_ok=True)
        raise IntegrityError(f"SRS for logrows {logrows} has {size} bytes, not the "
                             f"{expected_size(logrows)} an SRS of that size has")
    blob = blob_path(sha)
    blob.parent.mkdir(parents=True, exist_ok=True)
    if blob.exists():
        path.unlink()
    else:
        path.replace(blob)
    atomic_write_text(_index_path(source, logrows), sha + "\n")
    return _pointer(sha, source, logrows)


def adopt_cached(sha256: str, source: Source, logrows: int) -> SrsPointer:
    """Remember an SRS already in blobs/ (after a verified download) as the one for ``logrows``."""
    blob = blob_path(sha256)
    if blob.stat().st_size != expected_size(logrows):
        blob.unlink()
        raise IntegrityError(f"SRS {sha256[:12]} has the wrong size for logrows {logrows}")
    atomic_write_text(_index_path(source, logrows), sha256 + "\n")
    return _pointer(sha256, source, logrows)


def obtain(source: Source, logrows: int, store: Store | None = None,
           pins: list[str] | None = None) -> SrsPointer:
    """The SRS for ``logrows``, chosen only by a pinned sha256, never by what a store says of it.

    In order: this machine's cached choice; an SRS pinned for this logrows (``pins``: the public
    ceremony hash for ``public``, the SRS of the project's earlier runs for ``local``) from the
    cache or ``store`` (checked by sha256); else a new one, made (``local``) or downloaded and
    checked against ezkl's pinned hash (``public``). A pinned SRS that the store holds but that
    fails to download or to verify is an error: a new one would silently change the keys.
    """
    from .trust import public_srs_table

    found = cached_pointer(source, logrows)
    if found and (source == "local" or found.sha256 == public_srs_table().get(logrows)):
        return found
    wanted = list(pins or [])
    if source == "public" and logrows in public_srs_table():
        wanted = [public_srs_table()[logrows]]
    for sha in wanted:
        if cache.verified_blob(sha) is not None:
            return adopt_cached(sha, source, logrows)
        if store is not None and store.head(srs_key(sha)) is not None:
            fetch(store, SrsPointer(logrows=logrows, sha256=sha, size=expected_size(logrows),
                                    source=source, insecure=source == "local"))
            return _pointer(sha, source, logrows)
    from . import ezkl_adapter

    tmp_dir = env.cache_dir() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as td:
        out = Path(td) / f"kzg{logrows}.srs"
        if source == "local":
            ezkl_adapter.gen_srs(out, logrows)
            return adopt(out, source, logrows)
        try:
            ezkl_adapter.get_srs(out, logrows)
        except Exception as exc:
            raise ConfigError(
                f"could not download the public SRS for logrows {logrows} ({exc})",
                "Connect to the internet once, or set `srs: {source: local}` in params.yaml "
                "for a local test SRS.",
            ) from None
        return adopt(out, source, logrows, expected_sha256=public_srs_table().get(logrows))


def fetch(store: Store, pointer: SrsPointer) -> Path:
    """The pinned SRS in the local cache, downloaded (sha256-checked) from ``store`` if needed."""
    blob = blob_path(pointer.sha256)
    if cache.verified_blob(pointer.sha256) is None:
        blob.unlink(missing_ok=True)
        store.get_file(srs_key(pointer.sha256), blob, expected_sha256=pointer.sha256,
                       max_size=expected_size(pointer.logrows))
    adopt_cached(pointer.sha256, pointer.source, pointer.logrows)
    return blob


def put(store: Store, pointer: SrsPointer) -> bool:
    """Upload the cached SRS ``pointer`` names (skipped if the store has it); True if sent."""
    return store.put_file(
        blob_path(pointer.sha256), srs_key(pointer.sha256), sha256=pointer.sha256,
        metadata={"logrows": str(pointer.logrows), "source": pointer.source},
    )


def path_for(pointer: SrsPointer, store: Store | Callable[[], Store | None] | None = None) -> Path:
    """The cached file for a pinned SRS (re-hashed: a blob changed in place is not used), fetched
    from ``store`` (or the store the callable returns, asked only then) if this machine lacks
    it."""
    blob = blob_path(pointer.sha256)
    if cache.verified_blob(pointer.sha256) is not None:
        return blob
    blob.unlink(missing_ok=True)  # changed behind our back: never used, fetched again
    if callable(store):
        store = store()
    if store is not None:
        fetch(store, pointer)
        if blob.exists():
            return blob
    raise MissingFileError(
        blob,
        f"SRS {pointer.sha256[:12]} (logrows {pointer.logrows})",
        "Pull it with `zkml-dvc pull RUN_ID` or configure the remote that holds it.",
    )
