"""The EVM verifier as pipeline artifacts (`evm: true`): ezkl's Solidity verifier and the proof's
calldata are DVC outputs in the manifest and the run index; `verify --evm` re-renders the verifier
from the pinned vk, compiles it with solc-js and runs the calldata in pyrevm, from the store's copies.
Real ezkl, real solc-js, a real EVM, the real local store."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    VERIFY,
    VERIFY_ON_TRUST,
    S3Server,
    cli,
    clone,
    connect,
    machine_env,
    new_bucket,
    new_project,
)
from zkml_dvc import cleanroom, evm
from zkml_dvc import srs as srs_mod
from zkml_dvc.fsutil import sha256_file
from zkml_dvc.layout import ModelLayout
from zkml_dvc.runs import load_manifest
from zkml_dvc.verifier import _evm_claim

pytestmark = pytest.mark.slow
LAY = ModelLayout("mlp")


@pytest.fixture(scope="module")
def evm_run(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory,
            shared_cache: Path) -> Path:
    """Run e1 of an `evm: true` project, pushed to its own bucket (its name in ../bucket)."""
    from tests.conftest import producer_env

    tmp = tmp_path_factory.mktemp("evm-producer")
    mp = producer_env(tmp, shared_cache)
    try:
        root = new_project(tmp, "origin", project_id="evmproj")
        params = (root / "params.yaml").read_text()
        assert "evm: false" in params  # init writes the switch, off
        (root / "params.yaml").write_text(params.replace("evm: false", "evm: true"))
        subprocess.run(["git", "commit", "-qam", "evm on"], cwd=root, check=True)
        bucket = new_bucket(s3_server)
        connect(root, s3_server, bucket)
        (tmp / "bucket").write_text(bucket)
        res = cli("run", "--run-id", "e1", cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
        return root
    finally:
        mp.undo()


def test_evm_stage_outputs_are_dvc_outputs_in_the_manifest(evm_run: Path) -> None:
    _, m = load_manifest(evm_run, "e1")
    report = json.loads((evm_run / LAY.evm_report).read_text())
    assert report["enabled"] and report["accepted"] and report["gas_used"] > 100_000
    assert m.tools.solc == report["solc"] and m.tools.solc.startswith("0.8.28")
    for path in (LAY.evm_verifier, LAY.evm_bytecode, LAY.evm_abi, LAY.evm_calldata):
        entry = m.artifact(path)
        assert entry.md5 and entry.object_key and entry.stage == "evm@mlp"
        assert entry.sha256 == sha256_file(evm_run / path)
    metrics = json.loads((evm_run / LAY.metrics).read_text())
    assert metrics["evm"]["gas"] == report["gas_used"]
    print(f"\nEVM: {report['gas_used']:,} gas, {report['bytecode_bytes']:,} bytes of bytecode, "
          f"{report['solc']}")
    # the same vk gives the same verifier bytes: forcing the stage again changes nothing
    before = sha256_file(evm_run / LAY.evm_verifier), (evm_run / LAY.evm_bytecode).read_text()
    subprocess.run(["dvc", "repro", "-f", "-s", "evm@mlp"], cwd=evm_run, check=True,
                   capture_output=True)
    assert (sha256_file(evm_run / LAY.evm_verifier), (evm_run / LAY.evm_bytecode).read_text()) == \
        before
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=evm_run, check=True)


def test_verify_evm_in_a_clean_clone_and_store_only(evm_run: Path, s3_server: S3Server,
                                                    tmp_path: Path) -> None:
    other = clone(evm_run, tmp_path / "verifier")
    env = machine_env(tmp_path, s3_server)
    res = cli(*VERIFY, "e1", "--evm", cwd=other, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    print("\n" + res.stdout)
    assert res.stdout.startswith("VALID (UNTRUSTED SRS)")
    evm_line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("evm "))
    assert "ESTABLISHED" in evm_line and "re-rendered here, byte-identical" in evm_line
    assert "returned true in a local EVM" in evm_line
    # store-only: the verifier and calldata come from the run index, sha256-checked
    url = f"s3://{(evm_run.parent / 'bucket').read_text()}"
    empty = tmp_path / "empty"
    empty.mkdir()
    rep = empty / "report.json"
    empty_env = machine_env(tmp_path / "empty", s3_server)
    res = cli(*VERIFY_ON_TRUST, "e1", "--evm", "--store", url, "--project", "evmproj",
              "--report", str(rep), cwd=empty, env=empty_env)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(rep.read_text())
    assert {c["name"]: c["status"] for c in report["claims"]}["evm"] == "established"
    assert "evm/calldata.bin" in report["hashes"]
    # without --evm the EVM files are not even downloaded
    res = cli(*VERIFY_ON_TRUST, "e1", "--store", url, "--project", "evmproj", "--report",
              str(rep), cwd=empty, env=empty_env)
    assert res.returncode == 0 and "evm/calldata.bin" not in json.loads(rep.read_text())["hashes"]


def test_a_tampered_verifier_or_calldata_is_refused(evm_run: Path, tmp_path: Path) -> None:
    """What a dishonest producer could ship with a consistent manifest: a verifier that is not
    the vk's, a calldata for other instances, or one whose proof bytes the EVM rejects."""
    _, m = load_manifest(evm_run, "e1")
    srs_file = srs_mod.blob_path(json.loads((evm_run / LAY.srs_pointer).read_text())["sha256"])

    def kit(into: Path) -> dict[str, Path]:
        into.mkdir()
        files = {"proof.json": LAY.proof, "settings.json": LAY.settings, "vk.key": LAY.vk,
                 "evm/Verifier.sol": LAY.evm_verifier, "evm/Verifier.bin": LAY.evm_bytecode,
                 "evm/calldata.bin": LAY.evm_calldata}
        local = {}
        for name, path in files.items():
            dest = into / name.replace("/", "_")
            shutil.copyfile(evm_run / path, dest)
            local[name] = dest
        return local

    def claim(local: dict[str, Path]) -> tuple[str, str]:
        with cleanroom.room() as room:
            c, _ = _evm_claim(room, m, local, srs_file)
        return c.status, c.basis

    status, basis = claim(kit(tmp_path / "honest"))
    assert status == "established", basis

    local = kit(tmp_path / "verifier")  # a verifier that accepts anything would differ in bytes
    src = local["evm/Verifier.sol"]
    src.write_text(src.read_text().replace("function verifyProof(", "function verifyProof(\n", 1))
    status, basis = claim(local)
    assert status == "failed" and "not ezkl's verifier for its vk" in basis, basis

    local = kit(tmp_path / "instances")  # the calldata claims another output
    data = bytearray(local["evm/calldata.bin"].read_bytes())
    data[-40] ^= 1  # inside the last instance word (the last 32 bytes are ezkl's zero word)
    local["evm/calldata.bin"].write_bytes(bytes(data))
    status, basis = claim(local)
    assert status == "failed" and "other instances" in basis, basis

    local = kit(tmp_path / "bytes")  # proof bytes changed in both proof.json and calldata
    proof = json.loads(local["proof.json"].read_text())
    proof["proof"][100] ^= 1
    local["proof.json"].write_text(json.dumps(proof))
    data = bytearray(local["evm/calldata.bin"].read_bytes())
    data[4 + 64 + 32 + 100] ^= 1
    local["evm/calldata.bin"].write_bytes(bytes(data))
    status, basis = claim(local)
    assert status == "failed" and "did not accept" in basis and "reverted" in basis, basis
    compiled = evm.compile_verifier(evm_run / LAY.evm_verifier)
    assert evm.execute(compiled.bytecode, (evm_run / LAY.evm_calldata).read_bytes()).accepted


def test_verify_evm_of_a_run_without_a_verifier_is_one_clear_error(s3_server: S3Server,
                                                                   tmp_path: Path) -> None:
    root = new_project(tmp_path, "plain")
    connect(root, s3_server, new_bucket(s3_server))
    res = cli("run", "--run-id", "p1", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((root / LAY.evm_report).read_text()) == {
        "enabled": False, "how": "set models.mlp.evm: true in params.yaml"}
    res = cli(*VERIFY, "p1", "--evm", cwd=root)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == (
        "Error: run p1 has no EVM verifier (made with `evm: false`, or chunked). Set "
        "models.mlp.evm: true in params.yaml and run again (docs/evm.md), or verify without "
        "--evm."), res.stderr
