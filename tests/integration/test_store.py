"""The store client against the real local S3 server (SeaweedFS behind the O3 guard)."""

import os
import stat
import time
from pathlib import Path

import pytest

from tests.conftest import cli, make_store
from zkml_dvc import errors, localstore
from zkml_dvc.fsutil import sha256_file
from zkml_dvc.store import Store, StoreConfig


def _file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(os.urandom(size) if seed else b"\0" * size)
    return path


def test_round_trip_stores_sha256_and_verifies(s3_server, bucket, tmp_path):
    st = make_store(s3_server, bucket, "root")
    src = _file(tmp_path / "a.bin", 300_000)
    assert st.put_file(src, "x/a.bin") is True
    head = s3_server.client().head_object(Bucket=bucket, Key="root/x/a.bin")
    assert head["Metadata"]["sha256"] == sha256_file(src)
    out = st.get_file("x/a.bin", tmp_path / "out" / "a.bin", sha256_file(src), use_cache=False)
    assert sha256_file(out) == sha256_file(src)


def test_same_bytes_are_not_uploaded_twice(s3_server, bucket, tmp_path):
    st = make_store(s3_server, bucket)
    src = _file(tmp_path / "a.bin", 1_000_000)
    st.put_file(src, "a.bin")
    s3_server.guard.log.reset()
    assert st.put_file(src, "a.bin") is False
    assert s3_server.guard.log.uploaded_bytes == 0
    assert s3_server.guard.log.operations["PutObject"] == 0


def test_corrupted_object_is_refused_and_not_left_in_place(s3_server, bucket, tmp_path):
    st = make_store(s3_server, bucket)
    src = _file(tmp_path / "vk.key", 50_000)
    good = sha256_file(src)
    st.put_file(src, "vk.key")
    # Corrupt it behind our back, keeping the (now false) sha256 metadata.
    s3_server.client(direct=True).put_object(Bucket=bucket, Key="vk.key", Body=b"evil" * 100,
                                             Metadata={"sha256": good})
    dest = tmp_path / "dl" / "vk.key"
    with pytest.raises(errors.IntegrityError, match="vk.key"):
        st.get_file("vk.key", dest, good)
    assert not dest.exists()
    assert not list((tmp_path / "dl").glob("*")) if (tmp_path / "dl").exists() else True
    with pytest.raises(errors.IntegrityError):  # trusting the metadata alone also catches it
        st.get_bytes("vk.key")


def test_multipart_upload_within_o3_operations(s3_server, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("ZKML_DVC_MULTIPART_THRESHOLD", str(6 * 1024 * 1024))
    monkeypatch.setenv("ZKML_DVC_MULTIPART_CHUNKSIZE", str(5 * 1024 * 1024))
    st = make_store(s3_server, bucket)
    src = _file(tmp_path / "pk.key", 12 * 1024 * 1024)
    st.put_file(src, "pk.key")
    ops = s3_server.guard.log.operations
    assert ops["CreateMultipartUpload"] == 1 and ops["UploadPart"] == 3
    assert ops["CompleteMultipartUpload"] == 1
    out = st.get_file("pk.key", tmp_path / "pk2.key", sha256_file(src))
    assert sha256_file(out) == sha256_file(src)


def test_wrong_credentials(s3_server, bucket):
    st = Store(StoreConfig(url=f"s3://{bucket}", endpoint=s3_server.endpoint,
                           access_key_id=s3_server.access_key_id, secret_access_key="wrong-secret"))
    with pytest.raises(errors.StoreError, match="refused the credentials") as ei:
        st.check_access()
    assert "wrong-secret" not in str(ei.value)


def test_unreachable_endpoint_answers_quickly(monkeypatch):
    monkeypatch.setenv("ZKML_DVC_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("ZKML_DVC_MAX_ATTEMPTS", "2")
    st = Store(StoreConfig(url="s3://some-bucket", endpoint="http://127.0.0.1:9",
                           access_key_id="a", secret_access_key="b"))
    t0 = time.monotonic()
    with pytest.raises(errors.StoreError, match="cannot reach"):
        st.check_access()
    assert time.monotonic() - t0 < 30


def test_missing_bucket(s3_server, bucket):
    st = make_store(s3_server, "no-such-bucket-here")
    with pytest.raises(errors.StoreError, match="does not exist"):
        st.check_access()


def test_local_store_lifecycle_and_env(tmp_path):
    state = tmp_path / "store"
    st = localstore.up(state)
    try:
        again = localstore.up(state)
        assert again.pid == st.pid, "up is idempotent"
        creds = state / "credentials.json"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert stat.S_IMODE((state / "identities.json").stat().st_mode) == 0o600
        secret = localstore.credentials(state)["secret_access_key"]
        assert secret not in (state / "state.json").read_text()
        out = cli("store", "env", "--dir", str(state), check=True).stdout
        assert f"AWS_ENDPOINT_URL_S3={st.endpoint}" in out and "AWS_SECRET_ACCESS_KEY=" in out
        assert cli("store", "status", "--dir", str(state)).returncode == 0
        v = Store(StoreConfig(url=st.url, endpoint=st.endpoint, **localstore.credentials(state)))
        assert v.client.get_bucket_versioning(Bucket=st.bucket)["Status"] == "Enabled"
        # private state, and weed's own logs inside it rather than in /tmp
        for d in (state, state / "data", state / "tmp"):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        assert st.start_time and st.exe.endswith("weed")
    finally:
        assert localstore.down(state)
    assert localstore.status(state) is None
    assert cli("store", "status", "--dir", str(state)).returncode == 1
    # the unix sockets SeaweedFS put in /tmp for this store's ports are gone
    assert not [p for port in st.ports.values() for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]


def test_a_reused_pid_is_never_signalled(tmp_path):
    """The state names a PID that now belongs to another process: status says not running and
    down signals nothing."""
    import json
    import subprocess

    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state = tmp_path / "store"
        state.mkdir()
        (state / "state.json").write_text(json.dumps({
            "state_dir": str(state), "pid": other.pid, "endpoint": "http://127.0.0.1:9",
            "bucket": "zkml-dvc", "ports": {}, "start_time": "1", "exe": "/usr/bin/weed"}))
        assert localstore.status(state) is None
        assert cli("store", "status", "--dir", str(state)).returncode == 1
        assert localstore.down(state) is False
        time.sleep(0.2)
        assert other.poll() is None, "the other process was signalled"
    finally:
        other.kill()
        other.wait()
