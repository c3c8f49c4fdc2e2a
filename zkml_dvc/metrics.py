"""A run's metrics (``reports/metrics.json``): what its proof cost and how close the proved output is
to the float model's. Written by the `metrics` stage and declared in dvc.yaml as DVC metrics (not
cached, so committed with each run): `dvc metrics show`, `dvc metrics diff TAG_A TAG_B` and
`dvc exp show` read it unwrapped, and `zkml-dvc diff` shows the changes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .fsutil import read_json
from .layout import STAGES, ModelLayout
from .params import ModelParams


def _float_output(onnx_path: Path, input_path: Path, variables: dict[str, int]) -> list[float]:
    """The float model's output on the input, by onnx's reference evaluator."""
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(onnx_path))
    initializers = {i.name for i in model.graph.initializer}
    specs = [v for v in model.graph.input if v.name not in initializers]
    tensors = read_json(input_path, "input file")["input_data"]
    feeds = {}
    for spec, values in zip(specs, tensors, strict=True):
        shape = [d.dim_value if d.HasField("dim_value") else variables.get(d.dim_param, -1)
                 for d in spec.type.tensor_type.shape.dim]
        feeds[spec.name] = np.asarray(values, dtype=np.float32).reshape(shape)
    outputs = ReferenceEvaluator(model).run(None, feeds)
    return [float(x) for out in outputs for x in np.asarray(out).flatten()]


def _proved_output(witness: Path, settings: dict[str, Any]) -> list[float]:
    """The output the witness (and so the proof) holds, at the settings' output scales."""
    from . import ezkl_adapter

    scales = [int(s) for s in settings.get("model_output_scales") or []]
    outputs = read_json(witness, "witness").get("outputs") or []
    return [ezkl_adapter.felt_to_float(str(f), scales[i]) for i, tensor in enumerate(outputs)
            for f in tensor]


def quantisation_error(root: Path, lay: ModelLayout, mp: ModelParams,
                       settings: dict[str, Any]) -> dict[str, Any]:
    """Max and mean absolute error of the proved output against the float model's."""
    variables = {str(k): int(v) for k, v in (settings.get("run_args", {}).get("variables") or [])}
    try:
        want = _float_output(root / mp.onnx, root / mp.input, variables)
        got = _proved_output(root / lay.witness, settings)
    except Exception as exc:  # the reference evaluator lacks an op, or shapes it cannot infer
        return {"error_note": f"not computed: {type(exc).__name__}: {str(exc)[:120]}"}
    if len(want) != len(got) or not want:
        return {"error_note": f"not computed: {len(got)} proved values, {len(want)} float ones"}
    diffs = [abs(a - b) for a, b in zip(got, want, strict=True)]
    return {"max_abs": round(max(diffs), 6), "mean_abs": round(sum(diffs) / len(diffs), 6)}


def collect(root: Path, lay: ModelLayout, mp: ModelParams) -> dict[str, Any]:
    """Every metric of the model's current artifacts (paths relative to ``root``)."""
    settings = read_json(root / lay.settings, "settings")
    run_args = settings.get("run_args", {})
    seconds: dict[str, float] = {}
    peak_mb: dict[str, float] = {}
    for stage in STAGES:
        if stage == "metrics":
            continue
        record = root / lay.stage_record(stage)
        if record.exists():
            data = read_json(record, "stage record")
            seconds[stage] = round(float(data.get("duration_s", 0.0)), 3)
            if stage in ("setup", "prove") and data.get("peak_rss_bytes"):
                peak_mb[stage] = round(int(data["peak_rss_bytes"]) / 1e6, 1)

    def size(path: Path) -> int:
        return (root / path).stat().st_size

    collected: dict[str, Any] = {
        "logrows": int(run_args.get("logrows", 0)),
        "rows_used": int(settings.get("num_rows", 0)),
        "input_scale": int(run_args.get("input_scale", 0)),
        "param_scale": int(run_args.get("param_scale", 0)),
        "bytes": {"pk": size(lay.pk), "vk": size(lay.vk), "proof": size(lay.proof)},
        "seconds": {**seconds, "total": round(math.fsum(seconds.values()), 3)},
        "peak_rss_mb": peak_mb,
        "output_error": quantisation_error(root, lay, mp, settings),
    }
    report = root / lay.evm_report
    evm = read_json(report, "EVM report") if report.exists() else {}
    if evm.get("enabled"):  # the on-chain cost: verifyProof's gas and the verifier's size
        collected["evm"] = {"gas": int(evm["gas_used"]), "bytecode_bytes": int(evm["bytecode_bytes"])}
    return collected


def plot_rows(metrics: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The data of the two DVC plots: seconds per stage, and the scale against the error and the
    pk size (one point per run; `dvc plots diff` across runs or experiments draws the trade-off)."""
    seconds = [{"stage": stage, "seconds": value}
               for stage, value in metrics["seconds"].items() if stage != "total"]
    error = metrics["output_error"].get("max_abs")
    accuracy = [{"input_scale": metrics["input_scale"], "logrows": metrics["logrows"],
                 "output_max_abs_error": error, "pk_mb": round(metrics["bytes"]["pk"] / 1e6, 1)}]
    return seconds, accuracy


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as DVC shows them: ``seconds.prove`` -> value."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def of_run(root: Path, run_id: str) -> dict[str, Any]:
    """The metrics committed with a run ({} for a run made before metrics existed)."""
    import json

    from . import runs
    from .errors import NotFoundError

    ref, manifest = runs.load_manifest(root, run_id)
    try:
        data = json.loads(runs.read_at(root, ref.commit, str(ModelLayout(manifest.model).metrics)))
    except (NotFoundError, ValueError):
        return {}
    return flatten(data) if isinstance(data, dict) else {}


def changes(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(metric, value in a, value in b) for every metric that differs (None where absent)."""
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
