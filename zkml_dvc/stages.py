"""The pipeline stages: what each `zkml-dvc stage NAME --model M` command does.

DVC runs these (see dvc.yaml). Each stage writes its outputs atomically (temp name, then rename), so
a stage killed mid-way leaves no output that looks complete, and a record of what it ran
(``reports/stages/<stage>.json``) that the run manifest later reads. The record's ezkl calls are
the ones the adapter recorded while the stage ran.

This module holds the runner and the monolithic stages; a chunked model's stages are in
``chunked/stages.py``. Which stage functions a model has is its shape's business (``shapes.py``).

Avoiding needless keygen: settings are written canonically (fixed timestamp) and ``compile`` writes
``fingerprint.json`` (sha256 of the ONNX model, the canonical settings and the ezkl version). The
later stages depend on that fingerprint, not on ``network.compiled``, whose bytes vary run to run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import ezkl_adapter, peakrss, progress
from . import srs as srs_mod
from .errors import CircuitUnsatisfiedError, InputError, MissingFileError, ProofInvalidError
from .fsutil import atomic_dir, atomic_path, atomic_write_json, read_json, sha256_file
from .layout import ModelLayout, check_stage
from .onnx_model import ModelFacts, check_input, inspect_model
from .records import StageRecord

if TYPE_CHECKING:
    from .project import Project

# A stage function: (project, the model's layout, or a chunk's) -> None; outputs on disk.
StageFn = Callable[["Project", ModelLayout], None]


@contextlib.contextmanager
def outputs(*paths: Path) -> Iterator[list[Path]]:
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


def run_stage(project: Project, stage: str, model: str, chunk: int | None = None,
              own_process: bool = True) -> StageRecord:
    """Run one stage for one model (or one chunk of a chunked model); return (and write) its
    record. ``own_process``: the stage is the whole of this process (`zkml-dvc stage`), so the
    process's peak memory is the stage's; False when `zkml-dvc run` calls it (inprocess.py)."""
    check_stage(stage)
    shape = project.shape(model)
    fn, lay = shape.stage(stage, chunk)
    started = datetime.now(UTC)
    where = f"--model {shape.model}" + (f" --chunk {chunk}" if chunk is not None else "")
    with contextlib.chdir(project.root), ezkl_adapter.recording() as calls, \
            progress.elapsed_line(_progress_label(project.root, stage, lay)):
        fn(project, lay)
    ended = datetime.now(UTC)
    record = StageRecord(
        stage=stage, model=shape.model, command=f"zkml-dvc stage {stage} {where}",
        ezkl_calls=calls, started=started, ended=ended,
        duration_s=round((ended - started).total_seconds(), 3),
        ezkl_version=ezkl_adapter.version(),
        peak_rss_bytes=peakrss.peak_rss_bytes() if own_process else None,
    )
    atomic_write_json(project.root / lay.stage_record(stage), record.model_dump(mode="json"))
    return record


def _progress_label(root: Path, stage: str, lay: ModelLayout) -> str:
    """``setup@mlp (logrows 15)``: what the elapsed-time line of a long stage names."""
    name = f"{stage}@{lay.model}" + (f" chunk {lay.chunk}" if lay.chunk is not None else "")
    try:
        logrows = json.loads((root / lay.settings).read_text())["run_args"]["logrows"]
    except (OSError, ValueError, KeyError, TypeError):
        return name
    return f"{name} (logrows {logrows})"


def fingerprint(onnx: Path, settings: Path) -> dict[str, str]:
    """The circuit's identity: what compile's output is a function of."""
    return {
        "onnx_sha256": sha256_file(onnx),
        "settings_sha256": sha256_file(settings),
        "ezkl_version": ezkl_adapter.version(),
    }


def logrows_of(settings: Path) -> int:
    data = read_json(settings, "settings")
    try:
        return int(data["run_args"]["logrows"])
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"{settings} has no run_args.logrows", "Re-run the settings and calibrate stages."
        ) from None


def load_pointer(path: Path) -> srs_mod.SrsPointer:
    return srs_mod.SrsPointer.model_validate(read_json(path, "SRS pointer"))


def srs_file(project: Project, lay: ModelLayout) -> Path:
    """The pinned SRS of a model (fetched from the project's store if this machine lacks it)."""
    # the project's store is looked up (DVC's config read) only if the SRS is not here
    return srs_mod.path_for(load_pointer(lay.srs_pointer), lambda: project.store)


def pin_srs(project: Project, lay: ModelLayout, logrows: int) -> srs_mod.SrsPointer:
    source = project.params.srs.source
    pointer = srs_mod.obtain(source, logrows, project.store, project.srs_pins(source, logrows))
    atomic_write_json(lay.srs_pointer, pointer.model_dump())
    return pointer


def compile_from(onnx: Path, lay: ModelLayout) -> None:
    with outputs(lay.compiled) as (tmp,):
        ezkl_adapter.compile_circuit(onnx, tmp, lay.settings)
    atomic_write_json(lay.fingerprint, fingerprint(onnx, lay.settings))


def _memory_check(project: Project, lay: ModelLayout, stage: str) -> None:
    """Refuse to start keygen or proving that the cost estimate says cannot fit in memory (a
    process the kernel's OOM killer ends leaves no message). $ZKML_DVC_IGNORE_MEMORY_ESTIMATE
    (what `run --force` sets) skips the check."""
    from . import env, estimate

    if env.flag(env.IGNORE_MEMORY_ESTIMATE) or lay.chunk is not None:
        return
    estimate.check_memory(estimate.for_model(project, lay.model), {stage})


def setup(project: Project, lay: ModelLayout) -> None:
    _memory_check(project, lay, "setup")
    srs_path = srs_file(project, lay)
    with outputs(lay.vk, lay.pk) as (vk, pk):
        ezkl_adapter.setup(lay.compiled, vk, pk, srs_path)


def prove(project: Project, lay: ModelLayout) -> None:
    _memory_check(project, lay, "prove")
    srs_path = srs_file(project, lay)
    with outputs(lay.proof) as (tmp,):
        ezkl_adapter.prove(lay.witness, lay.compiled, lay.pk, tmp, srs_path)


# ---- the monolithic stages ---------------------------------------------------------------------
def _settings(project: Project, lay: ModelLayout) -> None:
    _, mp = project.params.model(lay.model)
    onnx = Path(mp.onnx)
    facts = inspect_model(onnx)  # a clear error for a bad model before ezkl sees it
    run_args = mp.run_args.for_ezkl()
    _check_variables(lay.model, facts, run_args.get("variables", [["batch_size", 1]]))
    with outputs(lay.settings_gen) as (tmp,):
        ezkl_adapter.gen_settings(onnx, tmp, run_args)


def _check_variables(model: str, facts: ModelFacts, variables: object) -> None:
    """A symbolic dimension run_args.variables does not set fails in ezkl as "Undetermined symbol
    in expression: <Sym0>"; name it, and the fix, instead."""
    given = {str(v[0]) for v in variables if isinstance(v, (list, tuple)) and v} \
        if isinstance(variables, (list, tuple)) else set()
    symbolic = sorted({d for spec in facts.inputs for d in spec.shape
                       if isinstance(d, str) and d not in given})
    if symbolic:
        pairs = ", ".join(f"[{name}, N]" for name in [*sorted(given), *symbolic])
        raise InputError(
            f"model {model}: {facts.path} has symbolic dimension(s) {', '.join(symbolic)} that "
            "run_args.variables does not set",
            f"Set them in params.yaml: models.{model}.run_args.variables: [{pairs}] "
            "(N: the size to prove; docs/models.md).")


def _calibrate(project: Project, lay: ModelLayout) -> None:
    _, mp = project.params.model(lay.model)
    data = Path(mp.calibration)
    if not data.exists():
        raise MissingFileError(data, "calibration data", "Check `calibration:` in params.yaml.")
    with atomic_path(lay.settings) as tmp:
        shutil.copyfile(lay.settings_gen, tmp)
        ezkl_adapter.calibrate_settings(data, Path(mp.onnx), tmp, mp.calibration_target, mp.scales,
                                        options=mp.calibration_options)


def _compile(project: Project, lay: ModelLayout) -> None:
    _, mp = project.params.model(lay.model)
    compile_from(Path(mp.onnx), lay)


def _polycommitted(run_args: dict[str, object]) -> list[str]:
    return [k for k in ("input_visibility", "output_visibility", "param_visibility")
            if str(run_args.get(k, "")).lower() == "polycommit"]


def _mock(project: Project, lay: ModelLayout) -> None:
    """ezkl's mock on the run's input, before any keygen. The report it writes depends only on the
    circuit (the fingerprint), so a new input re-runs mock (seconds) and leaves setup alone."""
    _, mp = project.params.model(lay.model)
    report = {"fingerprint_sha256": sha256_file(lay.fingerprint)}
    committed = _polycommitted(mp.run_args.for_ezkl())
    if committed:
        # a polycommit witness holds KZG commitments made with the vk: none exists before setup
        report.update(mock="skipped", reason=f"{', '.join(committed)} polycommit: the witness "
                      "needs the verification key, which setup makes")
    else:
        check_input(inspect_model(Path(mp.onnx)), Path(mp.input))
        with tempfile.TemporaryDirectory(prefix="zkml-dvc-mock-") as tmp:
            witness = Path(tmp) / "witness.json"
            ezkl_adapter.gen_witness(Path(mp.input), lay.compiled, witness)
            try:
                ezkl_adapter.mock(witness, lay.compiled)
            except CircuitUnsatisfiedError as exc:
                raise CircuitUnsatisfiedError(
                    f"model {lay.model}: {exc.message}, for the input {mp.input}; no keygen ran",
                    "The input's values fall outside what calibration measured: calibrate with "
                    f"data that covers them ({mp.calibration}), or widen the lookup tables "
                    "(calibration_options: lookup_safety_margin, ezkl's default 2: try 4, 8, "
                    "16), or use another scale or larger logrows in params.yaml "
                    "(docs/models.md).") from exc
        report["mock"] = "passed"
    atomic_write_json(lay.mock_report, report)


def _srs(project: Project, lay: ModelLayout) -> None:
    pin_srs(project, lay, logrows_of(lay.settings))


def _witness(project: Project, lay: ModelLayout) -> None:
    _, mp = project.params.model(lay.model)
    check_input(inspect_model(Path(mp.onnx)), Path(mp.input))
    srs_path = srs_file(project, lay)
    with outputs(lay.witness) as (tmp,):
        ezkl_adapter.gen_witness(Path(mp.input), lay.compiled, tmp, lay.vk, srs_path)


def _verify(project: Project, lay: ModelLayout) -> None:
    ezkl_adapter.verify(lay.proof, lay.settings, lay.vk, srs_file(project, lay))
    proof = json.loads(lay.proof.read_text())
    atomic_write_json(lay.verify_report, {
        "verified": True,
        "proof_sha256": sha256_file(lay.proof),
        "vk_sha256": sha256_file(lay.vk),
        "instances": proof.get("instances"),
    })


def _evm(project: Project, lay: ModelLayout) -> None:
    """With `evm: true`: ezkl's Solidity verifier for the vk, compiled (solc-js), the proof's
    calldata, and the two run in a local EVM: the stage fails unless the verifier accepts. With
    `evm: false`: only evm.json saying so (DVC needs the directory output either way)."""
    from . import evm

    _, mp = project.params.model(lay.model)
    with atomic_dir(lay.evm_dir) as tmp:
        if not mp.evm:
            atomic_write_json(tmp / lay.evm_report.name, {
                "enabled": False, "how": f"set models.{lay.model}.evm: true in params.yaml"})
            return
        sol, calldata = tmp / lay.evm_verifier.name, tmp / lay.evm_calldata.name
        ezkl_adapter.create_evm_verifier(lay.vk, lay.settings, srs_file(project, lay), sol)
        compiled = evm.compile_verifier(sol)
        ezkl_adapter.encode_evm_calldata(lay.proof, calldata)
        evm.check_calldata(calldata, lay.proof, compiled.selector)
        run = evm.execute(compiled.bytecode, calldata.read_bytes())
        if not run.accepted:
            raise ProofInvalidError(
                f"model {lay.model}: the EVM verifier rejected the proof ({run.detail}) though "
                "ezkl's verify accepted it", "Report this with the run's evm/ directory.")
        (tmp / lay.evm_bytecode.name).write_text(compiled.bytecode.hex() + "\n")
        atomic_write_json(tmp / lay.evm_abi.name, compiled.abi)
        atomic_write_json(tmp / lay.evm_report.name, {
            "enabled": True, "contract": evm.CONTRACT, "solc": compiled.solc,
            "solc_settings": evm.SOLC_SETTINGS, "evm": evm.pyrevm_version(),
            "accepted": True, "gas_used": run.gas_used,
            "bytecode_bytes": len(compiled.bytecode),
            "vk_sha256": sha256_file(lay.vk), "proof_sha256": sha256_file(lay.proof),
            "verifier_sha256": sha256_file(sol), "calldata_sha256": sha256_file(calldata)})


def _metrics(project: Project, lay: ModelLayout) -> None:
    from . import metrics

    _, mp = project.params.model(lay.model)
    collected = metrics.collect(Path("."), lay, mp)
    stage_seconds, accuracy = metrics.plot_rows(collected)
    atomic_write_json(lay.plot_stage_seconds, stage_seconds)
    atomic_write_json(lay.plot_accuracy, accuracy)
    atomic_write_json(lay.metrics, collected)


MONOLITHIC_STAGES: dict[str, StageFn] = {
    "settings": _settings,
    "calibrate": _calibrate,
    "compile": _compile,
    "mock": _mock,
    "srs": _srs,
    "setup": setup,
    "witness": _witness,
    "prove": prove,
    "verify": _verify,
    "evm": _evm,
    "metrics": _metrics,
}
