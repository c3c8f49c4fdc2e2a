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


def certifi_bundle() -> str:
    import certifi

    return str(certifi.where())


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
        # HTTPS with a certificate from the store's own CA, exported for every S3 client
        assert st.endpoint.startswith("https://127.0.0.1:")
        assert f"AWS_CA_BUNDLE={st.ca_bundle}" in out
        assert stat.S_IMODE((state / "tls" / "server.key").stat().st_mode) == 0o600
        assert cli("store", "status", "--dir", str(state)).returncode == 0
        v = Store(StoreConfig(url=st.url, endpoint=st.endpoint, ca_bundle=st.ca_bundle,
                              **localstore.credentials(state)))
        assert v.client.get_bucket_versioning(Bucket=st.bucket)["Status"] == "Enabled"
        # a client that does not trust that CA is refused by TLS verification (it is real TLS)
        stranger = Store(StoreConfig(url=st.url, endpoint=st.endpoint,
                                     ca_bundle=certifi_bundle(), **localstore.credentials(state)))
        with pytest.raises(Exception, match="(?i)certificate verify failed|SSL"):
            stranger.client.list_buckets()
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


def test_local_store_over_plain_http_on_request(tmp_path):
    """`store up --http`: plain HTTP, loopback only (kept for tools that cannot do TLS)."""
    state = tmp_path / "store"
    res = cli("store", "up", "--http", "--dir", str(state), cwd=tmp_path)  # not in a project
    try:
        assert res.returncode == 0, res.stderr
        st = localstore.status(state)
        assert st is not None and st.endpoint.startswith("http://127.0.0.1:") and not st.ca_bundle
        out = cli("store", "env", "--dir", str(state), cwd=tmp_path, check=True).stdout
        assert "AWS_CA_BUNDLE" not in out
        v = Store(StoreConfig(url=st.url, endpoint=st.endpoint, **localstore.credentials(state)))
        assert v.client.get_bucket_versioning(Bucket=st.bucket)["Status"] == "Enabled"
    finally:
        localstore.down(state)


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_objects_round_trip_byte_for_byte_over_https(s3_server, bucket, tmp_path, checksums):
    """Over TLS, botocore's default checksum mode (`when_supported`: aws-chunked bodies with a
    trailing CRC) and O3's (`when_required`) must both store exactly the bytes sent: a server
    that kept the chunk framing inside the object would pass every status code and corrupt it.
    Straight to SeaweedFS for the default mode (O3 itself refuses the checksum headers: the guard
    would flag them), through the O3 guard for O3's mode."""
    import hashlib

    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    direct = checksums == "when_supported"
    client = boto3.client(
        "s3", endpoint_url=s3_server.upstream if direct else s3_server.endpoint,
        aws_access_key_id=s3_server.access_key_id,
        aws_secret_access_key=s3_server.secret_access_key, region_name="akave-network",
        verify=s3_server.ca_bundle,
        config=Config(request_checksum_calculation=checksums,
                      response_checksum_validation=checksums, s3={"addressing_style": "path"}))
    assert s3_server.endpoint.startswith("https://") and s3_server.upstream.startswith("https://")
    small = _file(tmp_path / "small.bin", 300_000)
    big = _file(tmp_path / "big.bin", 20 * 1024 * 1024, seed=2)
    client.put_object(Bucket=bucket, Key="x/small.bin", Body=small.read_bytes())
    client.upload_file(str(big), bucket, "x/big.bin",
                       Config=TransferConfig(multipart_threshold=8 * 1024 * 1024,
                                             multipart_chunksize=8 * 1024 * 1024))
    for path, key in ((small, "x/small.bin"), (big, "x/big.bin")):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == path.stat().st_size, key
        stored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == sha256_file(path), key


