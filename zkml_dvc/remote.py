"""The DVC remote `o3`, and resolving which store (and how to reach it) a command uses.

The remote points at ``<store root>/dvc``; the run index and SRS live beside it under the same root.
Tracked ``.dvc/config`` gets only the URL, endpoint and region: nothing that makes DVC read a file
or run a command (docs/security.md). Machine-local settings go to git-ignored
``.dvc/config.local`` (mode 0600): the profile, the keys, and ``configpath``, which points at a
per-user AWS config file (``$XDG_CONFIG_HOME/zkml-dvc/o3-aws.config``) that turns off the checksum
headers O3 rejects, so plain `dvc push`/`dvc pull` work too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import env
from .errors import ConfigError
from .fsutil import atomic_write_text
from .layout import STORE_DVC_PREFIX
from .o3names import parse_url
from .store import Store, StoreConfig

REMOTE_NAME = "o3"
AWS_CONFIG_NAME = "o3-aws.config"


def _aws_config_text(profiles: list[str]) -> str:
    body = "request_checksum_calculation = when_required\nresponse_checksum_validation = when_required\n"
    text = (
        "# Written by zkml-dvc: Akave O3 rejects the checksum headers recent AWS SDKs send by\n"
        "# default. DVC reads this file through the remote's `configpath` (set in each project's\n"
        "# git-ignored .dvc/config.local). No secrets here.\n"
        f"[default]\n{body}"
    )
    for profile in profiles:
        text += f"\n[profile {profile}]\n{body}"
    return text


def set_remote(
    root: Path,
    url: str,
    endpoint: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    endpoint_local: bool = False,
    ca_bundle: str | None = None,
) -> str:
    """Configure remote `o3` at ``url`` (the store root); returns the DVC remote URL.

    ``endpoint_local`` keeps the endpoint in config.local (for a machine-local store whose port is
    not meaningful elsewhere); ``ca_bundle`` (the local store's CA) goes there as ``ssl_verify``,
    which DVC passes to boto as the certificates to trust.
    """
    check_endpoint_scheme(endpoint)
    from dvc.config import Config
    from dvc.config_schema import RelPath

    bucket, prefix = parse_url(url)
    dvc_url = f"s3://{bucket}/{prefix + '/' if prefix else ''}{STORE_DVC_PREFIX}"
    aws_config = user_aws_config(profile)
    conf = Config(dvc_dir=str(root / ".dvc"), validate=False)
    with conf.edit("repo") as repo_conf:
        core = repo_conf.setdefault("core", {})
        core["remote"] = REMOTE_NAME
        remote = {"url": dvc_url, "region": region or env.O3_DEFAULT_REGION}
        if endpoint and not endpoint_local:
            remote["endpointurl"] = endpoint
        repo_conf.setdefault("remote", {})[REMOTE_NAME] = remote
    local_path = root / ".dvc" / "config.local"
    # mode 0600 before the first byte: DVC rewrites the file in place and keeps its mode
    fd = os.open(local_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(local_path, 0o600)
    with conf.edit("local") as local_conf:
        local = local_conf.setdefault("remote", {}).setdefault(REMOTE_NAME, {})
        local["configpath"] = RelPath(str(aws_config))
        if profile:
            local["profile"] = profile
        if endpoint and endpoint_local:
            local["endpointurl"] = endpoint
        if ca_bundle:
            local["ssl_verify"] = ca_bundle
        else:
            local.pop("ssl_verify", None)
        if access_key_id:
            local["access_key_id"] = access_key_id
        if secret_access_key:
            local["secret_access_key"] = secret_access_key
    return dvc_url


def user_aws_config(profile: str | None = None) -> Path:
    """The per-user AWS config file with O3's client settings, for the default profile and every
    profile a project named (``profile`` is added); never tracked by a project."""
    import re

    path = env.config_dir() / AWS_CONFIG_NAME
    known = set(re.findall(r"^\[profile ([^\]]+)\]", path.read_text(), re.M)) if path.exists() else set()
    if profile:
        known.add(profile)
    text = _aws_config_text(sorted(known))
    if not path.exists() or path.read_text() != text:
        atomic_write_text(path, text)
    return path


def tracked_secrets(root: Path) -> list[str]:
    """Secret options that the *tracked* .dvc/config holds for any remote (they belong in
    git-ignored .dvc/config.local)."""
    from dvc.config import Config

    try:
        tracked = Config(dvc_dir=str(root / ".dvc"), validate=False).load_one("repo")
    except Exception:
        return []
    found = []
    for name, remote in (tracked.get("remote") or {}).items():
        for key in ("secret_access_key", "session_token", "access_key_id"):
            if (remote or {}).get(key):
                found.append(f"remote.{name}.{key}")
    return found


def remote_config(root: Path) -> dict[str, Any] | None:
    """The DVC remote `o3` of a project, merged over DVC's config levels; None if not set."""
    from dvc.config import Config

    conf = Config(dvc_dir=str(root / ".dvc"))
    return dict(conf.get("remote", {}).get(REMOTE_NAME) or {}) or None


def store_root_from_remote(url: str) -> str:
    suffix = "/" + STORE_DVC_PREFIX
    if not url.rstrip("/").endswith(suffix):
        raise ConfigError(
            f"the DVC remote `o3` ({url}) does not end in /{STORE_DVC_PREFIX}",
            "Set it with `zkml-dvc remote set s3://BUCKET/PREFIX --endpoint URL`.",
        )
    return url.rstrip("/")[: -len(suffix)]


def resolve_store_config(
    url: str,
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    remote: Mapping[str, Any] | None = None,
) -> StoreConfig:
    """How to reach the store at ``url``: every setting resolved in one order,
    **CLI flag > environment variable > project remote `o3` > default**.

    - endpoint: ``--endpoint`` > ``AWS_ENDPOINT_URL_S3`` > ``AWS_ENDPOINT_URL`` > the remote's
      ``endpointurl`` > none (AWS's own endpoints);
    - region: ``--region`` > ``AWS_DEFAULT_REGION`` > the remote's ``region`` > ``akave-network``;
    - profile: ``--profile`` > ``AWS_PROFILE`` > the remote's ``profile`` > none;
    - CA bundle: it follows the endpoint: the remote's ``ssl_verify`` (a path: the local store's
      CA, written with its endpoint by `zkml-dvc store up`) when the endpoint is the remote's,
      else ``AWS_CA_BUNDLE``, else that ``ssl_verify``, else the system's CAs;
    - a plain ``http://`` endpoint on another host is refused unless ``ZKML_DVC_ALLOW_HTTP`` is set;
    - keys: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (left to botocore, which reads them)
      > the remote's ``access_key_id``/``secret_access_key`` (git-ignored ``.dvc/config.local``)
      > the profile > botocore's default chain. There is no flag for keys: secrets never go on a
      command line.

    ``flags`` holds the command's options (endpoint, region, profile); ``environ`` defaults to
    the process environment; ``remote`` is the project's remote `o3` (``remote_config``).
    """
    flags = flags or {}
    remote = remote or {}
    environ = os.environ if environ is None else environ

    def pick(flag: str, env_names: tuple[str, ...], remote_key: str) -> str | None:
        for value in (flags.get(flag), *(environ.get(n) for n in env_names), remote.get(remote_key)):
            if value:
                return str(value)
        return None

    endpoint = pick("endpoint", (env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL), "endpointurl")
    check_endpoint_scheme(endpoint, environ)
    return StoreConfig(
        url=url,
        endpoint=endpoint,
        region=pick("region", (env.AWS_DEFAULT_REGION,), "region") or env.O3_DEFAULT_REGION,
        profile=pick("profile", (env.AWS_PROFILE,), "profile"),
        access_key_id=None if environ.get(env.AWS_ACCESS_KEY_ID) else remote.get("access_key_id"),
        secret_access_key=None if environ.get(env.AWS_SECRET_ACCESS_KEY)
        else remote.get("secret_access_key"),
        ca_bundle=_ca_bundle(endpoint, flags, environ, remote),
    )


def _ca_bundle(endpoint: str | None, flags: Mapping[str, str | None], environ: Mapping[str, str],
               remote: Mapping[str, Any]) -> str | None:
    """The CA certificates follow the endpoint: the remote's ``ssl_verify`` path (the local
    store's CA, written with its endpoint by `store up`) when the endpoint is the remote's own,
    else ``AWS_CA_BUNDLE``, else that ``ssl_verify``; None: botocore's default."""
    ssl_verify = remote.get("ssl_verify")
    own = str(ssl_verify) if isinstance(ssl_verify, str) and ssl_verify else None
    endpoint_from_remote = endpoint is not None and endpoint == remote.get("endpointurl") and not (
        flags.get("endpoint") or environ.get(env.AWS_ENDPOINT_URL_S3)
        or environ.get(env.AWS_ENDPOINT_URL))
    if own and endpoint_from_remote:
        return own
    return environ.get(env.AWS_CA_BUNDLE) or own


def check_endpoint_scheme(endpoint: str | None, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a plain-HTTP endpoint on another host (credentials and artifacts would cross the
    network in clear) unless ZKML_DVC_ALLOW_HTTP is set; loopback HTTP is fine."""
    from urllib.parse import urlsplit

    environ = os.environ if environ is None else environ
    if not endpoint or not endpoint.lower().startswith("http://") or environ.get(env.ALLOW_HTTP):
        return
    host = (urlsplit(endpoint).hostname or "").lower()
    if host in ("localhost", "::1") or host.startswith("127."):
        return
    raise ConfigError(
        f"the store endpoint {endpoint} is plain HTTP on another host: keys, signatures and "
        "artifacts would cross the network unencrypted",
        "Use its https:// endpoint (O3 is HTTPS), or set ZKML_DVC_ALLOW_HTTP=1 to accept plain "
        "HTTP knowingly.")


def store_from_config(url: str, endpoint: str | None = None, region: str | None = None,
                      profile: str | None = None, remote: Mapping[str, Any] | None = None) -> Store:
    """A Store for ``url`` resolved by ``resolve_store_config`` (flags, then env, then remote)."""
    return Store(resolve_store_config(
        url, {"endpoint": endpoint, "region": region, "profile": profile}, remote=remote))


def find_project_store(root: Path) -> Store | None:
    """The store configured for a project (its DVC remote `o3`), or None."""
    if not (root / ".dvc").is_dir():
        return None
    remote = remote_config(root)
    if not remote or "url" not in remote:
        return None
    return store_from_config(store_root_from_remote(remote["url"]), remote=remote)


# Remote options that make DVC or boto read files or run commands the repository chooses.
_UNSAFE_IN_A_CLONE = ("configpath", "credentialpath", "profile", "access_key_id",
                      "secret_access_key", "session_token")


def clone_config_warnings(root: Path) -> list[str]:
    """What a clone's *tracked* DVC config sets that a verifier must not use: AWS config or
    credential files (which can hold a ``credential_process``), profiles, keys; and a tracked
    ``.dvc/config.local``. zkml-dvc's pull and verify ignore all of it; plain DVC would not."""
    import subprocess

    from dvc.config import Config

    warnings = []
    try:
        tracked = Config(dvc_dir=str(root / ".dvc"), validate=False).load_one("repo")
    except Exception:  # an unreadable config is DVC's error to report, not ours
        tracked = {}
    remote = ((tracked.get("remote") or {}).get(REMOTE_NAME)) or {}
    for key in _UNSAFE_IN_A_CLONE:
        if key in remote:
            warnings.append(f"the clone's tracked .dvc/config sets remote `{REMOTE_NAME}` {key}: "
                            "ignored by zkml-dvc; plain `dvc pull` in this clone would use it "
                            "(see docs/security.md)")
    listed = subprocess.run(["git", "ls-files", "--", ".dvc/config.local"], cwd=root,
                            capture_output=True, text=True, check=False).stdout.strip()
    if listed:
        warnings.append("the clone tracks .dvc/config.local (normally git-ignored): ignored by "
                        "zkml-dvc; plain DVC would read it")
    return warnings


def verifier_store(root: Path, warnings: list[str] | None = None) -> Store:
    """The store of a clone the verifier does not trust: only the remote's URL, endpoint and
    region come from the clone (the URL and endpoint validated); profile and keys come from the
    verifier's own environment (and a ``config.local`` the clone does not track). Appends what it
    ignored to ``warnings``."""
    remote = remote_config(root)
    if not remote or "url" not in remote:
        require_store(root)  # raises with the remedy
        raise AssertionError("unreachable")
    found = clone_config_warnings(root)
    if warnings is not None:
        warnings.extend(found)
    endpoint = remote.get("endpointurl")
    if endpoint and not str(endpoint).startswith(("https://", "http://")):
        raise ConfigError(f"the clone's remote endpoint {endpoint!r} is not an http(s) URL",
                          "Pass the store's endpoint yourself (AWS_ENDPOINT_URL_S3).")
    tracked_local = any("config.local" in w for w in found)
    safe: dict[str, Any] = {k: remote[k] for k in ("endpointurl", "region") if k in remote}
    if not tracked_local:
        safe.update({k: remote[k] for k in ("access_key_id", "secret_access_key", "ssl_verify")
                     if k in remote and k not in _tracked_keys(root)})
    return store_from_config(store_root_from_remote(remote["url"]), remote=safe)


def _tracked_keys(root: Path) -> set[str]:
    from dvc.config import Config

    try:
        tracked = Config(dvc_dir=str(root / ".dvc"), validate=False).load_one("repo")
    except Exception:
        return set()
    return set(((tracked.get("remote") or {}).get(REMOTE_NAME)) or {})


def require_store(root: Path) -> Store:
    """The project's store; ConfigError with the fix if none is configured."""
    store = find_project_store(root)
    if store is None:
        raise ConfigError(
            "this project has no remote `o3` configured",
            "Set one with `zkml-dvc remote set s3://BUCKET/PREFIX --endpoint URL` "
            "(or `zkml-dvc store up` for the local store).",
        )
    return store


@contextlib.contextmanager
def own_aws_files() -> Iterator[None]:
    """DVC's S3 remote sets AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE from the remote's
    ``configpath`` / ``credentialpath`` only if they are unset, and botocore runs any
    ``credential_process`` such a file names. Pin both to the user's own files for the call, so a
    clone's tracked config can never choose them (restored afterwards)."""
    pinned = {"AWS_CONFIG_FILE": str(Path.home() / ".aws" / "config"),
              "AWS_SHARED_CREDENTIALS_FILE": str(Path.home() / ".aws" / "credentials")}
    added = [k for k in pinned if k not in os.environ]
    for k in added:
        os.environ[k] = pinned[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)
