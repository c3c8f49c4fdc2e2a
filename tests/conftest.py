"""Shared fixtures: isolated HOME, one real SeaweedFS per session behind the O3 guard, a fresh
bucket per test, a shared SRS cache, and real git + DVC projects in temp dirs."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faultproxy import FaultProxy
from tests.s3guard import S3Guard

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
ZKML = str(Path(sys.executable).parent / "zkml-dvc")
# The tests prove with a local gen_srs SRS (the public one cannot be downloaded here): verify must
# be told to accept it, and the verdict still says UNTRUSTED SRS. Store-only checks that have no
# pinned manifest take the store's word explicitly.
VERIFY = ("verify", "--allow-untrusted-srs")
VERIFY_ON_TRUST = (*VERIFY, "--trust-store")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SRS/blob cache for the whole session: gen_srs runs once per logrows."""
    return tmp_path_factory.mktemp("zkml-cache")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in list(os.environ):
        if var.startswith("AWS_") or var.startswith("DVC_") or var.startswith("ZKML_DVC_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("ZKML_DVC_NO_PROGRESS", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for k, v in {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.org",
                 "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.org"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    return home


@dataclass
class S3Server:
    endpoint: str  # the guard's endpoint: what clients use
    upstream: str  # SeaweedFS itself (only for corrupting objects behind our back)
    access_key_id: str
    secret_access_key: str
    guard: S3Guard

    def client(self, direct: bool = False):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.upstream if direct else self.endpoint,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            region_name="akave-network",
            config=Config(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_DEFAULT_REGION": "akave-network"}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    from zkml_dvc import localstore

    state = tmp_path_factory.mktemp("seaweedfs")
    st = localstore.up(state, bucket="zkml-session")
    creds = localstore.credentials(state)
    guard = S3Guard(st.endpoint).start()
    try:
        yield S3Server(guard.endpoint, st.endpoint, creds["access_key_id"],
                       creds["secret_access_key"], guard)
    finally:
        guard.stop()
        localstore.down(state)


@pytest.fixture(scope="session")
def fault_proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    """mitmproxy with the fault addon, in front of the O3 guard (started only by fault tests)."""
    proxy = FaultProxy(s3_server.endpoint)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh versioned bucket; fails the test if any request left O3's documented surface."""
    name = f"t-{secrets.token_hex(6)}"
    c = s3_server.client()
    c.create_bucket(Bucket=name)
    c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3_server.guard.log.reset()
    yield name
    violations = list(s3_server.guard.log.violations)
    assert not violations, f"requests outside O3's documented surface: {violations}"


def make_store(s3: S3Server, bucket: str, prefix: str = "",  # type: ignore[no-untyped-def]
               endpoint: str | None = None):
    from zkml_dvc.store import Store, StoreConfig

    return Store(StoreConfig(url=f"s3://{bucket}/{prefix}".rstrip("/"),
                             endpoint=endpoint or s3.endpoint,
                             access_key_id=s3.access_key_id,
                             secret_access_key=s3.secret_access_key))


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        check: bool = False, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `zkml-dvc` console script (``stdin``: what to type, e.g. a secret)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([ZKML, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          check=False, timeout=900, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"zkml-dvc {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def new_project(tmp_path: Path, name: str = "proj", model: str = "mlp",
                project_id: str = "testproj") -> Path:
    root = tmp_path / name
    cli("init", str(root), "--model", str(MODELS / model / "network.onnx"),
        "--input", str(MODELS / model / "input.json"),
        "--calibration", str(MODELS / model / "calibration.json"),
        "--project", project_id, "--name", model, check=True)
    # The example models' calibration pins one scale: keeps calibration to a fraction of a second.
    params = (root / "params.yaml").read_text().replace("scales: null", "scales:\n    - 7")
    (root / "params.yaml").write_text(params)
    subprocess.run(["git", "commit", "-qam", "pin scale"], cwd=root, check=True)
    return root


def connect(root: Path, s3: S3Server, bucket: str) -> None:
    """Point a project's remote `o3` at a test bucket (credentials in .dvc/config.local)."""
    cli("remote", "set", f"s3://{bucket}", "--endpoint", s3.endpoint, "--access-key-id",
        s3.access_key_id, cwd=root, check=True, stdin=s3.secret_access_key + "\n")
    subprocess.run(["git", "add", ".dvc"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "remote"], cwd=root, check=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path)


def clone(src: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(src), str(dest)], check=True)
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def new_bucket(s3: S3Server) -> str:
    """A fresh versioned bucket (for module fixtures; tests use the `bucket` fixture)."""
    name = f"t-{secrets.token_hex(6)}"
    c = s3.client()
    c.create_bucket(Bucket=name)
    c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def copy_bucket(s3: S3Server, src: str) -> str:
    """A copy of a bucket, for tampering tests that must not touch the original."""
    dst = new_bucket(s3)
    c = s3.client()
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=src):
        for obj in page.get("Contents", []):
            c.copy_object(Bucket=dst, Key=obj["Key"], CopySource={"Bucket": src, "Key": obj["Key"]})
    return dst


def producer_env(tmp: Path, shared_cache: Path) -> pytest.MonkeyPatch:
    """Env of a 'producer machine' for module fixtures (the autouse isolation is per test):
    its own HOME, the shared SRS cache, a git identity. Call .undo() when done."""
    mp = pytest.MonkeyPatch()
    (tmp / "home").mkdir()
    mp.setenv("HOME", str(tmp / "home"))
    mp.setenv("ZKML_DVC_CACHE_DIR", str(shared_cache))
    for k in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        mp.setenv(k, "Producer")
    for k in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        mp.setenv(k, "producer@example.org")
    return mp


def machine_env(tmp_path: Path, s3: S3Server, name: str = "machine") -> dict[str, str]:
    """Env of another machine: its own HOME and cache, the store reached through env vars only."""
    home = tmp_path / f"{name}-home"
    home.mkdir()
    return {"HOME": str(home), "ZKML_DVC_CACHE_DIR": str(home / "cache"), **s3.env()}


def ssh_key(directory: Path, name: str) -> Path:
    """A new unencrypted ed25519 key pair (real ssh-keygen); returns the private key's path."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True)
    return key


def allowed_signers(path: Path, principal: str, key: Path) -> Path:
    """An OpenSSH allowed-signers file listing ``key`` for ``principal``."""
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    path.write_text(f"{principal} {kind} {blob}\n")
    return path
