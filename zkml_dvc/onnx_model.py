"""Facts about an ONNX model (hash, opset, parameter count, input schema) and input checks.

Loading and checking an ONNX file costs onnx's import (~0.2 s) and a parse of the whole model: the
facts are cached per user under the file's sha256 and the onnx version that checked it
(``$ZKML_DVC_CACHE_DIR/model-facts/``), so a no-op ``zkml-dvc run`` and each stage after the first
only hash the file.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import env
from .errors import InputError, MissingFileError, first_line
from .fsutil import atomic_write_text, read_json, sha256_file


class TensorSpec(BaseModel):
    name: str
    shape: list[int | str]
    dtype: str


class ModelFacts(BaseModel):
    path: str
    sha256: str
    size: int
    opset: int
    ir_version: int
    parameter_count: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


def _load(path: Path) -> Any:
    import onnx

    if not path.exists():
        raise MissingFileError(path, "ONNX model", "Check the `onnx:` path in params.yaml.")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...: all mean "bad file"
        raise InputError(
            f"{path} is not a valid ONNX model ({first_line(exc)[:200]})",
            "Re-export the model to ONNX (opset 13-18 works well with ezkl).",
        ) from None
    return model


def _spec(value_info: Any) -> TensorSpec:
    import onnx

    ttype = value_info.type.tensor_type
    dims: list[int | str] = []
    for d in ttype.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    return TensorSpec(
        name=value_info.name,
        shape=dims,
        dtype=onnx.TensorProto.DataType.Name(ttype.elem_type).lower(),
    )


def _facts_cache(sha256: str) -> Path:
    from importlib.metadata import version

    return env.cache_dir() / "model-facts" / f"{sha256}-onnx{version('onnx')}.json"


def inspect_model(path: Path) -> ModelFacts:
    """Load and check an ONNX file; InputError (naming the file) if it is missing or invalid.

    A file whose bytes were checked before (by the same onnx version) is only hashed."""
    if not path.is_file():
        _load(path)  # raises the error that names what is wrong with the path
    digest = sha256_file(path)
    cached = _facts_cache(digest)
    try:
        facts = ModelFacts.model_validate_json(cached.read_bytes())
        if facts.sha256 == digest:
            return facts.model_copy(update={"path": str(path)})
    except (OSError, ValueError):
        pass  # not cached, or unreadable: inspect the file
    model = _load(path)
    initializers = {i.name for i in model.graph.initializer}
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    params = sum(math.prod(i.dims) if i.dims else 1 for i in model.graph.initializer)
    facts = ModelFacts(
        path=str(path),
        sha256=digest,
        size=path.stat().st_size,
        opset=opset,
        ir_version=model.ir_version,
        parameter_count=int(params),
        inputs=[_spec(v) for v in model.graph.input if v.name not in initializers],
        outputs=[_spec(v) for v in model.graph.output],
    )
    with contextlib.suppress(OSError):  # a read-only cache only costs the next call this work
        atomic_write_text(cached, facts.model_dump_json())
    return facts


def _flat_len(value: Any) -> int:
    if isinstance(value, list):
        return sum(_flat_len(v) for v in value)
    return 1


def check_input(facts: ModelFacts, input_path: Path, batch: bool = False) -> None:
    """Check that an ezkl input JSON has one tensor per model input, of the right size.

    With ``batch`` (calibration data) each tensor may hold several samples: a whole multiple.
    """
    data = read_json(input_path, "input file")
    tensors = data.get("input_data") if isinstance(data, dict) else None
    fix = (
        f'Write {input_path} as {{"input_data": [[...]]}} with one flat list per model input '
        "(ezkl's input format)."
    )
    if not isinstance(tensors, list) or not tensors:
        raise InputError(f"{input_path} has no `input_data` list", fix)
    if len(tensors) != len(facts.inputs):
        raise InputError(
            f"{input_path} has {len(tensors)} input tensors but {facts.path} takes "
            f"{len(facts.inputs)}",
            fix,
        )
    for spec, tensor in zip(facts.inputs, tensors, strict=True):
        known = [d for d in spec.shape if isinstance(d, int) and d > 0]
        if len(known) != len(spec.shape):
            continue  # symbolic dims: ezkl fixes them from variables; cannot check here
        expected = math.prod(known)
        got = _flat_len(tensor)
        if got != expected and not (batch and got > 0 and got % expected == 0):
            raise InputError(
                f"{input_path}: input {spec.name!r} has {got} values but the model expects "
                f"shape {spec.shape} ({expected} values)",
                fix,
            )
