"""Untrusted names, sizes and shapes in a manifest from the store: refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adversarial.conftest import Forgery, Victim
from tests.adversarial.test_verdict import _store_verify
from tests.conftest import S3Server

pytestmark = pytest.mark.slow


def _refused(res, code: int, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert needle in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda m: m["artifacts"][0].update(path="../../etc/passwd"), "leaves the target directory"),
    (lambda m: m["artifacts"][0].update(path="/etc/passwd"), "it is absolute"),
    (lambda m: m.update(model="/etc"), "model"),
    (lambda m: m.update(model=".."), "model"),
])
def test_manifest_paths_that_escape_are_refused(victim: Victim, forgery: Forgery,
                                                s3_server: S3Server, tmp_path: Path,
                                                edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    pin = forgery.edit_json("manifest.json", edit)
    _refused(_store_verify(s3_server, forgery.bucket, tmp_path, "--manifest-sha256", pin), 2, needle)


def test_deeply_nested_manifest_is_a_clear_input_error(victim: Victim, forgery: Forgery,
                                                       s3_server: S3Server, tmp_path: Path) -> None:
    pin = forgery.put("manifest.json", b'{"run_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    _refused(_store_verify(s3_server, forgery.bucket, tmp_path, "--manifest-sha256", pin), 2,
             "manifest")


def test_an_object_larger_than_its_manifest_says_is_not_downloaded(
        victim: Victim, forgery: Forgery, s3_server: S3Server, tmp_path: Path) -> None:
    vk = forgery.get("vk.key")
    forgery.put("vk.key", vk + bytes(8 * 1024 * 1024))  # the stored hash updated to match
    res = _store_verify(s3_server, forgery.bucket, tmp_path, "--allowed-signers",
                        str(victim.allowed_signers))
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert "more than the" in res.stdout and "its manifest records" in res.stdout
    report = json.loads((tmp_path / "verifier" / "verify-r1.json").read_text())
    # the kit's other files and the SRS come side by side with it (each checked); the padded vk
    # is refused from its answer's size, before its body is read
    assert report["bytes_downloaded"] < 8 * 1024 * 1024
