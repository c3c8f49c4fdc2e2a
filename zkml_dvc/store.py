"""The O3 store: one boto3 client for the run index and the SRS, and pushing a run.

Only operations Akave O3 documents are used: HeadBucket, CreateBucket, PutBucketVersioning,
PutObject, GetObject, HeadObject, ListObjectsV2 and multipart upload (Create/UploadPart/Complete/
Abort). Every object we write carries its sha256 in metadata; every download is checked against the
sha256 its caller trusts (manifest from git, else the metadata) and is written to a temp name, then
renamed: a bad or partial download is never left in place. ETags are never used as hashes (O3's
are base64, not MD5).

Retries: botocore's "standard" mode (exponential back-off with jitter on throttling, 5xx and
connection errors), ``ZKML_DVC_MAX_ATTEMPTS`` attempts; connect/read timeouts bound how long an
unreachable endpoint can hang us.

This module is the S3 client only. Which store a project uses, and with which endpoint, region,
profile and credentials, is resolved in ``remote.py``; the SRS catalogue is ``srs.py``; the blob
cache is ``cache.py``.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import cache, env
from .errors import ConfigError, HashMismatchError, IntegrityError, NotFoundError, StoreError
from .fsutil import atomic_path, sha256_bytes, sha256_file
from .o3names import check_key, parse_url
from .progress import transfer_bar

T = TypeVar("T")
SHA_META = "sha256"
MAX_SMALL_OBJECT = 64 * 1024 * 1024  # manifests and index files are read into memory up to this
DOWNLOAD_CHUNK = 8 * 1024 * 1024
READ_AFTER_WRITE_DELAYS = (0.2, 0.5)  # seconds between HeadObject retries of a 404 on reads


@dataclass
class StoreConfig:
    url: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None  # CA certificates to trust; None: botocore's (AWS_CA_BUNDLE)


@dataclass
class TransferStats:
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    skipped_files: int = 0
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    cache_hits: int = 0


class Store:
    """A bucket/prefix in O3 (or any S3 server), reached with O3-safe client settings."""

    def __init__(self, cfg: StoreConfig) -> None:
        self.cfg = cfg
        self.bucket, self.prefix = parse_url(cfg.url)
        self.stats = TransferStats()
        self._client: Any = None
        self._client_lock = threading.Lock()

    # ---- connection -------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._client_lock:  # threads (ranged.py) must share one client, not make their own
            return self._client or self._make_client()

    def _make_client(self) -> Any:
        if self._client is None:
            from .s3client import make_client

            cfg = self.cfg
            self._client = make_client(endpoint=cfg.endpoint, region=self.region,
                                       profile=cfg.profile, access_key_id=cfg.access_key_id,
                                       secret_access_key=cfg.secret_access_key,
                                       ca_bundle=cfg.ca_bundle)
        return self._client

    @property
    def region(self) -> str:
        """The region requests are signed for (the client is made with it, never resolved)."""
        return self.cfg.region or env.get(env.AWS_DEFAULT_REGION) or env.O3_DEFAULT_REGION

    def key(self, rel: str) -> str:
        return check_key(f"{self.prefix}/{rel}" if self.prefix else rel)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (
            f" at {self.cfg.endpoint}" if self.cfg.endpoint else ""
        )

    def _error(self, exc: BaseException, action: str) -> Exception:
        """Turn a botocore exception into our one-line error (never echoing secrets)."""
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        if isinstance(exc, NoCredentialsError):
            return ConfigError(
                f"no credentials for the store {self.where}",
                "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, an AWS profile, or run "
                "`zkml-dvc remote set ... --access-key-id ...` (stored in .dvc/config.local).",
            )
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            return StoreError(
                f"cannot reach the store endpoint {self.cfg.endpoint or 'AWS default'} "
                f"while trying to {action}",
                "Check the endpoint URL and your network; for the local store run "
                "`zkml-dvc store up`.",
            )
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") \
                    or status == 403:
                return StoreError(
                    f"the store {self.where} refused the credentials ({code or status}) "
                    f"while trying to {action}",
                    "Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the remote's "
                    "credentials in .dvc/config.local).",
                )
            if code in ("NoSuchBucket",) or (status == 404 and action == "open the bucket"):
                return StoreError(
                    f"bucket {self.bucket!r} does not exist at {self.cfg.endpoint or 'AWS'}",
                    "Create it (e.g. `aws s3 mb s3://" + self.bucket + "`), or fix the remote URL.",
                )
            if code in ("NoSuchKey", "404") or status == 404:
                return NotFoundError(f"{action}: not in the store {self.where}", "")
            return StoreError(
                f"the store {self.where} answered {code or status} while trying to {action}",
                "Retry later; if it persists, check the store's status.",
            )
        return StoreError(f"store error while trying to {action}: {type(exc).__name__}: {exc}", "")

    def _call(self, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, action) from None

    def check_access(self) -> None:
        """HeadBucket: raises StoreError/ConfigError with the fix if the store is not usable."""
        self._call("open the bucket", self.client.head_bucket, Bucket=self.bucket)

    def create_bucket(self, versioning: bool = True) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call("create the bucket", self.client.create_bucket, Bucket=self.bucket)
        if versioning:
            self._call(
                "turn on versioning", self.client.put_bucket_versioning, Bucket=self.bucket,
                VersioningConfiguration={"Status": "Enabled"},
            )

    # ---- objects ----------------------------------------------------------------------------
    def head(self, rel: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.key(rel)))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self._error(exc, f"look up {rel}") from None
        except BotoCoreError as exc:  # connection closed or reset, retries exhausted
            raise self._error(exc, f"look up {rel}") from None

    def head_after_write(self, rel: str) -> dict[str, Any] | None:
        """HeadObject for a read that may follow a write elsewhere: O3 propagates objects in the
        background and does not document read-after-write, so retry a 404 briefly."""
        import time

        for delay in READ_AFTER_WRITE_DELAYS:
            found = self.head(rel)
            if found is not None:
                return found
            time.sleep(delay)
        return self.head(rel)

    def list(self, rel_prefix: str) -> Iterator[dict[str, Any]]:
        """ListObjectsV2 under a prefix; yields dicts with Key (relative to the store root)."""
        paginator = self.client.get_paginator("list_objects_v2")
        full = self.key(rel_prefix.rstrip("/")) + "/" if rel_prefix.strip("/") else (
            self.prefix + "/" if self.prefix else "")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    item = dict(obj)
                    item["Key"] = obj["Key"][len(self.prefix) + 1:] if self.prefix else obj["Key"]
                    yield item
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"list {rel_prefix}") from None

    def transfer_config(self) -> Any:
        """boto3's transfer settings for uploads (multipart threshold and part size)."""
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            # Akave advises multipart only from ~100 MB. Memory is bounded by part size x
            # concurrency (32 MiB x 4 = 128 MiB whatever the file size); parts stay far above
            # S3's 5 MB minimum and a 5 GB key needs 160 of them.
            multipart_threshold=env.get_int(env.MULTIPART_THRESHOLD, 100 * 1000 * 1000),
            multipart_chunksize=env.get_int(env.MULTIPART_CHUNKSIZE, 32 * 1024 * 1024),
            max_concurrency=4,
            use_threads=True,
        )

    def put_file(self, path: Path, rel: str, sha256: str | None = None,
                 metadata: dict[str, str] | None = None, force: bool = False) -> bool:
        """Upload ``path`` to ``rel`` unless an object with the same sha256 is already there
        (``force``: upload anyway, to replace a damaged copy whose metadata still looks right).

        Returns True if bytes were sent. A failed multipart upload is aborted by boto3's transfer
        manager, so no partial object ever appears under the key.
        """
        sha = sha256 or sha256_file(path)
        existing = None if force else self.head(rel)
        if existing and existing.get("Metadata", {}).get(SHA_META) == sha:
            self.stats.skipped_files += 1
            return False
        size = path.stat().st_size
        advance, done = transfer_bar(size, f"upload {Path(rel).name}")
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(
                str(path), self.bucket, self.key(rel),
                ExtraArgs={"Metadata": {SHA_META: sha, **(metadata or {})}},
                Config=self.transfer_config(), Callback=advance,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"upload {rel}") from None
        except S3UploadFailedError as exc:
            raise StoreError(f"upload of {rel} to {self.where} failed: {exc}",
                             "Retry the command: nothing partial was stored.") from None
        finally:
            done()
        self.stats.uploaded_files += 1
        self.stats.uploaded_bytes += size
        return True

    def put_bytes(self, data: bytes, rel: str, metadata: dict[str, str] | None = None,
                  content_type: str | None = None) -> bool:
        sha = sha256_bytes(data)
        existing = self.head(rel)
        if existing and existing.get("Metadata", {}).get(SHA_META) == sha:
            self.stats.skipped_files += 1
            return False
        extra = {"ContentType": content_type} if content_type else {}
        self._call(f"upload {rel}", self.client.put_object, Bucket=self.bucket, Key=self.key(rel),
                   Body=data, Metadata={SHA_META: sha, **(metadata or {})}, **extra)
        self.stats.uploaded_files += 1
        self.stats.uploaded_bytes += len(data)
        return True

    def get_bytes(self, rel: str, expected_sha256: str | None = None) -> bytes:
        """A small object's bytes, checked against ``expected_sha256`` or else its metadata."""
        head = self.head_after_write(rel)
        if head is None:
            raise NotFoundError(f"{rel} is not in the store {self.where}", "")
        if head.get("ContentLength", 0) > MAX_SMALL_OBJECT:
            raise IntegrityError(f"{rel} in the store is unexpectedly large "
                                 f"({head['ContentLength']} bytes)")
        data = self._read_all(rel)
        want = expected_sha256 or head.get("Metadata", {}).get(SHA_META)
        actual = sha256_bytes(data)
        if not want:
            raise IntegrityError(f"{rel} in the store has no sha256 recorded and none was pinned")
        if actual != want:
            raise HashMismatchError(f"{rel} from the store", want, actual)
        self.stats.downloaded_files += 1
        self.stats.downloaded_bytes += len(data)
        return bytes(data)

    def get_file(self, rel: str, dest: Path, expected_sha256: str | None = None,
                 use_cache: bool = True, max_size: int | None = None) -> Path:
        """Download ``rel`` to ``dest`` through the local cache, verified by sha256.

        The file is checked before it is renamed into place; on a mismatch nothing is left at
        ``dest`` or in the cache and IntegrityError is raised. ``use_cache=False`` (clean rooms)
        neither reads nor fills the cache. ``max_size`` (the size a manifest records) refuses a
        larger object before a byte of it is read.
        """
        if expected_sha256 and use_cache:
            cached = cache.verified_blob(expected_sha256)
            if cached is not None:
                self.stats.cache_hits += 1
                cache.link_into(cached, dest)
                return dest
        head = self.head_after_write(rel)
        if head is None:
            raise NotFoundError(f"{rel} is not in the store {self.where}",
                                "Push the run first (`zkml-dvc push RUN_ID`).")
        want = expected_sha256 or head.get("Metadata", {}).get(SHA_META)
        if not want:
            raise IntegrityError(f"{rel} in the store has no sha256 recorded and none was pinned")
        size = int(head.get("ContentLength", 0))
        if max_size is not None and size > max_size:
            raise IntegrityError(f"integrity check failed for {rel}: the store holds {size} bytes, "
                                 f"more than the {max_size} its manifest records")
        target = cache.blob_path(want) if use_cache else dest
        if use_cache:
            cache.sweep_incomplete()
        advance, done = transfer_bar(size, f"download {Path(rel).name}")

        try:
            with atomic_path(target) as tmp:
                try:
                    actual = self._download(tmp, rel, size, advance)
                finally:
                    done()
                if actual != want:
                    raise HashMismatchError(f"{rel} from the store", want, actual)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            from .errors import LocalWriteError

            raise LocalWriteError(
                f"cannot write {target} while downloading {rel}: {exc.strerror}",
                "Free space on that disk (or set ZKML_DVC_CACHE_DIR to another one) and retry; "
                "the partial download was removed.",
            ) from None
        self.stats.downloaded_files += 1
        self.stats.downloaded_bytes += target.stat().st_size
        if use_cache:
            cache.link_into(target, dest)
        return dest

    def _get_body(self, rel: str, consume: Callable[[Any], T]) -> T:
        """GetObject, handing the streaming body to ``consume``; the whole GET is retried from the
        start when the body is cut short (botocore retries only the request itself)."""
        from botocore.exceptions import BotoCoreError, ClientError

        attempts = env.get_int(env.MAX_ATTEMPTS, 5)
        for attempt in range(1, attempts + 1):
            try:
                resp = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))
                return consume(resp["Body"])
            except ClientError as exc:
                raise self._error(exc, f"download {rel}") from None
            except BotoCoreError as exc:  # connection dropped or body truncated mid-stream
                if attempt == attempts:
                    raise self._error(exc, f"download {rel}") from None
        raise AssertionError("unreachable")

    def _read_all(self, rel: str) -> bytes:
        """A small object's body, never more than MAX_SMALL_OBJECT bytes whatever the server
        sends (its HeadObject answer is no promise about the GetObject that follows)."""
        def consume(body: Any) -> bytes:
            # in chunks until the end: botocore checks the length only when a read comes back
            # empty, which is what turns a truncated body into a retry
            parts, total = [], 0
            while chunk := body.read(DOWNLOAD_CHUNK):
                total += len(chunk)
                if total > MAX_SMALL_OBJECT:
                    raise IntegrityError(
                        f"{rel} in the store is larger than {MAX_SMALL_OBJECT} bytes",
                        "A manifest or index file is never that large; do not trust it.")
                parts.append(chunk)
            return b"".join(parts)

        return self._get_body(rel, consume)

    def _download(self, tmp: Path, rel: str, size: int,
                  advance: Callable[[int], None] | None) -> str:
        """The object into ``tmp``, returning the sha256 of what was written: as parallel ranged
        GETs (ranged.py) from ``ZKML_DVC_RANGED_THRESHOLD`` bytes (64 MiB), else one GET."""
        if size >= env.get_int(env.RANGED_THRESHOLD, 64 * 1024 * 1024):
            from . import ranged

            def get_range(byte_range: str) -> Any:
                from botocore.exceptions import ClientError

                try:
                    return self.client.get_object(Bucket=self.bucket, Key=self.key(rel),
                                                  Range=byte_range)["Body"]
                except ClientError as exc:
                    raise self._error(exc, f"download {rel}") from None

            try:
                return ranged.download(get_range, tmp, size, advance,
                                       attempts=env.get_int(env.MAX_ATTEMPTS, 5))["sha256"]
            except ranged.PartError as exc:
                raise StoreError(f"download of {rel} from {self.where} failed: {exc}",
                                 "Retry: nothing partial was kept.") from None

        return self.stream_to(rel, tmp, "sha256", advance)

    def stream_to(self, rel: str, tmp: Path, algorithm: str = "sha256",
                  advance: Callable[[int], None] | None = None) -> str:
        """One GET of ``rel`` into ``tmp`` (started over if the body is cut short), hashed as the
        bytes arrive: the hex digest of what was written (the caller checks it)."""
        import hashlib

        def consume(body: Any) -> str:
            h = hashlib.new(algorithm)
            with open(tmp, "wb") as fh:  # "wb": a retry starts the file over
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK):
                    fh.write(chunk)
                    h.update(chunk)
                    if advance:
                        advance(len(chunk))
            return h.hexdigest()

        return self._get_body(rel, consume)


_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
