"""The boto3 S3 client every ``Store`` uses, with O3-safe settings (no checksum headers,
path-style addressing, standard retries), and botocore's bundled data parsed once per process."""

from __future__ import annotations

import functools
import threading
from typing import Any

from . import env

_LOADER_LOCK = threading.Lock()


@functools.cache
def _data_loader() -> Any:
    """botocore's loader of its bundled data (service models, endpoints), shared by every client
    this process makes: it keeps what it has parsed."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def make_client(*, endpoint: str | None, region: str, profile: str | None,
                access_key_id: str | None, secret_access_key: str | None,
                ca_bundle: str | None) -> Any:
    """A new boto3 S3 client. Each has a new botocore session (credentials, profile and
    environment read anew) with the process's one data loader: the service model and endpoint
    data botocore parses from JSON for every client (~0.1 s) are parsed once per process."""
    import boto3
    import botocore.session
    from botocore.config import Config

    loader = _data_loader()
    core = botocore.session.Session()
    core.register_component("data_loader", loader)
    with _LOADER_LOCK:
        session = boto3.session.Session(profile_name=profile or None, botocore_session=core)
        # boto3 adds its own data directory to the loader's search path per session
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        verify=ca_bundle,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": env.get_int(env.MAX_ATTEMPTS, 5)},
            connect_timeout=env.get_int(env.CONNECT_TIMEOUT, 5),
            read_timeout=env.get_int(env.READ_TIMEOUT, 60),
            s3={"addressing_style": "path"},
            max_pool_connections=16,  # ranged.py's parallel parts share the pool
        ),
    )