def test_one_local_store_per_machine_serves_several_projects(tmp_path):
    """Issue 13, item 5: `store up` in two projects starts one store (per user, in the documented
    directory) and gives each project its own root; the second project's run uses the first's SRS
    (same logrows) instead of making a new one; `store down` stops it for both."""
    import json

    from tests.conftest import new_project
    from zkml_dvc import env

    a = new_project(tmp_path, "a", project_id="alpha")
    b = new_project(tmp_path, "b", project_id="beta")
    state = env.store_dir()
    assert str(state).startswith(os.environ["XDG_DATA_HOME"])
    try:
        up_a = cli("store", "up", cwd=a)
        up_b = cli("store", "up", cwd=b)
        assert up_a.returncode == 0 and up_b.returncode == 0, up_a.stderr + up_b.stderr
        st = localstore.status(state)
        assert st is not None and f"pid {st.pid}," in up_a.stdout and f"pid {st.pid}," in up_b.stdout
        assert "remote o3 -> s3://zkml-dvc/alpha/dvc" in up_a.stderr
        assert "remote o3 -> s3://zkml-dvc/beta/dvc" in up_b.stderr
        for root, run_id in ((a, "ra"), (b, "rb")):
            res = cli("run", "--run-id", run_id, cwd=root)
            assert res.returncode == 0, res.stdout + res.stderr
        srs = [json.loads((r / "artifacts/mlp/reports/manifest.json").read_text())["srs"]["sha256"]
               for r in (a, b)]
        assert srs[0] == srs[1]
        store = Store(StoreConfig(url=st.url, endpoint=st.endpoint, ca_bundle=st.ca_bundle,
                                  **localstore.credentials(state)))
        keys = {o["Key"] for page in store.client.get_paginator("list_objects_v2").paginate(
            Bucket=st.bucket) for o in page.get("Contents", [])}
        assert f"alpha/srs/{srs[0]}" in keys and f"beta/srs/{srs[0]}" in keys
        assert "alpha/projects/alpha/runs/ra/manifest.json" in keys
        assert "beta/projects/beta/runs/rb/manifest.json" in keys
        assert cli("store", "down", cwd=b).stdout.strip() == "stopped"
        assert localstore.status(state) is None
    finally:
        localstore.down(state)


def test_small_reads_stop_at_the_cap_whatever_the_server_sends(s3_server, bucket, tmp_path,
                                                                monkeypatch):
    """get_bytes (index files, manifests) refuses an object larger than its cap before reading it."""
    from zkml_dvc import store as store_mod

    s = make_store(s3_server, bucket, "root")
    s.put_file(_file(tmp_path / "m.json", 4096), "x/m.json")
    assert len(s.get_bytes("x/m.json")) == 4096
    monkeypatch.setattr(store_mod, "MAX_SMALL_OBJECT", 1024)
    with pytest.raises(errors.IntegrityError, match="unexpectedly large"):
        s.get_bytes("x/m.json")


def test_large_downloads_are_parallel_ranges_that_survive_faults(s3_server, bucket, tmp_path,
                                                                 monkeypatch, fault_proxy):
    """Above ZKML_DVC_RANGED_THRESHOLD an object comes as parallel ranged GETs: through the fault
    proxy (every 3rd request: 503, 500, reset, half a body, latency) each part cut short is fetched
    again alone, and the file is whole; an object changed behind the manifest's back is refused
    and nothing is left in place."""
    from zkml_dvc import ranged

    monkeypatch.setenv("ZKML_DVC_RANGED_THRESHOLD", str(1024 * 1024))
    monkeypatch.setenv("ZKML_DVC_MAX_ATTEMPTS", "8")
    monkeypatch.setattr(ranged, "PART", 1024 * 1024)
    src = _file(tmp_path / "pk.key", 12 * 1024 * 1024 + 123)
    make_store(s3_server, bucket).put_file(src, "pk.key")
    st = make_store(s3_server, bucket, endpoint=fault_proxy.endpoint)
    before = fault_proxy.faults()
    gets = s3_server.guard.log.operations["GetObject"]
    fault_proxy.set(every=3)
    try:
        out = st.get_file("pk.key", tmp_path / "dl" / "pk.key", sha256_file(src), use_cache=False)
    finally:
        fault_proxy.set(every=0)
    faults = fault_proxy.faults() - before
    assert sha256_file(out) == sha256_file(src)
    assert s3_server.guard.log.operations["GetObject"] - gets >= 13  # one GET per part at least
    assert sum(faults.values()) >= 3, faults
    # the same size, other bytes, the sha256 metadata kept: refused, nothing left behind
    s3_server.client(direct=True).put_object(Bucket=bucket, Key="pk.key",
                                             Body=os.urandom(src.stat().st_size),
                                             Metadata={"sha256": sha256_file(src)})
    dest = tmp_path / "dl2" / "pk.key"
    with pytest.raises(errors.HashMismatchError, match="pk.key"):
        st.get_file("pk.key", dest, sha256_file(src), use_cache=False)
    assert not dest.parent.exists() or not list(dest.parent.iterdir())


