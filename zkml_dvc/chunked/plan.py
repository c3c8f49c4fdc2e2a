"""Splitting a model into consecutive chunks (the `chunk_plan` stage).

Splitting uses ``onnx.utils.extract_model`` at tensors where exactly one value crosses from the
earlier nodes to the later ones. Chunks are balanced by ezkl's own row estimate (``num_rows`` from
gen_settings on each piece between two possible cuts), not by layer count: chunking pays only when
it lowers every chunk's logrows.

All chunks are calibrated at one pinned scale with scale_rebase_multiplier 1, so each intermediate
tensor has that scale on both sides of a boundary, and share one logrows (the largest any chunk
needs), so polycommit commitments are made with one SRS and compare equal. How a verifier checks
the links between chunks is ``links.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .. import ezkl_adapter
from ..errors import InputError
from ..fsutil import atomic_write_json, read_json, sha256_file
from ..instances import flatten
from ..params import LINK_VISIBILITY, ChunkedModelParams, RunArgs
from .records import ChunkInfo, ChunkPlan


# ---- splitting ---------------------------------------------------------------------------------
def cut_candidates(model: Any) -> list[str]:
    """Tensors after which the graph can be cut: exactly one non-constant value is live there."""
    graph = model.graph
    consts = {i.name for i in graph.initializer}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    graph_inputs = {i.name for i in graph.input if i.name not in consts}
    graph_outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    cuts: list[str] = []
    for k in range(len(nodes) - 1):
        produced = graph_inputs | {o for n in nodes[: k + 1] for o in n.output}
        later = {i for n in nodes[k + 1:] for i in n.input}
        live = {t for t in produced if t in later or (t in graph_outputs and t not in graph_inputs)}
        live -= consts
        if len(live) == 1 and not live & graph_inputs and nodes[k].op_type != "Constant":
            cuts.append(next(iter(live)))
    return cuts


def _io(model: Any) -> tuple[str, str]:
    consts = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in consts]
    outputs = [o.name for o in model.graph.output]
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(
            f"a chunked model needs one input and one output tensor (got {len(inputs)} and "
            f"{len(outputs)})", "Export the model with a single input and output.",
        )
    return inputs[0], outputs[0]


def extract(src: Path, dest: Path, input_name: str, output_name: str) -> None:
    import onnx.utils

    onnx.utils.extract_model(str(src), str(dest), [input_name], [output_name])


def balance(costs: list[int], parts: int) -> list[int]:
    """Split ``costs`` (consecutive pieces) into ``parts`` runs minimising the largest sum;
    returns the indices after which to cut (len parts - 1). Ties prefer earlier cuts."""
    n = len(costs)
    if parts > n:
        raise ValueError("more parts than pieces")
    prefix = [0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    inf = float("inf")
    # best[p][j]: minimal max-sum splitting the first j pieces into p parts; cut[p][j] last cut
    best = [[inf] * (n + 1) for _ in range(parts + 1)]
    cut = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0
    for p in range(1, parts + 1):
        for j in range(p, n + 1):
            for i in range(p - 1, j):
                v = max(best[p - 1][i], prefix[j] - prefix[i])
                if v < best[p][j]:
                    best[p][j], cut[p][j] = v, i
    cuts, j = [], n
    for p in range(parts, 1, -1):
        j = cut[p][j]
        cuts.append(j - 1)
    return sorted(cuts)


def _rows(onnx_path: Path, settings: Path, run_args: RunArgs) -> int:
    ezkl_adapter.gen_settings(onnx_path, settings, run_args.for_ezkl())
    return int(read_json(settings, "settings")["num_rows"])


def choose_boundaries(src: Path, cp: ChunkedModelParams, work: Path) -> tuple[list[str], str]:
    """The tensors to cut after: the user's, or the ones that balance ezkl's row estimate."""
    import onnx

    model = onnx.load(str(src))
    first, last = _io(model)
    cands = cut_candidates(model)
    if cp.boundaries:
        unknown = [b for b in cp.boundaries if b not in cands]
        if unknown:
            raise InputError(
                f"{src}: cannot cut after tensor {unknown[0]!r} (not a single-tensor boundary)",
                f"Use tensors from: {', '.join(cands) or '(none)'}; or leave `boundaries` empty.",
            )
        order = [c for c in cands if c in cp.boundaries]
        return order, "user boundaries"
    if len(cands) < cp.chunks - 1:
        raise InputError(
            f"{src} can be cut in only {len(cands)} places: at most {len(cands) + 1} chunks",
            f"Lower `chunks` for this model in params.yaml (now {cp.chunks}).",
        )
    if cp.chunks == 1:
        return [], "single chunk"
    edges = [first, *cands, last]
    probe = RunArgs(**{**(cp.run_args.model_extra or {}),  # the user's other ezkl run args
                       "input_visibility": "public", "output_visibility": "public",
                       "param_visibility": cp.run_args.param_visibility,
                       "input_scale": cp.scales[0] if cp.scales else None,
                       "param_scale": cp.scales[0] if cp.scales else None})
    costs = []
    for i in range(len(edges) - 1):
        piece = work / f"piece{i}.onnx"
        extract(src, piece, edges[i], edges[i + 1])
        costs.append(_rows(piece, work / f"piece{i}.settings.json", probe))
    idx = balance(costs, cp.chunks)
    return [cands[i] for i in idx], f"ezkl row estimate per piece {costs}"


def _chunk_calibration(prev_onnx: Path, prev_data: Path, dest: Path) -> None:
    """Calibration data for the next chunk: the previous chunk's outputs on its calibration data,
    computed with ONNX's reference evaluator, one sample at a time."""
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(prev_onnx))
    name, _ = _io(model)
    spec = next(i for i in model.graph.input if i.name == name)
    shape = [d.dim_value if d.dim_value > 0 else 1 for d in spec.type.tensor_type.shape.dim]
    per = int(np.prod(shape))
    flat = np.asarray(flatten(read_json(prev_data, "calibration data")["input_data"][0]),
                      dtype=np.float32)
    sess = ReferenceEvaluator(model)
    outs = [np.asarray(list(sess.run(None, {name: flat[k:k + per].reshape(shape)}))[0]).ravel()
            for k in range(0, len(flat) - per + 1, per)]
    dest.write_text(json.dumps({"input_data": [np.concatenate(outs).astype(float).tolist()]}))


