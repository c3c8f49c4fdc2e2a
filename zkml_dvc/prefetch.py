"""DVC objects moved at the store's full rate, in DVC's layout: fetched into DVC's cache so that
`dvc pull` has nothing left to fetch, uploaded from it so that `dvc push` has nothing to send.

DVC (through s3fs) downloads a large object as 50 MiB ranged reads under asyncio, at well under
the rate the store serves (benchmarks/transfer.py, benchmarks/large.py), and even with nothing to
download its fetch costs about a second (s3fs's import, the remote's index, every target's stage
collection). So before `dvc pull`, every object the targets need that DVC's cache lacks is
downloaded with the store client straight into the cache, under its DVC name, read-only as DVC
keeps its objects, and renamed into place only when whole and checked: against the sha256 the
run's manifest records for it when the caller has one (the same value the workspace file is checked
against after checkout; on two cores md5 costs a third of a 1 GiB download's time, sha256 with the
CPU's SHA instructions far less), else against its DVC name (its md5). Objects from
``ZKML_DVC_RANGED_THRESHOLD`` bytes (default 64 MiB) come as parallel ranged GETs (ranged.py), the
others by obstore, many at once (bulk.py), beside them; a directory output's ``.dir`` listing is
fetched (and checked) first, then its files. When every object is then in the cache, the caller
runs only the checkout (``checkout`` below: what `dvc pull` runs after its fetch); objects and
layout are DVC's own, so plain `dvc pull` still works on the same store. Anything that goes
wrong here is left to `dvc pull` itself.

DVC's checkout then copies each file out of the cache in Python, 2 MiB at a time, with a per-file
reflink attempt first: a third of a 1 GiB pull and most of a pull of 500 small files. Where DVC
would copy (its default link types, reflink then copy) and an output is wholly absent from the
workspace, ``checkout`` places it first: each file copied by the kernel (``copy_file_range``,
which shares extents where the file system can, as DVC's reflink would), a directory built beside
its place and renamed in whole, and each file's md5 recorded in DVC's state database as DVC's
checkout records it, and its link as DVC records the files it adds. Where the project's
``cache.type`` puts hardlink first, the files are hard-linked instead, as DVC's checkout would
link them (DVC's checkout, run anyway, spent most of a second building its index to do it).
When every output the targets select was placed so, DVC's checkout (which would find the
workspace as it wants it, after building the graph of every stage to say so) is not run;
otherwise it runs after the placement.
An output already in the workspace, whole or changed, is DVC's alone.

The other way, every object of the pushed outputs that the store lacks is uploaded from DVC's
cache under its DVC key: large ones with boto3's transfer manager (multipart from O3's advised
threshold, parts in parallel; one that fails is aborted, so no partial object appears under the
key), the others by obstore; directory listings last. Only if something could not be sent does
`dvc push` run (it moves what is still missing).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import env
from .bulk import Get, client, get_many, put_missing
from .fsutil import atomic_dir, atomic_path, current_umask
from .layout import STORE_DVC_PREFIX, dvc_object_key
from .store import Store


def _selects(target: str, path: str) -> bool:
    """Whether ``target`` names the output at ``path`` (both relative to the repository), is
    inside it, or contains it."""
    target = target.rstrip("/")
    return path == target or path.startswith(target + "/") or target.startswith(path + "/")


def _target_outs(repo: Any, targets: list[str]) -> list[Any]:
    """The DVC-cached outputs of the open DVC ``repo`` (as its dvc.lock records them) that
    ``targets`` select (``_selects``)."""
    return [out for out in repo.index.outs
            if out.use_cache and out.hash_info and out.hash_info.value
            and any(_selects(t, os.path.relpath(out.fs_path, repo.root_dir)) for t in targets)]


def target_objects(repo: Any, targets: list[str]) -> dict[str, int | None]:
    """{md5: size} of the outputs ``targets`` select (``_target_outs``); a directory output
    appears as its ``.dir`` listing's md5 (and so brings all its files)."""
    return {out.hash_info.value: out.meta.size for out in _target_outs(repo, targets)}


