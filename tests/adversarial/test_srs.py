"""A store that offers an SRS: a machine takes one only by a pinned sha256, never by what the
store's metadata says, and a pinned one that fails its hash is an error, not a reason to make a
new one (issue 11, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import S3Server, make_store
from zkml_dvc import srs
from zkml_dvc.errors import HashMismatchError
from zkml_dvc.fsutil import sha256_bytes

K = 3  # a tiny SRS: gen_srs is instant


def _decoy(store, body: bytes, claimed_sha: str) -> None:  # type: ignore[no-untyped-def]
    store.client.put_object(Bucket=store.bucket, Key=store.key(f"srs/{claimed_sha}"), Body=body,
                            Metadata={"sha256": claimed_sha, "logrows": str(K), "source": "local"})


def test_store_metadata_never_chooses_an_srs(s3_server: S3Server, bucket: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(tmp_path / "cache"))  # a new machine
    store = make_store(s3_server, bucket)
    decoy = bytes(srs.expected_size(K))
    _decoy(store, decoy, sha256_bytes(decoy))  # right size, right metadata, anyone's bytes
    made = srs.obtain("local", K, store)  # no pin: the store's offer is not taken
    assert made.sha256 != sha256_bytes(decoy)
    assert srs.path_for(made).read_bytes() != decoy


def test_a_pinned_srs_that_fails_its_hash_is_an_error(s3_server: S3Server, bucket: str,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(tmp_path / "cache"))
    store = make_store(s3_server, bucket)
    pinned = "ab" * 32  # what an earlier run's manifest pins
    _decoy(store, bytes(srs.expected_size(K)), pinned)  # metadata claims the pinned hash
    with pytest.raises(HashMismatchError):
        srs.obtain("local", K, store, pins=[pinned])
    assert not any((tmp_path / "cache" / "srs").glob("*"))  # and no new SRS was adopted instead
