"""The on-chain verifier of a run, checked in a local EVM.

ezkl renders a Solidity verifier from the vk (``ezkl_adapter.create_evm_verifier``) and encodes a
proof as calldata for it (``encode_evm_calldata``). ezkl's own compile step downloads solc, which
cannot work offline, so compilation is ours: solc-js (npm's ``solc``, the compiler built to
WebAssembly, pinned by ``zkml_dvc/data/solc/package-lock.json``) through its standard-JSON interface,
and execution is pyrevm (revm, the Rust EVM, from PyPI). Both run offline.

What a verifier establishes with ``check`` (used by ``zkml-dvc verify --evm``):
- the verifier is ezkl's rendering of the pinned vk (re-rendered and compared byte for byte);
- the calldata carries exactly the proof bytes and instances of the pinned proof.json (decoded
  from its ABI encoding), so an EVM "accepted" is about this proof and no other;
- the compiled verifier, deployed in a fresh local EVM, returns true for that calldata.
A tampered verifier or calldata is refused by one of the three.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import env
from .errors import ConfigError, InputError, ProofInvalidError, first_line
from .fsutil import read_json

CONTRACT = "Halo2Verifier"
SOURCE_NAME = "Verifier.sol"
FUNCTION = "verifyProof(bytes,uint256[])"
# Fixed compiler settings: the same verifier source gives the same bytecode under the same solc.
SOLC_SETTINGS: dict[str, Any] = {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun"}
GAS_LIMIT = 30_000_000  # a block's gas limit on Ethereum mainnet
_DEPLOYER = "0x" + "5a" * 20
_INSTALL = ("Install solc-js from npm: `npm ci --prefix {prefix} --no-audit --no-fund` after copying "
            "zkml_dvc/data/solc/package*.json there (`make venv` does this), or set "
            "ZKML_DVC_SOLCJS to a solcjs executable")


@dataclass(frozen=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes  # creation bytecode
    selector: bytes  # verifyProof's 4-byte function selector, from the compiler
    solc: str  # the compiler's version, as its metadata states it (e.g. 0.8.28+commit.7893614a)


@dataclass(frozen=True)
class Execution:
    accepted: bool
    gas_used: int
    detail: str


def solcjs() -> Path:
    """The solc-js executable: $ZKML_DVC_SOLCJS, the one `make venv` installs beside this Python,
    or `solcjs` on PATH."""
    given = env.get(env.SOLCJS)
    candidates = [Path(given)] if given else [
        Path(sys.prefix) / "solc" / "node_modules" / ".bin" / "solcjs"]
    found = shutil.which("solcjs")
    if not given and found:
        candidates.append(Path(found))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ConfigError(
        f"no Solidity compiler: {candidates[0]} not found",
        _INSTALL.format(prefix=Path(sys.prefix) / "solc") + ".")


def _solc(args: list[str], stdin: str | None = None) -> str:
    import tempfile

    exe = solcjs()
    # solcjs reads its standard input with one readFileSync: from a pipe that fails with EAGAIN
    # once the input outgrows the pipe's buffer, so the input is a regular file.
    with tempfile.TemporaryFile("w+") as fh:
        fh.write(stdin or "")
        fh.seek(0)
        try:
            proc = subprocess.run([str(exe), *args], stdin=fh, capture_output=True, text=True,
                                  check=False, timeout=600)
        except OSError as exc:  # e.g. node missing: solcjs is a node script
            raise ConfigError(f"solc-js at {exe} cannot run: {first_line(exc)}",
                              "It needs Node.js (`node` on PATH).") from exc
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        reason = next((ln for ln in lines if ln.startswith(("Error", "error"))), None) or \
            (lines or ["no output"])[-1]
        raise ConfigError(f"solc-js at {exe} failed (exit {proc.returncode}): {reason.strip()}",
                          "Reinstall it (`make venv`).")
    return proc.stdout


def compile_verifier(sol: Path) -> Compiled:
    """Compile ezkl's verifier contract with solc-js (standard JSON, SOLC_SETTINGS)."""
    request = {
        "language": "Solidity",
        # one source name whatever the file is called: it is part of the metadata whose hash
        # solc appends to the bytecode
        "sources": {SOURCE_NAME: {"content": sol.read_text()}},
        "settings": {**SOLC_SETTINGS, "outputSelection": {"*": {"*": [
            "abi", "evm.bytecode.object", "evm.methodIdentifiers", "metadata"]}}},
    }
    raw = _solc(["--standard-json"], json.dumps(request))
    try:
        out = json.loads(raw[raw.index("{"):])
    except ValueError:
        raise ConfigError(f"solc-js printed no JSON for {sol}", "Reinstall it (`make venv`).") \
            from None
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        message = str(errors[0].get("message", "")).strip().splitlines() or ["no message"]
        raise InputError(f"{sol} does not compile: {message[0]}",
                         "It is not a verifier ezkl rendered; render it again from the vk.")
    try:
        contract = out["contracts"][SOURCE_NAME][CONTRACT]
        selector = bytes.fromhex(contract["evm"]["methodIdentifiers"][FUNCTION])
        bytecode = bytes.fromhex(contract["evm"]["bytecode"]["object"])
        # the compiler's version as its own metadata states it (the metadata whose hash ends the
        # bytecode): no second compiler process to ask
        version = str(json.loads(contract["metadata"])["compiler"]["version"])
    except (KeyError, ValueError):
        raise InputError(f"{sol} has no contract {CONTRACT} with {FUNCTION}",
                         "It is not a verifier ezkl rendered; render it again from the vk.") from None
    return Compiled(abi=contract["abi"], bytecode=bytecode, selector=selector, solc=version)