def test_bulk_moves_many_small_objects_and_refuses_a_bad_one(s3_server, bucket, tmp_path,
                                                             monkeypatch):
    """bulk.py (obstore) against the real server: put_missing sends only what is absent (within
    O3's operations, no checksum headers), asking by one listing where the prefix holds few keys;
    get_many places each object read-only when its digest matches, and for one whose digest does
    not, leaves nothing at its destination."""
    import hashlib

    from zkml_dvc import bulk
    from zkml_dvc.bulk import Get, get_many, put_missing

    st = make_store(s3_server, bucket, "root")
    srcs = [_file(tmp_path / f"o{i}", 1000 + i) for i in range(40)]
    assert put_missing(st, [(f"objs/{p.name}", p) for p in srcs[:10]]) == 10
    s3_server.guard.log.reset()
    assert put_missing(st, [(f"objs/{p.name}", p) for p in srcs]) == 30
    ops = s3_server.guard.log.operations
    assert ops["HeadObject"] == 40 and ops["PutObject"] == 30, ops
    assert not s3_server.guard.log.violations, s3_server.guard.log.violations
    # under a prefix that holds few keys, one listing stands for the HEADs ...
    more = [_file(tmp_path / f"m{i}", 500 + i) for i in range(40)]
    assert put_missing(st, [(f"more/{p.name}", p) for p in more[:5]]) == 5
    s3_server.guard.log.reset()
    assert put_missing(st, [(f"more/{p.name}", p) for p in more], within="more") == 35
    ops = s3_server.guard.log.operations
    assert ops["HeadObject"] == 0 and ops["ListObjectsV2"] == 1 and ops["PutObject"] == 35, ops
    s3_server.guard.log.reset()
    assert put_missing(st, [(f"more/{p.name}", p) for p in more], within="more") == 0
    # ... but not where it holds more keys than objects to send x KEYS_PER_OBJECT
    monkeypatch.setattr(bulk, "KEYS_PER_OBJECT", 0.5)  # 20 keys allowed, 40 there
    s3_server.guard.log.reset()
    assert put_missing(st, [(f"more/{p.name}", p) for p in more], within="more") == 0
    ops = s3_server.guard.log.operations
    assert ops["HeadObject"] == 40 and ops["PutObject"] == 0, ops
    gets = [Get(f"objs/{p.name}", tmp_path / "dl" / p.name, "md5",
                hashlib.md5(p.read_bytes()).hexdigest()) for p in srcs]
    gets[7] = Get(gets[7].rel, gets[7].dest, "md5", "0" * 32)  # what it does not hash to
    got = get_many(st, gets)
    assert got == [i != 7 for i in range(40)]
    assert not gets[7].dest.exists()
    for g, p in zip(gets, srcs, strict=True):
        if g.dest.exists():
            assert g.dest.read_bytes() == p.read_bytes()
            assert stat.S_IMODE(g.dest.stat().st_mode) == 0o444
    assert sorted(x.name for x in (tmp_path / "dl").iterdir()) == sorted(
        p.name for i, p in enumerate(srcs) if i != 7)  # nothing half-written left behind


def test_bulk_takes_the_environments_keys_as_boto3_would_without_a_boto3_client(
        s3_server, bucket, tmp_path, monkeypatch):
    """With no keys configured and no profile named, the environment's keys are the ones boto3
    would use first: bulk.py signs with them (the server checks signatures) and makes no boto3
    client to learn them or the region; with a profile named, boto3's resolution decides (here:
    a profile that does not exist, so nothing is signed with the environment's keys)."""
    from zkml_dvc.bulk import Get, get_many, put_missing
    from zkml_dvc.store import Store, StoreConfig

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    src = _file(tmp_path / "o", 3000)
    st = Store(StoreConfig(url=f"s3://{bucket}/envkeys", endpoint=s3_server.endpoint))
    assert put_missing(st, [("a/o", src)]) == 1
    dest = tmp_path / "dl" / "o"
    assert get_many(st, [Get("a/o", dest, "sha256", sha256_file(src))]) == [True]
    assert dest.read_bytes() == src.read_bytes()
    assert st._client is None  # no boto3 client was made
    named = Store(StoreConfig(url=f"s3://{bucket}/envkeys", endpoint=s3_server.endpoint,
                              profile="no-such-profile"))
    with pytest.raises(Exception, match="no-such-profile"):
        put_missing(named, [("a/p", src)])


