"""`zkml-dvc audit`: re-derive a run's circuit and vk from the model it claims, in a clean room."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel

from . import cleanroom, runs
from .errors import ConfigError, HashMismatchError
from .fsutil import sha256_bytes
from .layout import srs_key
from .project import Project
from .records import Check
from .shapes import shape_for_manifest
from .verifier import check_version


class AuditReport(BaseModel):
    run_id: str
    checks: list[Check]
    ok: bool


def audit(project: Project, run_id: str) -> AuditReport:
    """Re-derive settings, compiled circuit and vk from the run's model, params and SRS in a clean
    room, and compare them with the recorded hashes: binds the proof to the model it claims."""
    ref, manifest = runs.load_manifest(project.root, run_id)
    check_version(manifest)
    action, derived = shape_for_manifest(manifest).audit_plan(manifest)
    store = project.require_store()
    mparams = manifest.params["model"]
    with tempfile.TemporaryDirectory(prefix="zkml-audit-") as td:
        room = Path(td)
        files = room / "files"
        files.mkdir()
        inputs = {}
        for key in ("onnx", "calibration"):
            rel = mparams[key]
            entry = manifest.artifact(rel)
            data = runs.read_at(project.root, ref.commit, rel)
            if sha256_bytes(data) != entry.sha256:
                raise HashMismatchError(f"{rel} at {ref.tag}", entry.sha256, sha256_bytes(data))
            dest = files / Path(rel).name
            dest.write_bytes(data)
            inputs[key] = str(dest)
        srs_file = store.get_file(srs_key(manifest.srs.sha256), files / "kzg.srs",
                                  manifest.srs.sha256, use_cache=False)
        result = cleanroom.run(room, action, {
            **inputs, "srs": str(srs_file), "dir": str(files), "model": manifest.model,
            "params": mparams, "labels": sorted(derived),
        })
    if not result["ok"]:
        raise ConfigError(f"audit of run {run_id} could not re-derive the circuit: {result['error']}",
                          "")
    checks = []
    for label, path in derived.items():
        want = manifest.artifact(path).sha256
        got = str(result["derived"].get(label, ""))
        checks.append(Check(name=label, ok=want == got,
                            detail=f"recorded {want[:16]}..., re-derived {got[:16]}..."))
    checks.append(Check(name="model sha256",
                        ok=manifest.artifact(mparams["onnx"]).sha256 == result["onnx_sha256"],
                        detail=result["onnx_sha256"][:16] + "..."))
    return AuditReport(run_id=run_id, checks=checks, ok=all(c.ok for c in checks))
