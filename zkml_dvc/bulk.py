"""Many small objects at once: obstore (Rust's object_store) with many requests in flight, and
the store client's own calls run side by side (``each``).

boto3 spends its time per request in Python (signing, its request pipeline): on two cores it moves
500 objects of 64 KiB at 0.1-0.3x s5cmd's rate whatever the thread count, while obstore's async
client matches s5cmd both ways (benchmarks/transfer.py). So where a transfer is many small objects
(the DVC objects of a pull or a push: prefetch.py), they go through this module; large ones stay
with the store client's ranged GETs and multipart uploads.

The client is made from the store client's own resolved settings (endpoint, region, credentials
as boto3 resolves them: the store's configured keys, else the environment's when no profile is
named, else boto3's chain; CA bundle), with path-style addressing and no checksum headers (O3
rejects them); no boto3 client is made for it. Only GetObject, HeadObject, PutObject and
ListObjectsV2 are used. Every download is hashed here and checked by the caller's expected digest
before it is renamed into place; nothing partial is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import cache, env
from .fsutil import atomic_path
from .store import SHA_META, Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig

CONCURRENCY = 32  # requests in flight (Akave's own figures for small objects use 32 threads)
LIST_FROM = 32  # objects to send from which one listing may stand for their HEADs
KEYS_PER_OBJECT = 10  # the most keys a listing may hold per object to send
ONE_BY_ONE = 8 * 1024 * 1024  # from here a transfer has its own progress bar and parallel parts
T = TypeVar("T")


@dataclass(frozen=True)
class Get:
    rel: str  # the key under the store root
    dest: Path
    algorithm: str  # hashlib name
    expected: str  # hex digest the bytes must have


def client(store: Store) -> Any:
    """An obstore S3 client for ``store``'s bucket, with the store client's settings."""
    from obstore.store import S3Store

    cfg = store.cfg
    if cfg.access_key_id and cfg.secret_access_key:
        keys: tuple[str, str, str | None] | None = (cfg.access_key_id, cfg.secret_access_key, None)
    elif not cfg.profile and env.get(env.AWS_ACCESS_KEY_ID) and env.get(env.AWS_SECRET_ACCESS_KEY):
        # the first place boto3 looks when no profile is named: the same keys, without its import
        keys = (env.get(env.AWS_ACCESS_KEY_ID) or "", env.get(env.AWS_SECRET_ACCESS_KEY) or "",
                env.get(env.AWS_SESSION_TOKEN) or None)
    else:  # as boto3 resolves them (a profile, the environment, the user's AWS files)
        import boto3

        session = boto3.session.Session(profile_name=cfg.profile) if cfg.profile \
            else boto3.session.Session()
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
        keys = (frozen.access_key, frozen.secret_key, frozen.token) if frozen else None
    ca = cfg.ca_bundle or env.get(env.AWS_CA_BUNDLE)
    options: ClientConfig = {"connect_timeout": f"{env.get_int(env.CONNECT_TIMEOUT, 5)}s",
                             "timeout": f"{env.get_int(env.READ_TIMEOUT, 60)}s"}
    if ca:
        options["root_certificate"] = Path(ca).read_text()
    if (cfg.endpoint or "").lower().startswith("http://"):  # as the store client was let use it
        options["allow_http"] = True  # (remote.check_endpoint_scheme decided where it is made)
    kwargs: dict[str, Any] = {}
    if keys is not None:
        kwargs.update(access_key_id=keys[0], secret_access_key=keys[1])
        if keys[2]:
            kwargs["token"] = keys[2]
    if cfg.endpoint:
        kwargs["endpoint"] = cfg.endpoint
    return S3Store(store.bucket, region=store.region,
                   virtual_hosted_style_request=False, client_options=options,
                   retry_config={"max_retries": env.get_int(env.MAX_ATTEMPTS, 5),
                                 "retry_timeout": timedelta(seconds=120),
                                 "backoff": {"init_backoff": timedelta(milliseconds=100),
                                             "max_backoff": timedelta(seconds=5), "base": 2}},
                   skip_signature=keys is None, **kwargs)


async def _checked(s3: Any, key: str, algorithm: str, expected: str,
                   max_size: int | None = None) -> bytes | None:
    """The bytes of ``key`` (one GET by obstore) if they have the ``expected`` digest; None if
    they do not, or if the object is larger than ``max_size`` (refused before its body is read).
    A failed request raises obstore's error."""
    import obstore

    got = await obstore.get_async(s3, key)
    if max_size is not None and got.meta["size"] > max_size:
        return None
    data = bytes(await got.bytes_async())
    return data if hashlib.new(algorithm, data).hexdigest() == expected else None


