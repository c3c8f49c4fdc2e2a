"""The `zkml-dvc` command line (see base.py for the group and the exit codes)."""

from __future__ import annotations

from . import batch, pipeline, store, verify  # noqa: F401  (importing registers the commands)
from .base import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
