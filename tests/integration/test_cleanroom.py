"""The four scenarios the product is judged on, on the real local store with real git clones and a
new HOME per "machine": cold start, clean-room verification, resume mid-way, integrity."""

import json
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import (
    VERIFY,
    VERIFY_ON_TRUST,
    S3Server,
    cli,
    clone,
    connect,
    copy_bucket,
    machine_env,
    new_bucket,
    new_project,
    producer_env,
)
from tests.faultproxy import FaultProxy
from zkml_dvc.fsutil import sha256_file
from zkml_dvc.layout import ModelLayout, git_tracked, run_index_prefix
from zkml_dvc.runs import load_manifest

pytestmark = pytest.mark.slow
LAY = ModelLayout("mlp")


@dataclass
class Produced:
    root: Path
    bucket: str
    run_id: str


@pytest.fixture(scope="module")
def produced(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory,
             shared_cache: Path) -> Produced:
    """One run pushed to its own bucket by a 'producer machine' (module-wide: proving is slow).
    Tests never modify this bucket: tampering tests work on a copy."""
    tmp = tmp_path_factory.mktemp("producer")
    mp = producer_env(tmp, shared_cache)
    try:
        bucket = new_bucket(s3_server)
        root = new_project(tmp, "origin")
        connect(root, s3_server, bucket)
        s3_server.guard.log.reset()
        res = cli("run", "--run-id", "r1", cwd=root)
        assert res.returncode == 0, res.stderr
        assert not s3_server.guard.log.violations, s3_server.guard.log.violations
        return Produced(root, bucket, "r1")
    finally:
        mp.undo()




# ---- cold start --------------------------------------------------------------------------------
def test_cold_start_every_artifact_is_in_the_store(produced: Produced, s3_server: S3Server):
    _, m = load_manifest(produced.root, produced.run_id)
    c = s3_server.client()
    keys = {o["Key"]: o for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=produced.bucket) for o in page.get("Contents", [])}
    for a in m.artifacts:
        if git_tracked(Path(a.path)):  # the metrics and plot data: committed, not DVC objects
            assert a.md5 and a.object_key is None, a.path
            continue
        if a.md5:
            assert a.object_key in keys, a.path
            assert keys[a.object_key]["Size"] == a.size
    prefix = run_index_prefix("testproj", "r1")
    for name in ("manifest.json", "dvc.lock", "params.yaml", "dvc.yaml", "proof.json",
                 "settings.json", "vk.key"):
        head = c.head_object(Bucket=produced.bucket, Key=f"{prefix}/{name}")
        assert len(head["Metadata"]["sha256"]) == 64
    assert f"srs/{m.srs.sha256}" in keys
    pk_key = m.artifact(LAY.pk).object_key
    assert sum(1 for k in keys if keys[k]["Size"] == m.artifact(LAY.pk).size) == 1, \
        "the proving key is stored exactly once"
    assert pk_key in keys


def test_pushing_again_uploads_nothing(produced: Produced, s3_server: S3Server):
    s3_server.guard.log.reset()
    res = cli("push", "r1", cwd=produced.root)
    assert res.returncode == 0, res.stderr
    assert "0 DVC objects, 0 index files (0 bytes)" in res.stdout
    assert s3_server.guard.log.uploaded_bytes == 0