def get_many(store: Store, gets: Sequence[Get], s3: Any = None) -> list[bool]:
    """Download each of ``gets`` into its ``dest`` (atomically, mode 0444; by ``s3``, one of this
    module's clients, or a new one) if its bytes have the expected digest. Returns, per item,
    whether it is in place; a failure or a mismatch leaves nothing at ``dest``."""
    if not gets:
        return []
    s3 = s3 or client(store)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: Get) -> bool:
        async with gate:
            data = await _checked(s3, store.key(item.rel), item.algorithm, item.expected)
        if data is not None:
            with atomic_path(item.dest, mode=0o444) as tmp:
                tmp.write_bytes(data)
        return data is not None

    return [answer is True for answer in _run([one(g) for g in gets])]


def listed(store: Store, prefix: str, max_keys: int, s3: Any = None) -> set[str] | None:
    """The keys (relative to the store root) under ``prefix`` if there are at most ``max_keys``
    (ListObjectsV2, 1000 a page, by obstore or ``s3``, one of its clients); None if there are
    more, or the listing failed."""
    import obstore

    keys: set[str] = set()
    root = f"{store.prefix}/" if store.prefix else ""
    with contextlib.suppress(Exception):  # noqa: BLE001 (the caller asks for each key instead)
        for chunk in obstore.list(s3 or client(store), prefix=store.key(prefix.strip("/"))):
            for meta in chunk:
                if len(keys) >= max_keys:
                    return None
                keys.add(meta["path"].removeprefix(root))
        return keys
    return None


def put_missing(store: Store, puts: Sequence[tuple[str, Path]], within: str | None = None) -> int:
    """Upload each ``(rel, src)`` whose key the store lacks. Returns how many were sent; raises on
    the first failure (PutObject is atomic: nothing partial is stored).

    What the store holds is asked of each key (HeadObject), or, for ``LIST_FROM`` objects or more
    whose keys all lie under the prefix ``within``, read from one listing of that prefix when it
    holds at most ``KEYS_PER_OBJECT`` keys per object to send (sequential pages of 1000 keys:
    beyond that, the HEADs, many in flight, cost less). A push to a new or small remote then
    sends its objects with one request each, as a plain copy does."""
    import obstore

    if not puts:
        return 0
    s3 = client(store)
    present = listed(store, within, len(puts) * KEYS_PER_OBJECT, s3) \
        if within is not None and len(puts) >= LIST_FROM else None

    async def one(rel: str, src: Path, gate: asyncio.Semaphore) -> bool:
        async with gate:
            if present is not None:
                if rel in present:
                    return False
            else:
                try:
                    await obstore.head_async(s3, store.key(rel))
                    return False
                except FileNotFoundError:  # obstore's 404
                    pass
            await obstore.put_async(s3, store.key(rel), src.read_bytes(), use_multipart=False)
            return True

    async def all_() -> int:
        gate = asyncio.Semaphore(CONCURRENCY)
        return sum(await asyncio.gather(*(one(rel, src, gate) for rel, src in puts)))

    return asyncio.run(all_())


@dataclass(frozen=True)
class Put:
    src: Path
    rel: str  # the key under the store root
    sha256: str  # the file's (its object carries it as metadata, as Store.put_file sets it)
    size: int


@dataclass(frozen=True)
class Fetch:
    rel: str
    dest: Path
    sha256: str  # what the bytes must hash to (a manifest's)
    size: int | None  # what the manifest records (a larger object is refused); None: unknown


def _run(coros: Sequence[Any]) -> list[Any]:
    """Run ``coros`` (each holding a shared semaphore while its requests are in flight) in one
    event loop; per item, its result or the exception it raised."""
    async def all_() -> list[Any]:
        return list(await asyncio.gather(*coros, return_exceptions=True))

    return asyncio.run(all_())


def exists_many(store: Store, rels: Sequence[str]) -> list[bool]:
    """Whether each key is in the store. Where ``LIST_FROM`` keys or more share a directory (the
    part before their last ``/``), one listing of it answers for them when it holds at most
    ``KEYS_PER_OBJECT`` keys per key asked (``listed``); every other key is asked by HeadObject,
    many in flight (``Store.head`` where obstore's answer is neither the object nor a 404). A key
    created after its listing was read counts as absent: the caller sends it again under the
    same content-addressed name."""
    import obstore

    s3: Any = client(store) if rels else None
    by_dir: dict[str, list[str]] = {}
    for rel in rels:
        by_dir.setdefault(rel.rpartition("/")[0], []).append(rel)
    known: dict[str, bool] = {}
    for where, group in by_dir.items():
        if where and len(group) >= LIST_FROM and (
                keys := listed(store, where + "/", len(group) * KEYS_PER_OBJECT, s3)) is not None:
            known.update((rel, rel in keys) for rel in group)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(rel: str) -> bool:
        async with gate:
            try:
                await obstore.head_async(s3, store.key(rel))
                return True
            except FileNotFoundError:
                return False

    asked = [rel for rel in dict.fromkeys(rels) if rel not in known]
    answers = _run([one(rel) for rel in asked]) if asked else []
    known.update((rel, a if isinstance(a, bool) else store.head(rel) is not None)
                 for rel, a in zip(asked, answers, strict=True))
    return [known[rel] for rel in rels]