def checkout(repo: Any, targets: list[str]) -> dict[str, str]:
    """DVC's checkout of ``targets`` in the open DVC ``repo``, with the outputs it would copy
    whole out of the cache placed first (``place_outputs``; returned: {path: md5} of each file
    copied so, byte for byte from its cache object). When every target selects an
    output and every selected output was placed, each is recorded as DVC's checkout records what
    it adds (its link in DVC's state: `dvc checkout` without targets then removes it once it is
    no output any more) and DVC's checkout is not run: it would find the workspace as it wants
    it and change nothing, after building its index of the whole repository (the graph of every
    stage) to say so. Where DVC's checkout runs, the files it left as hard links of their cache
    objects are returned too (``linked_files``)."""
    copied: dict[str, str] = {}
    types = list(repo.cache.local.cache_types or ())
    if types in (["reflink", "copy"], ["copy"]) or types[:1] == ["hardlink"]:
        from dvc.repo import lock_repo

        with lock_repo(repo):  # as DVC's own checkout holds it
            outs = _target_outs(repo, targets)
            paths = [os.path.relpath(out.fs_path, repo.root_dir) for out in outs]
            placed = place_outputs(repo, outs, copied)
            if targets and placed == len(outs) and all(
                    any(_selects(t, path) for path in paths) for t in targets):
                for out in outs:
                    repo.state.save_link(out.fs_path, repo.fs)
                return copied
    repo.checkout(targets=targets)
    return copied | linked_files(repo, _target_outs(repo, targets))


def linked_files(repo: Any, outs: list[Any]) -> dict[str, str]:
    """{path: md5} of the files of ``outs`` (outputs of the open DVC ``repo``) that are hard links
    of their DVC cache objects (the same inode: what DVC's checkout leaves with ``cache.type``
    hardlink), so hold exactly the object's bytes."""
    import json

    found: dict[str, str] = {}
    for out in outs:
        md5 = out.hash_info.value
        try:
            if md5.endswith(".dir"):
                listing = json.loads(Path(repo.cache.local.oid_to_path(md5)).read_bytes())
                files = [(tuple(e["relpath"].split("/")), e["md5"]) for e in listing]
            else:
                files = [((), md5)]
            for parts, m in files:
                path = os.path.join(out.fs_path, *parts)
                if (_safe_entry(parts, m, md5.endswith(".dir"))
                        and os.path.samefile(path, repo.cache.local.oid_to_path(m))):
                    found[path] = m
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return found


def place_outputs(repo: Any, outs: list[Any], copied: dict[str, str] | None = None) -> int:
    """Copy each output of ``outs`` that is wholly absent from the workspace out of DVC's cache
    (all its files must be there), or hard-link it where the repository's ``cache.type`` puts
    hardlink first (as DVC's checkout then does: an empty file is created anew, and a file that
    cannot be linked is copied if ``copy`` is among the types), and record each file's md5 in
    DVC's state database (and in ``copied``, {path: md5}). Returns how many outputs were placed;
    one that cannot be (or whose directory resolves outside the repository through a symlink) is
    left to DVC's checkout."""
    import json

    from dvc_data.hashfile.hash_info import HashInfo

    def path_of(md5: str) -> str:
        return str(repo.cache.local.oid_to_path(md5))

    types = list(repo.cache.local.cache_types or ())
    link, may_copy = types[:1] == ["hardlink"], "copy" in types or not types
    if not (link or may_copy):
        return 0  # symlinks or reflinks only: DVC's checkout makes them

    umask = current_umask()
    root = Path(repo.root_dir).resolve()
    placed = 0
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="zkml-place") as pool:
        for out in outs:
            dest, md5 = Path(out.fs_path), out.hash_info.value
            if os.path.lexists(dest) or not dest.parent.resolve().is_relative_to(root):
                continue  # there already, or a symlink on the way leads out of the repository
            try:
                if md5.endswith(".dir"):
                    listing = json.loads(Path(path_of(md5)).read_bytes())
                    files = [(tuple(e["relpath"].split("/")), e["md5"]) for e in listing]
                else:
                    files = [((), md5)]
                if not all(_safe_entry(parts, m, md5.endswith(".dir")) for parts, m in files):
                    continue  # a listing that names a path out of its directory: DVC's to judge
                if not all(os.path.isfile(path_of(m)) for _, m in files):
                    continue
                if md5.endswith(".dir"):
                    with atomic_dir(dest) as tmp:
                        os.chmod(tmp, 0o777 & ~umask)
                        for parts, _ in files:
                            (tmp.joinpath(*parts)).parent.mkdir(parents=True, exist_ok=True)
                        list(pool.map(lambda f: _place(path_of(f[1]), tmp.joinpath(*f[0]),
                                                       umask, link, may_copy), files))
                else:
                    with atomic_path(dest) as tmp:
                        _place(path_of(md5), tmp, umask, link, may_copy)
            except (OSError, ValueError, TypeError, KeyError):
                continue  # DVC's checkout places it
            repo.state.save_many([(str(dest.joinpath(*parts)), HashInfo(out.hash_name, m), None)
                                  for parts, m in files], repo.fs)
            if copied is not None:
                copied.update((str(dest.joinpath(*parts)), m) for parts, m in files)
            placed += 1
    return placed


