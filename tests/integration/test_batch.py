"""Batch proving (`prove-batch`) and batch verification (`verify --batch`): real ezkl on a real
local Ray instance, the real local store, DVC and git in temporary repositories."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    VERIFY,
    S3Server,
    cli,
    clone,
    connect,
    copy_bucket,
    machine_env,
    new_bucket,
    new_project,
)
from zkml_dvc.fsutil import sha256_bytes
from zkml_dvc.layout import batch_prefix

pytestmark = pytest.mark.slow
PROJECT = "batchproj"


class Produced:
    def __init__(self, root: Path, bucket: str, inputs: Path) -> None:
        self.root, self.bucket, self.inputs = root, bucket, inputs


def _input(path: Path, values: list[float]) -> Path:
    path.write_text(json.dumps({"input_data": [values]}))
    return path


@pytest.fixture(scope="module")
def produced(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory,
             shared_cache: Path) -> Produced:
    """Run b1 of the example MLP, pushed; five input files (three distinct valid inputs, one
    with the wrong number of values, one copy of the first)."""
    from tests.conftest import producer_env

    tmp = tmp_path_factory.mktemp("batch-producer")
    mp = producer_env(tmp, shared_cache)
    try:
        root = new_project(tmp, "origin", project_id=PROJECT)
        bucket = new_bucket(s3_server)
        connect(root, s3_server, bucket)
        res = cli("run", "--run-id", "b1", cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
        inputs = tmp / "inputs"
        inputs.mkdir()
        rng = random.Random(7)
        for i in range(3):
            _input(inputs / f"in{i}.json", [round(rng.uniform(-1, 1), 4) for _ in range(4)])
        _input(inputs / "short.json", [0.1, 0.2])
        (inputs / "copy.json").write_bytes((inputs / "in0.json").read_bytes())
        return Produced(root, bucket, inputs)
    finally:
        mp.undo()


def _batch(s3: S3Server, bucket: str, batch: str) -> dict:
    c = s3.client()
    key = f"{batch_prefix(PROJECT, 'b1', batch)}/batch.json"
    return json.loads(c.get_object(Bucket=bucket, Key=key)["Body"].read())


def _keys(s3: S3Server, bucket: str, batch: str) -> set[str]:
    prefix = batch_prefix(PROJECT, "b1", batch) + "/"
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"][len(prefix):] for p in pages for o in p.get("Contents", [])}


def test_a_batch_proves_every_input_once_reports_the_bad_one_and_resumes(
        produced: Produced, s3_server: S3Server, tmp_path: Path) -> None:
    ins = produced.inputs
    files = [str(ins / n) for n in ("in0.json", "in1.json", "short.json", "copy.json")]
    res = cli("prove-batch", "b1", *files, "--batch", "t1", cwd=produced.root)
    print(res.stdout, res.stderr)
    assert res.returncode == 7, res.stdout + res.stderr  # one input failed: the rest complete
    assert "2 proved now, 0 already proved, 1 failed" in res.stdout
    assert "short.json" in res.stdout and "has 2 values but the model expects" in res.stdout
    assert "run the same command again" in res.stderr
    batch = _batch(s3_server, produced.bucket, "t1")
    proved = {e["input_name"]: e for e in batch["entries"] if e["status"] == "proved"}
    assert sorted(proved) == ["in0.json", "in1.json"]  # copy.json is in0.json: proved once
    for e in proved.values():
        assert e["proof_sha256"] and len(e["output"]) == 1 and len(e["output"][0]) >= 1
        local = produced.root / "artifacts" / "mlp" / "batches" / "b1--t1" / "proofs" / \
            f"{e['input_sha256']}.json"
        assert sha256_bytes(local.read_bytes()) == e["proof_sha256"]
    ids = sorted(e["input_sha256"] for e in proved.values())
    assert _keys(s3_server, produced.bucket, "t1") == {
        "batch.json", *(f"inputs/{i}.json" for i in ids), *(f"proofs/{i}.json" for i in ids)}
    # neither git nor DVC sees the local copy
    status = subprocess.run(["git", "status", "--porcelain"], cwd=produced.root,
                            capture_output=True, text=True, check=True).stdout
    assert "batches" not in status, status

    # again, with the bad input fixed and one more: only those two are proved
    _input(ins / "short.json", [0.1, 0.2, 0.3, 0.4])
    files.append(str(ins / "in2.json"))
    res = cli("prove-batch", "b1", *files, "--batch", "t1", cwd=produced.root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 proved now, 2 already proved, 0 failed" in res.stdout
    again = _batch(s3_server, produced.bucket, "t1")
    before = {e["input_sha256"]: e["proof_sha256"] for e in proved.values()}
    after = {e["input_sha256"]: e["proof_sha256"] for e in again["entries"]}
    assert len(after) == 4 and all(e["status"] == "proved" for e in again["entries"])
    assert all(after[k] == v for k, v in before.items())  # proved ones were not redone
    sha = res.stdout.split("batch.json sha256 ")[1].split(";")[0]
    local = produced.root / "artifacts" / "mlp" / "batches" / "b1--t1" / "batch.json"
    assert sha == sha256_bytes(local.read_bytes())

    # a second machine: a fresh clone without any key; the workers read them from the store,
    # and the verifier checks every proof from the store alone
    other = machine_env(tmp_path, s3_server)
    c = clone(produced.root, tmp_path / "clone")
    assert not (c / "artifacts" / "mlp" / "pk.key").exists()
    res = cli("prove-batch", "b1", str(ins / "in2.json"), str(ins / "in1.json"), "--batch", "t2",
              cwd=c, env=other)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pk store" in res.stderr and "pk local" not in res.stderr  # each worker fetched it once
    res = cli(*VERIFY, "b1", "--batch", "t1", "--batch-sha256", sha, cwd=c, env=other)
    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VALID (UNTRUSTED SRS): batch t1 of run b1 (mlp): 4 of 4 proofs verified" in res.stdout
    assert "batch    ESTABLISHED" in res.stdout and "proofs   ESTABLISHED" in res.stdout
    assert res.stdout.count("VALID             ") == 4
    # store-only: no clone at all, the run manifest pinned by its sha256
    report = json.loads((c / ".dvc" / "tmp" / "zkml-dvc" / "verify-b1-batch-t1.json").read_text())
    res = cli(*VERIFY, "b1", "--batch", "t1", "--store", f"s3://{produced.bucket}", "--project",
              PROJECT, "--endpoint", s3_server.endpoint, "--manifest-sha256",
              report["manifest_sha256"], cwd=tmp_path, env=other)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "batch    UNTRUSTED" in res.stdout  # no --batch-sha256: the list is the store's word


def test_tampered_batches_are_refused(produced: Produced, s3_server: S3Server,
                                      tmp_path: Path) -> None:
    files = [str(produced.inputs / n) for n in ("in0.json", "in1.json")]
    res = cli("prove-batch", "b1", *files, "--batch", "t3", cwd=produced.root)
    assert res.returncode == 0, res.stdout + res.stderr
    good = res.stdout.split("batch.json sha256 ")[1].split(";")[0]
    bucket = copy_bucket(s3_server, produced.bucket)
    c = s3_server.client()
    prefix = batch_prefix(PROJECT, "b1", "t3")
    batch = json.loads(c.get_object(Bucket=bucket, Key=f"{prefix}/batch.json")["Body"].read())
    a, b = batch["entries"]
    proof_b = c.get_object(Bucket=bucket, Key=f"{prefix}/proofs/{b['input_sha256']}.json")[
        "Body"].read()
    other = machine_env(tmp_path, s3_server)
    store = ("--store", f"s3://{bucket}", "--project", PROJECT, "--endpoint", s3_server.endpoint,
             "--trust-store")

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return cli(*VERIFY, "b1", "--batch", "t3", *store, *extra, cwd=tmp_path, env=other)

    # 1. b's proof put in a's place: it no longer hashes to what batch.json records
    c.put_object(Bucket=bucket, Key=f"{prefix}/proofs/{a['input_sha256']}.json", Body=proof_b)
    res = verify()
    assert res.returncode == 4 and "INTEGRITY FAILURE" in res.stdout, res.stdout + res.stderr
    # 2. batch.json edited to match: the proof verifies, but it is not about a's input
    a["proof_sha256"], a["proof_size"], a["output"] = sha256_bytes(proof_b), len(proof_b), b["output"]
    edited = json.dumps(batch, indent=2).encode()
    c.put_object(Bucket=bucket, Key=f"{prefix}/batch.json", Body=edited,
                 Metadata={"sha256": sha256_bytes(edited)})
    res = verify()
    assert res.returncode == 3 and "INVALID" in res.stdout, res.stdout + res.stderr
    assert "the proof is not about this input" in res.stdout
    # 3. with the batch manifest pinned, the edit itself is caught
    res = verify("--batch-sha256", good)
    assert res.returncode == 4 and "INTEGRITY FAILURE" in res.stdout, res.stdout + res.stderr
    # 4. an unknown batch, and --batch-sha256 alone, are one-line errors
    res = cli(*VERIFY, "b1", "--batch", "nope", *store, cwd=tmp_path, env=other)
    assert res.returncode == 8 and "has no batch nope" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    res = cli(*VERIFY, "b1", "--batch-sha256", good, *store, cwd=tmp_path, env=other)
    assert res.returncode == 2 and "--batch-sha256 needs --batch" in res.stderr


def test_bad_batch_arguments_are_one_line_errors(produced: Produced) -> None:
    res = cli("prove-batch", "b1", "missing.json", cwd=produced.root)
    assert res.returncode == 2 and "input file not found: missing.json" in res.stderr, res.stderr
    res = cli("prove-batch", "b1", str(produced.inputs / "in0.json"), "--batch", "../x",
              cwd=produced.root)
    assert res.returncode == 2 and "batch id '../x' is not allowed" in res.stderr, res.stderr
    res = cli("prove-batch", "nope", str(produced.inputs / "in0.json"), cwd=produced.root)
    assert res.returncode == 8 and "nope" in res.stderr, res.stderr
    assert all("Traceback" not in r for r in (res.stderr,))