def put_files(store: Store, puts: Sequence[Put]) -> int:
    """Upload each of ``puts`` as ``Store.put_file(..., force=True)`` does (the sha256 as
    metadata; the caller has looked for what the store holds, ``exists_many``): those under 8 MiB
    by obstore side by side, one PUT each; the larger ones, and any that failed here, then one
    by one by ``Store.put_file`` (its multipart upload, its errors). Returns how many were sent."""
    import obstore

    small = [i for i, p in enumerate(puts) if p.size < ONE_BY_ONE]
    s3: Any = client(store) if small else None
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(put: Put) -> bool:
        data = put.src.read_bytes()
        async with gate:
            await obstore.put_async(s3, store.key(put.rel), data, attributes={SHA_META: put.sha256},
                                    use_multipart=False)
        store.stats.uploaded_files += 1
        store.stats.uploaded_bytes += len(data)
        return True

    sent = {i for i, answer in zip(small, _run([one(puts[i]) for i in small]) if small else [],
                                   strict=True) if answer is True}
    for i, put in enumerate(puts):
        if i not in sent:
            store.put_file(put.src, put.rel, sha256=put.sha256, force=True)
    return len(puts)


def get_files(store: Store, fetches: Sequence[Fetch], use_cache: bool = True) -> list[Path]:
    """Download each of ``fetches`` as ``Store.get_file`` does (from the local cache when it holds
    the bytes, checked by sha256 before anything is placed, through the cache unless
    ``use_cache`` is off): those under 8 MiB side by side (``get_small``); the larger ones, and
    any that failed or did not match there, then one by one by ``Store.get_file`` (its ranged
    GETs, its retries after a recent write, and its errors: the first is raised). Returns the
    destinations."""
    done = get_small(store, fetches, use_cache)
    for i, f in enumerate(fetches):
        if i not in done:
            store.get_file(f.rel, f.dest, f.sha256, use_cache=use_cache, max_size=f.size)
    return [f.dest for f in fetches]


def get_small(store: Store, fetches: Sequence[Fetch], use_cache: bool = True) -> set[int]:
    """Of ``fetches``, those under 8 MiB by obstore side by side, as ``Store.get_file`` would place
    them (from the local cache when it holds the bytes; else one GET each, refused before a byte
    is read if larger than the size given, checked by sha256, written to a temp name and
    renamed; through the cache unless ``use_cache`` is off). Returns the indices of those now at
    their destination; for the others (larger, failed, or not the bytes wanted), nothing was
    placed: the caller gets them by ``Store.get_file``, which says what is wrong."""
    small = [i for i, f in enumerate(fetches) if f.size is not None and f.size < ONE_BY_ONE]
    s3: Any = client(store) if small else None
    gate = asyncio.Semaphore(CONCURRENCY)
    if small and use_cache:
        cache.sweep_incomplete()

    async def one(f: Fetch) -> bool:
        if use_cache and (cached := cache.verified_blob(f.sha256)) is not None:
            store.stats.cache_hits += 1
            cache.link_into(cached, f.dest)
            return True
        async with gate:
            data = await _checked(s3, store.key(f.rel), "sha256", f.sha256, f.size or 0)
        if data is None:  # larger than recorded, or not its bytes: Store.get_file says which
            return False
        target = cache.blob_path(f.sha256) if use_cache else f.dest
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        if use_cache:
            cache.link_into(target, f.dest)
        store.stats.downloaded_files += 1
        store.stats.downloaded_bytes += len(data)
        return True

    return {i for i, answer in zip(small, _run([one(fetches[i]) for i in small]) if small else [],
                                   strict=True) if answer is True}


def each(calls: Sequence[tuple[int, Callable[[], T]]]) -> list[T]:
    """Run each ``(bytes it moves, call)`` of the store client's (``Store.put_file``,
    ``get_file``: their checks and metadata as they are): those under 8 MiB eight at a time in
    threads (boto3's client is thread-safe and each call mostly waits on its request), then the
    larger ones one after another (each moves its own parts in parallel under its one progress
    bar). Returns the results in order; if a call failed, the first failure is raised once the
    small ones have all ended, before any large one starts (what was moved stays moved: the
    callers' objects are content-addressed)."""
    from concurrent.futures import ThreadPoolExecutor

    results: dict[int, T] = {}
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="zkml-each") as pool:
        futures = {i: pool.submit(call) for i, (size, call) in enumerate(calls)
                   if size < ONE_BY_ONE}
    for i, future in futures.items():
        results[i] = future.result()  # raises the first failure, in order
    for i, (size, call) in enumerate(calls):
        if size >= ONE_BY_ONE:
            results[i] = call()
    return [results[i] for i in range(len(calls))]