def _safe_entry(parts: tuple[str, ...], md5: str, in_directory: bool) -> bool:
    """Whether a file of an output (its path inside a directory output, its md5) names only a
    place inside the output and an object inside DVC's cache: a listing comes from the store
    and the md5s from the clone's dvc.lock, neither trusted."""
    return bool(_MD5.fullmatch(md5)) and (
        not in_directory or (bool(parts) and all(p not in ("", ".", "..") for p in parts)))


_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


def _place(src: str, dest: Path, umask: int, link: bool, may_copy: bool) -> None:
    """``src`` (a cache object) at ``dest`` (a new temp name, which may exist): hard-linked if
    ``link`` and it is not empty, else (or if it cannot be linked and ``may_copy``) copied."""
    import errno

    if link and os.path.getsize(src) > 0:
        dest.unlink(missing_ok=True)
        try:
            os.link(src, dest)
            return
        except OSError as exc:  # another file system, or too many links: copied where allowed
            if not may_copy or exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM,
                                                 errno.ENOTSUP):
                raise
    _copy(src, dest, umask)


def _copy(src: str, dest: Path, umask: int) -> None:
    """``src`` copied to ``dest`` by the kernel, with the mode a new file gets (as DVC's copy)."""
    import errno
    import shutil

    with open(src, "rb") as fsrc, open(dest, "wb") as fdst:
        left = os.fstat(fsrc.fileno()).st_size
        try:
            while left > 0:
                n = os.copy_file_range(fsrc.fileno(), fdst.fileno(), min(left, 1 << 30))
                if n == 0:
                    raise OSError(errno.EIO, f"{src} ended {left} bytes early")
                left -= n
        except OSError as exc:  # another file system, or a kernel without it: copied in Python
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            fsrc.seek(0)
            fdst.seek(0)
            fdst.truncate()
            shutil.copyfileobj(fsrc, fdst, 8 * 1024 * 1024)
    os.chmod(dest, 0o666 & ~umask)


