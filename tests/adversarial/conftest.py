"""One signed run, produced once for the adversarial tests, which play a malicious producer or
store against copies of its bucket (never the original)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    S3Server,
    allowed_signers,
    cli,
    connect,
    copy_bucket,
    new_bucket,
    new_project,
    producer_env,
    ssh_key,
)
from zkml_dvc.fsutil import sha256_bytes
from zkml_dvc.layout import run_index_prefix


@dataclass
class Victim:
    root: Path
    bucket: str
    key: Path  # the producer's SSH signing key
    allowed_signers: Path  # lists the producer's key
    prefix: str = run_index_prefix("testproj", "r1")


@pytest.fixture(scope="package")
def victim(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory,
           shared_cache: Path) -> Victim:
    tmp = tmp_path_factory.mktemp("victim")
    mp = producer_env(tmp, shared_cache)
    try:
        key = ssh_key(tmp, "producer")
        bucket = new_bucket(s3_server)
        root = new_project(tmp, "origin")
        connect(root, s3_server, bucket)
        res = cli("run", "--run-id", "r1", "--sign", "--signing-key", str(key), cwd=root)
        assert res.returncode == 0, res.stderr
        return Victim(root, bucket, key, allowed_signers(tmp / "allowed", "producer@example.org", key))
    finally:
        mp.undo()


@dataclass
class Forgery:
    """A copy of the victim's bucket that a test tampers with, re-pinning hashes consistently
    (as a malicious producer or store would)."""

    s3: S3Server
    bucket: str
    prefix: str

    def get(self, name: str) -> bytes:
        return bytes(self.s3.client().get_object(Bucket=self.bucket,
                                                 Key=f"{self.prefix}/{name}")["Body"].read())

    def put(self, name: str, body: bytes) -> str:
        """Replace an object (its stored sha256 updated to match); returns the sha256."""
        sha = sha256_bytes(body)
        self.s3.client().put_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}", Body=body,
                                    Metadata={"sha256": sha})
        return sha

    def edit_json(self, name: str, change: Callable[[dict], None]) -> str:
        data = json.loads(self.get(name))
        change(data)
        return self.put(name, json.dumps(data).encode())

    def repin(self, path: str, sha: str, size: int | None = None) -> str:
        """Point the store's manifest at new bytes for ``path``; returns the new manifest sha."""
        def change(m: dict) -> None:
            for a in m["artifacts"]:
                if a["path"] == path:
                    a["sha256"] = sha
                    if size is not None:
                        a["size"] = size
        return self.edit_json("manifest.json", change)


@pytest.fixture
def forgery(victim: Victim, s3_server: S3Server) -> Forgery:
    return Forgery(s3_server, copy_bucket(s3_server, victim.bucket), victim.prefix)
