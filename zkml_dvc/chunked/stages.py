"""A chunked model's pipeline stages (dvc.yaml's chunk_* stages; docs/chunked.md).

chunk_plan splits and calibrates (per model), chunk_compile / chunk_setup / chunk_witness /
chunk_prove run per chunk, chunk_verify checks every proof and every link (per model).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .. import ezkl_adapter
from ..errors import MissingFileError, ProofInvalidError
from ..fsutil import atomic_dir, atomic_path, atomic_write_json, sha256_file
from ..layout import ModelLayout
from ..onnx_model import check_input, inspect_model
from ..stages import StageFn, compile_from, outputs, pin_srs, prove, setup, srs_file
from . import links, plan

if TYPE_CHECKING:
    from ..project import Project


def _chunk_plan(project: Project, lay: ModelLayout) -> None:
    cp = project.params.chunked_model(lay.model)
    inspect_model(Path(cp.onnx))
    if not Path(cp.calibration).exists():
        raise MissingFileError(Path(cp.calibration), "calibration data",
                               "Check `calibration:` in params.yaml.")
    with atomic_dir(lay.plan_dir) as tmp:
        made = plan.make_plan(lay.model, cp, tmp)
    pin_srs(project, lay, made.logrows)


def _chunk_compile(project: Project, lay: ModelLayout) -> None:
    assert lay.chunk is not None
    with atomic_path(lay.settings) as tmp:
        shutil.copyfile(lay.plan_settings(lay.chunk), tmp)
    compile_from(lay.plan_onnx(lay.chunk), lay)


def _chunk_witness(project: Project, lay: ModelLayout) -> None:
    assert lay.chunk is not None
    if lay.chunk == 0:
        _, mp = project.params.model(lay.model)
        check_input(inspect_model(Path(mp.onnx)), Path(mp.input))
        with atomic_path(lay.chunk_input) as tmp:
            shutil.copyfile(mp.input, tmp)
    else:
        plan.next_input(lay.chunk_layout(lay.chunk - 1).witness, lay.chunk_input)
    srs_path = srs_file(project, lay)
    with outputs(lay.witness) as (tmp,):
        ezkl_adapter.gen_witness(lay.chunk_input, lay.compiled, tmp, lay.vk, srs_path)


def _chunk_verify(project: Project, lay: ModelLayout) -> None:
    made = plan.load_plan(lay.plan)
    srs_path = srs_file(project, lay)
    chunks = [lay.chunk_layout(c.index) for c in made.chunks]
    counts = [links.link_counts(c.witness, c.chunk or 0, made.link) for c in chunks]
    for c in chunks:
        ezkl_adapter.verify(c.proof, c.settings, c.vk, srs_path)
    checks = links.check_chain([c.proof for c in chunks], counts, made.link)
    for check in checks:
        if not check.ok:
            raise ProofInvalidError(f"model {lay.model}: {check.name} does not hold "
                                    f"({check.detail})", "Re-run `zkml-dvc run`; the witnesses differ.")
    atomic_write_json(lay.verify_report, {
        "verified": True,
        "link": made.link,
        "checks": [{"name": f"chunk {c.chunk} proof", "ok": True} for c in chunks]
        + [c.model_dump() for c in checks],
        "link_counts": [c.model_dump() for c in counts],
        "proof_sha256": [sha256_file(c.proof) for c in chunks],
    })


CHUNKED_STAGES: dict[str, StageFn] = {
    "chunk_plan": _chunk_plan,
    "chunk_compile": _chunk_compile,
    "chunk_setup": setup,
    "chunk_witness": _chunk_witness,
    "chunk_prove": prove,
    "chunk_verify": _chunk_verify,
}
