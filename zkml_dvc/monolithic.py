"""The monolithic shape (see shape.py): one model, one circuit, the stages of layout.STAGES."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .layout import EVM_KIT, STAGES, ModelLayout
from .params import ModelParams
from .records import Check
from .shape import ProgressFn, RoomResult, RoomVerify, Shape

if TYPE_CHECKING:
    from .manifest import Manifest
    from .pipeline import Sync
    from .project import Project
    from .stages import StageFn
    from .store import Store


class Monolithic:
    """One model, one circuit: the stages of layout.STAGES."""

    def __init__(self, model: str, params: ModelParams | None = None) -> None:
        self.model = model
        self.params = params
        self.layout = ModelLayout(model)

    def stage(self, stage: str, chunk: int | None) -> tuple[StageFn, ModelLayout]:
        from .stages import MONOLITHIC_STAGES

        if chunk is not None or stage not in MONOLITHIC_STAGES:
            raise InputError(f"stage {stage}{' --chunk' if chunk is not None else ''} is not a "
                             f"stage of {self.model}, a monolithic model",
                             f"Its stages are {', '.join(MONOLITHIC_STAGES)}, without --chunk.")
        return MONOLITHIC_STAGES[stage], self.layout

    def check_options(self, chunks: int | None, link: str | None, ray_address: str | None) -> None:
        if chunks is not None or link is not None or ray_address:
            raise InputError(
                f"model {self.model} is not chunked: --chunks, --link and --ray-address need a "
                "chunked model", "Declare it under `chunked:` in params.yaml (see docs/chunked.md).")

    def prepare(self, project: Project, chunks: int | None, link: str | None,
                ray_address: str | None) -> Shape:
        return self

    def reproduce(self, project: Project, store: Store | None, ray_address: str | None,
                  progress: ProgressFn | None, force_stage: str | None,
                  sync: Sync | None = None) -> dict[int, float]:
        from . import pipeline

        pipeline.repro(project, self.model, force_stage=force_stage, sync=sync)
        return {}

    def stage_records(self) -> list[tuple[str, Path]]:
        return [(s, self.layout.stage_record(s)) for s in STAGES]

    def stage_keys(self) -> set[str]:
        return {self.model}

    def calibrated_settings(self) -> tuple[str, Path]:
        return f"calibrate@{self.model}", self.layout.settings

    def manifest_fields(self, project: Project, prove_times: dict[int, float]) -> dict[str, Any]:
        return {}

    def kit_paths(self, manifest: Manifest) -> dict[str, Path]:
        """The proof, settings and vk, and the claimed input (the run's git-tracked input)."""
        lay = self.layout
        claimed = manifest.params.get("model", {}).get("input")
        if not isinstance(claimed, str):
            raise InputError(f"manifest of run {manifest.run_id} names no input",
                             "The manifest is malformed; do not trust this run.")
        kit = {"proof.json": lay.proof, "settings.json": lay.settings, "vk.key": lay.vk,
               "input.json": Path(claimed)}
        recorded = {a.path for a in manifest.artifacts}
        for path in (lay.evm_verifier, lay.evm_bytecode, lay.evm_abi, lay.evm_calldata):
            if str(path) in recorded:  # a run made with `evm: true`
                kit[f"{EVM_KIT}/{path.name}"] = path
        return kit

    def prove_targets(self, manifest: Manifest) -> list[Path]:
        lay = self.layout
        return [lay.settings, lay.compiled, lay.fingerprint, lay.srs_pointer, lay.pk, lay.vk,
                lay.witness]

    def batch_keys(self, manifest: Manifest) -> dict[str, Path]:
        lay = self.layout
        return {"settings": lay.settings, "compiled": lay.compiled, "pk": lay.pk, "vk": lay.vk}

    def resume_targets(self, project: Project, manifest: Manifest,
                       from_stage: str) -> tuple[list[str], str | None]:
        if from_stage not in STAGES:
            raise InputError(f"run {manifest.run_id} has no stage {from_stage}",
                             f"Use one of: {', '.join(STAGES)}.")
        if from_stage == STAGES[0]:
            return [], None
        outs = self.layout.outputs()
        return [str(p) for s in STAGES[: STAGES.index(from_stage)] for p in outs[s]], from_stage

    def audit_plan(self, manifest: Manifest) -> tuple[str, dict[str, Path]]:
        return "audit", {"settings": self.layout.settings, "vk": self.layout.vk}

    def verify_in_room(self, manifest: Manifest, local: dict[str, Path],
                       verify: RoomVerify) -> RoomResult:
        error = verify(local["proof.json"], local["settings.json"], local["vk.key"])
        checks = [Check(name="ezkl verify", ok=error is None,
                        detail="proof accepted" if error is None else error)]
        return RoomResult(checks=checks, failures=[] if error is None else
                          [f"the proof does not verify ({error})"],
                          proofs=[local["proof.json"]], settings=[local["settings.json"]])
