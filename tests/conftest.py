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

# tests/live/ (a real O3 bucket) is selected only when all of these are set. Read at import, before
# the per-test isolation removes ZKML_DVC_* variables from the environment.
LIVE_VARS = ("ZKML_DVC_LIVE_ENDPOINT", "ZKML_DVC_LIVE_BUCKET", "ZKML_DVC_LIVE_ACCESS_KEY_ID",
             "ZKML_DVC_LIVE_SECRET_ACCESS_KEY")
LIVE_SETTINGS = {k: os.environ.get(k, "") for k in LIVE_VARS}
LIVE_ENABLED = all(LIVE_SETTINGS.values())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) the live O3 tests unless configured: nothing unrun counts as passed."""
    if LIVE_ENABLED:
        return
    live = [i for i in items if i.get_closest_marker("live")]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [i for i in items if not i.get_closest_marker("live")]
        config._zkml_live_deselected = len(live)  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A passing run leaves nothing in the temp dir (the store's data, projects, clones); a
    failing one keeps everything for inspection."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if exitstatus == 0 and factory is not None and not hasattr(session.config, "workerinput"):
        shutil.rmtree(factory.getbasetemp(), ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    n = getattr(config, "_zkml_live_deselected", 0)
    if n:
        terminalreporter.write_line(
            f"live O3 tests not selected ({n}): set {', '.join(LIVE_VARS)} to run them against a "
            "real O3 bucket (docs/o3.md)")


@pytest.fixture(scope="session", autouse=True)
def store_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's local store directory, with its CA and server certificate (zkml_dvc.tls):
    the store and the O3 guard serve HTTPS, as O3 does, and every client in every fixture and
    test trusts that CA through AWS_CA_BUNDLE."""
    from zkml_dvc import tls

    state = tmp_path_factory.mktemp("seaweedfs")
    certs = tls.ensure(state / "tls")
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_CA_BUNDLE", str(certs.ca))
    try:
        yield state
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SRS/blob cache for the whole session: gen_srs runs once per logrows."""
    return tmp_path_factory.mktemp("zkml-cache")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path,
                 store_tls: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in list(os.environ):
        if var.startswith("AWS_") or var.startswith("DVC_") or var.startswith("ZKML_DVC_"):
            monkeypatch.delenv(var)
    from zkml_dvc import tls

    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.files(store_tls / "tls").ca))
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
    endpoint: str  # the guard's endpoint: what clients use (HTTPS)
    upstream: str  # SeaweedFS itself (only for corrupting objects behind our back)
    access_key_id: str
    secret_access_key: str
    guard: S3Guard
    ca_bundle: str  # the CA both serve certificates from

    def client(self, direct: bool = False):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.upstream if direct else self.endpoint,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            region_name="akave-network", verify=self.ca_bundle,
            config=Config(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_DEFAULT_REGION": "akave-network",
                "AWS_CA_BUNDLE": self.ca_bundle}


@pytest.fixture(scope="session")
def s3_server(store_tls: Path) -> Iterator[S3Server]:
    from zkml_dvc import localstore, tls

    state = store_tls
    st = localstore.up(state, bucket="zkml-session")  # HTTPS, with the certificates in state/tls
    assert st.endpoint.startswith("https://") and st.ca_bundle
    certs = tls.files(state / "tls")
    creds = localstore.credentials(state)
    guard = S3Guard(st.endpoint, cert=str(certs.cert), key=str(certs.key),
                    ca=st.ca_bundle).start()
    try:
        yield S3Server(guard.endpoint, st.endpoint, creds["access_key_id"],
                       creds["secret_access_key"], guard, st.ca_bundle)
    finally:
        guard.stop()
        localstore.down(state)
    # module fixtures (producer runs) happen outside any test's window: check the whole session
    assert not guard.log.every_violation, \
        f"requests outside O3's documented surface: {guard.log.every_violation}"


@pytest.fixture(autouse=True)
def o3_surface(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that talks to the store (it uses `s3_server`, directly or through another
    fixture) fails at teardown if the guard saw any operation, header or key outside O3's
    documented set during it."""
    if "s3_server" not in request.fixturenames:
        yield
        return
    log = request.getfixturevalue("s3_server").guard.log
    start = len(log.every_violation)
    yield
    new = log.every_violation[start:]
    assert not new, f"requests outside O3's documented surface: {new}"


@pytest.fixture(scope="session")
def fault_proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    """mitmproxy with the fault addon, in front of the O3 guard (started only by fault tests)."""
    proxy = FaultProxy(s3_server.endpoint, tls_dir=Path(s3_server.ca_bundle).parent)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh versioned bucket; fails the test if any request left O3's documented surface."""
    name = new_bucket(s3_server)
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
    # Without a cwd, the test's HOME: never the repository itself (a DVC project, which
    # commands such as `store up` would configure).
    cwd = cwd or Path(full_env["HOME"])
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
    # Set-up, straight to SeaweedFS: an O3 bucket is created in Akave's console and is always
    # versioned; PutBucketVersioning carries a checksum header that O3 would refuse.
    c = s3.client(direct=True)
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
    ca = os.environ.get("AWS_CA_BUNDLE")  # the session's store CA (store_tls)
    for var in list(os.environ):
        if var.startswith(("AWS_", "DVC_", "ZKML_DVC_", "XDG_")):
            mp.delenv(var)
    if ca:
        mp.setenv("AWS_CA_BUNDLE", ca)
    mp.setenv("HOME", str(tmp / "home"))
    mp.setenv("ZKML_DVC_CACHE_DIR", str(shared_cache))
    mp.setenv("ZKML_DVC_NO_PROGRESS", "1")
    mp.setenv("DVC_NO_ANALYTICS", "1")
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