def test_push_sends_each_dvc_object_once_by_its_own_client(produced: Produced,
                                                           s3_server: S3Server, tmp_path: Path,
                                                           shared_cache: Path):
    """`zkml-dvc push` into an empty bucket: every DVC object of the workspace (a directory
    output's listing and its files too) goes up once, by zkml-dvc's clients (the pk as a boto3
    multipart upload, the others by obstore), none through DVC's s3fs; the count printed is DVC's
    (files, not listings);
    plain `dvc pull` then restores the run from it (test_plain_dvc_works_unwrapped...)."""
    from tests.conftest import copy_tree

    env = {**machine_env(tmp_path, s3_server), "ZKML_DVC_CACHE_DIR": str(shared_cache)}  # its SRS
    repo = copy_tree(produced.root, tmp_path / "copy")
    bucket = new_bucket(s3_server)
    cli("remote", "set", f"s3://{bucket}", "--endpoint", s3_server.endpoint, cwd=repo, env=env,
        check=True)
    s3_server.guard.log.reset()
    res = cli("push", "r1", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    log = s3_server.guard.log
    sent = Counter(k.split("/files/md5/")[1].replace("/", "") for k in log.put_keys
                   if "/files/md5/" in k)
    by = {c for k, c in zip(log.put_keys, log.put_clients, strict=True) if "/files/md5/" in k}
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    objects = {out["md5"] for body in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
               .values() for out in body.get("outs", []) if not git_tracked(Path(out["path"]))}
    dirs = [m for m in objects if m.endswith(".dir")]
    objects |= {e["md5"] for m in dirs for e in json.loads((cache / m[:2] / m[2:]).read_text())}
    assert dirs and sent == dict.fromkeys(objects, 1), sent
    assert by == {"zkml-dvc"}, by
    assert f"pushed run r1: {len(objects) - len(dirs)} DVC objects" in res.stdout, res.stdout


# ---- clean-room verification -------------------------------------------------------------------
def test_fresh_clone_verifies_from_store_without_pk(produced: Produced, s3_server: S3Server,
                                                    tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    _, m = load_manifest(produced.root, "r1")
    s3_server.guard.log.reset()
    res = cli(*VERIFY, "r1", "--report", str(tmp_path / "report.json"), cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("VALID (UNTRUSTED SRS): run r1")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "valid" and report["mode"] == "clone"
    assert {c["name"] for c in report["checks"]} >= {"manifest", "sha256 proof.json",
                                                     "sha256 vk.key", "ezkl verify"}
    got = s3_server.guard.log.get_keys
    assert m.artifact(LAY.pk).object_key not in got and not any("pk" in k for k in got)
    _, produced_m = load_manifest(produced.root, "r1")
    claimed_input = produced_m.params["model"]["input"]  # the kit carries the claimed input too
    kit = sum(produced_m.artifact(p).size for p in (LAY.proof, LAY.settings, LAY.vk, claimed_input))
    assert report["bytes_downloaded"] == kit + produced_m.srs.size
    assert report["bytes_downloaded"] < 0.05 * report["run_bytes_total"]
    assert not (Path(env["HOME"]) / ".ezkl").exists()


def test_store_only_verification_needs_no_clone(produced: Produced, s3_server: S3Server,
                                                tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{produced.bucket}", "--project", "testproj",
              cwd=empty, env=env)
    assert res.returncode == 0, res.stderr
    assert "VALID" in res.stdout
    report = json.loads((empty / "verify-r1.json").read_text())
    assert report["mode"] == "store-only"
    listed = cli("runs", "--store", f"s3://{produced.bucket}", "--project", "testproj", "--json",
                 cwd=empty, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "r1" in json.loads(listed.stdout)


def test_pull_for_verify_restores_exactly_the_kit(produced: Produced, s3_server: S3Server,
                                                  tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    res = cli("pull", "r1", "--for", "verify", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    _, m = load_manifest(repo, "r1")
    for p in (LAY.proof, LAY.settings, LAY.vk):
        assert sha256_file(repo / p) == m.artifact(p).sha256
    for p in (LAY.pk, LAY.witness, LAY.compiled):
        assert not (repo / p).exists()


def test_pull_for_prove_fetches_large_objects_as_parallel_ranges(produced: Produced,
                                                                  s3_server: S3Server,
                                                                  tmp_path: Path):
    """An object from the ranged threshold up (here 1 MiB: the pk) comes into DVC's cache as
    parallel ranged GETs, checked against its DVC name, read-only as DVC keeps its objects; DVC
    then only checks it out (it fetches nothing of it again); every file has its sha256."""
    from zkml_dvc.ranged import ranges

    env = {**machine_env(tmp_path, s3_server), "ZKML_DVC_RANGED_THRESHOLD": str(1024 * 1024)}
    repo = clone(produced.root, tmp_path / "clone")
    _, m = load_manifest(repo, "r1")
    pk = m.artifact(LAY.pk)
    assert pk.md5 and pk.object_key and pk.size > 1024 * 1024
    s3_server.guard.log.reset()
    res = cli("pull", "r1", "--for", "prove", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    assert s3_server.guard.log.get_keys.count(pk.object_key) == len(ranges(pk.size))
    for p in (LAY.pk, LAY.vk, LAY.settings, LAY.compiled, LAY.witness):
        assert sha256_file(repo / p) == m.artifact(p).sha256
    cached = repo / ".dvc" / "cache" / "files" / "md5" / pk.md5[:2] / pk.md5[2:]
    assert cached.stat().st_mode & 0o777 == 0o444
    assert not list(cached.parent.glob("*.incomplete"))


def test_pull_fetches_every_object_once_and_leaves_dvc_only_the_checkout(produced: Produced,
                                                                         s3_server: S3Server,
                                                                         tmp_path: Path):
    """`pull --for all`: every DVC object of the run (a directory output's listing and its files
    too) is fetched by zkml-dvc's client, once, into DVC's cache; DVC's own fetch (which lists and
    probes the remote for each object) does not run, only its checkout."""
    from zkml_dvc.ranged import ranges

    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    lock_md5s = {out["md5"] for body in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
                 .values() for out in body.get("outs", [])}
    s3_server.guard.log.reset()
    res = cli("pull", "r1", "--for", "all", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    dirs = [m for m in lock_md5s if m.endswith(".dir")]
    listed = {e["md5"] for m in dirs for e in json.loads((cache / m[:2] / m[2:]).read_text())}
    assert dirs and listed  # the example's evm/ output: the directory case is exercised
    objects = {m for m in lock_md5s | listed if (cache / m[:2] / m[2:]).exists()}
    gets = Counter(k.split("/files/md5/")[1].replace("/", "")
                   for k in s3_server.guard.log.get_keys if "/files/md5/" in k)
    _, m = load_manifest(repo, "r1")
    pk = m.artifact(LAY.pk)  # above the ranged threshold: one GET per range
    assert gets == {o: len(ranges(pk.size)) if o == pk.md5 else 1 for o in objects}, gets
    ops = s3_server.guard.log.operations
    assert ops["ListObjectsV2"] + ops["ListObjects"] == 0, ops
    for a in m.artifacts:
        if a.md5 and (repo / a.path).exists():
            assert sha256_file(repo / a.path) == a.sha256


@pytest.mark.parametrize("tampered", ["settings", "pk"])
def test_pull_for_prove_refuses_an_object_tampered_in_the_store(tampered: str, produced: Produced,
                                                                s3_server: S3Server,
                                                                tmp_path: Path):
    """A DVC object replaced in the store: settings.json's (small: fetched by obstore) or the pk's
    by bytes of the same size (large: parallel ranged GETs, here from 1 MiB). zkml-dvc's fetch
    (checked against the manifest's sha256) keeps nothing; `dvc pull` then takes the object
    unchecked, and the sha256 check after checkout refuses it: one line naming the file, exit 4,
    nothing in the workspace and no poisoned or partial object left in DVC's cache."""
    env = {**machine_env(tmp_path, s3_server), "ZKML_DVC_RANGED_THRESHOLD": str(1024 * 1024)}
    bucket = copy_bucket(s3_server, produced.bucket)
    c = s3_server.client()
    repo = clone(produced.root, tmp_path / "clone")
    _, m = load_manifest(repo, "r1")
    path = LAY.pk if tampered == "pk" else LAY.settings
    art = m.artifact(path)
    assert art.object_key and art.md5
    head = c.head_object(Bucket=bucket, Key=art.object_key)
    body = os.urandom(art.size) if tampered == "pk" else b'{"run_args": {}}'
    c.put_object(Bucket=bucket, Key=art.object_key, Body=body, Metadata=head["Metadata"])
    cli("remote", "set", f"s3://{bucket}", "--endpoint", s3_server.endpoint, cwd=repo, env=env,
        check=True)
    res = cli("pull", "r1", "--for", "prove", cwd=repo, env=env)
    assert res.returncode == 4, (res.returncode, res.stderr)
    err = res.stderr.strip().splitlines()[-1]
    assert str(path) in err and "Traceback" not in res.stderr, res.stderr
    assert not (repo / path).exists()
    cached = repo / ".dvc" / "cache" / "files" / "md5" / art.md5[:2] / art.md5[2:]
    assert not cached.exists()
    assert not list(cached.parent.glob("*.incomplete"))


def test_pull_for_prove_checks_what_was_already_in_dvcs_cache(produced: Produced,
                                                              s3_server: S3Server,
                                                              tmp_path: Path):
    """Only files copied from objects this pull downloaded and checked against the manifest go
    unread after the checkout: a pk object already in the clone's DVC cache (say, from a plain
    `dvc pull`, which does not check it) with other bytes is checked after it is placed, refused
    (exit 4, the file named), and dropped from the cache."""
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    _, m = load_manifest(repo, "r1")
    art = m.artifact(LAY.pk)
    assert art.md5
    cached = repo / ".dvc" / "cache" / "files" / "md5" / art.md5[:2] / art.md5[2:]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(os.urandom(art.size))
    res = cli("pull", "r1", "--for", "prove", cwd=repo, env=env)
    assert res.returncode == 4, (res.returncode, res.stderr)
    assert str(LAY.pk) in res.stderr.strip().splitlines()[-1] and "Traceback" not in res.stderr
    assert not (repo / LAY.pk).exists() and not cached.exists()
    res = cli("pull", "r1", "--for", "prove", cwd=repo, env=env)  # fetched and checked now
    assert res.returncode == 0, res.stderr
    assert sha256_file(repo / LAY.pk) == art.sha256


def test_pull_never_writes_through_a_symlink_out_of_the_workspace(produced: Produced,
                                                                 s3_server: S3Server,
                                                                 tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil

    shutil.rmtree(repo / LAY.proof.parent)  # (it holds DVC's .gitignore)
    (repo / LAY.proof.parent).symlink_to(outside, target_is_directory=True)
    res = cli("pull", "r1", "--for", "verify", cwd=repo, env=env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "resolves outside" in res.stderr and "Traceback" not in res.stderr
    assert list(outside.iterdir()) == []


# ---- resume ------------------------------------------------------------------------------------
def test_resume_from_witness_with_new_input_skips_keygen(produced: Produced, s3_server: S3Server,
                                                         tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    assert not (repo / LAY.pk).exists()
    new_input = tmp_path / "new.json"
    new_input.write_text(json.dumps({"input_data": [[0.5, -0.25, 0.125, 0.9]]}))
    res = cli("resume", "r1", "--from", "witness", "--input", str(new_input), "--run-id", "r2",
              cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    _, parent = load_manifest(repo, "r1")
    _, child = load_manifest(repo, "r2")
    assert child.parent_run == "r1"
    ran = {s.stage for s in child.stages if s.ran}
    assert ran == {"mock", "witness", "prove", "verify", "evm", "metrics"}, ran
    assert child.artifact(LAY.pk).sha256 == parent.artifact(LAY.pk).sha256
    assert child.artifact(LAY.witness).sha256 != parent.artifact(LAY.witness).sha256
    # the new run was pushed and verifies in yet another clean room
    other = machine_env(tmp_path, s3_server, "verifier")
    empty = tmp_path / "empty"
    empty.mkdir()
    v = cli(*VERIFY_ON_TRUST, "r2", "--store", f"s3://{produced.bucket}", "--project", "testproj",
            cwd=empty, env=other)
    assert v.returncode == 0, v.stderr


# ---- integrity ---------------------------------------------------------------------------------
def test_integrity(produced: Produced, s3_server: S3Server, tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    prefix = run_index_prefix("testproj", "r1")
    c = s3_server.client()

    def fresh_clone_on(bucket: str, name: str) -> Path:
        repo = clone(produced.root, tmp_path / name)
        subprocess.run([
            "zkml-dvc", "remote", "set", f"s3://{bucket}", "--endpoint", s3_server.endpoint],
            cwd=repo, check=True, env={**env, "PATH": __import__("os").environ["PATH"]})
        return repo

    def check(res, code, needle):
        assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
        assert needle in res.stderr and "Traceback" not in res.stderr

    # 1. an object corrupted in the store (bytes changed, stored hash left as it was)
    b1 = copy_bucket(s3_server, produced.bucket)
    head = c.head_object(Bucket=b1, Key=f"{prefix}/vk.key")
    c.put_object(Bucket=b1, Key=f"{prefix}/vk.key", Body=b"\0" * head["ContentLength"],
                 Metadata=head["Metadata"])
    corrupted = cli(*VERIFY, "r1", cwd=fresh_clone_on(b1, "c1"), env=env)
    check(corrupted, 4, f"integrity check failed for {prefix}/vk.key")
    assert corrupted.stdout.startswith("INTEGRITY FAILURE: run r1")

    # 2. a tampered proof whose stored hash was updated to match: the manifest in git catches it
    b2 = copy_bucket(s3_server, produced.bucket)
    proof = json.loads(c.get_object(Bucket=b2, Key=f"{prefix}/proof.json")["Body"].read())
    proof["instances"][0][0] = proof["instances"][0][1]
    body = json.dumps(proof).encode()
    from zkml_dvc.fsutil import sha256_bytes

    c.put_object(Bucket=b2, Key=f"{prefix}/proof.json", Body=body,
                 Metadata={"sha256": sha256_bytes(body)})
    repo2 = fresh_clone_on(b2, "c2")
    check(cli(*VERIFY, "r1", cwd=repo2, env=env), 4, f"integrity check failed for {prefix}/proof.json")
    report = json.loads((repo2 / ".dvc/tmp/zkml-dvc/verify-r1.json").read_text())
    assert report["verdict"] == "integrity-failure"

    # 3. the same tampering, with the store's manifest edited to match: in a clone the committed
    #    manifest differs from the store's; store-only with a pinned hash refuses it too; without
    #    a pin, ezkl itself rejects the proof (exit 3)
    man = json.loads(c.get_object(Bucket=b2, Key=f"{prefix}/manifest.json")["Body"].read())
    original_sha = c.head_object(Bucket=produced.bucket, Key=f"{prefix}/manifest.json")["Metadata"]["sha256"]
    for a in man["artifacts"]:
        if a["path"] == str(LAY.proof):
            a["sha256"], a["size"] = sha256_bytes(body), len(body)
    mbody = (json.dumps(man, indent=2) + "\n").encode()
    c.put_object(Bucket=b2, Key=f"{prefix}/manifest.json", Body=mbody,
                 Metadata={"sha256": sha256_bytes(mbody)})
    check(cli(*VERIFY, "r1", cwd=repo2, env=env), 4, f"{prefix}/manifest.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    check(cli(*VERIFY, "r1", "--store", f"s3://{b2}", "--project", "testproj",
              "--manifest-sha256", original_sha, cwd=empty, env=env), 4, "manifest.json")
    invalid = cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{b2}", "--project", "testproj", cwd=empty,
                  env=env)
    check(invalid, 3, "the proof does not verify")
    assert invalid.stdout.startswith("INVALID: run r1")

    # 4. a tampered vk (hash updated) in a clone
    b3 = copy_bucket(s3_server, produced.bucket)
    vk = bytearray(c.get_object(Bucket=b3, Key=f"{prefix}/vk.key")["Body"].read())
    vk[100] ^= 0xFF
    c.put_object(Bucket=b3, Key=f"{prefix}/vk.key", Body=bytes(vk),
                 Metadata={"sha256": sha256_bytes(bytes(vk))})
    check(cli(*VERIFY, "r1", cwd=fresh_clone_on(b3, "c3"), env=env), 4, "vk.key")

    # nothing in the producer's bucket changed
    assert c.head_object(Bucket=produced.bucket, Key=f"{prefix}/manifest.json")["Metadata"][
        "sha256"] == original_sha


def test_unknown_runs(produced: Produced, s3_server: S3Server, tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    res = cli(*VERIFY, "nope", cwd=repo, env=env)
    assert res.returncode == 8 and "no run 'nope'" in res.stderr
    empty = tmp_path / "e"
    empty.mkdir()
    res = cli(*VERIFY_ON_TRUST, "nope", "--store", f"s3://{produced.bucket}", "--project", "testproj",
              cwd=empty, env=env)
    assert res.returncode == 8 and "not in the store" in res.stderr
    bare = new_project(tmp_path, "bare")
    res = cli("push", cwd=bare, env=env)
    assert res.returncode == 8 and "no runs yet" in res.stderr


def test_version_mismatch_is_refused(produced: Produced, s3_server: S3Server, tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    b = copy_bucket(s3_server, produced.bucket)
    prefix = run_index_prefix("testproj", "r1")
    c = s3_server.client()
    man = json.loads(c.get_object(Bucket=b, Key=f"{prefix}/manifest.json")["Body"].read())
    man["tools"]["ezkl"] = "22.0.1"
    from zkml_dvc.fsutil import sha256_bytes

    body = json.dumps(man).encode()
    c.put_object(Bucket=b, Key=f"{prefix}/manifest.json", Body=body,
                 Metadata={"sha256": sha256_bytes(body)})
    empty = tmp_path / "e"
    empty.mkdir()
    res = cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{b}", "--project", "testproj", cwd=empty, env=env)
    assert res.returncode == 6, res.stderr
    assert "made with ezkl 22.0.1 but ezkl 23.0.5 is installed" in res.stderr
    assert "pip install ezkl==22.0.1" in res.stderr


def test_audit_binds_the_vk_to_the_model(produced: Produced, s3_server: S3Server,
                                         tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    res = cli("audit", "r1", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    assert "MATCH vk" in res.stdout and "MATCH settings" in res.stdout


def _stage_runs_since(root: Path, t0: float) -> set[str]:
    """The stages whose record was written by a command started after ``t0`` (ran here)."""
    from datetime import datetime

    ran = set()
    for rec in (root / LAY.base / "reports" / "stages").glob("*.json"):
        started = json.loads(rec.read_text())["started"]
        if datetime.fromisoformat(started).timestamp() >= t0:
            ran.add(rec.stem)
    return ran


def test_fresh_clone_with_unchanged_params_fetches_instead_of_recomputing(
        produced: Produced, s3_server: S3Server, tmp_path: Path):
    """Issue 13, item 1: a fresh clone on another machine runs zero ezkl stages: every output the
    store holds for dvc.lock is fetched, and the run that already records this state is named."""
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    assert not (repo / LAY.pk).exists()
    log = s3_server.guard.log
    log.reset()
    t0 = time.time()
    res = cli("run", cwd=repo, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "nothing changed: run r1 (tag runs/testproj/r1) already records this state" in res.stdout
    fetched = next(ln for ln in res.stderr.splitlines() if ln.startswith("fetched from the store"))
    for stage in ("settings", "calibrate", "compile", "mock", "srs", "setup", "witness", "prove",
                  "verify"):
        assert f"{stage}@mlp" in fetched, fetched
    assert _stage_runs_since(repo, t0) == set(), "no ezkl stage may run"
    _, m = load_manifest(repo, "r1")
    for path in (LAY.pk, LAY.vk, LAY.proof, LAY.compiled):
        assert sha256_file(repo / path) == m.artifact(path).sha256, path
    pk = m.artifact(LAY.pk)
    assert pk.object_key in log.get_keys and log.downloaded_bytes >= pk.size
    assert log.uploaded_bytes == 0, "nothing new to upload"
    assert not log.violations, log.violations
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True).stdout.split()
    assert tags == ["runs/testproj/r1"]
    print(f"\nsecond machine, unchanged params: 0 stages ran, {log.downloaded_bytes} bytes fetched")


def test_second_machine_with_a_new_input_runs_only_mock_witness_prove_verify(
        produced: Produced, s3_server: S3Server, tmp_path: Path):
    """A colleague clones and proves a new input: setup never runs (the keys, the circuit and the
    SRS come from the store, gen_srs would make a different SRS), and the pk is not uploaded."""
    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    (repo / "models/mlp/input.json").write_text(json.dumps({"input_data": [[0.1, 0.2, 0.3, 0.4]]}))
    log = s3_server.guard.log
    log.reset()
    res = cli("run", "--run-id", "colleague", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    _, mine = load_manifest(repo, "colleague")
    _, theirs = load_manifest(repo, "r1")
    # mock checks the new input (seconds); its report is unchanged, so setup does not run
    ran = {s.stage for s in mine.stages if s.ran}
    assert ran == {"mock", "witness", "prove", "verify", "evm", "metrics"}, ran
    assert "setup@mlp" in res.stderr and "fetched from the store" in res.stderr
    assert mine.srs.sha256 == theirs.srs.sha256
    assert mine.artifact(LAY.vk).sha256 == theirs.artifact(LAY.vk).sha256
    assert mine.artifact(LAY.pk).sha256 == theirs.artifact(LAY.pk).sha256
    put = log.put_keys
    assert mine.artifact(LAY.pk).object_key not in put
    assert not any(k.startswith("srs/") for k in put)
    assert log.uploaded_bytes < 1_000_000, "only small files were uploaded"
    assert not log.violations, log.violations
    print(f"\nsecond machine, new input: 3 stages ran, {log.downloaded_bytes} bytes fetched")


def test_plain_dvc_works_unwrapped_in_a_fresh_clone(produced: Produced, s3_server: S3Server,
                                                    tmp_path: Path):
    """Issue 13, item 4: with only the store's variables exported (what `zkml-dvc store env`
    prints), plain `dvc pull` restores the run byte for byte, `dvc repro --pull` runs nothing, and
    what plain `dvc push` sent is what `zkml-dvc push` then finds in place."""
    from zkml_dvc.env import o3_safe_client_env

    env = {**os.environ, **machine_env(tmp_path, s3_server), **o3_safe_client_env()}
    repo = clone(produced.root, tmp_path / "clone")

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True)

    pulled = dvc("pull")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    _, m = load_manifest(repo, "r1")
    restored = [a for a in m.artifacts if a.md5]
    assert len(restored) >= 10
    for a in restored:
        assert sha256_file(repo / a.path) == a.sha256, a.path
    again = dvc("repro", "--pull")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Running stage" not in again.stdout + again.stderr
    # a new run made here without pushing; plain `dvc push` sends its objects
    (repo / "models/mlp/input.json").write_text(json.dumps({"input_data": [[0.3, 0.1, 0.4, 0.1]]}))
    made = cli("run", "--run-id", "plain", "--no-push", cwd=repo, env=machine_env(
        tmp_path, s3_server, "same-machine"))
    assert made.returncode == 0, made.stdout + made.stderr
    pushed = dvc("push")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    res = cli("push", "plain", cwd=repo, env=machine_env(tmp_path, s3_server, "again"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pushed run plain: 0 DVC objects" in res.stdout, res.stdout


def test_python_api_example_in_docs_runs_as_written(produced: Produced, s3_server: S3Server,
                                                    tmp_path: Path):
    """docs/python-api.md's example, against this run and store, with only the names swapped."""
    import os
    import re

    from tests.conftest import REPO

    doc = (REPO / "docs" / "python-api.md").read_text()
    code = re.findall(r"```python\n(.*?)```", doc, re.S)[0]
    code = code.replace('"RUN_ID"', '"r1"').replace('"s3://zkml-dvc"', f'"s3://{produced.bucket}"')
    env = {**os.environ, **machine_env(tmp_path, s3_server)}
    env["ZKML_DVC_CACHE_DIR"] = os.environ["ZKML_DVC_CACHE_DIR"]  # the producer's machine
    s3_server.guard.log.reset()
    import sys

    res = subprocess.run([sys.executable, "-c", code], cwd=produced.root, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "verified run r1 at logrows 15" in res.stdout
    _, m = load_manifest(produced.root, "r1")
    put = s3_server.guard.log.put_keys
    assert not any(k.endswith(m.artifact(LAY.pk).sha256) for k in put), "pk not uploaded again"
    assert all(not k.startswith("srs/") for k in put)
    got = s3_server.guard.log.get_keys
    assert m.artifact(LAY.pk).object_key not in got, "the pk was not downloaded"


def test_more_bad_inputs(produced: Produced, s3_server: S3Server, tmp_path: Path):
    env = machine_env(tmp_path, s3_server)
    c = s3_server.client()

    def check(res, code, needle):
        assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
        assert needle in res.stderr and "Traceback" not in res.stderr

    repo = clone(produced.root, tmp_path / "clone")
    check(cli("stage", "nope", "--model", "mlp", cwd=repo, env=env), 8, "unknown stage 'nope'")
    check(cli("resume", "r1", "--from", "nope", cwd=repo, env=env), 8, "unknown stage 'nope'")
    check(cli("remote", "set", "s3://Bad_Bucket/x", cwd=repo, env=env), 2,
          "bucket name 'Bad_Bucket' is not accepted by O3")
    # a workspace at another commit: pull refuses instead of mixing runs
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "later"], cwd=repo, check=True)
    check(cli("pull", "r1", cwd=repo, env=env), 6, "git checkout runs/testproj/r1")

    # an SRS whose bytes do not match its hash
    b = copy_bucket(s3_server, produced.bucket)
    _, m = load_manifest(produced.root, "r1")
    key = f"srs/{m.srs.sha256}"
    head = c.head_object(Bucket=b, Key=key)
    c.put_object(Bucket=b, Key=key, Body=b"\1" * head["ContentLength"], Metadata=head["Metadata"])
    empty = tmp_path / "e"
    empty.mkdir()
    check(cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{b}", "--project", "testproj", cwd=empty, env=env),
          4, f"integrity check failed for {key}")

    # a manifest copied in from another project, and one that is not JSON
    src = f"{run_index_prefix('testproj', 'r1')}/manifest.json"
    c.copy_object(Bucket=b, Key="projects/other/runs/r1/manifest.json",
                  CopySource={"Bucket": b, "Key": src})
    check(cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{b}", "--project", "other", cwd=empty, env=env),
          4, "names run r1 of project testproj")
    from zkml_dvc.fsutil import sha256_bytes

    junk = b"{not json"
    c.put_object(Bucket=b, Key=src, Body=junk, Metadata={"sha256": sha256_bytes(junk)})
    check(cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{b}", "--project", "testproj", cwd=empty, env=env),
          2, "is invalid")


def test_store_paths_under_injected_faults(produced: Produced, s3_server: S3Server,
                                           fault_proxy: FaultProxy, tmp_path: Path, monkeypatch):
    """Every 3rd request meets a fault (503 SlowDown, 500, reset, half a body, latency, an upload
    stored but its answer lost): the store
    client, the artifact API, `pull` and store-only `verify` finish after retries, and every file
    they hand back has the right sha256 (no corrupted artifact is ever accepted)."""
    from tests.conftest import make_store
    from tests.integration.test_artifacts import Bundle
    from zkml_dvc.artifacts import pull as art_pull
    from zkml_dvc.artifacts import push as art_push

    env = {**machine_env(tmp_path, s3_server), "ZKML_DVC_MAX_ATTEMPTS": "8",
           "AWS_ENDPOINT_URL_S3": fault_proxy.endpoint}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ZKML_DVC_MULTIPART_THRESHOLD", str(6 * 1024 * 1024))
    monkeypatch.setenv("ZKML_DVC_MULTIPART_CHUNKSIZE", str(5 * 1024 * 1024))
    before = fault_proxy.faults()
    fault_proxy.set(every=3)
    completed = mismatches = 0
    try:
        st = make_store(s3_server, produced.bucket, "faults", endpoint=fault_proxy.endpoint)
        for i, size in enumerate((1_000, 300_000, 12 * 1024 * 1024)):
            src = tmp_path / f"f{i}.bin"
            src.write_bytes(os.urandom(size))
            st.put_file(src, f"f{i}.bin")
            out = st.get_file(f"f{i}.bin", tmp_path / "dl" / f"f{i}.bin", sha256_file(src),
                              use_cache=False)
            mismatches += sha256_file(out) != sha256_file(src)
            completed += 2
        src_dir = tmp_path / "bundle"
        (src_dir / "a").mkdir(parents=True)
        (src_dir / "main.bin").write_bytes(os.urandom(200_000))
        (src_dir / "a" / "p.json").write_text("{}")
        bundle = Bundle(main=src_dir / "main.bin", shards=[src_dir / "a" / "p.json"], note="n",
                        epochs=1)
        art_push(bundle, f"s3://{produced.bucket}/faults/bundle")
        got = art_pull(Bundle, f"s3://{produced.bucket}/faults/bundle", dest=tmp_path / "art")
        mismatches += sha256_file(got.main) != sha256_file(bundle.main)
        completed += 2
        repo = clone(produced.root, tmp_path / "clone")
        res = cli("pull", "r1", "--for", "verify", cwd=repo, env=env)
        assert res.returncode == 0, res.stderr
        _, m = load_manifest(repo, "r1")
        for p in (LAY.proof, LAY.settings, LAY.vk):
            mismatches += sha256_file(repo / p) != m.artifact(p).sha256
        completed += 1
        empty = tmp_path / "empty"
        empty.mkdir()
        res = cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{produced.bucket}", "--project", "testproj",
                  cwd=empty, env=env)
        assert res.returncode == 0, res.stderr
        completed += 1
    finally:
        fault_proxy.set(every=0)
    faults = dict(fault_proxy.faults() - before)
    print(f"faults injected: {sum(faults.values())} {faults}; operations completed: {completed}; "
          f"corrupted artifacts accepted: {mismatches}")
    assert mismatches == 0
    assert set(faults) == {"slowdown", "error500", "reset", "truncate", "latency", "drop"}, faults
    assert sum(faults.values()) >= 15


def _attempts(cmd: list[str], cwd: Path, env: dict[str, str], tries: int = 3) -> int:
    """Run a command until it succeeds (a user re-running it); every failure must be one clear
    line with a store exit code and no traceback. Returns the number of runs it took."""
    errors = []
    for n in range(1, tries + 1):
        res = cli(*cmd, cwd=cwd, env=env)
        if res.returncode == 0:
            return n
        assert res.returncode in (4, 5, 7), res.stderr
        assert "Traceback" not in res.stderr and res.stderr.strip().startswith("Error:"), res.stderr
        errors.append(res.stderr.strip())
    raise AssertionError(f"{cmd} did not complete in {tries} runs: " + " | ".join(errors))


def test_dvc_transfers_under_injected_faults(produced: Produced, s3_server: S3Server,
                                             fault_proxy: FaultProxy, tmp_path: Path):
    """The DVC paths (objects sent and fetched by zkml-dvc's client, the pk as multipart upload and
    ranged GETs; `dvc push` / `dvc pull` through s3fs for what it could not move) meet a fault on
    every 4th request. `push` and `pull --for prove` complete (re-run if they stop with a clear
    error); every pulled file has its recorded sha256; the pushed run then verifies."""
    from tests.conftest import copy_tree

    bucket = new_bucket(s3_server)
    work = copy_tree(produced.root, tmp_path / "producer-copy")
    cli("remote", "set", f"s3://{bucket}", "--endpoint", fault_proxy.endpoint, "--access-key-id",
        s3_server.access_key_id, cwd=work, check=True, stdin=s3_server.secret_access_key + "\n")
    subprocess.run(["git", "commit", "-qam", "remote for the fault test"], cwd=work, check=True)
    env = {"ZKML_DVC_MAX_ATTEMPTS": "8"}
    before = fault_proxy.faults()
    fault_proxy.set(every=4)
    mismatches = 0
    try:
        push_runs = _attempts(["push", "r1"], work, env)
        clean = clone(work, tmp_path / "clone")
        subprocess.run(["git", "checkout", "-q", "runs/testproj/r1"], cwd=clean, check=True)
        machine = {**machine_env(tmp_path, s3_server), "ZKML_DVC_MAX_ATTEMPTS": "8",
                   "AWS_ENDPOINT_URL_S3": fault_proxy.endpoint}
        # The run's commit names the original bucket: point this checkout at the copy.
        cli("remote", "set", f"s3://{bucket}", "--endpoint", fault_proxy.endpoint, cwd=clean,
            env=machine, check=True)
        pull_runs = _attempts(["pull", "r1", "--for", "prove"], clean, machine)
        _, m = load_manifest(clean, "r1")
        for p in (LAY.pk, LAY.vk, LAY.settings, LAY.compiled, LAY.witness):
            mismatches += sha256_file(clean / p) != m.artifact(p).sha256
    finally:
        fault_proxy.set(every=0)
    faults = dict(fault_proxy.faults() - before)
    print(f"DVC transfers: faults injected: {sum(faults.values())} {faults}; push took {push_runs} "
          f"run(s), pull {pull_runs}; corrupted artifacts accepted: {mismatches}")
    assert mismatches == 0
    assert sum(faults.values()) >= 10
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli(*VERIFY_ON_TRUST, "r1", "--store", f"s3://{bucket}", "--project", "testproj", cwd=empty,
              env=machine_env(tmp_path / "empty", s3_server))
    assert res.returncode == 0, res.stdout + res.stderr


def test_kill_during_download_then_pull_completes(produced: Produced, s3_server: S3Server,
                                                  fault_proxy: FaultProxy, tmp_path: Path):
    """kill -9 while the SRS is half downloaded: nothing appears under the blob's name (only a
    temp file marked .incomplete, never read); the next pull completes with the right bytes."""
    import signal

    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    _, m = load_manifest(repo, "r1")
    fault_proxy.set(stall_key=f"srs/{m.srs.sha256}")
    try:
        from tests.conftest import ZKML

        proc = subprocess.Popen([ZKML, "pull", "r1", "--for", "verify"], cwd=repo,
                                env={**os.environ, **env, "AWS_ENDPOINT_URL_S3": fault_proxy.endpoint},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert fault_proxy.wait_stalled(60), "the download never started"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        fault_proxy.set()
    cache = Path(env["ZKML_DVC_CACHE_DIR"])
    blob = cache / "blobs" / m.srs.sha256  # srs.blob_path under that machine's cache
    assert not blob.exists()
    partial = [p for p in blob.parent.glob("*.incomplete")]
    assert partial, "expected the killed download's temp file"
    res = cli("pull", "r1", "--for", "verify", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    assert sha256_file(blob) == m.srs.sha256
    v = cli(*VERIFY, "r1", cwd=repo, env=env)
    assert v.returncode == 0, v.stdout + v.stderr


def test_disk_full_on_download_is_one_clear_error(produced: Produced, s3_server: S3Server,
                                                  tmp_path: Path):
    """The disk refuses the write mid-download (a 1 MiB file-size limit: EFBIG, the same path as
    ENOSPC): exit 6, one line naming the file, no traceback, no partial file left as complete."""
    import resource

    from tests.conftest import ZKML

    env = machine_env(tmp_path, s3_server)
    repo = clone(produced.root, tmp_path / "clone")
    _, m = load_manifest(repo, "r1")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    res = subprocess.run([ZKML, "pull", "r1", "--for", "verify"], cwd=repo,
                         env={**os.environ, **env}, capture_output=True, text=True,
                         preexec_fn=limit, timeout=300)
    assert res.returncode == 6, res.stderr
    assert "cannot write" in res.stderr and "File too large" in res.stderr, res.stderr
    assert "Free space" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    cache = Path(env["ZKML_DVC_CACHE_DIR"])
    blob = cache / "blobs" / m.srs.sha256  # srs.blob_path under that machine's cache
    assert not blob.exists() and not list(blob.parent.glob("*.incomplete"))
    # Without the limit the same command completes.
    res = cli("pull", "r1", "--for", "verify", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
