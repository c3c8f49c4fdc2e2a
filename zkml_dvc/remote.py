"""The DVC remote `o3`: where a project's artifacts live.

The remote points at ``<store root>/dvc``; the run index and SRS live beside it under the same root.
Tracked ``.dvc/config`` gets only the URL, endpoint, region, profile and ``configpath`` (a tracked
AWS config file, ``.dvc/o3-aws.config``, that turns off the checksum headers O3 rejects, so plain
`dvc push` works too). Secrets go only to git-ignored ``.dvc/config.local`` (mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import env
from .fsutil import atomic_write_text
from .layout import STORE_DVC_PREFIX
from .pipeline import REMOTE_NAME
from .store import parse_url

AWS_CONFIG_NAME = "o3-aws.config"


def _aws_config_text(profile: str | None) -> str:
    body = "request_checksum_calculation = when_required\nresponse_checksum_validation = when_required\n"
    text = (
        "# Written by zkml-dvc: Akave O3 rejects the checksum headers recent AWS SDKs send by\n"
        "# default. DVC reads this file through the remote's `configpath`. No secrets here.\n"
        f"[default]\n{body}"
    )
    if profile:
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
) -> str:
    """Configure remote `o3` at ``url`` (the store root); returns the DVC remote URL.

    ``endpoint_local`` keeps the endpoint in config.local (for a machine-local store whose port is
    not meaningful elsewhere).
    """
    from dvc.config import Config
    from dvc.config_schema import RelPath

    bucket, prefix = parse_url(url)
    dvc_url = f"s3://{bucket}/{prefix + '/' if prefix else ''}{STORE_DVC_PREFIX}"
    atomic_write_text(root / ".dvc" / AWS_CONFIG_NAME, _aws_config_text(profile))
    conf = Config(dvc_dir=str(root / ".dvc"), validate=False)
    with conf.edit("repo") as repo_conf:
        core = repo_conf.setdefault("core", {})
        core["remote"] = REMOTE_NAME
        remote = {"url": dvc_url, "region": region or env.O3_DEFAULT_REGION,
                  # a RelPath is saved relative to .dvc/, so clones on other paths work
                  "configpath": RelPath(str((root / ".dvc" / AWS_CONFIG_NAME).resolve()))}
        if endpoint and not endpoint_local:
            remote["endpointurl"] = endpoint
        if profile:
            remote["profile"] = profile
        repo_conf.setdefault("remote", {})[REMOTE_NAME] = remote
    if access_key_id or secret_access_key or (endpoint and endpoint_local):
        with conf.edit("local") as local_conf:
            local = local_conf.setdefault("remote", {}).setdefault(REMOTE_NAME, {})
            if endpoint and endpoint_local:
                local["endpointurl"] = endpoint
            if access_key_id:
                local["access_key_id"] = access_key_id
            if secret_access_key:
                local["secret_access_key"] = secret_access_key
        local_path = root / ".dvc" / "config.local"
        if local_path.exists():
            os.chmod(local_path, 0o600)
    return dvc_url
