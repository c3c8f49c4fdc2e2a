"""Small file helpers: streaming sha256, atomic writes, confined paths."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError

CHUNK = 1024 * 1024


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's safe loader where PyYAML has it (several times faster:
    params.yaml, dvc.yaml and dvc.lock are read on every command). Raises yaml.YAMLError."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB chunks (never whole into memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename it into place only if the block succeeds.

    A reader never sees a half-written ``dest``: either the old file or the complete new one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".incomplete", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if mode is not None:
            os.chmod(tmp_path, mode)
        os.replace(tmp_path, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temp directory beside ``dest``; it replaces ``dest`` only if the block
    succeeds (a killed writer leaves a ``.NAME.*.incomplete`` directory, swept next time)."""
    import shutil

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*.incomplete"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".incomplete", dir=dest.parent))
    try:
        yield tmp
        old = dest.with_name(f".{dest.name}.old.incomplete")
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it (``os.umask`` can only
    set it: setting and restoring would let another thread's file be created under the
    temporary value meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o077)  # the strictest value in the meantime
    os.umask(old)
    return old


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    with atomic_path(dest, mode) as tmp:
        # Create with the final mode from the start so a secret is never world-readable.
        if mode is not None:
            os.chmod(tmp, mode)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(dest: str | os.PathLike[str], text: str, mode: int | None = None) -> None:
    atomic_write_bytes(dest, text.encode(), mode)


def atomic_write_json(dest: str | os.PathLike[str], obj: Any, mode: int | None = None) -> None:
    atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=False) + "\n", mode)


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """Read JSON, turning a missing or malformed file into a one-line InputError."""
    p = Path(path)
    if not p.exists():
        from .errors import MissingFileError

        raise MissingFileError(p, what)
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{what} {p} is not valid JSON ({exc})", f"Fix or regenerate {p}."
        ) from None
    except RecursionError:  # untrusted files may nest without end
        raise InputError(f"{what} {p} is nested too deeply to read",
                         "It is not a file zkml-dvc or ezkl wrote; do not trust it.") from None


def confined(root: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``root``, refusing absolute paths and ``..`` escapes.

    Paths in manifests fetched from a store are untrusted input.
    """
    if not relative or relative.startswith(("/", "\\")) or Path(relative).is_absolute():
        raise InputError(
            f"refusing path {relative!r}: it is absolute",
            "A manifest may only name paths inside the project; the manifest is not trustworthy.",
        )
    parts = Path(relative).parts
    if ".." in parts:
        raise InputError(
            f"refusing path {relative!r}: it leaves the target directory",
            "A manifest may only name paths inside the project; the manifest is not trustworthy.",
        )
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InputError(f"refusing path {relative!r}: it resolves outside {root}",
                         "A symlink on that path leads out of the directory; remove it.")
    return resolved
