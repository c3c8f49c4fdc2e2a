"""evm.decode_calldata / check_calldata: the calldata must be exactly the pinned proof (pure logic;
the real solc-js and EVM run in tests/integration/test_evm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zkml_dvc import evm
from zkml_dvc.errors import InputError, ProofInvalidError

SELECTOR = bytes.fromhex("1e8e1e13")


def encode(proof: bytes, instances: list[int], trailer: bytes = bytes(32)) -> bytes:
    """verifyProof(bytes,uint256[]) as ezkl 23 encodes it (one zero word after the arguments)."""
    def word(n: int) -> bytes:
        return n.to_bytes(32, "big")

    padded = proof + bytes(-len(proof) % 32)
    inst_at = 64 + 32 + len(padded)
    return (SELECTOR + word(64) + word(inst_at) + word(len(proof)) + padded +
            word(len(instances)) + b"".join(word(i) for i in instances) + trailer)


def proof_json(tmp_path: Path, proof: bytes, instances: list[int]) -> Path:
    p = tmp_path / "proof.json"
    p.write_text(json.dumps({"proof": list(proof), "instances": [
        [i.to_bytes(32, "little").hex() for i in instances]]}))
    return p


def test_decodes_what_ezkl_encodes() -> None:
    proof, instances = bytes(range(70)), [1, 2**255 + 7, 0]
    assert evm.decode_calldata(encode(proof, instances), SELECTOR, "c") == (proof, instances)
    assert evm.decode_calldata(encode(proof, instances, b""), SELECTOR, "c") == (proof, instances)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"\x00\x00\x00\x00" + d[4:], "does not call verifyProof"),
    (lambda d: d[:-1], "not a canonical encoding"),
    (lambda d: d[:-1] + b"\x01", "not a canonical encoding"),  # a non-zero trailer
    (lambda d: d + bytes(32), "not a canonical encoding"),
    (lambda d: d[:4 + 31] + b"\x60" + d[4 + 32:], "not a canonical encoding"),  # proof offset 96
    (lambda d: d[:40], "truncated"),
])
def test_refuses_malformed_calldata(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = mutate(encode(bytes(range(70)), [5, 6]))
    with pytest.raises(InputError, match=message):
        evm.decode_calldata(data, SELECTOR, "calldata.bin")


def test_calldata_must_carry_the_proofs_bytes_and_instances(tmp_path: Path) -> None:
    proof, instances = bytes(range(64)), [11, 12, 13]
    pj = proof_json(tmp_path, proof, instances)
    cd = tmp_path / "calldata.bin"
    cd.write_bytes(encode(proof, instances))
    evm.check_calldata(cd, pj, SELECTOR)
    cd.write_bytes(encode(proof, [11, 12, 14]))
    with pytest.raises(ProofInvalidError, match="other instances"):
        evm.check_calldata(cd, pj, SELECTOR)
    cd.write_bytes(encode(bytes(63) + b"\x01", instances))
    with pytest.raises(ProofInvalidError, match="other proof bytes"):
        evm.check_calldata(cd, pj, SELECTOR)


def test_no_compiler_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKML_DVC_SOLCJS", str(tmp_path / "nowhere" / "solcjs"))
    from zkml_dvc.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        evm.solcjs()
    assert "no Solidity compiler" in str(err.value) and "make venv" in str(err.value)