def fetch_objects(store: Store, repo: Any, wanted: dict[str, int | None],
                  sha256_of: dict[str, str] | None = None,
                  verified: set[str] | None = None) -> bool:
    """Download each object of ``wanted`` ({md5: size or None}) that DVC's cache (of the open
    DVC ``repo``) lacks into it, checked against ``sha256_of[md5]`` (a run manifest's) where given,
    else against its md5; a ``.dir`` listing brings the files it lists. Returns True when every
    object is then in the cache; a failure or a mismatch skips that object (DVC fetches it as
    usual, and the caller's sha256 check of the checked-out file follows). The md5s of the
    objects downloaded here and found to have their ``sha256_of`` are added to ``verified``."""
    import json

    def path_of(md5: str) -> Path:
        return Path(repo.cache.local.oid_to_path(md5))

    if not all(_MD5.fullmatch(m) for m in wanted):
        return False  # a dvc.lock md5 that is not a DVC object name: nothing is fetched under it
    files: dict[str, int | None] = {}
    try:  # one connection pool for the listings and the files
        s3 = client(store) if wanted else None
    except Exception:  # noqa: BLE001 (a profile or CA bundle it cannot use: DVC's pull says so)
        return False
    for md5, size in wanted.items():  # a directory: its listing first, then what it lists
        if not md5.endswith(".dir"):
            files[md5] = size
            continue
        listing_at = path_of(md5)  # a small object (its size, the files' sum, says nothing)
        if not (listing_at.exists() or get_many(store, [Get(dvc_object_key(md5), listing_at,
                                                            *_check(md5, None))], s3)[0]):
            return False
        try:
            listing = json.loads(path_of(md5).read_bytes())
            files.update({entry["md5"]: None for entry in listing})
        except (OSError, ValueError, TypeError, KeyError):
            return False
    if not all(isinstance(m, str) and _MD5.fullmatch(m) for m in files):
        return False  # not a DVC object name: nothing is fetched under it (DVC's pull judges)
    missing = {md5: size for md5, size in files.items() if not path_of(md5).exists()}
    threshold = env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024)
    large = {m: s for m, s in missing.items() if s is not None and s >= threshold}
    sha = sha256_of or {}
    small = [Get(dvc_object_key(m), path_of(m), *_check(m, sha.get(m))) for m in missing
             if m not in large]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkml-fetch") as pool:
        smalls = pool.submit(get_many, store, small, s3)  # beside the large ones' ranged GETs
        got = {m: _fetch_one(store, path_of(m), m, s, sha.get(m)) for m, s in large.items()}
        with contextlib.suppress(Exception):  # noqa: BLE001 (any failure: DVC's own pull follows)
            got.update(zip((m for m in missing if m not in large), smalls.result(), strict=True))
    if verified is not None:
        verified.update(m for m, ok in got.items() if ok and m in sha)
    return all(got.values()) and len(got) == len(missing)


def _check(md5: str, sha256: str | None) -> tuple[str, str]:
    """(hashlib algorithm, expected hex digest) of a DVC object: the manifest's sha256 if known,
    else its md5 name."""
    return ("sha256", sha256) if sha256 else ("md5", md5.removesuffix(".dir"))


def _fetch_one(store: Store, dest: Path, md5: str, size: int | None, sha256: str | None) -> bool:
    """One DVC object into the cache at ``dest`` (ranged from the threshold up), checked; True
    if it is there afterwards."""
    from . import ranged

    if dest.exists():
        return True
    rel = dvc_object_key(md5)
    algorithm, expected = _check(md5, sha256)
    # any failure: DVC's own pull follows
    with contextlib.suppress(Exception), atomic_path(dest, mode=0o444) as tmp:  # noqa: BLE001
        if size is not None and size >= env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024):
            key = store.key(rel)
            client = store.client  # made here, once: not by each of the download's threads

            def get_range(byte_range: str) -> Any:
                return client.get_object(Bucket=store.bucket, Key=key, Range=byte_range)["Body"]

            digest = ranged.download(get_range, tmp, size, algorithms=(algorithm,),
                                     attempts=env.get_int(env.MAX_ATTEMPTS, 5))[algorithm]
        else:
            digest = store.stream_to(rel, tmp, algorithm)
        if digest != expected:
            raise ValueError(f"object {md5} from the store has {algorithm} {digest}")
    return dest.exists()


def large_of(pairs: Iterable[tuple[str | None, int | None]]) -> dict[str, int]:
    """{md5: size} of (md5, size) pairs of file objects (not directories) from the threshold up."""
    threshold = env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024)
    return {md5: size for md5, size in pairs if md5 and not md5.endswith(".dir")
            and isinstance(size, int) and size >= threshold}


