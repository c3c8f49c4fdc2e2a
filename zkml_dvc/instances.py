"""What a proof's public instances say: the input and output the proof commits to.

ezkl's ``verify`` checks the proof against its ``instances``; it does not look at
``pretty_public_inputs`` (a producer can write anything there). So every value a verdict shows is
decoded from the instances, with the scales and visibilities of the settings pinned in the manifest:

- instances are the model's input tensors, then its output tensors, in order; a ``public`` tensor
  contributes one field element per value (its shape is in the settings' ``model_instance_shapes``,
  which lists the public tensors only), a ``hashed/public`` one its Poseidon hash (one element);
  other visibilities (private, fixed, KZG-committed) contribute nothing;
- a public input is bound by re-quantising the claimed input at the input scale (ezkl's
  ``float_to_felt``) and comparing element by element; a hashed one by ezkl's ``poseidon_hash`` of
  that; anything else is not bound by the instances, and the claim says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import InputError
from .fsutil import read_json

Kind = Literal["public", "hashed", "none"]


def flatten(value: Any) -> list[float]:
    """Every number of a nested JSON list, in order."""
    if isinstance(value, list):
        return [x for v in value for x in flatten(v)]
    return [float(value)]


def visibility_kind(raw: Any) -> Kind:
    """A visibility as settings.json writes it ("Public", {"Hashed": {"hash_is_public": ...}},
    ...) or as params write it ("public", "hashed/public", ...): what it puts in the instances."""
    if isinstance(raw, str):
        low = raw.lower()
        if low == "public":
            return "public"
        if low in ("hashed", "hashed/public"):
            return "hashed"
        return "none"
    if isinstance(raw, dict) and "Hashed" in raw:
        return "hashed" if (raw["Hashed"] or {}).get("hash_is_public", True) else "none"
    return "none"


@dataclass
class Segment:
    side: Literal["input", "output"]
    index: int
    kind: Kind
    start: int
    length: int


@dataclass
class InstanceLayout:
    segments: list[Segment]
    total: int
    input_scales: list[int]
    output_scales: list[int]

    def of(self, side: str) -> list[Segment]:
        return [s for s in self.segments if s.side == side]


def layout(settings: dict[str, Any]) -> InstanceLayout:
    """Where each public or hashed input and output tensor sits in the proof's instances."""
    ra = settings.get("run_args") or {}
    if visibility_kind(ra.get("param_visibility")) != "none":
        raise InputError("the settings make the model's parameters public instances",
                         "zkml-dvc decodes instances only with fixed or private parameters.")
    # model_instance_shapes lists the public tensors only; a hashed one is one Poseidon hash
    shapes = [list(s) for s in settings.get("model_instance_shapes") or []]
    in_scales = [int(x) for x in settings.get("model_input_scales") or []]
    out_scales = [int(x) for x in settings.get("model_output_scales") or []]
    sides: list[tuple[Literal["input", "output"], int, Kind]] = []
    kin, kout = visibility_kind(ra.get("input_visibility")), visibility_kind(ra.get("output_visibility"))
    if kin != "none":
        sides += [("input", i, kin) for i in range(len(in_scales))]
    if kout != "none":
        sides += [("output", i, kout) for i in range(len(out_scales))]
    public = [s for s in sides if s[2] == "public"]
    if len(public) != len(shapes):
        raise InputError(f"the settings list {len(shapes)} public instance tensors but their "
                         f"visibilities give {len(public)}",
                         "The settings are malformed; do not trust them.")
    segments, pos, next_shape = [], 0, iter(shapes)
    for side, i, kind in sides:
        n = 1 if kind == "hashed" else math.prod(int(d) for d in next(next_shape))
        segments.append(Segment(side, i, kind, pos, n))
        pos += n
    return InstanceLayout(segments, pos, in_scales, out_scales)


def proof_instances(proof_path: Path) -> list[str]:
    """The proof's instances (the one instance column ezkl uses), as hex strings."""
    proof = read_json(proof_path, "proof")
    inst = proof.get("instances") if isinstance(proof, dict) else None
    if not isinstance(inst, list) or len(inst) != 1 or not isinstance(inst[0], list):
        raise InputError(f"proof {proof_path.name} has no single instance column",
                         "The proof is malformed; do not trust it.")
    return [str(v) for v in inst[0]]


