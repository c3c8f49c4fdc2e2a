"""A model's shape: monolithic (one circuit: ``monolithic.py``) or chunked (linked chunks proved
on Ray: ``chunked/shape.py``). This module is the interface both implement.

Everything that differs between the two lives behind this one small interface, so the runner,
pull, resume, the run index and the verifier have no branch on the shape:

- producer side (from params): which stage functions the model has, how its pipeline is
  reproduced, which stage records and DVC stages belong to a run, the manifest's shape fields;
- restore side (from a manifest): the verification kit, what proving and resuming need, and how
  the kit is verified in a clean room.

``shapes.shape_for_params`` and ``shapes.shape_for_manifest`` are the only places that choose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .layout import ModelLayout
from .params import ModelParams
from .records import Check

if TYPE_CHECKING:
    from .manifest import Manifest
    from .pipeline import Sync
    from .project import Project
    from .stages import StageFn
    from .store import Store

ProgressFn = Callable[[str], None]
# In the clean room: (proof, settings, vk) -> None if ezkl accepts, else the error text.
RoomVerify = Callable[[Path, Path, Path], "str | None"]


@dataclass
class RoomResult:
    """What verifying a kit in a clean room established."""

    checks: list[Check]
    failures: list[str]
    proofs: list[Path]  # in order; the last one's outputs are the run's output
    settings: list[Path]


class Shape(Protocol):
    model: str

    @property
    def params(self) -> ModelParams | None:
        """The model's params (None for a shape read from a manifest: the verifier's side)."""

    # ---- producer side ----
    def stage(self, stage: str, chunk: int | None) -> tuple[StageFn, ModelLayout]: ...
    def check_options(self, chunks: int | None, link: str | None,
                      ray_address: str | None) -> None: ...
    def prepare(self, project: Project, chunks: int | None, link: str | None,
                ray_address: str | None) -> Shape: ...
    def reproduce(self, project: Project, store: Store | None, ray_address: str | None,
                  progress: ProgressFn | None, force_stage: str | None,
                  sync: Sync | None = None) -> dict[int, float]:
        """Bring the pipeline up to date (with ``sync``: fetch what the store holds, push each
        stage's outputs as it finishes); {chunk: prove seconds} of chunks proved on Ray."""
    def stage_records(self) -> list[tuple[str, Path]]: ...
    def stage_keys(self) -> set[str]: ...
    def calibrated_settings(self) -> tuple[str, Path]:
        """The stage that calibrates the circuit and the settings it writes (what `estimate`
        reproduces and reads); InputError if the shape has no single circuit to estimate."""
    def manifest_fields(self, project: Project, prove_times: dict[int, float]) -> dict[str, Any]: ...

    # ---- restore side (the manifest is the source of truth) ----
    def kit_paths(self, manifest: Manifest) -> dict[str, Path]: ...
    def prove_targets(self, manifest: Manifest) -> list[Path]: ...
    def batch_keys(self, manifest: Manifest) -> dict[str, Path]:
        """What proving a new input with the run's keys reads (`prove-batch`): settings, compiled
        circuit, pk, vk; InputError if the shape cannot prove inputs one by one."""
    def resume_targets(self, project: Project, manifest: Manifest,
                       from_stage: str) -> tuple[list[str], str | None]: ...
    def verify_in_room(self, manifest: Manifest, local: dict[str, Path],
                       verify: RoomVerify) -> RoomResult: ...
    def audit_plan(self, manifest: Manifest) -> tuple[str, dict[str, Path]]:
        """The clean-room action that re-derives the circuit, and what it re-derives: label ->
        the artifact whose recorded sha256 the re-derived one must equal."""
