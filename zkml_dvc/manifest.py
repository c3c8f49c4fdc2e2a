"""The run manifest: everything needed to audit, share and re-check one run.

A pydantic model, validated whenever it is read (from git or from the store: both untrusted until
checked), written atomically, with a sha256 for every artifact. Its JSON Schema is generated into
docs/manifest.schema.json (`zkml-dvc schema > docs/manifest.schema.json`).
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .chunked.records import ChunkEntry
from .errors import InputError
from .fsutil import atomic_write_text, confined
from .layout import Category
from .onnx_model import ModelFacts
from .records import StageRecord
from .srs import SrsPointer

SCHEMA_VERSION = 1
_HEX64 = r"^[0-9a-f]{64}$"


class ToolVersions(BaseModel):
    zkml_dvc: str
    ezkl: str
    dvc: str
    python: str
    platform: str
    ezkl_key_format: str
    solc: str | None = Field(default=None, description="the compiler of the run's EVM verifier "
                                                       "(None: the run has none)")


class StageRun(StageRecord):
    """A stage's record as the run saw it."""

    ran: bool = Field(description="True if the stage ran in this run, False if DVC had it cached")


class ArtifactEntry(BaseModel):
    path: str = Field(description="repo-relative logical path")
    category: Category
    sha256: str = Field(pattern=_HEX64)
    md5: str | None = Field(default=None, description="DVC's md5 (None for git-tracked inputs)")
    size: int = Field(ge=0)
    reproducible: bool = Field(description="same inputs and SRS give the same bytes")
    stage: str | None = None
    object_key: str | None = Field(
        default=None, description="key of the DVC object, relative to the store root"
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        confined(Path("/nonexistent-root"), v)  # raises on absolute or .. paths
        return v


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    run_id: str
    project: str
    model: str
    parent_run: str | None = None
    source_commit: str | None = Field(description="git commit the run started from")
    started: datetime
    ended: datetime
    tools: ToolVersions
    model_facts: ModelFacts
    params: dict[str, Any]
    srs: SrsPointer
    stages: list[StageRun]
    artifacts: list[ArtifactEntry]
    link: Literal["polycommit", "hashed"] | None = Field(
        default=None, description="how a chunked run's chunks are linked (None: not chunked)")
    chunk_scale: int | None = Field(default=None, description="the one scale of every chunk")
    chunks: list[ChunkEntry] = Field(default_factory=list)

    @field_validator("project", "model")
    @classmethod
    def _names(cls, v: str) -> str:
        # they become paths (artifacts/<model>/...) and keys: never `/etc` or `..`
        from .params import check_name

        return check_name(v, "name")

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, v: str) -> str:
        from .params import RUN_ID_RE

        if not RUN_ID_RE.match(v) or ".." in v:
            raise ValueError(f"run id {v!r} is not allowed")
        return v

    def artifact(self, path: str | Path) -> ArtifactEntry:
        for a in self.artifacts:
            if a.path == str(path):
                return a
        from .errors import NotFoundError

        raise NotFoundError(f"run {self.run_id} has no artifact {path}", "")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


def write_manifest(path: Path, manifest: Manifest) -> None:
    atomic_write_text(path, manifest.to_json())


def parse_manifest(text: str | bytes, source: str) -> Manifest:
    """Validate manifest JSON from any source; InputError names the source and the bad field."""
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"manifest {source} is invalid at `{loc}`: {err['msg']}",
            "The manifest is corrupt or was edited; fetch it again or use another run.",
        ) from None


def tool_versions(solc: str | None = None) -> ToolVersions:
    from importlib.metadata import version

    from . import env

    return ToolVersions(
        zkml_dvc=version("zkml-dvc"),
        ezkl=version("ezkl"),
        dvc=version("dvc"),
        python=sys.version.split()[0],
        platform=platform.platform(),
        ezkl_key_format=env.key_format(),
        solc=solc,
    )


def json_schema() -> dict[str, Any]:
    return Manifest.model_json_schema()
