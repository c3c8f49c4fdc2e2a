"""Chunked proving end to end: real ezkl, real Ray (a local instance, and a `ray start` cluster
whose workers read the store), real DVC/git, the real local S3 store; clean-room verification and
the tampering a verifier must catch."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    MODELS,
    VERIFY,
    VERIFY_ON_TRUST,
    S3Server,
    cli,
    clone,
    connect,
    copy_bucket,
    machine_env,
    make_store,
    new_bucket,
    new_project,
    producer_env,
)
from zkml_dvc.fsutil import sha256_bytes, sha256_file
from zkml_dvc.layout import ModelLayout, run_index_prefix

pytestmark = pytest.mark.slow

CHUNKED = """chunked:
  mlp2:
    onnx: models/mlp/network.onnx
    input: models/mlp/input.json
    calibration: models/mlp/calibration.json
    run_args: {input_visibility: public, output_visibility: public, param_visibility: fixed}
    scales: [7]
    chunks: 2
    link: polycommit
  mlp3:
    onnx: models/mlp/network.onnx
    input: models/mlp/input.json
    calibration: models/mlp/calibration.json
    run_args: {input_visibility: public, output_visibility: public, param_visibility: fixed}
    scales: [7]
    chunks: 3
    link: hashed
  mlp2s8:
    onnx: models/mlp/network.onnx
    input: models/mlp/input.json
    calibration: models/mlp/calibration.json
    run_args: {input_visibility: public, output_visibility: public, param_visibility: fixed}
    scales: [8]
    chunks: 2
    link: polycommit
"""


@dataclass
class Chunked:
    root: Path
    bucket: str


@pytest.fixture(scope="module")
def chunked(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory,
            shared_cache: Path) -> Chunked:
    """Runs pushed by a producer: c2 (mlp2, 2 polycommit chunks, local Ray), c3 (mlp3, 3 hashed
    chunks), c2b (mlp2 on another input, on a `ray start` cluster reading the store)."""
    tmp = tmp_path_factory.mktemp("chunked")
    mp = producer_env(tmp, shared_cache)
    try:
        bucket = new_bucket(s3_server)
        root = new_project(tmp, "origin")
        params = (root / "params.yaml").read_text().replace("chunked: {}\n", CHUNKED)
        (root / "params.yaml").write_text(params)
        subprocess.run(["git", "commit", "-qam", "chunked models"], cwd=root, check=True)
        connect(root, s3_server, bucket)
        s3_server.guard.log.reset()
        res = cli("run", "--model", "mlp2", "--run-id", "c2", cwd=root)
        assert res.returncode == 0, res.stderr
        assert "chunk 0 proved" in res.stderr and "chunk 1 proved" in res.stderr
        res = cli("run", "--model", "mlp3", "--run-id", "c3", cwd=root)
        assert res.returncode == 0, res.stderr
        assert not s3_server.guard.log.violations, s3_server.guard.log.violations
        return Chunked(root, bucket)
    finally:
        mp.undo()


@pytest.mark.parametrize(("run_id", "n", "link"), [("c2", 2, "polycommit"), ("c3", 3, "hashed")])
def test_chunked_run_verifies_in_a_clean_room_with_every_link(
        chunked: Chunked, s3_server: S3Server, tmp_path: Path, run_id: str, n: int, link: str
) -> None:
    env = machine_env(tmp_path, s3_server)
    work = clone(chunked.root, tmp_path / "verifier")
    res = cli(*VERIFY, run_id, cwd=work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    for i in range(n):
        assert f"ok   chunk {i} ezkl verify" in res.stdout
    for i in range(n - 1):
        assert f"ok   {link} link {i}->{i + 1}" in res.stdout
    assert "ok   claimed input" in res.stdout
    assert res.stdout.startswith(f"VALID (UNTRUSTED SRS): run {run_id}")
    assert "  output: [[" in res.stdout
    # Store-only (no clone) accepts it too.
    res = cli(*VERIFY_ON_TRUST, run_id, "--store", f"s3://{chunked.bucket}", "--project", "testproj",
              "--report", str(tmp_path / "r.json"), cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    names = [c["name"] for c in report["checks"]]
    assert sum(nm.endswith("ezkl verify") for nm in names) == n
    assert sum(" link " in nm for nm in names) == n - 1


def test_run_page_shows_the_chunk_graph(chunked: Chunked, s3_server: S3Server,
                                        tmp_path: Path) -> None:
    """`zkml-dvc report` of the two chunked runs, verified in a clean room on another machine:
    each run's chunk graph (one box per chunk, the link between neighbours) and its verdict."""
    work = clone(chunked.root, tmp_path / "viewer")
    res = cli("report", "c2", "c3", "-o", str(tmp_path / "page"), cwd=work,
              env=machine_env(tmp_path, s3_server))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(2 runs: c2 untrusted-srs, c3 untrusted-srs)" in res.stdout, res.stdout
    html = (tmp_path / "page" / "index.html").read_text()
    assert "Chunk graph (2 chunks, linked by polycommit)" in html
    assert "Chunk graph (3 chunks, linked by hashed)" in html
    assert html.count('<div class="chunk">') == 5 and html.count('<div class="arrow">') == 3
    assert html.count("<td>proof</td><td><span class=\"verdict ok\">established</span>") == 2