def decode_calldata(data: bytes, selector: bytes, source: str) -> tuple[bytes, list[int]]:
    """The proof bytes and instances ABI-encoded in verifyProof calldata (strictly: a malformed
    encoding, or anything but zeros after the arguments, is refused)."""
    def word(at: int) -> int:
        if at + 32 > len(body):
            raise InputError(f"{source} is truncated", "Encode it again from the proof.")
        return int.from_bytes(body[at:at + 32], "big")

    if data[:4] != selector:
        raise InputError(f"{source} does not call {FUNCTION} (selector {data[:4].hex()}, "
                         f"expected {selector.hex()})", "Encode it again from the proof.")
    body = data[4:]
    proof_at, inst_at = word(0), word(32)
    n = word(proof_at)
    proof = body[proof_at + 32:proof_at + 32 + n]
    padded = proof_at + 32 + (n + 31) // 32 * 32
    m = word(inst_at)
    instances = [word(inst_at + 32 + 32 * i) for i in range(m)]
    end = inst_at + 32 + 32 * m
    # ezkl 23 appends one zero word after the arguments (the ABI decoder ignores it): accepted
    # only as zeros, so no two calldatas that decode alike differ in what they carry
    if proof_at != 64 or len(proof) != n or inst_at != padded or \
            len(body) not in (end, end + 32) or any(body[end:]):
        raise InputError(f"{source} is not a canonical encoding of {FUNCTION}",
                         "Encode it again from the proof.")
    return proof, instances


def proof_fields(proof_json: Path) -> tuple[bytes, list[int]]:
    """The proof bytes and instances (as integers) that ezkl's proof.json holds."""
    proof = read_json(proof_json, "proof")
    try:
        data = bytes(proof["proof"])
        instances = [int.from_bytes(bytes.fromhex(h), "little")
                     for group in proof["instances"] for h in group]
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{proof_json} is not an ezkl proof (no proof bytes or instances)",
                         "Use the run's proof.json.") from None
    return data, instances


def check_calldata(calldata: Path, proof_json: Path, selector: bytes) -> None:
    """Refuse calldata that is not exactly the pinned proof and its instances."""
    got_proof, got_instances = decode_calldata(calldata.read_bytes(), selector, str(calldata))
    want_proof, want_instances = proof_fields(proof_json)
    if got_proof != want_proof:
        raise ProofInvalidError(f"{calldata} carries other proof bytes than {proof_json}",
                                "The calldata is not this run's proof: encode it from the proof.")
    if got_instances != want_instances:
        raise ProofInvalidError(f"{calldata} carries other instances than {proof_json}",
                                "The calldata claims other inputs or outputs than the proof.")


def execute(bytecode: bytes, calldata: bytes) -> Execution:
    """Deploy ``bytecode`` in a fresh local EVM and call it with ``calldata``: accepted when the
    call returns true (a rejected proof reverts or returns false)."""
    import pyrevm

    evm = pyrevm.EVM()
    evm.set_balance(_DEPLOYER, 10**20)
    try:
        address = evm.deploy(_DEPLOYER, bytecode, gas=GAS_LIMIT)
    except RuntimeError as exc:
        return Execution(False, 0, f"the verifier did not deploy: {first_line(exc)}")
    try:
        out = bytes(evm.message_call(_DEPLOYER, address, calldata, gas=GAS_LIMIT))
    except RuntimeError as exc:
        text = first_line(exc)
        return Execution(False, 0, f"the verifier reverted ({text.split(',')[0]})")
    gas = int(evm.result.gas_used) if evm.result is not None else 0
    ok = len(out) == 32 and int.from_bytes(out, "big") == 1
    return Execution(ok, gas, "returned true" if ok else f"returned 0x{out.hex() or 'nothing'}")


def pyrevm_version() -> str:
    from importlib.metadata import version

    return f"pyrevm {version('pyrevm')}"
