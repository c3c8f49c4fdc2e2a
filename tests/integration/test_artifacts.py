"""The typed artifact API against the real local store and a local directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import S3Server
from zkml_dvc import errors
from zkml_dvc.artifacts import (
    Artifact,
    ArtifactNotFoundError,
    ArtifactTypeError,
    parse_ref,
    pull,
    push,
)
from zkml_dvc.fsutil import sha256_file


class Bundle(Artifact):
    main: Path
    shards: list[Path]
    extra: Path | None = None
    note: str
    epochs: int


class OtherBundle(Artifact):
    main: Path
    note: str


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch) -> None:
    # downloads are cached by sha256: these tests count and corrupt downloads, so start empty
    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(params=["s3", "dir", "memory"])
def base(request, tmp_path: Path, monkeypatch) -> str:
    if request.param == "dir":
        return str(tmp_path / "artifact-store")
    if request.param == "memory":  # any other fsspec filesystem, with no change to the code
        import secrets

        return f"memory://store-{secrets.token_hex(4)}"
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("bucket")
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    return f"s3://{bucket}/team"


def _bundle(tmp_path: Path) -> Bundle:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    (src / "main.bin").write_bytes(b"main" * 1000)
    # two files with the same basename: both must survive
    (src / "a" / "part.json").write_text('{"shard": "a"}')
    (src / "b" / "part.json").write_text('{"shard": "b"}')
    return Bundle(main=src / "main.bin", shards=[src / "a" / "part.json", src / "b" / "part.json"],
                  note="first", epochs=3)


def test_round_trip_keeps_same_named_files_apart(base: str, tmp_path: Path):
    b = _bundle(tmp_path)
    version = push(b, f"{base}/bundle")
    got = pull(Bundle, f"{base}/bundle:{version}", dest=tmp_path / "out")
    assert got.note == "first" and got.epochs == 3 and got.extra is None
    assert sha256_file(got.main) == sha256_file(b.main)
    assert [json.loads(p.read_text())["shard"] for p in got.shards] == ["a", "b"]
    assert got.shards[0] != got.shards[1]
    assert str(got.shards[0]).startswith(str(tmp_path / "out"))


def test_many_files_and_a_large_one_round_trip_in_order(base: str, tmp_path: Path):
    """60 shards (moved side by side) and a 9 MiB main file (moved alone) come back each in its
    place and order, byte for byte."""
    import os

    src = tmp_path / "many"
    src.mkdir()
    shards = []
    for i in range(60):
        shards.append(src / f"s{i:02d}.bin")
        shards[-1].write_bytes(os.urandom(1000 + i))
    (src / "main.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    b = Bundle(main=src / "main.bin", shards=shards, note="many", epochs=1)
    version = push(b, f"{base}/many")
    got = pull(Bundle, f"{base}/many:{version}", dest=tmp_path / "out")
    assert [sha256_file(p) for p in got.shards] == [sha256_file(p) for p in shards]
    assert sha256_file(got.main) == sha256_file(b.main)


def test_partial_pull_downloads_only_the_fields_asked(base: str, tmp_path: Path, request):
    push(_bundle(tmp_path), f"{base}/bundle")
    if base.startswith("s3://"):
        s3: S3Server = request.getfixturevalue("s3_server")
        s3.guard.log.reset()
    got = pull(Bundle, f"{base}/bundle:latest", fields=["main"], dest=tmp_path / "out")
    assert got.main.exists() and got.shards is None
    assert not (tmp_path / "out" / "shards").exists()
    if base.startswith("s3://"):
        # the latest pointer, the manifest and one blob
        assert s3.guard.log.operations["GetObject"] == 3


def test_versions_are_immutable_and_latest_is_newest(base: str, tmp_path: Path):
    b = _bundle(tmp_path)
    v1 = push(b, f"{base}/bundle")
    v2 = push(b.model_copy(update={"note": "second"}), f"{base}/bundle")
    assert v2 > v1
    assert pull(Bundle, f"{base}/bundle", fields=[]).note == "second"
    assert pull(Bundle, f"{base}/bundle:{v1}", fields=[]).note == "first"
    with pytest.raises(errors.InputError, match="immutable"):
        push(b, f"{base}/bundle:{v1}")
    with pytest.raises(ArtifactNotFoundError, match="no version"):
        pull(Bundle, f"{base}/bundle:20000101-000000-000000")
    with pytest.raises(ArtifactNotFoundError, match="no artifact"):
        pull(Bundle, f"{base}/nothing")


def test_latest_is_a_checked_pointer_and_versions_are_write_once(base: str, tmp_path: Path,
                                                                  monkeypatch):
    """A version that merely sorts higher cannot become `latest`; a pinned manifest is checked;
    a version id that exists is never written over (issue 14, item 5)."""
    from zkml_dvc import artifacts
    from zkml_dvc.fsutil import sha256_bytes

    b = _bundle(tmp_path)
    v1 = push(b, f"{base}/bundle")
    backend = artifacts.backend_for(base)
    genuine = backend.get_bytes(f"artifacts/bundle/versions/{v1}/manifest.json")
    forged = json.loads(genuine)
    forged.update(version="99991231-235959999-ffffff", metadata={**forged["metadata"], "note": "evil"})
    backend.put_bytes(json.dumps(forged).encode(),
                      "artifacts/bundle/versions/99991231-235959999-ffffff/manifest.json")
    assert pull(Bundle, f"{base}/bundle", fields=[]).note == "first"  # the pointer, not the sort
    assert pull(Bundle, f"{base}/bundle", fields=[], sha256=sha256_bytes(genuine)).note == "first"
    with pytest.raises(errors.IntegrityError):
        pull(Bundle, f"{base}/bundle:{v1}", fields=[], sha256="0" * 64)
    # the version the pointer names, edited in place: the pointer's hash refuses it
    backend.put_bytes(genuine.replace(b'"first"', b'"edited"'),
                      f"artifacts/bundle/versions/{v1}/manifest.json")
    with pytest.raises(errors.IntegrityError):
        pull(Bundle, f"{base}/bundle", fields=[])
    # a version id that already exists (a concurrent writer got there first) is not overwritten
    monkeypatch.setattr(artifacts, "_versions", lambda *_: [])
    monkeypatch.setattr("zkml_dvc.runs.new_run_id", lambda: v1)
    with pytest.raises(errors.InputError, match="already exists"):
        push(b, f"{base}/bundle")


def test_wrong_class_and_bad_metadata(base: str, tmp_path: Path):
    push(_bundle(tmp_path), f"{base}/bundle")
    with pytest.raises(ArtifactTypeError, match="not a tests.integration.test_artifacts.OtherBundle"):
        pull(OtherBundle, f"{base}/bundle")
    with pytest.raises(errors.InputError, match="no file fields"):
        pull(Bundle, f"{base}/bundle", fields=["nope"])


def test_same_content_is_stored_once(s3_server: S3Server, bucket: str, tmp_path: Path,
                                     monkeypatch):
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    b = _bundle(tmp_path)
    push(b, f"s3://{bucket}/team/bundle")
    s3_server.guard.log.reset()
    push(b.model_copy(update={"note": "again"}), f"s3://{bucket}/team/bundle")
    assert s3_server.guard.log.put_keys == [  # the new version and the latest pointer only
        k for k in s3_server.guard.log.put_keys if k.endswith(("manifest.json", "latest.json"))]


def test_tampered_blob_is_refused(s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch):
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    b = _bundle(tmp_path)
    push(b, f"s3://{bucket}/team/bundle")
    key = f"team/blobs/{sha256_file(b.main)}"
    head = s3_server.client().head_object(Bucket=bucket, Key=key)
    s3_server.client(direct=True).put_object(Bucket=bucket, Key=key, Body=b"evil",
                                             Metadata=head["Metadata"])
    out = tmp_path / "out"
    with pytest.raises(errors.IntegrityError, match="blobs"):
        pull(Bundle, f"s3://{bucket}/team/bundle", dest=out)
    assert not (out / "main" / "main.bin").exists()


def test_tampered_blob_in_a_directory_store(tmp_path: Path):
    b = _bundle(tmp_path)
    store = tmp_path / "store"
    push(b, f"{store}/bundle")
    (store / "blobs" / sha256_file(b.main)).write_bytes(b"evil")
    with pytest.raises(errors.IntegrityError):
        pull(Bundle, f"{store}/bundle", dest=tmp_path / "out")


def test_refs():
    assert parse_ref("s3://b/p/q/name:v1") == ("s3://b/p/q", "name", "v1")
    assert parse_ref("/tmp/store/name") == ("/tmp/store", "name", None)
    with pytest.raises(errors.InputError):
        parse_ref("name-only")


BIG = r'''
import os, resource, sys
from pathlib import Path
from zkml_dvc.artifacts import Artifact, push
class Big(Artifact):
    blob: Path
p = Path(sys.argv[1]); ref = sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
push(Big(blob=p), ref)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, after * 1024)
'''


@pytest.mark.slow
def test_200mb_push_has_bounded_memory(s3_server: S3Server, bucket: str, tmp_path: Path):
    size = 200 * 1024 * 1024
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(200):
            fh.write(b"\x5a" * (1024 * 1024))
    env = {**__import__("os").environ, **s3_server.env()}
    # import boto3 etc. first so the baseline includes the libraries, not only the interpreter
    code = "import boto3, zkml_dvc.store, zkml_dvc.artifacts\n" + BIG
    out = subprocess.run([sys.executable, "-c", code, str(big), f"s3://{bucket}/team/big"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    growth = after - before
    assert growth < 0.75 * size, f"peak RSS grew by {growth / 2**20:.0f} MiB for a 200 MiB file"
    assert s3_server.guard.log.operations["UploadPart"] >= 2
