"""The pipeline stages: what each `zkml-dvc stage NAME --model M` command does.

DVC runs these (see dvc.yaml). Each stage writes its outputs atomically (temp name, then rename), so
a stage killed mid-way leaves no output that looks complete, and a record of what it ran
(``reports/stages/<stage>.json``) that the run manifest later reads.

Avoiding needless keygen: settings are written canonically (fixed timestamp) and ``compile`` writes
``fingerprint.json`` (sha256 of the ONNX model, the canonical settings and the ezkl version). The
later stages depend on that fingerprint, not on ``network.compiled``, whose bytes vary run to run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import ezkl_adapter
from . import srs as srs_mod
from .errors import InputError
from .fsutil import atomic_path, atomic_write_json, read_json, sha256_file
from .layout import CHUNK_MODEL_STAGES, CHUNK_STAGES, ModelLayout, check_stage
from .onnx_model import check_input, inspect_model
from .params import ModelParams, Params, chunk_key, chunk_stage_table, load_params


class EzklCall(BaseModel):
    function: str
    args: dict[str, Any]


class StageRecord(BaseModel):
    stage: str
    model: str
    command: str
    ezkl_calls: list[EzklCall]
    started: datetime
    ended: datetime
    duration_s: float
    ezkl_version: str


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def _outputs(*paths: Path) -> Iterator[list[Path]]:
    """Temp paths for several outputs, all renamed into place only if the block succeeds."""
    for p in paths:
        # A stage killed with SIGKILL cannot clean up; DVC's repo lock means no other writer.
        for stale in Path(p).parent.glob(f".{Path(p).name}.*.incomplete"):
            stale.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(p)) for p in paths]
        for t in tmps:
            t.unlink()  # ezkl creates its outputs itself
        yield tmps


def run_stage(root: Path, stage: str, model: str, chunk: int | None = None) -> StageRecord:
    """Run one stage for one model (or one chunk of a chunked model) in project ``root``; return
    (and write) its record."""
    check_stage(stage)
    params = load_params(root)
    name, mp = params.model(model)
    if stage in CHUNK_STAGES + CHUNK_MODEL_STAGES:
        params.chunked_model(name)
        if (chunk is None) != (stage in CHUNK_MODEL_STAGES):
            raise InputError(f"stage {stage} {'takes' if chunk is None else 'does not take'} "
                             "--chunk", "See `zkml-dvc stage --help`.")
    elif chunk is not None or name in params.chunked:
        raise InputError(f"stage {stage} is for monolithic models, {name} is chunked",
                         f"Chunked models use the stages {', '.join(CHUNK_STAGES)}.")
    lay = ModelLayout(name, chunk)
    if chunk is not None:
        n = params.chunked[name].chunks
        if not 0 <= chunk < n:
            raise InputError(f"model {name} has {n} chunks, not a chunk {chunk}",
                             f"Use --chunk 0..{n - 1}.")
        key = chunk_key(name, chunk)
        if params.chunk_stages.get(key) != chunk_stage_table(params.chunked).get(key):
            raise InputError(
                f"params.yaml's chunk_stages table is out of date for model {name}",
                "Run `zkml-dvc chunks sync` (or `zkml-dvc run`), which regenerates it.",
            )
    calls: list[EzklCall] = []
    started = _now()
    with contextlib.chdir(root):
        _STAGES[stage](params, mp, lay, calls)
    ended = _now()
    where = f"--model {name}" + (f" --chunk {chunk}" if chunk is not None else "")
    record = StageRecord(
        stage=stage,
        model=name,
        command=f"zkml-dvc stage {stage} {where}",
        ezkl_calls=calls,
        started=started,
        ended=ended,
        duration_s=round((ended - started).total_seconds(), 3),
        ezkl_version=ezkl_adapter.version(),
    )
    atomic_write_json(root / lay.stage_record(stage), record.model_dump(mode="json"))
    return record


def _settings(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    onnx = Path(mp.onnx)
    inspect_model(onnx)  # a clear error for a bad model before ezkl sees it
    with _outputs(lay.settings_gen) as (tmp,):
        ezkl_adapter.gen_settings(onnx, tmp, mp.run_args)
    calls.append(EzklCall(function="gen_settings", args={
        "model": str(onnx), "output": str(lay.settings_gen),
        "py_run_args": mp.run_args.model_dump(exclude_none=True),
    }))


def _calibrate(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    data = Path(mp.calibration)
    if not data.exists():
        from .errors import MissingFileError

        raise MissingFileError(data, "calibration data", "Check `calibration:` in params.yaml.")
    with atomic_path(lay.settings) as tmp:
        shutil.copyfile(lay.settings_gen, tmp)
        ezkl_adapter.calibrate_settings(data, Path(mp.onnx), tmp, mp.calibration_target, mp.scales)
    calls.append(EzklCall(function="calibrate_settings", args={
        "data": str(data), "model": mp.onnx, "settings": str(lay.settings),
        "target": mp.calibration_target, "scales": mp.scales,
    }))


def fingerprint(onnx: Path, settings: Path) -> dict[str, str]:
    """The circuit's identity: what compile's output is a function of."""
    return {
        "onnx_sha256": sha256_file(onnx),
        "settings_sha256": sha256_file(settings),
        "ezkl_version": ezkl_adapter.version(),
    }


def _compile(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    _compile_from(Path(mp.onnx), lay, calls)


def logrows_of(settings: Path) -> int:
    data = read_json(settings, "settings")
    try:
        return int(data["run_args"]["logrows"])
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"{settings} has no run_args.logrows", "Re-run the settings and calibrate stages."
        ) from None


def _srs(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    k = logrows_of(lay.settings)
    pointer = srs_mod.obtain(params.srs.source, k)
    atomic_write_json(lay.srs_pointer, pointer.model_dump())
    calls.append(EzklCall(
        function="gen_srs" if params.srs.source == "local" else "get_srs",
        args={"logrows": k, "sha256": pointer.sha256, "cached_or_generated": "see srs.json"},
    ))


def load_pointer(path: Path) -> srs_mod.SrsPointer:
    return srs_mod.SrsPointer.model_validate(read_json(path, "SRS pointer"))


def _setup(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    srs_path = srs_mod.path_for(load_pointer(lay.srs_pointer))
    with _outputs(lay.vk, lay.pk) as (vk, pk):
        ezkl_adapter.setup(lay.compiled, vk, pk, srs_path)
    calls.append(EzklCall(function="setup", args={
        "model": str(lay.compiled), "vk_path": str(lay.vk), "pk_path": str(lay.pk),
        "srs_path": f"srs:{srs_path.name}",
    }))


def _witness(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    facts = inspect_model(Path(mp.onnx))
    check_input(facts, Path(mp.input))
    srs_path = srs_mod.path_for(load_pointer(lay.srs_pointer))
    with _outputs(lay.witness) as (tmp,):
        ezkl_adapter.gen_witness(Path(mp.input), lay.compiled, tmp, lay.vk, srs_path)
    calls.append(EzklCall(function="gen_witness", args={
        "data": mp.input, "model": str(lay.compiled), "output": str(lay.witness),
        "vk_path": str(lay.vk), "srs_path": f"srs:{srs_path.name}",
    }))


def _prove(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    srs_path = srs_mod.path_for(load_pointer(lay.srs_pointer))
    with _outputs(lay.proof) as (tmp,):
        ezkl_adapter.prove(lay.witness, lay.compiled, lay.pk, tmp, srs_path)
    calls.append(EzklCall(function="prove", args={
        "witness": str(lay.witness), "model": str(lay.compiled), "pk_path": str(lay.pk),
        "proof_path": str(lay.proof), "srs_path": f"srs:{srs_path.name}",
    }))


def _verify(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    srs_path = srs_mod.path_for(load_pointer(lay.srs_pointer))
    ezkl_adapter.verify(lay.proof, lay.settings, lay.vk, srs_path)
    calls.append(EzklCall(function="verify", args={
        "proof_path": str(lay.proof), "settings_path": str(lay.settings),
        "vk_path": str(lay.vk), "srs_path": f"srs:{srs_path.name}",
    }))
    proof = json.loads(lay.proof.read_text())
    atomic_write_json(lay.verify_report, {
        "verified": True,
        "proof_sha256": sha256_file(lay.proof),
        "vk_sha256": sha256_file(lay.vk),
        "instances": proof.get("instances"),
    })


# ---- chunked models (see chunking.py and docs/chunked.md) ---------------------------------------
def _chunk_plan(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    from . import chunking
    from .fsutil import atomic_dir

    cp = params.chunked_model(lay.model)
    inspect_model(Path(cp.onnx))
    if not Path(cp.calibration).exists():
        from .errors import MissingFileError

        raise MissingFileError(Path(cp.calibration), "calibration data",
                               "Check `calibration:` in params.yaml.")
    with atomic_dir(lay.plan_dir) as tmp:
        plan = chunking.make_plan(lay.model, cp, tmp)
    pointer = srs_mod.obtain(params.srs.source, plan.logrows)
    atomic_write_json(lay.srs_pointer, pointer.model_dump())
    calls.append(EzklCall(function="gen_settings+calibrate_settings", args={
        "model": cp.onnx, "chunks": cp.chunks, "link": cp.link, "boundaries": plan.boundaries,
        "scales": [plan.scale], "scale_rebase_multiplier": [1], "logrows": plan.logrows,
        "balanced_by": plan.balanced_by, "srs_sha256": pointer.sha256,
    }))


def _chunk_compile(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    assert lay.chunk is not None
    onnx = lay.plan_onnx(lay.chunk)
    with atomic_path(lay.settings) as tmp:
        shutil.copyfile(lay.plan_settings(lay.chunk), tmp)
    _compile_from(onnx, lay, calls)


def _compile_from(onnx: Path, lay: ModelLayout, calls: list[EzklCall]) -> None:
    with _outputs(lay.compiled) as (tmp,):
        ezkl_adapter.compile_circuit(onnx, tmp, lay.settings)
    atomic_write_json(lay.fingerprint, fingerprint(onnx, lay.settings))
    calls.append(EzklCall(function="compile_circuit", args={
        "model": str(onnx), "compiled_circuit": str(lay.compiled), "settings_path": str(lay.settings),
    }))


def _chunk_witness(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    from . import chunking

    assert lay.chunk is not None
    if lay.chunk == 0:
        facts = inspect_model(Path(mp.onnx))
        check_input(facts, Path(mp.input))
        with atomic_path(lay.chunk_input) as tmp:
            shutil.copyfile(mp.input, tmp)
    else:
        chunking.next_input(lay.chunk_layout(lay.chunk - 1).witness, lay.chunk_input)
    srs_path = srs_mod.path_for(load_pointer(lay.srs_pointer))
    with _outputs(lay.witness) as (tmp,):
        ezkl_adapter.gen_witness(lay.chunk_input, lay.compiled, tmp, lay.vk, srs_path)
    calls.append(EzklCall(function="gen_witness", args={
        "data": str(lay.chunk_input), "model": str(lay.compiled), "output": str(lay.witness),
        "vk_path": str(lay.vk), "srs_path": f"srs:{srs_path.name}",
    }))


def _chunk_verify(params: Params, mp: ModelParams, lay: ModelLayout, calls: list[EzklCall]) -> None:
    from . import chunking

    plan = chunking.load_plan(lay.plan)
    srs_path = srs_mod.path_for(load_pointer(lay.srs_pointer))
    chunks = [lay.chunk_layout(c.index) for c in plan.chunks]
    counts = [chunking.link_counts(c.witness, c.chunk or 0, plan.link) for c in chunks]
    checks: list[dict[str, Any]] = []
    for c in chunks:
        ezkl_adapter.verify(c.proof, c.settings, c.vk, srs_path)
        checks.append({"name": f"chunk {c.chunk} proof", "ok": True})
        calls.append(EzklCall(function="verify", args={
            "proof_path": str(c.proof), "settings_path": str(c.settings), "vk_path": str(c.vk),
            "srs_path": f"srs:{srs_path.name}",
        }))
    for i in range(1, len(chunks)):
        ok, detail = chunking.check_link(chunks[i - 1].proof, counts[i - 1], chunks[i].proof,
                                         counts[i], plan.link)
        checks.append({"name": f"link {i - 1}->{i}", "ok": ok, "detail": detail})
        if not ok:
            from .errors import ProofInvalidError

            raise ProofInvalidError(f"model {lay.model}: chunks {i - 1} and {i} do not link "
                                    f"({detail})", "Re-run `zkml-dvc run`; the witnesses differ.")
    atomic_write_json(lay.verify_report, {
        "verified": True,
        "link": plan.link,
        "checks": checks,
        "link_counts": [c.model_dump() for c in counts],
        "output": chunking.claimed_output(chunks[-1].proof),
        "proof_sha256": [sha256_file(c.proof) for c in chunks],
    })


_STAGES = {
    "settings": _settings,
    "calibrate": _calibrate,
    "compile": _compile,
    "srs": _srs,
    "setup": _setup,
    "witness": _witness,
    "prove": _prove,
    "verify": _verify,
    "chunk_plan": _chunk_plan,
    "chunk_compile": _chunk_compile,
    "chunk_setup": _setup,
    "chunk_witness": _chunk_witness,
    "chunk_prove": _prove,
    "chunk_verify": _chunk_verify,
}
