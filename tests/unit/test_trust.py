"""trust.py on its own: ezkl's public SRS table, and SSH signatures with real ssh-keygen."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import allowed_signers, ssh_key
from zkml_dvc import trust
from zkml_dvc.errors import ConfigError, UnauthenticatedError

NOTES = Path(__file__).resolve().parents[3] / "shared" / "notes" / "ezkl-public-srs-sha256.json"


def test_the_public_srs_table_is_ezkls() -> None:
    table = trust.public_srs_table()
    assert sorted(table) == list(range(1, 27))
    assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in table.values())
    assert table[15] == "90807800a1c3b248a452e1732c45ee5099f38b737356f5542c0584ec9c3ebb45"
    if NOTES.exists():  # the copy in the team's notes, taken from ezkl's src/srs_sha.rs
        assert {int(k): v for k, v in json.loads(NOTES.read_text())["sha256_by_logrows"].items()} \
            == table


def test_only_the_pinned_hash_for_that_logrows_is_public() -> None:
    table = trust.public_srs_table()
    assert trust.srs_is_public(15, table[15])
    assert not trust.srs_is_public(16, table[15])  # right bytes for another size: not it
    assert not trust.srs_is_public(15, "0" * 64)
    assert not trust.srs_is_public(99, table[15])


def test_a_signature_verifies_for_its_key_only(tmp_path: Path) -> None:
    alice, mallory = ssh_key(tmp_path, "alice"), ssh_key(tmp_path, "mallory")
    allowed = allowed_signers(tmp_path / "allowed", "alice@example.org", alice)
    data = b'{"run_id": "r1"}\n'
    sig = trust.sign(data, alice)
    assert trust.verify_signature(data, sig, allowed, "the manifest") == "alice@example.org"
    with pytest.raises(UnauthenticatedError, match="does not verify"):
        trust.verify_signature(data + b" ", sig, allowed, "the manifest")
    with pytest.raises(UnauthenticatedError, match="does not list"):
        trust.verify_signature(data, trust.sign(data, mallory), allowed, "the manifest")
    with pytest.raises(ConfigError, match="does not exist"):
        trust.verify_signature(data, sig, tmp_path / "missing", "the manifest")


def test_the_signing_key_comes_from_the_flag_or_git(tmp_path: Path) -> None:
    key = ssh_key(tmp_path, "k")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert trust.signing_key_of(repo, key.with_suffix(".pub")) == key  # a .pub names its key
    with pytest.raises(ConfigError, match="no SSH signing key"):
        trust.signing_key_of(repo)
    subprocess.run(["git", "config", "user.signingkey", str(key)], cwd=repo, check=True)
    assert trust.signing_key_of(repo) == key
