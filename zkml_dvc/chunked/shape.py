"""The chunked shape (see shapes.py): a model proved as linked chunks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..layout import CHUNK_MODEL_STAGES, CHUNK_STAGES, ModelLayout
from ..params import ChunkedModelParams, Params, chunk_key, chunk_stage_table
from ..records import Check
from ..shape import ProgressFn, RoomResult, RoomVerify, Shape
from . import links

if TYPE_CHECKING:
    from ..manifest import Manifest
    from ..pipeline import Sync
    from ..project import Project
    from ..stages import StageFn
    from ..store import Store


class Chunked:
    def __init__(self, model: str, params: ChunkedModelParams | None,
                 all_params: Params | None = None, chunks: int | None = None) -> None:
        self.model = model
        self.params = params
        self.all_params = all_params
        self.layout = ModelLayout(model)
        self.chunks = chunks if chunks is not None else (params.chunks if params else 0)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Chunked:
        return cls(manifest.model, None, chunks=len(manifest.chunks))

    # ---- producer side ---------------------------------------------------------------------
    def stage(self, stage: str, chunk: int | None) -> tuple[StageFn, ModelLayout]:
        from .stages import CHUNKED_STAGES

        if stage not in CHUNKED_STAGES:
            raise InputError(f"stage {stage} is for monolithic models, {self.model} is chunked",
                             f"Chunked models use the stages {', '.join(CHUNKED_STAGES)}.")
        if (chunk is None) != (stage in CHUNK_MODEL_STAGES):
            raise InputError(f"stage {stage} {'takes' if chunk is None else 'does not take'} "
                             "--chunk", "See `zkml-dvc stage --help`.")
        if chunk is None:
            return CHUNKED_STAGES[stage], self.layout
        if not 0 <= chunk < self.chunks:
            raise InputError(f"model {self.model} has {self.chunks} chunks, not a chunk {chunk}",
                             f"Use --chunk 0..{self.chunks - 1}.")
        key = chunk_key(self.model, chunk)
        assert self.all_params is not None
        if self.all_params.chunk_stages.get(key) != chunk_stage_table(self.all_params.chunked).get(key):
            raise InputError(
                f"params.yaml's chunk_stages table is out of date for model {self.model}",
                "Run `zkml-dvc chunks sync` (or `zkml-dvc run`), which regenerates it.",
            )
        return CHUNKED_STAGES[stage], self.layout.chunk_layout(chunk)

    def check_options(self, chunks: int | None, link: str | None, ray_address: str | None) -> None:
        return None  # every option applies to a chunked model

    def prepare(self, project: Project, chunks: int | None, link: str | None,
                ray_address: str | None) -> Shape:
        """Write --chunks/--link into params.yaml (so DVC tracks them), regenerate the
        chunk_stages table, and return the shape as params.yaml now says."""
        from ..params import sync_chunk_stages

        overrides: dict[str, object] = {
            k: v for k, v in (("chunks", chunks), ("link", link)) if v is not None}
        sync_chunk_stages(project.root, {self.model: overrides} if overrides else None)
        project.reload_params()
        return project.shape(self.model)

    def reproduce(self, project: Project, store: Store | None, ray_address: str | None,
                  progress: ProgressFn | None, force_stage: str | None,
                  sync: Sync | None = None) -> dict[int, float]:
        from .reproduce import reproduce

        return reproduce(project, self.model, self.chunks, store, ray_address, progress,
                         force_stage, sync)

    def stage_records(self) -> list[tuple[str, Path]]:
        recs = [("chunk_plan", self.layout.stage_record("chunk_plan"))]
        for stage in CHUNK_STAGES:
            for i in range(self.chunks):
                recs.append((f"{stage}@{i}", self.layout.chunk_layout(i).stage_record(stage)))
        recs.append(("chunk_verify", self.layout.stage_record("chunk_verify")))
        return recs

    def stage_keys(self) -> set[str]:
        return {self.model, *(chunk_key(self.model, i) for i in range(self.chunks))}

    def calibrated_settings(self) -> tuple[str, Path]:
        raise InputError(f"model {self.model} is chunked: `estimate` covers monolithic models",
                         "Estimate one chunk by declaring its ONNX file (artifacts/"
                         f"{self.model}/chunks/plan/N.onnx) as a model of its own.")

    def manifest_fields(self, project: Project, prove_times: dict[int, float]) -> dict[str, Any]:
        from .plan import load_plan
        from .reproduce import chunk_entries

        assert self.params is not None
        return {"link": self.params.link,
                "chunk_scale": load_plan(project.root / self.layout.plan).scale,
                "chunks": chunk_entries(project.root, self.model, prove_times)}

    # ---- restore side ----------------------------------------------------------------------
    def kit_paths(self, manifest: Manifest) -> dict[str, Path]:
        """The claimed input, the plan (which fixes the number, order and settings of the chunks),
        and one proof, settings and vk per chunk (``c<i>/...``)."""
        kit: dict[str, Path] = {"input.json": self.layout.chunk_layout(0).chunk_input,
                                "plan.json": self.layout.plan}
        for c in manifest.chunks:
            cl = self.layout.chunk_layout(c.index)
            kit.update({f"c{c.index}/proof.json": cl.proof,
                        f"c{c.index}/settings.json": cl.settings, f"c{c.index}/vk.key": cl.vk})
        return kit

    def _up_to_keys(self, manifest: Manifest, with_witness: bool) -> list[Path]:
        wanted = [Path(a.path) for a in manifest.artifacts
                  if a.md5 and Path(a.path).is_relative_to(self.layout.plan_dir)]
        for c in manifest.chunks:
            cl = self.layout.chunk_layout(c.index)
            wanted += [cl.settings, cl.compiled, cl.fingerprint, cl.pk, cl.vk]
            if with_witness:
                wanted += [cl.chunk_input, cl.witness]
        return wanted

    def prove_targets(self, manifest: Manifest) -> list[Path]:
        return [self.layout.srs_pointer, *self._up_to_keys(manifest, with_witness=True)]

    def batch_keys(self, manifest: Manifest) -> dict[str, Path]:
        raise InputError(f"run {manifest.run_id} is chunked: prove-batch proves monolithic runs "
                         "(a chunked input needs its chunk witnesses made in order)",
                         "Prove each new input with `zkml-dvc resume RUN_ID --from witness "
                         "--input FILE`.")

    def resume_targets(self, project: Project, manifest: Manifest,
                       from_stage: str) -> tuple[list[str], str | None]:
        """Every output (records included, or DVC would redo the stage) of the stages before
        the witnesses: the plan, and each chunk's compile and setup."""
        from .. import pipeline

        if from_stage not in ("witness", "chunk_witness"):
            raise InputError(f"run {manifest.run_id} is chunked: it resumes only from its witnesses",
                             "Use --from witness (the plan, circuits and keys are restored).")
        keep = {pipeline.stage_name("chunk_plan", self.model)} | {
            pipeline.stage_name(stage, chunk_key(self.model, c.index))
            for stage in ("chunk_compile", "chunk_setup") for c in manifest.chunks}
        return [p for p, info in pipeline.lock_outs(project.root).items() if info["stage"] in keep], None

    def audit_plan(self, manifest: Manifest) -> tuple[str, dict[str, Path]]:
        """Re-split the model, then each chunk's settings and vk."""
        derived: dict[str, Path] = {}
        for c in manifest.chunks:
            cl = self.layout.chunk_layout(c.index)
            derived[f"chunk {c.index} settings"] = cl.settings
            derived[f"chunk {c.index} vk"] = cl.vk
        return "audit-chunked", derived

    def verify_in_room(self, manifest: Manifest, local: dict[str, Path],
                       verify: RoomVerify) -> RoomResult:
        """Valid only if the chunks are the plan's (number, order, each one's settings), every
        chunk proof verifies with the vk and settings pinned for its position, and every adjacent
        link holds, with link visibilities and counts taken from the pinned settings (hashed) or
        checked for consistency (polycommit). (Whether the first chunk's input is the claimed input,
        and what the last chunk's output is, the verifier reads from the instances.)"""
        from ..fsutil import read_json, sha256_file
        from .plan import load_plan

        link = manifest.link or "polycommit"
        chunks = sorted(manifest.chunks, key=lambda c: c.index)
        made = load_plan(local["plan.json"])
        if not chunks or [c.index for c in chunks] != list(range(len(chunks))) or \
                len(made.chunks) != len(chunks) or made.link != link:
            raise InputError(f"manifest of run {manifest.run_id} lists chunks "
                             f"{[c.index for c in chunks]} ({link}), its plan "
                             f"{len(made.chunks)} ({made.link})",
                             "The manifest is malformed; do not trust this run.")
        checks: list[Check] = []
        failures: list[str] = []
        proofs = [local[f"c{c.index}/proof.json"] for c in chunks]
        settings = [local[f"c{c.index}/settings.json"] for c in chunks]
        for planned, st in zip(made.chunks, settings, strict=True):
            if sha256_file(st) != planned.settings_sha256:
                failures.append(f"chunk {planned.index}'s settings are not the plan's")
        counts = []
        n = len(chunks)
        for c, st in zip(chunks, settings, strict=True):
            ra = read_json(st, "settings").get("run_args") or {}
            for side, raw, boundary in (("input", ra.get("input_visibility"), c.index > 0),
                                        ("output", ra.get("output_visibility"), c.index < n - 1)):
                if boundary and not links.is_link_visibility(raw, link):
                    failures.append(f"chunk {c.index}'s pinned settings do not make its {side} a "
                                    f"{link} link (they say {raw})")
            counts.append(links.pinned_counts(c, link, n))
        for prev, cur in zip(counts, counts[1:], strict=False):
            if prev.link_outputs < 1 or prev.link_outputs != cur.link_inputs:
                failures.append(f"the link counts of chunks {prev.index} and {cur.index} disagree "
                                f"({prev.link_outputs} vs {cur.link_inputs})")
        for c, proof, st in zip(chunks, proofs, settings, strict=True):
            error = verify(proof, st, local[f"c{c.index}/vk.key"])
            checks.append(Check(name=f"chunk {c.index} ezkl verify", ok=error is None,
                                detail="proof accepted" if error is None else error))
            if error is not None:
                failures.append(f"chunk {c.index} proof does not verify")
        for check in links.check_chain(proofs, counts, link):
            checks.append(check)
            if not check.ok:
                failures.append(f"{check.name} does not hold ({check.detail})")
        return RoomResult(checks=checks, failures=failures, proofs=proofs, settings=settings)