def _monolithic_output(tmp_path: Path) -> list[str]:
    """The unsplit model's circuit output on the same input, at the same scale (ezkl itself)."""
    import ezkl

    onnx, data = MODELS / "mlp" / "network.onnx", MODELS / "mlp" / "input.json"
    s, c, w = tmp_path / "s.json", tmp_path / "n.compiled", tmp_path / "w.json"
    args = ezkl.PyRunArgs()
    args.input_visibility, args.output_visibility, args.param_visibility = "public", "public", "fixed"
    assert ezkl.gen_settings(str(onnx), str(s), py_run_args=args)
    assert ezkl.calibrate_settings(str(MODELS / "mlp" / "calibration.json"), str(onnx), str(s),
                                   "resources", scales=[7], scale_rebase_multiplier=[1])
    assert ezkl.compile_circuit(str(onnx), str(c), str(s))
    ezkl.gen_witness(str(data), str(c), str(w))
    return list(json.loads(w.read_text())["outputs"][0])


def test_chunked_output_equals_the_monolithic_circuit(chunked: Chunked, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EZKL_REPO_PATH", str(tmp_path / "ezkl"))
    mono = _monolithic_output(tmp_path)
    for model, run_id, n in (("mlp2", "c2", 2), ("mlp3", "c3", 3)):
        shown = subprocess.run(
            ["git", "show", f"runs/testproj/{run_id}:{ModelLayout(model).manifest}"],
            cwd=chunked.root, capture_output=True, text=True, check=True).stdout
        entry = next(a for a in json.loads(shown)["artifacts"]
                     if a["path"] == str(ModelLayout(model, n - 1).witness))
        cached = chunked.root / ".dvc/cache/files/md5" / entry["md5"][:2] / entry["md5"][2:]
        assert sha256_file(cached) == entry["sha256"]
        out = json.loads(cached.read_text())["outputs"][0]
        assert out == mono, (model, out, mono)


# ---- tampering ---------------------------------------------------------------------------------
def _forge(s3: S3Server, bucket: str, run_id: str, replace: dict[str, bytes],
          edit: Callable[[dict], None] | None = None) -> None:
    """An attacker who controls the store: replace kit files and rewrite the manifest (and the
    sha256 stored with it) so that every hash matches the substitutes; ``edit`` changes the
    manifest further."""
    store = make_store(s3, bucket)
    prefix = run_index_prefix("testproj", run_id)
    manifest = json.loads(store.get_bytes(f"{prefix}/manifest.json"))
    if edit is not None:
        edit(manifest)
    kit = {"input.json": "chunks/0/proofs/input.json"}
    for name, data in replace.items():
        if name.startswith("c"):
            idx, fname = name[1:].split("/")
            sub = {"proof.json": "proofs", "vk.key": "keys", "settings.json": "circuits"}[fname]
            kit[name] = f"chunks/{idx}/{sub}/{fname}"
        path = f"artifacts/{manifest['model']}/{kit[name]}"
        entry = next(a for a in manifest["artifacts"] if a["path"] == path)
        entry["sha256"], entry["size"] = sha256_bytes(data), len(data)
        store.put_bytes(data, f"{prefix}/{name}")
    store.put_bytes(json.dumps(manifest).encode(), f"{prefix}/manifest.json")


def _store_verify(chunked: Chunked, s3: S3Server, tmp_path: Path, bucket: str, run_id: str
                  ) -> subprocess.CompletedProcess[str]:
    return cli(*VERIFY_ON_TRUST, run_id, "--store", f"s3://{bucket}", "--project", "testproj",
               cwd=tmp_path, env=machine_env(tmp_path, s3))


@pytest.fixture(scope="module")
def other_input_run(chunked: Chunked, s3_server: S3Server,
                    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> str:
    """mlp2 on another input (keys reused), proved on a `ray start` cluster whose workers get the
    store's address and their own credentials from their environment, not from the driver."""
    # a module fixture runs outside the per-test isolation: the producer's own HOME and identity
    mp = producer_env(tmp_path_factory.mktemp("other-input"), shared_cache)
    try:
        return _other_input_run(chunked, s3_server)
    finally:
        mp.undo()


def _other_input_run(chunked: Chunked, s3_server: S3Server) -> str:
    root = chunked.root
    data = json.loads((root / "models/mlp/input.json").read_text())
    data["input_data"][0][0] += 0.25
    (root / "models/mlp/input.json").write_text(json.dumps(data))
    subprocess.run(["git", "commit", "-qam", "another input"], cwd=root, check=True)
    port = 20000 + secrets.randbelow(20000)
    ray_bin = str(Path(sys.executable).parent / "ray")
    # Token authentication, as a real cluster would have: the driver needs the same token.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    temp = Path(root.parent / "raytmp")
    # the workers' own scratch (ezkl dirs) inside the test's directory, not in /tmp
    worker_env = {**os.environ, **s3_server.env(), "RAY_USAGE_STATS_ENABLED": "0", **auth,
                  "TMPDIR": str(temp)}
    subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", f"--temp-dir={temp}"],
                   env=worker_env, check=True, capture_output=True, timeout=180)
    try:
        res = cli("run", "--model", "mlp2", "--run-id", "c2b", "--ray-address",
                  f"127.0.0.1:{port}", cwd=root, env=auth)
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=worker_env, capture_output=True,
                       timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "chunk 0 proved" in res.stderr
    rec = json.loads((root / ModelLayout("mlp2", 1).stage_record("chunk_prove")).read_text())
    assert "on Ray" in rec["command"]
    assert rec["ezkl_calls"][0]["args"]["worker_seconds"] > 0
    # Only witness and prove re-ran: the keys were reused.
    manifest = json.loads((root / ModelLayout("mlp2").manifest).read_text())
    ran = {s["stage"] for s in manifest["stages"] if s["ran"]}
    assert not any(s.startswith(("chunk_setup", "chunk_plan", "chunk_compile")) for s in ran), ran
    return "c2b"


def test_substituted_chunk_proof_is_rejected_by_the_link(
        chunked: Chunked, other_input_run: str, s3_server: S3Server, tmp_path: Path) -> None:
    """Chunk 1's proof from another input verifies on its own; its input is not chunk 0's output."""
    bucket = copy_bucket(s3_server, chunked.bucket)
    store = make_store(s3_server, bucket)
    foreign = store.get_bytes(f"{run_index_prefix('testproj', other_input_run)}/c1/proof.json")
    _forge(s3_server, bucket, "c2", {"c1/proof.json": foreign})
    res = _store_verify(chunked, s3_server, tmp_path, bucket, "c2")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "ok   chunk 1 ezkl verify" in res.stdout  # valid alone...
    assert "FAIL polycommit link 0->1" in res.stdout  # ...but it does not link
    assert "Traceback" not in res.stderr


def test_vk_compiled_at_another_scale_is_rejected(chunked: Chunked, s3_server: S3Server,
                                                  tmp_path: Path) -> None:
    root = chunked.root
    subprocess.run([sys.executable, "-m", "dvc", "repro", "chunk_setup@mlp2s8-c1"], cwd=root,
                   check=True, capture_output=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    other = ModelLayout("mlp2s8", 1)
    vk, settings = (root / other.vk).read_bytes(), (root / other.settings).read_bytes()
    # Pinned by the manifest in git: the swapped vk is an integrity failure in a clone.
    bucket = copy_bucket(s3_server, chunked.bucket)
    store = make_store(s3_server, bucket)
    store.put_bytes(vk, f"{run_index_prefix('testproj', 'c2')}/c1/vk.key")
    work = clone(root, tmp_path / "verifier")
    env = machine_env(tmp_path, s3_server)
    cli("remote", "set", f"s3://{bucket}", "--endpoint", s3_server.endpoint, cwd=work, env=env,
        check=True)
    res = cli(*VERIFY, "c2", cwd=work, env=env)
    assert res.returncode == 4, res.stdout + res.stderr
    assert "vk.key" in res.stdout + res.stderr
    # With a forged manifest (store-only), the chunk proof fails against that vk and settings.
    _forge(s3_server, bucket, "c2", {"c1/vk.key": vk, "c1/settings.json": settings})
    (tmp_path / "x").mkdir()
    res = _store_verify(chunked, s3_server, tmp_path / "x", bucket, "c2")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "FAIL chunk 1 ezkl verify" in res.stdout


def test_claimed_input_off_by_one_quantum_is_rejected(chunked: Chunked, s3_server: S3Server,
                                                      tmp_path: Path) -> None:
    bucket = copy_bucket(s3_server, chunked.bucket)
    store = make_store(s3_server, bucket)
    claimed = json.loads(store.get_bytes(f"{run_index_prefix('testproj', 'c2')}/input.json"))
    claimed["input_data"][0][0] += 1 / 2**7  # one quantum at the pinned scale
    _forge(s3_server, bucket, "c2", {"input.json": json.dumps(claimed).encode()})
    res = _store_verify(chunked, s3_server, tmp_path, bucket, "c2")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "FAIL claimed input" in res.stdout
    assert "ok   polycommit link 0->1" in res.stdout


def test_dropped_or_reordered_chunks_are_invalid(chunked: Chunked, s3_server: S3Server,
                                                 tmp_path: Path) -> None:
    """The plan (pinned by the manifest) fixes how many chunks there are, in which order, with
    which settings: a manifest that drops a chunk, or a kit whose chunks swapped places, fails."""
    bucket = copy_bucket(s3_server, chunked.bucket)
    _forge(s3_server, bucket, "c3", {}, edit=lambda m: m.update(chunks=m["chunks"][:2]))
    dropped = _store_verify(chunked, s3_server, tmp_path, bucket, "c3")
    assert dropped.returncode == 3, dropped.stdout + dropped.stderr
    assert dropped.stdout.startswith("INVALID: run c3") and "its plan 3" in dropped.stdout
    bucket = copy_bucket(s3_server, chunked.bucket)
    store = make_store(s3_server, bucket)
    prefix = run_index_prefix("testproj", "c3")
    kit = {f"c{i}/{f}": store.get_bytes(f"{prefix}/c{i}/{f}")
           for i in (1, 2) for f in ("proof.json", "settings.json", "vk.key")}
    swapped = {name.replace("c1/", "cX/").replace("c2/", "c1/").replace("cX/", "c2/"): data
               for name, data in kit.items()}
    _forge(s3_server, bucket, "c3", swapped)
    (tmp_path / "x").mkdir()
    res = _store_verify(chunked, s3_server, tmp_path / "x", bucket, "c3")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "chunk 1's settings are not the plan's" in res.stdout


def test_link_counts_edited_in_the_manifest(chunked: Chunked, s3_server: S3Server,
                                            tmp_path: Path) -> None:
    """hashed: the counts come from the pinned settings, so edits change nothing; polycommit: the
    counts of neighbours must agree."""
    bucket = copy_bucket(s3_server, chunked.bucket)

    def zero(m: dict) -> None:
        for c in m["chunks"]:
            c["link_inputs"] = c["link_outputs"] = 0

    _forge(s3_server, bucket, "c3", {}, edit=zero)
    res = _store_verify(chunked, s3_server, tmp_path, bucket, "c3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok   hashed link 0->1" in res.stdout and "ok   hashed link 1->2" in res.stdout

    def fewer(m: dict) -> None:
        m["chunks"][0]["link_outputs"] -= 1

    _forge(s3_server, bucket, "c2", {}, edit=fewer)
    (tmp_path / "x").mkdir()
    res = _store_verify(chunked, s3_server, tmp_path / "x", bucket, "c2")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "the link counts of chunks 0 and 1 disagree" in res.stdout


def test_chunked_params_errors(chunked: Chunked, tmp_path: Path) -> None:
    work = clone(chunked.root, tmp_path / "w")
    res = cli("run", "--model", "mlp", "--chunks", "2", "--no-push", cwd=work)
    assert res.returncode == 2 and "is not chunked" in res.stderr and "Traceback" not in res.stderr
    res = cli("run", "--model", "mlp2", "--chunks", "5", "--no-push", cwd=work)
    assert res.returncode == 7, res.stderr
    assert "can be cut in only 2 places" in res.stderr
    # Nothing committed changed: the run tags and HEAD are as before.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True)
    assert head.stdout.strip() == subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=chunked.root, capture_output=True, text=True
    ).stdout.strip()


def test_resume_chunked_run_with_new_input_reuses_keys(chunked: Chunked, s3_server: S3Server,
                                                       tmp_path: Path) -> None:
    """On another machine: the plan, circuits and keys come from the store; only the witnesses,
    proofs and verification run again, and the new run verifies store-only."""
    env = machine_env(tmp_path, s3_server)
    work = clone(chunked.root, tmp_path / "clone")
    subprocess.run(["git", "checkout", "-q", "runs/testproj/c2"], cwd=work, check=True)
    assert not (work / ModelLayout("mlp2", 0).pk).exists()
    new_input = tmp_path / "new.json"
    new_input.write_text(json.dumps({"input_data": [[0.5, -0.25, 0.125, 0.9]]}))
    res = cli("resume", "c2", "--input", str(new_input), "--run-id", "c2r", cwd=work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    child = json.loads((work / ModelLayout("mlp2").manifest).read_text())
    assert child["parent_run"] == "c2"
    ran = {s["stage"].split("@")[0] for s in child["stages"] if s["ran"]}
    assert ran == {"chunk_witness", "chunk_prove", "chunk_verify"}, ran
    # audit re-splits the model and re-derives every chunk's settings and vk in a clean room
    res = cli("audit", "c2r", cwd=work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    for i in range(2):
        assert f"MATCH chunk {i} settings" in res.stdout and f"MATCH chunk {i} vk" in res.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    v = cli(*VERIFY_ON_TRUST, "c2r", "--store", f"s3://{chunked.bucket}", "--project", "testproj",
            cwd=empty, env=machine_env(tmp_path / "empty", s3_server, "verifier"))
    assert v.returncode == 0, v.stdout + v.stderr


def test_a_project_whose_only_model_is_chunked(s3_server: S3Server, tmp_path: Path) -> None:
    """Issue 13, item 6: `init --chunks N` makes a project with no monolithic model; it runs, is
    pushed, and verifies store-only like any other."""
    root = tmp_path / "only-chunked"
    res = cli("init", str(root), "--model", str(MODELS / "mlp" / "network.onnx"),
              "--input", str(MODELS / "mlp" / "input.json"), "--name", "net", "--chunks", "2",
              "--project", "onlychunked")
    assert res.returncode == 0, res.stderr
    assert "chunked in 2" in res.stdout
    params = (root / "params.yaml").read_text()
    assert "models: {}" in params and "net-c1" in params
    bucket = new_bucket(s3_server)
    connect(root, s3_server, bucket)
    res = cli("run", "--run-id", "oc1", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = json.loads((root / ModelLayout("net").manifest).read_text())
    assert len(manifest["chunks"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    v = cli(*VERIFY_ON_TRUST, "oc1", "--store", f"s3://{bucket}", "--project", "onlychunked",
            cwd=empty, env=machine_env(tmp_path, s3_server, "verifier"))
    assert v.returncode == 0, v.stdout + v.stderr
    # --scale without --chunks is refused before anything is created
    bad = cli("init", str(tmp_path / "bad"), "--model", str(MODELS / "mlp" / "network.onnx"),
              "--input", str(MODELS / "mlp" / "input.json"), "--scale", "7")
    assert bad.returncode == 2 and "--scale applies to chunked models only" in bad.stderr
    assert not (tmp_path / "bad").exists()
