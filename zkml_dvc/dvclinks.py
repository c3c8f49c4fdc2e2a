"""How DVC links outputs to its cache: one copy of a proving key, not two.

DVC's default link types for a local cache are ``reflink, copy``. Where the file system cannot
reflink (ext4, most Linux disks), committing a stage's output copies it into the cache and then,
because the first type is not ``copy``, deletes the workspace file and copies it back (dvc-data's
checkout relinks unless the cache's first type is ``copy``): a 554 MB proving key is written
twice, ~1.2 s more on our machines. When the user has not chosen ``cache.type``, zkml-dvc probes
once whether the workspace can reflink into the cache; if not, it tells the open repo to copy,
which is what DVC would end up doing, minus the second copy. Nothing is written to DVC's config:
plain `dvc` commands behave as before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any


def _existing_dir(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def can_reflink(src_dir: str, dst_dir: str) -> bool:
    """Whether a file in ``src_dir`` can be reflinked (cloned) into ``dst_dir``."""
    from dvc_objects.fs.system import reflink

    src_dir, dst_dir = _existing_dir(src_dir), _existing_dir(dst_dir)
    try:
        fd, src = tempfile.mkstemp(prefix=".zkml-dvc-reflink-", dir=src_dir)
    except OSError:
        return False
    os.close(fd)
    dst = os.path.join(dst_dir, os.path.basename(src) + ".clone")
    try:
        reflink(src, dst)
        return True
    except (OSError, AttributeError):  # not supported here (or no reflink on this platform)
        return False
    finally:
        for path in (src, dst):
            with contextlib.suppress(OSError):
                os.unlink(path)


def single_copy(repo: Any) -> None:
    """Where the user left ``cache.type`` unset and reflinks do not work, make the open DVC
    ``repo`` copy outputs into its cache once (see the module docstring)."""
    if repo.config.get("cache", {}).get("type"):
        return  # the user's choice
    odbs = [repo.cache.repo, repo.cache.legacy]
    if any(list(odb.cache_types) != ["reflink", "copy"] for odb in odbs):
        return  # not DVC's default for a local cache: leave it
    if can_reflink(repo.tmp_dir or repo.root_dir, odbs[0].path):
        return
    for odb in odbs:
        odb.cache_types = ["copy"]
