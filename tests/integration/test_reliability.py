"""Interrupted work, concurrent runs and secrets, against the real local store."""

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import VERIFY_ON_TRUST, ZKML, S3Server, cli, clone, connect, machine_env
from zkml_dvc.fsutil import sha256_file
from zkml_dvc.layout import ModelLayout
from zkml_dvc.runs import load_manifest

pytestmark = pytest.mark.slow
LAY = ModelLayout("mlp")


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([ZKML, *args], cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kill_during_prove_then_rerun_redoes_only_what_was_unfinished(project: Path):
    proc = _start(["run", "--run-id", "killed", "--no-push"], project)
    _wait_for(lambda: (project / LAY.stage_record("witness")).exists(), proc)
    time.sleep(1.0)  # prove is running now (it takes several seconds)
    _kill(proc)
    assert not (project / LAY.proof).exists(), "no proof may look complete"
    assert "killed" not in subprocess.run(["git", "tag"], cwd=project, capture_output=True,
                                          text=True).stdout
    res = cli("run", "--run-id", "after", "--no-push", cwd=project)
    assert res.returncode == 0, res.stderr
    _, m = load_manifest(project, "after")
    assert {s.stage for s in m.stages if s.ran} == {"prove", "verify", "evm", "metrics"}
    assert not list((project / LAY.proof.parent).glob("*.incomplete"))


def test_kill_during_prove_on_one_machine_and_another_picks_up_from_the_store(
        s3_server: S3Server, bucket: str, project: Path, tmp_path: Path):
    """Issue 13, item 2: each stage's outputs reach the store when the stage succeeds. Machine A
    is killed (SIGKILL) while proving; machine B, a fresh clone, fetches the keys A made (DVC's run
    cache in the store) and runs neither setup nor any stage before prove."""
    connect(project, s3_server, bucket)
    log = s3_server.guard.log
    log.reset()
    proc = _start(["run", "--run-id", "killed"], project)
    _wait_for(lambda: (project / LAY.stage_record("witness")).exists(), proc)
    witness_md5 = hashlib.md5((project / LAY.witness).read_bytes()).hexdigest()
    # the witness stage's outputs are pushed as soon as it succeeds, before prove starts
    _wait_for(lambda: any(k.endswith(witness_md5[2:]) for k in log.put_keys), proc)
    time.sleep(1.0)  # prove is running now (it takes several seconds)
    _kill(proc)
    assert not (project / LAY.proof).exists(), "killed while proving"
    assert not log.violations, log.violations
    pk_a = sha256_file(project / LAY.pk)
    b = clone(project, tmp_path / "machine-b")
    env = machine_env(tmp_path, s3_server, "b")
    log.reset()
    res = cli("run", "--run-id", "picked-up", cwd=b, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    _, m = load_manifest(b, "picked-up")
    assert {s.stage for s in m.stages if s.ran} == {"prove", "verify", "evm", "metrics"}, res.stderr
    fetched = next(ln for ln in res.stderr.splitlines() if ln.startswith("fetched from the store"))
    assert "setup@mlp" in fetched and "witness@mlp" in fetched
    assert sha256_file(b / LAY.pk) == pk_a == m.artifact(LAY.pk).sha256
    assert m.artifact(LAY.pk).object_key in log.get_keys
    assert not log.violations, log.violations


def test_kill_during_push_mid_multipart_then_push_completes(
        s3_server: S3Server, bucket: str, project: Path, tmp_path: Path):
    connect(project, s3_server, bucket)
    assert cli("run", "--run-id", "r1", "--no-push", cwd=project).returncode == 0
    _, m = load_manifest(project, "r1")
    pk_key = m.artifact(LAY.pk).object_key
    log = s3_server.guard.log
    log.reset()
    proc = _start(["push", "r1"], project)
    _wait_for(lambda: log.operations["UploadPart"] >= 1, proc)
    _kill(proc)
    c = s3_server.client()
    with pytest.raises(c.exceptions.ClientError):
        c.head_object(Bucket=bucket, Key=pk_key)  # never a partial object under the key
    with pytest.raises(c.exceptions.ClientError):
        c.head_object(Bucket=bucket, Key="projects/testproj/runs/r1/manifest.json")
    log.reset()
    res = cli("push", "r1", cwd=project)
    assert res.returncode == 0, res.stderr
    assert c.head_object(Bucket=bucket, Key=pk_key)["ContentLength"] == m.artifact(LAY.pk).size
    # A damaged DVC object (DVC itself only checks that the key exists) is repaired by the next push.
    wkey = m.artifact(LAY.witness).object_key
    s3_server.client(direct=True).put_object(Bucket=bucket, Key=wkey, Body=b"{")
    again = cli("push", "r1", cwd=project)
    assert again.returncode == 0, again.stderr
    assert f"repaired {LAY.witness}" in again.stdout
    assert c.head_object(Bucket=bucket, Key=wkey)["ContentLength"] == m.artifact(LAY.witness).size
    home = tmp_path / "verifier"
    home.mkdir()
    v = cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{bucket}", "--project", "testproj", cwd=home,
            env={"HOME": str(home), **s3_server.env()})
    assert v.returncode == 0, v.stderr


def test_two_clones_push_runs_at_once(s3_server: S3Server, bucket: str, project: Path,
                                      tmp_path: Path):
    import json

    connect(project, s3_server, bucket)
    a = clone(project, tmp_path / "a")
    b = clone(project, tmp_path / "b")
    (b / "models/mlp/input.json").write_text(json.dumps({"input_data": [[0.3, 0.1, -0.2, 0.5]]}))
    env = s3_server.env()
    pa = _start(["run", "--run-id", "from-a"], a, env)
    pb = _start(["run", "--run-id", "from-b"], b, env)
    for p in (pa, pb):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    empty = tmp_path / "v"
    empty.mkdir()
    for run_id in ("from-a", "from-b"):
        v = cli(*VERIFY_ON_TRUST, run_id, "--store", f"s3://{bucket}", "--project", "testproj",
                cwd=empty, env={"HOME": str(empty), **env})
        assert v.returncode == 0, v.stderr


def test_secrets_never_leak(s3_server: S3Server, bucket: str, project: Path, tmp_path: Path):
    """After a full run + push + clean-room verify, the secret appears nowhere but the 0600 file."""
    connect(project, s3_server, bucket)
    secret = s3_server.secret_access_key
    outputs = []
    for args in (["run", "--run-id", "s1"], ["show", "s1"], ["remote", "show"], ["push", "s1"],
                 ["verify", "s1"], ["-v", "verify", "nope"]):
        res = cli(*args, cwd=project)
        outputs.append(res.stdout + res.stderr)
    assert all(secret not in o for o in outputs)
    # wrong credentials: the error names the problem, not the secret
    bad = cli(*VERIFY_ON_TRUST, "s1", "--store", f"s3://{bucket}", "--project", "testproj", cwd=tmp_path,
              env={**s3_server.env(), "AWS_SECRET_ACCESS_KEY": secret[::-1]})
    assert bad.returncode == 5 and secret[::-1] not in bad.stderr + bad.stdout
    for rev in subprocess.run(["git", "rev-list", "--all"], cwd=project, capture_output=True,
                              text=True).stdout.split():
        hit = subprocess.run(["git", "grep", "-I", "-l", secret, rev], cwd=project,
                             capture_output=True, text=True)
        assert hit.stdout == "", f"secret in tracked files at {rev}: {hit.stdout}"
    local = project / ".dvc" / "config.local"
    assert secret in local.read_text() and (local.stat().st_mode & 0o777) == 0o600
    c = s3_server.client()
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if obj["Size"] < 5_000_000:
                body = c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                assert secret.encode() not in body, obj["Key"]
    for p in (project / ".dvc" / "tmp").rglob("*"):
        if p.is_file() and p.name != "config.local" and p.stat().st_size < 5_000_000:
            assert secret.encode() not in p.read_bytes(), p
