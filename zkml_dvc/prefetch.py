"""Large DVC objects fetched into DVC's cache at the store's full rate, before `dvc pull`.

DVC (through s3fs) downloads a large object as 50 MiB ranged reads under asyncio, at well under
the rate the store serves (benchmarks/transfer.py, benchmarks/large.py). So before `dvc pull`,
each wanted object from ``ZKML_DVC_RANGED_THRESHOLD`` bytes (default 64 MiB) that DVC's cache
lacks is downloaded with the store client's parallel ranged GETs (ranged.py) straight into the
cache, under its DVC name, checked against that name (its md5: what DVC's cache means by it),
read-only as DVC keeps its objects, and renamed into place only when whole. DVC then finds the
objects present and only checks them out; objects and layout are DVC's own, so plain `dvc pull`
still works on the same store. Anything that goes wrong here is left to `dvc pull` itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from . import env
from .fsutil import atomic_path
from .layout import dvc_object_key
from .store import Store


def large_objects(outs: dict[str, dict[str, Any]], targets: list[str]) -> dict[str, int]:
    """{md5: size} of the file outputs (not directories) named by ``targets`` in dvc.lock's
    ``outs`` (path -> {"md5", "size"}) from the ranged threshold up."""
    threshold = env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024)
    wanted: dict[str, int] = {}
    for path, info in outs.items():
        md5, size = info.get("md5"), info.get("size")
        if not md5 or str(md5).endswith(".dir") or not isinstance(size, int) or size < threshold:
            continue
        if any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets):
            wanted[str(md5)] = size
    return wanted


def prefetch(store: Store, cache_path: Any, wanted: dict[str, int]) -> int:
    """Download each object of ``wanted`` ({md5: size}) that the cache lacks into it
    (``cache_path(md5)`` is its path there). Returns the bytes fetched; a failure skips that
    object (DVC fetches it as usual)."""
    from . import ranged

    fetched = 0
    for md5, size in wanted.items():
        dest = Path(cache_path(md5))
        if dest.exists():
            continue
        key = store.key(dvc_object_key(md5))

        def get_range(byte_range: str, key: str = key) -> Any:
            return store.client.get_object(Bucket=store.bucket, Key=key, Range=byte_range)["Body"]

        with contextlib.suppress(Exception):  # noqa: BLE001 (any failure: DVC's own pull follows)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest, mode=0o444) as tmp:
                got = ranged.download(get_range, tmp, size, md5=True,
                                      attempts=env.get_int(env.MAX_ATTEMPTS, 5))
                if got["md5"] != md5:
                    raise ValueError(f"object {md5} from the store has md5 {got['md5']}")
            fetched += size
    return fetched