def upload_large(store: Store, repo: Any, wanted: dict[str, int], strict: bool = False) -> int:
    """Upload each object of ``wanted`` ({md5: size}) from DVC's cache (of the open DVC ``repo``)
    that the store lacks, with boto3's transfer manager. Returns how many were sent; a failure
    skips that object (DVC pushes it as usual), or with ``strict`` is raised."""
    sent = 0
    for md5 in wanted:
        src = Path(repo.cache.local.oid_to_path(md5))
        try:
            rel = dvc_object_key(md5)
            if not src.is_file() or store.head(rel) is not None:
                continue
            store.client.upload_file(str(src), store.bucket, store.key(rel),
                                     Config=store.transfer_config())
            sent += 1
        except Exception:  # noqa: BLE001 (any failure: DVC's own push follows)
            if strict:
                raise
    return sent


def outs_objects(repo: Any, outs: list[Any]) -> dict[str, int | None] | None:
    """{md5: size} of the DVC objects of ``outs`` (DVC outputs of the open ``repo``) that DVC
    pushes (cached, not ``push: false``): a file's, a directory's ``.dir`` listing and the files
    it lists (read from DVC's cache). None when a listing is not in the cache."""
    import json

    objects: dict[str, int | None] = {}
    for out in outs:
        if not (out.use_cache and out.can_push and out.hash_info and out.hash_info.value):
            continue
        md5 = out.hash_info.value
        objects[md5] = None if md5.endswith(".dir") else out.meta.size
        if md5.endswith(".dir"):
            try:
                listing = json.loads(Path(repo.cache.local.oid_to_path(md5)).read_bytes())
                objects.update({entry["md5"]: None for entry in listing})
            except (OSError, ValueError, TypeError, KeyError):
                return None
    return objects


def upload_objects(store: Store, repo: Any, objects: dict[str, int | None]) -> int | None:
    """Upload each object of ``objects`` ({md5: size}) that the store lacks from DVC's cache (of
    the open DVC ``repo``): large ones with boto3's transfer manager, the others with obstore
    (bulk.py) beside them; directory listings after all files (as DVC orders them: a listing in
    the store means its files are there). Returns how many files were sent (listings uncounted,
    as DVC counts), or None when one could not be (not in the cache, a failed request): then
    `dvc push` moves what is still missing."""
    def path_of(md5: str) -> Path:
        return Path(repo.cache.local.oid_to_path(md5))

    if not all(path_of(md5).is_file() for md5 in objects):
        return None
    threshold = env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024)
    large = [m for m in objects if not m.endswith(".dir") and path_of(m).stat().st_size >= threshold]
    small = [(dvc_object_key(m), path_of(m)) for m in objects
             if m not in large and not m.endswith(".dir")]
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkml-push") as pool:
            smalls = pool.submit(put_missing, store, small, f"{STORE_DVC_PREFIX}/files/md5")
            sent = upload_large(store, repo, {m: 0 for m in large}, strict=True)
            sent += smalls.result()
            listings = [(dvc_object_key(m), path_of(m)) for m in objects if m.endswith(".dir")]
            pool.submit(put_missing, store, listings).result()  # a thread: asyncio may run here
    except Exception:  # noqa: BLE001 (any failure: DVC's own push follows)
        return None
    return sent


def push_outs(store: Store | None, repo: Any, outs: list[Any], dvc_push: Callable[[], Any]) -> int:
    """Send the DVC objects of ``outs`` (outputs of the open DVC ``repo``) to ``store``: all by
    the store client when it can, else the large ones by it and the rest by ``dvc_push`` (DVC's
    push of the same outputs). Returns how many objects were sent."""
    if store is not None:
        objects = outs_objects(repo, outs)
        sent = upload_objects(store, repo, objects) if objects is not None else None
        if sent is not None:
            return sent
        upload_large(store, repo, large_of((o.hash_info.value, o.meta.size) for o in outs
                                           if o.hash_info))
    return int(dvc_push() or 0)
