"""Large DVC objects moved at the store's full rate: fetched into DVC's cache before `dvc pull`,
uploaded before `dvc push`.

DVC (through s3fs) downloads a large object as 50 MiB ranged reads under asyncio, at well under
the rate the store serves (benchmarks/transfer.py, benchmarks/large.py). So before `dvc pull`,
each wanted object from ``ZKML_DVC_RANGED_THRESHOLD`` bytes (default 64 MiB) that DVC's cache
lacks is downloaded with the store client's parallel ranged GETs (ranged.py) straight into the
cache, under its DVC name, read-only as DVC keeps its objects, and renamed into place only when
whole and checked: against the sha256 the run's manifest records for it when the caller has one
(the same value the workspace file is checked against after checkout; on two cores md5 costs a
third of a 1 GiB download's time, sha256 with the CPU's SHA instructions far less), else against
its DVC name (its md5). DVC then finds the objects present and only checks them out; objects and
layout are DVC's own, so plain `dvc pull` still works on the same store. Anything that goes wrong
here is left to `dvc pull` itself.

The other way, before `dvc push`, each large object the store lacks is uploaded from DVC's cache
with boto3's transfer manager (multipart from O3's advised threshold, parts in parallel) under its
DVC key; DVC then finds it present and skips it. A failed upload is left to `dvc push`; a
multipart upload that fails is aborted, so no partial object appears under the key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import env
from .fsutil import atomic_path
from .layout import dvc_object_key
from .store import Store


def large_objects(outs: dict[str, dict[str, Any]], targets: list[str]) -> dict[str, int]:
    """{md5: size} of the file outputs (not directories) named by ``targets`` in dvc.lock's
    ``outs`` (path -> {"md5", "size"}) from the ranged threshold up."""
    return large_of((info.get("md5"), info.get("size")) for path, info in outs.items()
                    if any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets))


def fetch_large(store: Store, repo: Any, wanted: dict[str, int],
                sha256_of: dict[str, str] | None = None) -> int:
    """Download each object of ``wanted`` ({md5: size}) that DVC's cache (of the open DVC
    ``repo``) lacks into it, checked against ``sha256_of[md5]`` (a run manifest's) where given,
    else against its md5. Returns the bytes fetched; a failure or a mismatch skips that object
    (DVC fetches it as usual, and the caller's sha256 check of the checked-out file follows)."""
    from . import ranged

    fetched = 0
    for md5, size in wanted.items():
        dest = Path(repo.cache.local.oid_to_path(md5))
        if dest.exists():
            continue
        key = store.key(dvc_object_key(md5))
        client = store.client  # made here, once: not by each of the download's threads

        def get_range(byte_range: str, key: str = key, client: Any = client) -> Any:
            return client.get_object(Bucket=store.bucket, Key=key, Range=byte_range)["Body"]

        with contextlib.suppress(Exception):  # noqa: BLE001 (any failure: DVC's own pull follows)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest, mode=0o444) as tmp:
                algorithm, expected = ("sha256", sha256_of[md5]) if sha256_of and md5 in \
                    sha256_of else ("md5", md5)
                got = ranged.download(get_range, tmp, size, algorithms=(algorithm,),
                                      attempts=env.get_int(env.MAX_ATTEMPTS, 5))
                if got[algorithm] != expected:
                    raise ValueError(f"object {md5} from the store has {algorithm} "
                                     f"{got[algorithm]}")
            fetched += size
    return fetched


def large_of(pairs: Iterable[tuple[str | None, int | None]]) -> dict[str, int]:
    """{md5: size} of (md5, size) pairs of file objects (not directories) from the threshold up."""
    threshold = env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024)
    return {md5: size for md5, size in pairs if md5 and not md5.endswith(".dir")
            and isinstance(size, int) and size >= threshold}


def stage_large(stage: Any) -> dict[str, int]:
    """{md5: size} of a DVC stage's large file outputs."""
    return large_of((o.hash_info.value, o.meta.size) for o in stage.outs if o.hash_info)


def upload_large(store: Store, repo: Any, wanted: dict[str, int]) -> int:
    """Upload each object of ``wanted`` ({md5: size}) from DVC's cache (of the open DVC ``repo``)
    that the store lacks. Returns the bytes sent; a failure skips that object (DVC pushes it as
    usual)."""
    sent = 0
    for md5, size in wanted.items():
        src = Path(repo.cache.local.oid_to_path(md5))
        with contextlib.suppress(Exception):  # noqa: BLE001 (any failure: DVC's own push follows)
            rel = dvc_object_key(md5)
            if not src.is_file() or store.head(rel) is not None:
                continue
            store.client.upload_file(str(src), store.bucket, store.key(rel),
                                     Config=store.transfer_config())
            sent += size
    return sent
