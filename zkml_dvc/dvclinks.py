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

import os
from typing import Any


def reflinks_work(repo: Any) -> bool:
    """Whether the open DVC ``repo`` can reflink (clone) from its cache into the workspace,
    probed with DVC's own link test (a temp file in the cache and one in ``.dvc/tmp``)."""
    from dvc_objects.fs.generic import test_links

    odb = repo.cache.repo
    try:
        return bool(test_links(["reflink"], odb.fs, odb.path, repo.fs,
                               os.path.join(repo.tmp_dir, "link-probe")))
    except OSError:
        return False  # cannot even write the probe: DVC's reflink would fail the same way


def single_copy(repo: Any) -> None:
    """Where the user left ``cache.type`` unset and reflinks do not work, make the open DVC
    ``repo`` copy outputs into its cache once (see the module docstring)."""
    if repo.config.get("cache", {}).get("type"):
        return  # the user's choice
    odbs = [repo.cache.repo, repo.cache.legacy]
    if any(list(odb.cache_types) != ["reflink", "copy"] for odb in odbs):
        return  # not DVC's default for a local cache: leave it
    if reflinks_work(repo):
        return
    for odb in odbs:
        odb.cache_types = ["copy"]
