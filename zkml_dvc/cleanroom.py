"""Clean-room commands: pull, verify, audit and resume a run from the store.

Verification and audit happen in a fresh temporary directory, in a child process whose HOME and
EZKL_REPO_PATH point at empty directories there, so nothing from the producing workspace (keys,
SRS files, caches) can be used. Every file comes from the store and is checked against the sha256
in a trusted manifest (the one committed in git and pinned by the run tag; in store-only mode the
one in the store, checked against its stored hash or a hash the user pins with --manifest-sha256).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from . import chunking, ezkl_adapter, pipeline, runs
from .errors import (
    ConfigError,
    InputError,
    IntegrityError,
    ProofInvalidError,
    VersionMismatchError,
    ZkmlError,
)
from .fsutil import atomic_write_json, confined, read_json, sha256_bytes, sha256_file
from .layout import STAGES, ModelLayout, run_index_prefix, srs_key
from .manifest import Manifest
from .run_index import fetch_manifest, kit_paths, require_store
from .store import Store

PullTarget = Literal["verify", "prove", "all"]


class Check(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class VerificationReport(BaseModel):
    run_id: str
    project: str
    model: str
    verdict: Literal["valid", "invalid", "integrity-failure", "error"]
    checks: list[Check]
    hashes: dict[str, str]
    output: list[list[str]] = Field(default_factory=list,
                                    description="the proven output (rescaled), read from the "
                                                "(last chunk's) proof")
    ezkl_version: str
    manifest_sha256: str
    mode: Literal["clone", "store-only"]
    bytes_downloaded: int
    files_downloaded: int
    run_bytes_total: int
    started: datetime
    duration_s: float


def _check_version(manifest: Manifest, settings: Path | None = None) -> None:
    installed = ezkl_adapter.version()
    if manifest.tools.ezkl != installed:
        raise VersionMismatchError(f"run {manifest.run_id}", manifest.tools.ezkl, installed)
    if settings is not None:
        recorded = str(read_json(settings, "settings").get("version", installed))
        if recorded != installed:
            raise VersionMismatchError(f"settings of run {manifest.run_id}", recorded, installed)


def _trusted_manifest(
    root: Path | None, store: Store, project: str | None, run_id: str,
    manifest_sha256: str | None,
) -> tuple[Manifest, str, Literal["clone", "store-only"]]:
    """The manifest to trust, and a check that the store's copy is the same one."""
    if root is not None:
        ref, manifest = runs.load_manifest(root, run_id, project)
        git_sha = sha256_bytes(runs.read_at(root, ref.commit, ref.manifest_path))
        # The store's copy must be byte-identical to the committed one: an edit is tampering.
        fetch_manifest(store, manifest.project, run_id, expected_sha256=git_sha)
        return manifest, git_sha, "clone"
    if not project:
        raise InputError("--project is required with --store", "Pass --project PROJECT_ID.")
    manifest, sha = fetch_manifest(store, project, run_id, expected_sha256=manifest_sha256)
    return manifest, sha, "store-only"


