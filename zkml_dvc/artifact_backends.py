"""Where the Python API's artifact bundles are stored: the O3/S3 store through zkml-dvc's client,
or any fsspec filesystem, behind one small interface (``artifacts.py`` holds the bundles)."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from . import bulk
from .bulk import each
from .errors import HashMismatchError, InputError, NotFoundError
from .fsutil import atomic_path, sha256_bytes, sha256_file


class ArtifactNotFoundError(NotFoundError, FileNotFoundError):
    """No artifact (or no such version) at a ref."""


class Backend(Protocol):
    """What the artifact code needs of a store. Keys are relative to the backend's root."""

    def exists(self, key: str) -> bool: ...
    def put_file(self, path: Path, key: str, sha256: str) -> bool: ...
    def get_file(self, key: str, dest: Path, sha256: str) -> Path: ...
    def put_bytes(self, data: bytes, key: str) -> bool: ...
    def get_bytes(self, key: str, sha256: str | None = None) -> bytes: ...
    def list(self, prefix: str) -> list[str]: ...
    # many at once: (key) / (path, key, sha256, size) of objects known absent / (key, dest,
    # sha256, size), each checked as get_file checks it
    def exists_many(self, keys: Sequence[str]) -> builtins.list[bool]: ...
    def put_files(self, items: Sequence[tuple[Path, str, str, int]]) -> None: ...
    def get_files(self, items: Sequence[tuple[str, Path, str, int]]) -> None: ...


class S3Backend:
    """The O3/S3 store through zkml-dvc's store client (O3-safe settings, sha256 metadata)."""

    def __init__(self, url: str, endpoint: str | None = None) -> None:
        from .remote import store_from_config

        self.store = store_from_config(url, endpoint)

    def exists(self, key: str) -> bool:
        return self.store.head(key) is not None

    def put_file(self, path: Path, key: str, sha256: str) -> bool:
        return self.store.put_file(path, key, sha256=sha256)

    def get_file(self, key: str, dest: Path, sha256: str) -> Path:
        return self.store.get_file(key, dest, sha256)

    def put_bytes(self, data: bytes, key: str) -> bool:
        return self.store.put_bytes(data, key)

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        return self.store.get_bytes(key, sha256)

    def list(self, prefix: str) -> list[str]:
        return [o["Key"] for o in self.store.list(prefix)]

    # small objects by obstore, many in flight (boto3 spends milliseconds of CPU per request)
    def exists_many(self, keys: Sequence[str]) -> builtins.list[bool]:
        return bulk.exists_many(self.store, keys)

    def put_files(self, items: Sequence[tuple[Path, str, str, int]]) -> None:
        bulk.put_files(self.store, [bulk.Put(path, key, sha, size)
                                    for path, key, sha, size in items])

    def get_files(self, items: Sequence[tuple[str, Path, str, int]]) -> None:
        bulk.get_files(self.store, [bulk.Fetch(key, dest, sha, size)
                                    for key, dest, sha, size in items])


class FsspecBackend:
    """Any fsspec filesystem (a local directory, memory://, gcs://, ...) with the same checks."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)

    def _p(self, key: str) -> str:
        """The backend path of ``key``; names from a manifest are untrusted, so a key may not
        leave the root (no absolute paths, no empty, ``.`` or ``..`` segments)."""
        parts = key.split("/")
        if not key or key.startswith(("/", "\\")) or any(p in ("", ".", "..") for p in parts):
            raise InputError(f"refusing artifact key {key!r}: it would leave {self.root}",
                             "The artifact manifest is malformed; do not trust it.")
        return f"{self.root}/{key}"

    def _tmp(self, target: str) -> str:
        import secrets

        return f"{target}.{secrets.token_hex(8)}.incomplete"  # unique: concurrent writers

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._p(key)))

    def put_file(self, path: Path, key: str, sha256: str) -> bool:
        if self.exists(key):
            return False
        target = self._p(key)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = self._tmp(target)
        self.fs.put_file(str(path), tmp)  # streamed by fsspec
        self.fs.mv(tmp, target)
        return True

    def get_file(self, key: str, dest: Path, sha256: str) -> Path:
        if not self.exists(key):
            raise ArtifactNotFoundError(f"{self._p(key)} does not exist", "")
        with atomic_path(dest) as tmp:
            self.fs.get_file(self._p(key), str(tmp))
            actual = sha256_file(tmp)
            if actual != sha256:
                raise HashMismatchError(self._p(key), sha256, actual)
        return dest

    def put_bytes(self, data: bytes, key: str) -> bool:
        target = self._p(key)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = self._tmp(target)  # written whole under a temp name, then renamed into place
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, target)
        return True

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        if not self.exists(key):
            raise ArtifactNotFoundError(f"{self._p(key)} does not exist", "")
        data = bytes(self.fs.cat_file(self._p(key)))
        if sha256 and sha256_bytes(data) != sha256:
            raise HashMismatchError(self._p(key), sha256, sha256_bytes(data))
        return data

    def list(self, prefix: str) -> list[str]:
        base = self._p(prefix.rstrip("/"))
        if not self.fs.exists(base):
            return []
        n = len(self.root) + 1
        return sorted(str(p)[n:] for p in self.fs.find(base))

    # the one-at-a-time calls, side by side
    def exists_many(self, keys: Sequence[str]) -> builtins.list[bool]:
        return each([(0, functools.partial(self.exists, k)) for k in keys])

    def put_files(self, items: Sequence[tuple[Path, str, str, int]]) -> None:
        each([(size, functools.partial(self.put_file, path, key, sha))
              for path, key, sha, size in items])

    def get_files(self, items: Sequence[tuple[str, Path, str, int]]) -> None:
        each([(size, functools.partial(self.get_file, key, dest, sha))
              for key, dest, sha, size in items])


def backend_for(base_url: str, endpoint: str | None = None) -> Backend:
    """``s3://`` goes through the O3 store client; any other URL or path through fsspec."""
    if base_url.startswith("s3://"):
        return S3Backend(base_url, endpoint)
    return FsspecBackend(base_url)


# ---- models ------------------------------------------------------------------------------------
