import os
import stat
from pathlib import Path

import pytest

from zkml_dvc import errors, fsutil
from zkml_dvc.fsutil import atomic_path, atomic_write_json, confined, current_umask, sha256_file
from zkml_dvc.o3names import check_bucket_name, check_key, parse_url


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path):
    dest = tmp_path / "out" / "m.json"
    atomic_write_json(dest, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert dest.read_text().strip().endswith("}") and '"v": 1' in dest.read_text()
    assert [p.name for p in dest.parent.iterdir()] == ["m.json"], "no temp file left behind"


def test_secret_files_are_0600(tmp_path: Path):
    atomic_write_json(tmp_path / "c.json", {"secret": "x"}, mode=0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "c.json").st_mode) == 0o600


def test_sha256_streams(tmp_path: Path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("rel", ["../x", "/abs", "a/../../x", ""])
def test_confined_refuses_escapes(tmp_path: Path, rel: str):
    with pytest.raises(errors.InputError):
        confined(tmp_path, rel)


def test_confined_accepts_inside(tmp_path: Path):
    assert confined(tmp_path, "a/b.json") == (tmp_path / "a" / "b.json").resolve()


@pytest.mark.parametrize("name", ["ab", "UPPER", "has_underscore", "-start", "end-", "a" * 64, "a--b"])
def test_bucket_names_o3_refuses(name):
    with pytest.raises(errors.InputError, match="bucket name"):
        check_bucket_name(name)


def test_bucket_and_url_ok():
    assert parse_url("s3://zkml-dvc/team/a") == ("zkml-dvc", "team/a")
    assert parse_url("s3://zkml-dvc") == ("zkml-dvc", "")
    with pytest.raises(errors.InputError, match="s3://BUCKET"):
        parse_url("https://x/y")


@pytest.mark.parametrize("key", ["a b", "a#b", "a?b", "x%y", "a//b", "/lead", "ü"])
def test_unsafe_keys(key):
    with pytest.raises(errors.InputError, match="characters O3"):
        check_key(key)


def test_deeply_nested_json_is_an_input_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(errors.InputError, match="nested too deeply"):
        from zkml_dvc.fsutil import read_json

        read_json(deep, "settings")


def test_confined_refuses_a_symlink_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "proofs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(errors.InputError, match="resolves outside"):
        confined(root, "proofs/proof.json")
    assert confined(root, "keys/vk.key") == (root / "keys" / "vk.key").resolve()


def test_stale_incomplete_downloads_are_swept_from_the_cache(tmp_path, monkeypatch):
    import os
    import time

    from zkml_dvc import cache

    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(tmp_path))
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    old, fresh, blob = blobs / ".aa.x1.incomplete", blobs / ".bb.x2.incomplete", blobs / ("c" * 64)
    for p in (old, fresh, blob):
        p.write_bytes(b"x")
    day_ago = time.time() - cache.STALE_AFTER_S - 60
    os.utime(old, (day_ago, day_ago))
    os.utime(blob, (day_ago, day_ago))
    assert cache.sweep_incomplete() == [old]
    assert not old.exists() and fresh.exists() and blob.exists()


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/etc/passwd", "a//b", "./a", ""])
def test_fsspec_artifact_keys_never_leave_the_root(tmp_path, key):
    from zkml_dvc.artifacts import FsspecBackend

    backend = FsspecBackend(str(tmp_path / "store"))
    with pytest.raises(errors.InputError, match="refusing artifact key"):
        backend.put_bytes(b"x", key)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "b").exists()


def test_fsspec_writes_are_whole_or_absent(tmp_path):
    from zkml_dvc.artifacts import FsspecBackend

    backend = FsspecBackend(str(tmp_path / "store"))
    backend.put_bytes(b"manifest", "art/v1/manifest.json")
    assert backend.get_bytes("art/v1/manifest.json") == b"manifest"
    assert [p.name for p in (tmp_path / "store" / "art" / "v1").iterdir()] == ["manifest.json"]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a" * 63, "A" * 64, "g" * 64, "a" * 64 + "/x"])
def test_a_sha256_must_be_64_hex_digits_before_it_names_a_cache_file(bad: str):
    from zkml_dvc.cache import blob_path
    from zkml_dvc.errors import ZkmlError

    with pytest.raises((ZkmlError, ValueError)):
        blob_path(bad)
    assert blob_path("0" * 64).name == "0" * 64


@pytest.mark.parametrize("from_proc", [True, False])
def test_current_umask_reads_the_umask_and_leaves_it(monkeypatch, from_proc: bool):
    if not from_proc:  # a system without /proc: set and restored
        def no_proc(*args, **kwargs):
            raise OSError("no /proc here")
        monkeypatch.setattr(fsutil, "open", no_proc, raising=False)
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
        assert os.umask(0o022) == 0o027  # unchanged by the reads
    finally:
        os.umask(old)