def test_bulk_store_client_calls_move_small_files_with_one_request_each(
        s3_server, bucket, tmp_path, monkeypatch):
    """bulk.exists_many / put_files / get_files (the artifact bundles' S3 calls): one listing
    for many keys of one directory (else one HEAD per key asked), each small file one PUT up
    and one GET down, sha256 metadata as Store.put_file sets it; a large one by the store
    client; from the local cache a second time; and an object whose bytes are not the
    manifest's, or that is larger than it records, is refused with the store client's error and
    nothing placed."""
    from zkml_dvc import bulk
    from zkml_dvc.bulk import Fetch, Put

    monkeypatch.setattr(bulk, "ONE_BY_ONE", 64 * 1024)  # a large file that stays small on disk
    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(tmp_path / "cache"))
    st = make_store(s3_server, bucket, "bulkfiles")
    srcs = [_file(tmp_path / f"s{i}", 2000 + i) for i in range(30)] + [
        _file(tmp_path / "large", 200 * 1024)]
    puts = [Put(p, f"blobs/{p.name}", sha256_file(p), p.stat().st_size) for p in srcs]
    s3_server.guard.log.reset()
    assert bulk.put_files(st, puts) == 31
    ops = s3_server.guard.log.operations
    # one PUT each, no HEAD: the caller has asked what the store holds (exists_many)
    assert ops["HeadObject"] == 0 and ops["PutObject"] == 31, ops
    assert not s3_server.guard.log.violations, s3_server.guard.log.violations
    for p in (srcs[0], srcs[-1]):
        assert st.head(f"blobs/{p.name}")["Metadata"]["sha256"] == sha256_file(p)
    # 32 keys in one directory: one listing answers for them all
    asked = [p.rel for p in puts] + ["blobs/absent"]
    s3_server.guard.log.reset()
    assert bulk.exists_many(st, asked) == [True] * 31 + [False]
    ops = s3_server.guard.log.operations
    assert ops["HeadObject"] == 0 and ops["ListObjectsV2"] == 1, ops
    # fewer keys than that, or a directory holding too many keys per key asked: one HEAD each
    s3_server.guard.log.reset()
    assert bulk.exists_many(st, asked[-3:]) == [True, True, False]
    assert s3_server.guard.log.operations["HeadObject"] == 3
    per_object = bulk.KEYS_PER_OBJECT
    monkeypatch.setattr(bulk, "KEYS_PER_OBJECT", 0)
    s3_server.guard.log.reset()
    assert bulk.exists_many(st, asked) == [True] * 31 + [False]
    assert s3_server.guard.log.operations["HeadObject"] == 32
    monkeypatch.setattr(bulk, "KEYS_PER_OBJECT", per_object)

    fetches = [Fetch(f"blobs/{p.name}", tmp_path / "dl" / p.name, sha256_file(p),
                     p.stat().st_size) for p in srcs]
    s3_server.guard.log.reset()
    bulk.get_files(st, fetches)
    ops = s3_server.guard.log.operations
    # one GET per small file; the large one by the store client (a HEAD, then one GET: it is
    # under the ranged threshold)
    assert ops["GetObject"] == 31 and ops["HeadObject"] == 1, ops
    for p in srcs:
        assert (tmp_path / "dl" / p.name).read_bytes() == p.read_bytes()
    s3_server.guard.log.reset()
    bulk.get_files(st, [Fetch(f.rel, tmp_path / "again" / f.dest.name, f.sha256, f.size)
                        for f in fetches])
    assert s3_server.guard.log.operations["GetObject"] == 0  # all from the cache

    # the store's bytes are not the manifest's / more than it records: refused, nothing placed
    st.client.put_object(Bucket=st.bucket, Key=st.key("blobs/s5"), Body=b"x" * 2005,
                         Metadata={"sha256": sha256_file(srcs[5])})
    with pytest.raises(errors.HashMismatchError, match="s5"):
        bulk.get_files(st, [Fetch("blobs/s5", tmp_path / "bad" / "s5", sha256_file(srcs[5]),
                                  2005)], use_cache=False)
    assert not (tmp_path / "bad" / "s5").exists()
    with pytest.raises(errors.IntegrityError, match="more than the 100"):
        bulk.get_files(st, [Fetch("blobs/s6", tmp_path / "bad" / "s6", sha256_file(srcs[6]),
                                  100)], use_cache=False)
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())
