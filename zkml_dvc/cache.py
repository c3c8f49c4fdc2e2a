"""The user's content-addressed blob cache: ``$ZKML_DVC_CACHE_DIR/blobs/<sha256>``.

Verified downloads and SRS files live here once, under their sha256, and are hard-linked (not
copied) into workspaces. A blob is re-hashed before every use: a file edited in place behind our
back is never trusted because of its name.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from . import env
from .errors import InputError
from .fsutil import atomic_path, sha256_file

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_sha256(value: str, what: str = "sha256") -> str:
    """``value`` if it is 64 lowercase hex digits (it becomes a file name), else InputError."""
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InputError(f"{what} {str(value)[:80]!r} is not a sha256 (64 hex digits)",
                         "The manifest or pin is malformed; do not trust it.")
    return value


def blob_path(sha256: str) -> Path:
    return env.cache_dir() / "blobs" / check_sha256(sha256)


def verified_blob(sha256: str) -> Path | None:
    """The cached blob for ``sha256`` if it is there and still hashes to it, else None."""
    blob = blob_path(sha256)
    if blob.is_file() and sha256_file(blob) == sha256:
        return blob
    return None


STALE_AFTER_S = 24 * 3600  # a download that old is not still running: it was killed


def sweep_incomplete(now: float | None = None) -> list[Path]:
    """Remove ``*.incomplete`` temp files (downloads killed mid-way) older than a day from the
    blob cache; called before each write into it. Returns what was removed."""
    import time

    blobs = env.cache_dir() / "blobs"
    cutoff = (now if now is not None else time.time()) - STALE_AFTER_S
    removed = []
    for tmp in blobs.glob(".*.incomplete") if blobs.is_dir() else []:
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # another process finished or removed it
    return removed


def link_into(src: Path, dest: Path) -> None:
    """Place a cache blob at ``dest``: a hard link (no copy) where possible.

    Safe because every cache hit re-checks the blob's sha256 before it is used, and our own
    writers replace files by rename, never in place.
    """
    if dest.exists() and src.resolve() == dest.resolve():
        return
    with atomic_path(dest) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
