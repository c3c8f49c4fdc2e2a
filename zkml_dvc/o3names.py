"""O3's naming rules: which bucket names, object keys and store URLs it accepts."""

from __future__ import annotations

import re

from .errors import InputError

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
SAFE_KEY_RE = re.compile(r"^[A-Za-z0-9!\-_.*'()/]+$")


def check_bucket_name(bucket: str) -> str:
    if not BUCKET_RE.match(bucket) or "--" in bucket:
        raise InputError(
            f"bucket name {bucket!r} is not accepted by O3",
            "Use 3-63 lowercase letters, digits and single hyphens, starting and ending with a "
            "letter or digit.",
        )
    return bucket


def check_key(key: str) -> str:
    if not key or not SAFE_KEY_RE.match(key) or "//" in key or key.startswith("/"):
        raise InputError(
            f"object key {key!r} has characters O3 does not accept",
            "Use letters, digits, / and ! - _ . * ' ( ) only (rename the file or run id).",
        )
    return key


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    m = re.match(r"^s3://([^/]+)/?(.*)$", url)
    if not m:
        raise InputError(f"store URL {url!r} is not of the form s3://BUCKET/PREFIX", "")
    bucket, prefix = m.group(1), m.group(2).strip("/")
    check_bucket_name(bucket)
    if prefix:
        check_key(prefix)
    return bucket, prefix
