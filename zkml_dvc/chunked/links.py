"""How a verifier knows the chunks of a chunked run fit together, from the proofs alone.

- ``polycommit``: the KZG commitments of the boundary tensor are the first points in each proof's
  transcript (inputs, then outputs; 64 bytes per point). The output points of proof i must equal
  the input points of proof i+1. This is ezkl's internal proof layout (ezkl's
  ``swap_proof_commitments`` relies on it): pinned by the ezkl version and a regression test.
- ``hashed``: the Poseidon hash of the boundary tensor is a public instance of both proofs (last
  instance of proof i, first of proof i+1).

Neither hides the intermediate values from whoever holds a witness: no salt or blinding is added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fsutil import read_json
from ..records import Check
from .records import LinkCounts

POINT_BYTES = 64  # an uncompressed G1 point in ezkl's EVM transcript: x, y big-endian


def link_counts(witness: Path, index: int, link: str) -> LinkCounts:
    w = read_json(witness, "witness")
    key = "polycommit" if link == "polycommit" else "poseidon_hash"

    def count(section: str) -> int:
        # polycommit: one list of points per tensor; poseidon_hash: one hash per tensor
        items = (w.get(section) or {}).get(key) or []
        return sum(len(t) if isinstance(t, list) else 1 for t in items)

    return LinkCounts(index=index, link_inputs=count("processed_inputs"),
                      link_outputs=count("processed_outputs"))


def _proof_bytes(proof: dict[str, Any]) -> bytes:
    raw = proof.get("proof")
    if isinstance(raw, list):
        return bytes(raw)
    hexed = str(proof.get("hex_proof") or "")
    return bytes.fromhex(hexed[2:] if hexed.startswith("0x") else hexed)


def link_values(proof_path: Path, counts: LinkCounts, link: str, side: str) -> list[str]:
    """The values proof ``proof_path`` exposes for its input or output boundary (hex strings)."""
    proof = read_json(proof_path, "proof")
    if link == "polycommit":
        data = _proof_bytes(proof)
        if side == "input":
            start, n = 0, counts.link_inputs
        else:
            start, n = counts.link_inputs * POINT_BYTES, counts.link_outputs
        end = start + n * POINT_BYTES
        if n < 1 or end > len(data):
            return []
        return [data[s:s + POINT_BYTES].hex() for s in range(start, end, POINT_BYTES)]
    instances = (proof.get("instances") or [[]])[0]
    n = counts.link_inputs if side == "input" else counts.link_outputs
    if n < 1 or n > len(instances):
        return []
    return [str(v) for v in (instances[:n] if side == "input" else instances[-n:])]


def check_link(prev_proof: Path, prev: LinkCounts, proof: Path, cur: LinkCounts,
               link: str) -> tuple[bool, str]:
    out = link_values(prev_proof, prev, link, "output")
    inp = link_values(proof, cur, link, "input")
    if not out or not inp:
        return False, "no link values in the proofs"
    if out != inp:
        return False, f"chunk {prev.index} output {out[0][:16]}... != chunk {cur.index} input " \
                      f"{inp[0][:16]}..."
    return True, f"{len(out)} {'commitment' if link == 'polycommit' else 'hash'}(es) equal " \
                 f"({out[0][:16]}...)"


def is_link_visibility(raw: Any, link: str) -> bool:
    """Does a visibility as settings.json writes it make a tensor a ``link`` boundary?"""
    from ..instances import visibility_kind

    if link == "hashed":
        return visibility_kind(raw) == "hashed"
    return isinstance(raw, str) and raw.lower() in ("kzgcommit", "polycommit")


def pinned_counts(entry: LinkCounts, link: str, chunks: int) -> LinkCounts:
    """The link counts a verifier uses for one chunk: for ``hashed`` links they follow from the
    settings (one Poseidon hash per boundary tensor), whatever the manifest says; for
    ``polycommit`` the manifest's (read from the witness at proving time), which the caller checks
    for consistency between neighbours."""
    if link == "hashed":
        return LinkCounts(index=entry.index, link_inputs=int(entry.index > 0),
                          link_outputs=int(entry.index < chunks - 1))
    return LinkCounts(index=entry.index, link_inputs=entry.link_inputs,
                      link_outputs=entry.link_outputs)


def check_chain(proofs: list[Path], counts: list[LinkCounts], link: str) -> list[Check]:
    """One check per adjacent pair of chunk proofs: do they link? (The one link check, used by
    the `chunk_verify` stage and by the clean-room verifier alike.)"""
    checks = []
    for i in range(1, len(proofs)):
        ok, detail = check_link(proofs[i - 1], counts[i - 1], proofs[i], counts[i], link)
        checks.append(Check(name=f"{link} link {counts[i - 1].index}->{counts[i].index}", ok=ok,
                            detail=detail))
    return checks