def verify(
    run_id: str,
    root: Path | None = None,
    store: Store | None = None,
    project: str | None = None,
    manifest_sha256: str | None = None,
    report_path: Path | None = None,
) -> VerificationReport:
    """Verify a run's proof from store artifacts alone, in a clean room.

    With ``root`` (a clone holding the run's tag) the manifest comes from git; without it, from
    ``store`` (store-only mode). Raises ProofInvalidError or IntegrityError for a bad run (after
    writing the report), StoreError/ConfigError when the store cannot be used.
    """
    started = datetime.now(UTC)
    t0 = time.monotonic()
    if store is None:
        if root is None:
            raise InputError("nothing to verify from", "Run inside a clone or pass --store.")
        store = require_store(root)
    store.check_access()
    manifest, msha, mode = _trusted_manifest(root, store, project, run_id, manifest_sha256)
    _check_version(manifest)
    checks: list[Check] = [Check(name="manifest", ok=True, detail=f"sha256 {msha[:16]}... ({mode})")]
    hashes: dict[str, str] = {}
    before = (store.stats.downloaded_bytes, store.stats.downloaded_files)
    verdict: Literal["valid", "invalid", "integrity-failure", "error"] = "valid"
    failure: ZkmlError | None = None
    output: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="zkml-cleanroom-") as td:
        room = Path(td)
        files = room / "files"
        files.mkdir()
        try:
            prefix = run_index_prefix(manifest.project, run_id)
            local: dict[str, Path] = {}
            for name, path in kit_paths(manifest).items():
                entry = manifest.artifact(path)
                dest = confined(files, name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                local[name] = store.get_file(f"{prefix}/{name}", dest, entry.sha256,
                                             use_cache=False)
                hashes[name] = entry.sha256
                checks.append(Check(name=f"sha256 {name}", ok=True, detail=entry.sha256[:16]))
            srs_file = store.get_file(srs_key(manifest.srs.sha256), files / "kzg.srs",
                                      manifest.srs.sha256, use_cache=False)
            hashes["srs"] = manifest.srs.sha256
            checks.append(Check(name="sha256 srs", ok=True, detail=manifest.srs.sha256[:16]))
            if manifest.chunks:
                verdict, failure = _verify_chunked(room, manifest, local, srs_file, checks)
                last = max(c.index for c in manifest.chunks)
                output = chunking.claimed_output(local[f"c{last}/proof.json"])
            else:
                _check_version(manifest, local["settings.json"])
                checks.append(Check(name="ezkl version", ok=True, detail=ezkl_adapter.version()))
                result = _worker(room, "verify", {
                    "proof": str(local["proof.json"]), "settings": str(local["settings.json"]),
                    "vk": str(local["vk.key"]), "srs": str(srs_file),
                })
                if result["ok"]:
                    checks.append(Check(name="ezkl verify", ok=True, detail="proof accepted"))
                else:
                    checks.append(Check(name="ezkl verify", ok=False, detail=result["error"]))
                    verdict = "invalid"
                    failure = ProofInvalidError(
                        f"run {run_id}: the proof does not verify ({result['error']})",
                        "The proof, vk, settings or SRS in the store were altered or do not "
                        "belong together.",
                    )
                output = chunking.claimed_output(local["proof.json"])
        except IntegrityError as exc:
            checks.append(Check(name="integrity", ok=False, detail=exc.one_line()))
            verdict, failure = "integrity-failure", exc
    report = VerificationReport(
        run_id=run_id, project=manifest.project, model=manifest.model, verdict=verdict,
        checks=checks, hashes=hashes, output=output, ezkl_version=ezkl_adapter.version(),
        manifest_sha256=msha,
        mode=mode, bytes_downloaded=store.stats.downloaded_bytes - before[0],
        files_downloaded=store.stats.downloaded_files - before[1],
        run_bytes_total=sum(a.size for a in manifest.artifacts) + manifest.srs.size,
        started=started, duration_s=round(time.monotonic() - t0, 3),
    )
    if report_path is not None:
        atomic_write_json(report_path, report.model_dump(mode="json"))
    if failure is not None:
        raise failure
    return report


Verdict = Literal["valid", "invalid", "integrity-failure", "error"]


def _verify_chunked(room: Path, manifest: Manifest, local: dict[str, Path], srs_file: Path,
                    checks: list[Check]) -> tuple[Verdict, ZkmlError | None]:
    """A chunked run is valid only if every chunk proof verifies (with the vk and settings the
    manifest pins for its position: their sha256 was checked on download), every adjacent link
    holds, and the first chunk's public input is the claimed input."""
    link = manifest.link or "polycommit"
    chunks = sorted(manifest.chunks, key=lambda c: c.index)
    if [c.index for c in chunks] != list(range(len(chunks))):
        raise InputError(f"manifest of run {manifest.run_id} lists chunks {[c.index for c in chunks]}",
                         "The manifest is malformed; do not trust this run.")
    failures: list[str] = []
    for c in chunks:
        settings = local[f"c{c.index}/settings.json"]
        _check_version(manifest, settings)
        result = _worker(room, "verify", {
            "proof": str(local[f"c{c.index}/proof.json"]), "settings": str(settings),
            "vk": str(local[f"c{c.index}/vk.key"]), "srs": str(srs_file),
        })
        checks.append(Check(name=f"chunk {c.index} ezkl verify", ok=result["ok"],
                            detail="proof accepted" if result["ok"] else result["error"]))
        if not result["ok"]:
            failures.append(f"chunk {c.index} proof does not verify")
    for prev, cur in zip(chunks, chunks[1:], strict=False):
        ok, detail = chunking.check_link(
            local[f"c{prev.index}/proof.json"], _counts(prev), local[f"c{cur.index}/proof.json"],
            _counts(cur), link)
        checks.append(Check(name=f"{link} link {prev.index}->{cur.index}", ok=ok, detail=detail))
        if not ok:
            failures.append(f"chunks {prev.index} and {cur.index} do not link ({detail})")
    ok, detail = chunking.check_claimed_input(
        local["c0/proof.json"], local["input.json"], chunks[0].input_visibility,
        manifest.chunk_scale if manifest.chunk_scale is not None else 7)
    checks.append(Check(name="claimed input", ok=ok, detail=detail))
    if not ok:
        failures.append("the first chunk's input is not the claimed input")
    if failures:
        return "invalid", ProofInvalidError(
            f"run {manifest.run_id}: {failures[0]}" + (f" (+{len(failures) - 1} more)"
                                                        if len(failures) > 1 else ""),
            "A chunk proof, vk, settings or input in the store was altered or substituted.",
        )
    return "valid", None


def _counts(c: Any) -> chunking.LinkCounts:
    return chunking.LinkCounts(index=c.index, link_inputs=c.link_inputs,
                               link_outputs=c.link_outputs)


def _worker(room: Path, action: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``action`` in a child Python with HOME and EZKL_REPO_PATH isolated in ``room``."""
    home = room / "home"
    home.mkdir(exist_ok=True)
    child_env = {
        "HOME": str(home),
        "EZKL_REPO_PATH": str(room / "ezkl"),
        "ZKML_DVC_CACHE_DIR": str(room / "cache"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    if os.environ.get("EZKL_KEY_FORMAT"):
        child_env["EZKL_KEY_FORMAT"] = os.environ["EZKL_KEY_FORMAT"]
    proc = subprocess.run(
        [sys.executable, "-m", "zkml_dvc.cleanroom", action, json.dumps(args)],
        cwd=room, env=child_env, capture_output=True, text=True, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise ConfigError(
            f"the clean-room {action} process failed (exit {proc.returncode}): "
            f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}",
            "Run with -v for details.",
        )
    return dict(json.loads(lines[-1]))


def _worker_main(action: str, raw: str) -> int:
    args = json.loads(raw)
    out: dict[str, Any]
    try:
        if action == "verify":
            ezkl_adapter.verify(Path(args["proof"]), Path(args["settings"]), Path(args["vk"]),
                                Path(args["srs"]))
            out = {"ok": True}
        elif action == "audit":
            out = {"ok": True, **_audit_steps(args)}
        else:
            out = {"ok": False, "error": f"unknown action {action}"}
    except ZkmlError as exc:
        out = {"ok": False, "error": exc.message}
    print(json.dumps(out), flush=True)
    return 0


# ---- pull ------------------------------------------------------------------------------------
def _require_at_run(root: Path, ref: runs.RunRef) -> None:
    head = runs.head_commit(root)
    if head != ref.commit:
        raise ConfigError(
            f"the workspace is not at run {ref.run_id} (HEAD {str(head)[:8]}, run {ref.commit[:8]})",
            f"Check it out first: git checkout {ref.tag}",
        )


def pull(root: Path, run_id: str, target: PullTarget = "verify") -> list[str]:
    """Restore what ``target`` needs of a run into the workspace, each file checked by sha256.

    verify: proof, settings, vk (+ SRS in the cache). prove: settings, compiled circuit, keys,
    witness. all: every output of the run. Returns the paths restored.
    """
    ref, manifest = runs.load_manifest(root, run_id)
    _check_version(manifest)
    _require_at_run(root, ref)
    store = require_store(root)
    store.check_access()
    lay = ModelLayout(manifest.model)
    restored: list[str] = []
    if target == "verify":
        prefix = run_index_prefix(manifest.project, run_id)
        for name, path in kit_paths(manifest).items():
            entry = manifest.artifact(path)
            store.get_file(f"{prefix}/{name}", root / path, entry.sha256)
            restored.append(str(path))
    else:
        if target == "prove" and manifest.chunks:
            wanted = [lay.srs_pointer, *_chunk_prove_inputs(manifest, with_witness=True)]
        elif target == "prove":
            wanted = [lay.settings, lay.compiled, lay.fingerprint, lay.srs_pointer, lay.pk, lay.vk,
                      lay.witness]
        else:
            wanted = [Path(a.path) for a in manifest.artifacts if a.md5]
        pipeline.pull(root, [str(p) for p in wanted])
        for p in wanted:
            _check_local(root, manifest, p)
            restored.append(str(p))
    store.fetch_srs(manifest.srs.sha256, manifest.srs.logrows, manifest.srs.source)
    return restored


def _chunk_prove_inputs(manifest: Manifest, with_witness: bool) -> list[Path]:
    """A chunked run's outputs up to its keys (plan, circuits, keys), and witnesses if asked."""
    lay = ModelLayout(manifest.model)
    wanted = [Path(a.path) for a in manifest.artifacts
              if a.md5 and Path(a.path).is_relative_to(lay.plan_dir)]
    for c in manifest.chunks:
        cl = lay.chunk_layout(c.index)
        wanted += [cl.settings, cl.compiled, cl.fingerprint, cl.pk, cl.vk]
        if with_witness:
            wanted += [cl.chunk_input, cl.witness]
    return wanted


def _check_local(root: Path, manifest: Manifest, path: Path) -> None:
    entry = manifest.artifact(path)
    actual = sha256_file(root / path)
    if actual != entry.sha256:
        (root / path).unlink()
        raise IntegrityError(f"{path} of run {manifest.run_id}", entry.sha256, actual)


# ---- resume ----------------------------------------------------------------------------------
def resume(root: Path, run_id: str, from_stage: str = "witness", new_input: Path | None = None,
           new_run_id: str | None = None, push: bool | None = None) -> Any:
    """Continue a run's pipeline from ``from_stage`` with the stages before it restored from the
    store (no keygen when the keys are there). With ``new_input``, prove a new input with the run's
    keys. Returns the new run's RunResult; its manifest names ``run_id`` as parent."""
    from .layout import check_stage
    from .onnx_model import check_input, inspect_model
    from .params import load_params
    from .runner import run

    check_stage(from_stage)
    ref, manifest = runs.load_manifest(root, run_id)
    _check_version(manifest)
    _require_at_run(root, ref)
    params = load_params(root)
    name, mp = params.model(manifest.model)
    if manifest.chunks and from_stage not in ("witness", "chunk_witness"):
        raise InputError(f"run {run_id} is chunked: it resumes only from its witnesses",
                         "Use --from witness (the plan, circuits and keys are restored).")
    if manifest.chunks:
        from_stage = "chunk_witness"
    if new_input is not None:
        if not new_input.exists():
            from .errors import MissingFileError

            raise MissingFileError(new_input, "new input", "")
        check_input(inspect_model(root / mp.onnx), new_input)
    if manifest.chunks:
        # Every output (records included, or DVC would redo the stage) of the stages before the
        # witnesses: the plan, and each chunk's compile and setup.
        from .params import chunk_key

        keep = {pipeline.stage_name("chunk_plan", name)} | {
            pipeline.stage_name(stage, chunk_key(name, c.index))
            for stage in ("chunk_compile", "chunk_setup") for c in manifest.chunks}
        targets = [p for p, info in pipeline.lock_outs(root).items() if info["stage"] in keep]
        pipeline.pull(root, targets)
        for a in manifest.artifacts:
            if a.md5 and any(a.path == t or a.path.startswith(t + "/") for t in targets):
                _check_local(root, manifest, Path(a.path))
    elif from_stage != STAGES[0]:
        targets = pipeline.stage_outputs(name, pipeline.stages_before(from_stage))
        pipeline.pull(root, targets)
        for t in targets:
            _check_local(root, manifest, Path(t))
    require_store(root).fetch_srs(manifest.srs.sha256, manifest.srs.logrows, manifest.srs.source)
    if new_input is not None:
        (root / mp.input).write_bytes(new_input.read_bytes())
    force = None if manifest.chunks or from_stage == STAGES[0] else from_stage
    return run(root, name, run_id=new_run_id, push=push, parent_run=run_id, force_stage=force)


# ---- audit -----------------------------------------------------------------------------------
class AuditReport(BaseModel):
    run_id: str
    checks: list[Check]
    ok: bool


def audit(root: Path, run_id: str) -> AuditReport:
    """Re-derive settings, compiled circuit and vk from the run's model, params and SRS in a clean
    room, and compare them with the recorded hashes: binds the proof to the model it claims."""
    ref, manifest = runs.load_manifest(root, run_id)
    _check_version(manifest)
    if manifest.chunks:
        raise InputError(f"run {run_id} is chunked: `audit` re-derives monolithic circuits only",
                         "Verify it with `zkml-dvc verify`, which checks every chunk and link.")
    store = require_store(root)
    lay = ModelLayout(manifest.model)
    mparams = manifest.params["model"]
    with tempfile.TemporaryDirectory(prefix="zkml-audit-") as td:
        room = Path(td)
        files = room / "files"
        files.mkdir()
        inputs = {}
        for key in ("onnx", "calibration"):
            rel = mparams[key]
            entry = manifest.artifact(rel)
            data = runs.read_at(root, ref.commit, rel)
            if sha256_bytes(data) != entry.sha256:
                raise IntegrityError(f"{rel} at {ref.tag}", entry.sha256, sha256_bytes(data))
            dest = files / Path(rel).name
            dest.write_bytes(data)
            inputs[key] = str(dest)
        srs_file = store.get_file(srs_key(manifest.srs.sha256), files / "kzg.srs",
                                  manifest.srs.sha256, use_cache=False)
        result = _worker(room, "audit", {
            **inputs, "srs": str(srs_file), "dir": str(files),
            "run_args": mparams["run_args"], "target": mparams["calibration_target"],
            "scales": mparams["scales"],
        })
    if not result["ok"]:
        raise ConfigError(f"audit of run {run_id} could not re-derive the circuit: {result['error']}",
                          "")
    checks = []
    for label, path, key in (("settings", lay.settings, "settings_sha256"),
                             ("vk", lay.vk, "vk_sha256")):
        want = manifest.artifact(path).sha256
        got = result[key]
        checks.append(Check(name=label, ok=want == got,
                            detail=f"recorded {want[:16]}..., re-derived {got[:16]}..."))
    checks.append(Check(name="model sha256",
                        ok=manifest.artifact(mparams["onnx"]).sha256 == result["onnx_sha256"],
                        detail=result["onnx_sha256"][:16] + "..."))
    return AuditReport(run_id=run_id, checks=checks, ok=all(c.ok for c in checks))


def _audit_steps(args: dict[str, Any]) -> dict[str, str]:
    from .params import RunArgs

    d = Path(args["dir"])
    settings, compiled, vk, pk = d / "settings.json", d / "network.compiled", d / "vk.key", d / "pk.key"
    onnx = Path(args["onnx"])
    ezkl_adapter.gen_settings(onnx, settings, RunArgs.model_validate(args["run_args"]))
    ezkl_adapter.calibrate_settings(Path(args["calibration"]), onnx, settings, args["target"],
                                    args["scales"])
    ezkl_adapter.compile_circuit(onnx, compiled, settings)
    ezkl_adapter.setup(compiled, vk, pk, Path(args["srs"]))
    return {"settings_sha256": sha256_file(settings), "vk_sha256": sha256_file(vk),
            "onnx_sha256": sha256_file(onnx)}


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1], sys.argv[2]))
