"""Every environment variable zkml-dvc reads, in one place.

Precedence everywhere: CLI flag > environment variable > project config > default. Values are read
when asked for (never at import time), so tests can set them per test.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# zkml-dvc's own variables
CACHE_DIR = "ZKML_DVC_CACHE_DIR"  # content-addressed cache (SRS, downloads); default XDG cache
NO_PROGRESS = "ZKML_DVC_NO_PROGRESS"  # any non-empty value switches progress bars off
TRACEBACK = "ZKML_DVC_TRACEBACK"  # any non-empty value prints tracebacks (like -v)
MULTIPART_THRESHOLD = "ZKML_DVC_MULTIPART_THRESHOLD"  # bytes; default 100 MB (Akave's advice)
MULTIPART_CHUNKSIZE = "ZKML_DVC_MULTIPART_CHUNKSIZE"  # bytes; default 32 MiB
RANGED_THRESHOLD = "ZKML_DVC_RANGED_THRESHOLD"  # bytes from which downloads are parallel ranged GETs
MAX_ATTEMPTS = "ZKML_DVC_MAX_ATTEMPTS"  # store retries (botocore standard mode); default 5
CONNECT_TIMEOUT = "ZKML_DVC_CONNECT_TIMEOUT"  # seconds; default 5
READ_TIMEOUT = "ZKML_DVC_READ_TIMEOUT"  # seconds; default 60
# Set by `zkml-dvc run` for the stage commands DVC spawns: a failing stage records its error for the
# parent to report once (with the stage's name) instead of printing it too.
STAGE_QUIET = "ZKML_DVC_STAGE_QUIET"
# Any non-empty value accepts a plain-HTTP endpoint on another host (credentials and objects in
# clear on the network); loopback endpoints (the local store with `--http`) never need it.
ALLOW_HTTP = "ZKML_DVC_ALLOW_HTTP"
STORE_DIR = "ZKML_DVC_STORE_DIR"  # the local store's state directory; default: per user (data_dir)
# bytes (or 2G, 800M) that setup/prove may assume free; default: measured (see estimate.py)
MEMORY_LIMIT = "ZKML_DVC_MEMORY_LIMIT"
# any non-empty value: setup/prove run even if the estimate exceeds the memory (`run --force`)
IGNORE_MEMORY_ESTIMATE = "ZKML_DVC_IGNORE_MEMORY_ESTIMATE"
# the solc-js executable (`solcjs`) that compiles EVM verifiers; default: the one `make venv`
# installs beside the Python running zkml-dvc, then `solcjs` on PATH (see evm.py)
SOLCJS = "ZKML_DVC_SOLCJS"

# Standard AWS variables we read (and pass on to DVC/s3fs/boto3 unchanged)
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"
AWS_ENDPOINT_URL_S3 = "AWS_ENDPOINT_URL_S3"
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
AWS_PROFILE = "AWS_PROFILE"
AWS_CA_BUNDLE = "AWS_CA_BUNDLE"  # CA certificates to trust (the local store's own CA)
# O3 refuses the CRC32 checksum headers that botocore >= 1.36 sends by default.
AWS_REQUEST_CHECKSUM_CALCULATION = "AWS_REQUEST_CHECKSUM_CALCULATION"
AWS_RESPONSE_CHECKSUM_VALIDATION = "AWS_RESPONSE_CHECKSUM_VALIDATION"

# ezkl's variables
EZKL_REPO_PATH = "EZKL_REPO_PATH"
EZKL_KEY_FORMAT = "EZKL_KEY_FORMAT"

O3_DEFAULT_REGION = "akave-network"


def get(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def get_int(name: str, default: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        from .errors import ConfigError

        raise ConfigError(
            f"environment variable {name}={raw!r} is not a whole number",
            f"Unset {name} or give it an integer value.",
        ) from None


def flag(name: str) -> bool:
    return bool(get(name))


@contextlib.contextmanager
def scoped(name: str, value: str | None) -> Iterator[None]:
    """Set (or, with None, leave alone) a variable for the length of a block: for what DVC's stage
    processes inherit from this one."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def cache_dir() -> Path:
    """The user cache: $ZKML_DVC_CACHE_DIR, else $XDG_CACHE_HOME/zkml-dvc, else ~/.cache/zkml-dvc."""
    explicit = get(CACHE_DIR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "zkml-dvc"


def store_dir() -> Path:
    """The machine's local store (one per user, shared by every project): $ZKML_DVC_STORE_DIR,
    else $XDG_DATA_HOME/zkml-dvc/store, else ~/.local/share/zkml-dvc/store."""
    explicit = get(STORE_DIR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "zkml-dvc" / "store"


def config_dir() -> Path:
    """Per-user configuration: $XDG_CONFIG_HOME/zkml-dvc, else ~/.config/zkml-dvc."""
    xdg = get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "zkml-dvc"


def o3_safe_client_env() -> dict[str, str]:
    """Variables every S3 client we start (DVC/s3fs, boto3, aws CLI) must see for O3."""
    return {
        AWS_REQUEST_CHECKSUM_CALCULATION: "when_required",
        AWS_RESPONSE_CHECKSUM_VALIDATION: "when_required",
    }


def apply_o3_client_env() -> None:
    """Set the O3 checksum variables in this process unless the user chose otherwise."""
    for key, value in o3_safe_client_env().items():
        os.environ.setdefault(key, value)


def key_format() -> str:
    return get(EZKL_KEY_FORMAT, "raw-bytes") or "raw-bytes"
