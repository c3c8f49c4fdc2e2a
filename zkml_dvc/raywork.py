"""Ray for zkml-dvc: the sessions it proves in, and how a worker obtains the files it needs.

A task or actor gets, for each file it needs, the file's sha256 and size plus two ways to obtain
it: a path on the driver's machine (used when it exists there with that hash: a local Ray
instance) and its content-addressed key in the store (used otherwise: workers on other machines
read the store with their own credentials; none are sent to them).

``session`` is the one way in: with an address, join that cluster (warning when it does not
authenticate); without, start a private local instance (loopback only, token-authenticated);
a session the caller's own code already opened is used as it is. Used by the chunk proofs
(chunked/ray_prove.py) and by batch proving (batch.py).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

ProgressFn = Callable[[str], None]


@dataclass
class FileRef:
    name: str
    sha256: str
    size: int
    local_path: str | None = None
    store_key: str | None = None  # relative to the store root


@dataclass
class StoreRef:
    """Where workers find the store (no credentials: workers use their own environment)."""

    url: str
    endpoint: str | None
    region: str | None


def private_ezkl_dir() -> None:
    """In a worker process: its own private (0700, unpredictable) ezkl directory, so ezkl's
    per-directory lock (ezkl_adapter) does not serialise workers that share a machine."""
    if not os.environ.get("EZKL_REPO_PATH"):
        os.environ["EZKL_REPO_PATH"] = tempfile.mkdtemp(prefix="zkml-dvc-ezkl-worker-")


def materialize(ref: FileRef, store: StoreRef | None, scratch: Path) -> tuple[Path, str]:
    """The file on this worker, checked by sha256, and where it came from ("local" or "store")."""
    from .fsutil import sha256_file

    if ref.local_path:
        p = Path(ref.local_path)
        if p.is_file() and p.stat().st_size == ref.size and sha256_file(p) == ref.sha256:
            return p, "local"
    if store is None or ref.store_key is None:
        raise ConfigError(
            f"{ref.name} is not on this worker and no store is configured",
            "Configure the project's remote (`zkml-dvc remote set`) so workers can read the store.",
        )
    from .remote import store_from_config

    s = store_from_config(store.url, endpoint=store.endpoint, region=store.region)
    return s.get_file(ref.store_key, scratch / ref.name, ref.sha256, use_cache=False), "store"


# Environment of a local Ray instance, set while it runs and restored after. Ray reads these in the
# driver when it is imported and passes them to every process it starts:
# - RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes the node address the loopback one, and Ray's servers
#   (GCS, raylet, workers, object manager, agents) then listen on 127.0.0.1 only;
# - RAY_AUTH_MODE=token with a fresh random RAY_AUTH_TOKEN: every RPC must carry the token (Ray >= 2.52).
# Ray deserialises task results with cloudpickle: whoever can reach its ports can run code.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# One random token per process: Ray's driver reads the token once and keeps it, so a second local
# instance started with a new token could not be reached by this process (GCS fails to start).
_TOKEN: list[str] = []


def _process_token() -> str:
    import secrets

    if not _TOKEN:
        _TOKEN.append(secrets.token_hex(32))
    return _TOKEN[0]


@contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    """Start a private Ray instance for this process: loopback only, token-authenticated, no
    dashboard; stopped and the environment restored on exit."""
    import shutil

    # Ray's session files and sockets, and (through TMPDIR, which its processes inherit) every
    # worker's scratch: under one private (0700) directory, removed with the instance. Created
    # first, so this process's own tempfile location is settled before TMPDIR changes. Unix
    # socket paths are limited to 107 bytes: a long TMPDIR falls back to /tmp.
    base = tempfile.gettempdir()
    scratch = tempfile.mkdtemp(prefix="zkml-ray-", dir=base if len(base) <= 40 else "/tmp")
    saved = {k: os.environ.get(k) for k in (_LOOPBACK_ENV, *_AUTH_ENV, "TMPDIR")}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update({_LOOPBACK_ENV: "0", "RAY_AUTH_MODE": "token",
                       "RAY_AUTH_TOKEN": _process_token(), "TMPDIR": scratch})
    try:
        import ray
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            # Ray was imported before the variable was set (by the caller's own code).
            raise ConfigError("cannot start a loopback-only Ray instance: Ray was imported before "
                              "zkml-dvc configured it",
                              "Set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or "
                              "pass --ray-address to use a cluster you run.")
        try:
            # address="local" always starts a new instance (a bare ray.init() would join a
            # cluster that `ray start` left running on this machine).
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False,
                     _temp_dir=os.path.join(scratch, "ray"))  # Ray makes its own dir 0777
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            raise ConfigError(f"cannot start a local Ray instance: {str(exc).splitlines()[0]}",
                              "Check that no other Ray instance holds this machine's resources, "
                              "or pass --ray-address.") from None
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(scratch, ignore_errors=True)


def unauthenticated_warning(ray_address: str) -> str | None:
    if os.environ.get("RAY_AUTH_MODE", "disabled") == "token":
        return None
    return (f"joining Ray at {ray_address} without token authentication (RAY_AUTH_MODE is not "
            "'token'): anyone who reaches the cluster's ports can run code on its workers and "
            "alter proofs before they are checked. Enable Ray token authentication "
            "(RAY_AUTH_MODE=token on every node, Ray >= 2.52).")


@contextmanager
def _joined(ray_address: str, say: ProgressFn) -> Iterator[None]:
    import ray

    warning = unauthenticated_warning(ray_address)
    if warning:
        say(f"warning: {warning}")
    try:
        ray.init(address=ray_address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:
        raise ConfigError(f"cannot join Ray at {ray_address}: {str(exc).splitlines()[0]}",
                          "Check --ray-address (host:port of the head node, or `auto`) and, with "
                          "token authentication, RAY_AUTH_TOKEN.") from None
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def session(ray_address: str | None, num_cpus: int, say: ProgressFn) -> Iterator[None]:
    """Ray, for the duration of the block: the caller's own session if one is open (theirs to
    run), else the cluster at ``ray_address``, else a private local instance of ``num_cpus``."""
    ray = sys.modules.get("ray")  # not imported here: local_ray must set Ray's variables first
    if ray is not None and ray.is_initialized():
        yield
        return
    with _joined(ray_address, say) if ray_address else local_ray(num_cpus):
        yield