@dataclass
class Claim:
    """What was established about one statement of the verdict, and by what."""

    name: str
    status: Literal["established", "not-checked", "failed", "untrusted"]
    basis: str
    value: Any = None


def decode_output(proof_path: Path, settings_path: Path) -> Claim:
    """The output the proof commits to, decoded from its instances at the settings' scales."""
    from . import ezkl_adapter

    lay = layout(read_json(settings_path, "settings"))
    inst = proof_instances(proof_path)
    if len(inst) != lay.total:
        return Claim("output", "failed", f"the proof has {len(inst)} instances, the pinned "
                     f"settings expect {lay.total}")
    outs = lay.of("output")
    if not outs:
        return Claim("output", "not-checked", "the output is private or committed: the proof does "
                     "not reveal it (none shown)")
    values: list[list[str]] = []
    for seg in outs:
        felts = inst[seg.start:seg.start + seg.length]
        if seg.kind == "hashed":
            values.append([f"poseidon:{felts[0]}"])
        else:
            scale = lay.output_scales[seg.index]
            values.append([repr(ezkl_adapter.felt_to_float(f, scale)) for f in felts])
    kinds = {s.kind for s in outs}
    basis = ("decoded from the proof's public instances at the pinned settings' output scale "
             f"{sorted(set(lay.output_scales))}" if kinds == {"public"} else
             "the proof commits to the output's Poseidon hash (value not revealed)")
    return Claim("output", "established", basis, values)


def pretty_disagrees(proof_path: Path, decoded: list[list[str]], tolerance: float = 1e-6) -> bool:
    """True if the proof's ``pretty_public_inputs.rescaled_outputs`` (unchecked by ezkl) differ
    from the decoded output."""
    pretty = (read_json(proof_path, "proof").get("pretty_public_inputs") or {})
    shown = pretty.get("rescaled_outputs")
    if shown is None:
        return False
    try:
        a = [float(x) for t in shown for x in t]
        b = [float(x) for t in decoded for x in t]
    except (TypeError, ValueError):
        return True
    if len(a) != len(b):
        return True
    return any(abs(x - y) > tolerance * max(1.0, abs(y)) for x, y in zip(a, b, strict=True))


def bind_input(proof_path: Path, settings_path: Path, input_path: Path) -> Claim:
    """Does the proof commit to the claimed input (ezkl's input JSON)?"""
    from . import ezkl_adapter

    lay = layout(read_json(settings_path, "settings"))
    inst = proof_instances(proof_path)
    ins = lay.of("input")
    if not ins:
        return Claim("input", "not-checked", "the input is private or committed: the proof does not "
                     "reveal it, so it was not compared with the claimed input")
    data = read_json(input_path, "claimed input")
    tensors = data.get("input_data") if isinstance(data, dict) else None
    if not isinstance(tensors, list) or not tensors or not flatten(tensors):
        return Claim("input", "failed", f"the claimed input {input_path.name} is missing or empty")
    if len(inst) != lay.total:
        return Claim("input", "failed", f"the proof has {len(inst)} instances, the pinned settings "
                     f"expect {lay.total}")
    for seg in ins:
        if seg.index >= len(tensors):
            return Claim("input", "failed", f"the claimed input has no tensor {seg.index}")
        values = flatten(tensors[seg.index])
        felts = ezkl_adapter.float_to_felt(values, lay.input_scales[seg.index])
        got = inst[seg.start:seg.start + seg.length]
        if seg.kind == "public":
            if felts != got:
                return Claim("input", "failed", f"input tensor {seg.index}: the proof's "
                             f"{len(got)} public values differ from the claimed input's "
                             f"{len(felts)} quantised at scale {lay.input_scales[seg.index]}")
        elif ezkl_adapter.poseidon_hash(felts)[:1] != got:
            return Claim("input", "failed", f"input tensor {seg.index}: the proof's Poseidon hash "
                         "differs from the claimed input's")
    basis = ("the proof's public input instances equal the claimed input quantised at scale "
             f"{sorted(set(lay.input_scales))}" if {s.kind for s in ins} == {"public"} else
             "the proof's input hash equals ezkl's Poseidon hash of the claimed input")
    return Claim("input", "established", basis)
