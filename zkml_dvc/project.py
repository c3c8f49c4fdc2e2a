"""The project handle: one per command, passed to every library function that works in a project.

Like DVC's ``Repo``, a ``Project`` holds what a command would otherwise rebuild in every function:
the root, the validated params, the git repository, the DVC repository (opened once, with the
working directory at the root), the resolved store, and the shape of each model (monolithic or
chunked, ``shapes.py``). Everything is loaded lazily, so building one is cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .params import Params, load_params

if TYPE_CHECKING:
    from .shape import Shape
    from .store import Store


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._store: Store | None = None
        self._store_resolved = False
        self._dvc: Any = None

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The project containing ``start`` (default: the working directory)."""
        from .layout import find_root

        return cls(find_root(start))

    # ---- params -------------------------------------------------------------------------------
    @cached_property
    def params(self) -> Params:
        return load_params(self.root)

    def reload_params(self) -> Params:
        """Read params.yaml again (after zkml-dvc rewrote it, e.g. the chunk_stages table)."""
        self.__dict__.pop("params", None)
        return self.params

    def shape(self, model: str | None = None) -> Shape:
        """The named model (default: default_model) as its shape: monolithic or chunked."""
        from .shapes import shape_for_params

        return shape_for_params(self.params, model)

    # ---- git and DVC --------------------------------------------------------------------------
    @cached_property
    def git(self) -> Any:
        from .runs import open_git

        return open_git(self.root)

    @contextlib.contextmanager
    def dvc(self) -> Iterator[Any]:
        """The DVC repository (opened once per command, like DVC's own ``Repo``), with the working
        directory at the root for the block: DVC resolves targets such as ``verify@mlp`` there."""
        if self._dvc is None:
            from .pipeline import open_repo

            self._dvc = open_repo(self.root)
        with contextlib.chdir(self.root):
            yield self._dvc

    def close(self) -> None:
        """Release the DVC repository (the CLI calls this when the command ends)."""
        if self._dvc is not None:
            self._dvc.close()
            self._dvc = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def srs_pins(self, source: str, logrows: int, limit: int = 20) -> list[str]:
        """The sha256 of the SRS that this project's latest runs (their manifests, pinned by their
        tags) used for ``logrows`` and ``source``: the only SRS a new machine may fetch."""
        from .errors import ZkmlError
        from .runs import list_runs, load_manifest

        pins: list[str] = []
        for ref in reversed(list_runs(self.root, self.params.project)[-limit:]):
            try:
                _, manifest = load_manifest(self.root, ref.run_id, ref.project)
            except ZkmlError:
                continue  # a run we cannot read pins nothing
            if (manifest.srs.logrows, manifest.srs.source) == (logrows, source) and \
                    manifest.srs.sha256 not in pins:
                pins.append(manifest.srs.sha256)
        return pins

    # ---- the store ----------------------------------------------------------------------------
    @property
    def store(self) -> Store | None:
        """The store of the project's remote `o3` (resolved once), or None if none is set."""
        if not self._store_resolved:
            from .remote import find_project_store

            self._store = find_project_store(self.root)
            self._store_resolved = True
        return self._store

    def verifier_store(self, warnings: list[str] | None = None) -> Store:
        """The store as a verifier who does not trust this clone reaches it (remote.verifier_store):
        nothing the clone's tracked config names is read or run."""
        from .remote import verifier_store

        return verifier_store(self.root, warnings)

    def require_store(self) -> Store:
        """The project's store; ConfigError with the fix if none is configured."""
        if self.store is None:
            from .remote import require_store

            return require_store(self.root)  # raises with the remedy
        return self.store