def visibilities(cp: ChunkedModelParams, index: int) -> tuple[str, str]:
    link = LINK_VISIBILITY[cp.link]
    vin = cp.run_args.input_visibility if index == 0 else link
    vout = cp.run_args.output_visibility if index == cp.chunks - 1 else link
    return vin, vout


def make_plan(name: str, cp: ChunkedModelParams, plan_dir: Path) -> ChunkPlan:
    """Write the chunk ONNX files, their calibrated settings (one scale, one logrows) and
    plan.json into ``plan_dir`` (which the caller writes atomically)."""
    import onnx

    src = Path(cp.onnx)
    first, last = _io(onnx.load(str(src)))
    scale = cp.scales[0] if cp.scales else 7
    with tempfile.TemporaryDirectory(prefix="zkml-plan-") as td:
        work = Path(td)
        bounds, how = choose_boundaries(src, cp, work)
        edges = [first, *bounds, last]
        infos: list[ChunkInfo] = []
        data = Path(cp.calibration)
        for i in range(len(edges) - 1):
            onnx_path = plan_dir / f"{i}.onnx"
            settings = plan_dir / f"{i}.settings.json"
            extract(src, onnx_path, edges[i], edges[i + 1])
            vin, vout = visibilities(cp, i)
            args = RunArgs(**{**(cp.run_args.model_extra or {}),
                              "input_visibility": vin, "output_visibility": vout,
                              "param_visibility": cp.run_args.param_visibility,
                              "input_scale": scale, "param_scale": scale})
            ezkl_adapter.gen_settings(onnx_path, settings, args.for_ezkl())
            ezkl_adapter.calibrate_settings(data, onnx_path, settings, cp.calibration_target, [scale],
                                            scale_rebase_multiplier=[1],
                                            options=cp.calibration_options)
            s = read_json(settings, "settings")
            infos.append(ChunkInfo(
                index=i, input_tensor=edges[i], output_tensor=edges[i + 1], input_visibility=vin,
                output_visibility=vout, num_rows=int(s["num_rows"]),
                calibrated_logrows=int(s["run_args"]["logrows"]), onnx_sha256="", settings_sha256="",
            ))
            if i < len(edges) - 2:
                nxt = work / f"calibration{i + 1}.json"
                _chunk_calibration(onnx_path, data, nxt)
                data = nxt
    logrows = max(c.calibrated_logrows for c in infos)
    for c in infos:
        settings = plan_dir / f"{c.index}.settings.json"
        s = read_json(settings, "settings")
        s["run_args"]["logrows"] = logrows
        settings.write_text(json.dumps(s))
        ezkl_adapter.canonicalize_settings(settings)
        c.onnx_sha256 = sha256_file(plan_dir / f"{c.index}.onnx")
        c.settings_sha256 = sha256_file(settings)
    plan = ChunkPlan(model=name, link=cp.link, scale=scale, logrows=logrows, boundaries=bounds,
                     balanced_by=how, chunks=infos)
    atomic_write_json(plan_dir / "plan.json", plan.model_dump())
    return plan


def load_plan(path: Path) -> ChunkPlan:
    return ChunkPlan.model_validate(read_json(path, "chunk plan"))


def next_input(prev_witness: Path, dest: Path) -> None:
    """The next chunk's input: the previous chunk's outputs as field elements (not floats), so
    nothing is re-quantised at the boundary."""
    w = read_json(prev_witness, "witness")
    atomic_write_json(dest, {"input_data": w["outputs"]})
