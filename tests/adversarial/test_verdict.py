"""A malicious producer or store against the verdict (docs/security.md, "Adversarial cases"): each
case ends in the documented verdict and exit code, with one line on stderr and no traceback."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.conftest import Forgery, Victim
from tests.conftest import VERIFY, S3Server, allowed_signers, cli, clone, machine_env, ssh_key

pytestmark = pytest.mark.slow
INPUT = "models/mlp/input.json"
PROOF = "artifacts/mlp/proofs/proof.json"


def _store_verify(s3: S3Server, bucket: str, tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    empty = tmp_path / "verifier"
    empty.mkdir(exist_ok=True)
    machine = f"store-verifier-{secrets.token_hex(3)}"  # a new machine each time
    return cli(*VERIFY, "r1", "--store", f"s3://{bucket}", "--project", "testproj", *extra,
               cwd=empty, env=machine_env(tmp_path, s3, machine))


def _verdict(res, code: int, line: str) -> dict:  # type: ignore[no-untyped-def]
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert res.stdout.startswith(line), res.stdout
    assert "Traceback" not in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]) == (code != 0)
    return {ln.split()[0]: ln for ln in res.stdout.splitlines()[1:] if ln.startswith("  ")}


def test_edited_pretty_output_is_not_what_the_verdict_shows(victim: Victim, forgery: Forgery,
                                                            s3_server: S3Server, tmp_path: Path):
    honest = _verdict(_store_verify(s3_server, victim.bucket, tmp_path, "--allowed-signers",
                                    str(victim.allowed_signers)), 0, "VALID (UNTRUSTED SRS)")

    def edit(proof: dict) -> None:
        proof["pretty_public_inputs"]["rescaled_outputs"] = [["999.0", "-42.0"]]

    sha = forgery.edit_json("proof.json", edit)
    pin = forgery.repin(PROOF, sha, len(forgery.get("proof.json")))
    res = _store_verify(s3_server, forgery.bucket, tmp_path, "--manifest-sha256", pin)
    lines = _verdict(res, 0, "VALID (UNTRUSTED SRS)")  # ezkl accepts it: the field is unchecked...
    assert "999.0" not in res.stdout  # ...and the verdict never shows it
    assert lines["output:"] == honest["output:"]
    assert "FAIL pretty_public_inputs" in res.stdout
    assert "decoded from the proof's public instances" in lines["output"]


def test_proof_of_another_input_is_invalid(victim: Victim, forgery: Forgery, s3_server: S3Server,
                                           tmp_path: Path):
    other = json.dumps({"input_data": [[0.25, -0.5, 0.75, 0.125]]}).encode()
    pin = forgery.repin(INPUT, forgery.put("input.json", other), len(other))
    res = _store_verify(s3_server, forgery.bucket, tmp_path, "--manifest-sha256", pin)
    lines = _verdict(res, 3, "INVALID: run r1: the proof is not about the claimed input")
    assert lines["input"].split()[1] == "FAILED"
    assert "differ from the claimed input" in lines["input"]


@pytest.mark.parametrize("claimed", [b'{"input_data": []}', b'{"input_data": [[]]}', b"{}"])
def test_empty_claimed_input_is_invalid(victim: Victim, forgery: Forgery, s3_server: S3Server,
                                        tmp_path: Path, claimed: bytes):
    pin = forgery.repin(INPUT, forgery.put("input.json", claimed), len(claimed))
    res = _store_verify(s3_server, forgery.bucket, tmp_path, "--manifest-sha256", pin)
    lines = _verdict(res, 3, "INVALID: run r1")
    assert "missing or empty" in lines["input"]


def test_local_srs_is_untrusted_without_the_flag(victim: Victim, s3_server: S3Server,
                                                 tmp_path: Path):
    repo = clone(victim.root, tmp_path / "clone")
    res = cli("verify", "r1", cwd=repo, env=machine_env(tmp_path, s3_server))
    lines = _verdict(res, 9, "UNTRUSTED SRS: run r1")
    assert "not ezkl's public ceremony SRS for logrows" in lines["srs"]
    assert lines["proof"].split()[1] == "ESTABLISHED"  # the proof itself verified
    assert "Error: run r1: UNTRUSTED SRS" in res.stderr
    report = json.loads((repo / ".dvc/tmp/zkml-dvc/verify-r1.json").read_text())
    assert report["verdict"] == "untrusted-srs" and report["srs_trusted"] is False
    # the same with the flag: valid, and the line still names the SRS as untrusted
    ok = cli(*VERIFY, "r1", cwd=repo, env=machine_env(tmp_path, s3_server, "again"))  # new HOME
    assert _verdict(ok, 0, "VALID (UNTRUSTED SRS): run r1")["srs"].split()[1] == "UNTRUSTED"


def test_substituted_srs_with_matching_metadata_is_refused(victim: Victim, forgery: Forgery,
                                                           s3_server: S3Server, tmp_path: Path):
    from zkml_dvc.runs import load_manifest

    _, m = load_manifest(victim.root, "r1")
    c = s3_server.client()
    key = f"srs/{m.srs.sha256}"
    head = c.head_object(Bucket=forgery.bucket, Key=key)
    fake = bytes(head["ContentLength"])  # right size, right metadata, wrong bytes
    c.put_object(Bucket=forgery.bucket, Key=key, Body=fake, Metadata=head["Metadata"])
    repo = clone(victim.root, tmp_path / "clone")
    subprocess.run(["zkml-dvc", "remote", "set", f"s3://{forgery.bucket}", "--endpoint",
                    s3_server.endpoint], cwd=repo, check=True, capture_output=True)
    res = cli(*VERIFY, "r1", cwd=repo, env=machine_env(tmp_path, s3_server))
    _verdict(res, 4, f"INTEGRITY FAILURE: run r1: integrity check failed for {key}")


def test_consistent_swap_in_store_only_mode(victim: Victim, forgery: Forgery, s3_server: S3Server,
                                            tmp_path: Path):
    """Someone who can write the bucket replaces the manifest (and with it whatever it pins),
    updating every stored hash: only an anchor the verifier holds can tell."""
    original = forgery.get("manifest.json")
    forgery.edit_json("manifest.json", lambda m: m.update(started="2020-01-01T00:00:00Z"))
    no_anchor = _store_verify(s3_server, forgery.bucket, tmp_path)
    _verdict(no_anchor, 10, "UNAUTHENTICATED: run r1: nothing authenticates the manifest")
    from zkml_dvc.fsutil import sha256_bytes

    wrong_pin = _store_verify(s3_server, forgery.bucket, tmp_path, "--manifest-sha256",
                              sha256_bytes(original))
    _verdict(wrong_pin, 4, "INTEGRITY FAILURE: run r1")
    signed_but_changed = _store_verify(s3_server, forgery.bucket, tmp_path, "--allowed-signers",
                                       str(victim.allowed_signers))
    _verdict(signed_but_changed, 10, "UNAUTHENTICATED: run r1: the signature of the manifest")
    s3_server.client().delete_object(Bucket=forgery.bucket, Key=f"{forgery.prefix}/manifest.json.sig")
    unsigned = _store_verify(s3_server, forgery.bucket, tmp_path, "--allowed-signers",
                             str(victim.allowed_signers))
    _verdict(unsigned, 10, "UNAUTHENTICATED: run r1: run r1 has no signature in the store")


def test_signed_run_verifies_only_for_listed_keys(victim: Victim, s3_server: S3Server,
                                                  tmp_path: Path):
    lines = _verdict(_store_verify(s3_server, victim.bucket, tmp_path, "--allowed-signers",
                                   str(victim.allowed_signers)), 0, "VALID (UNTRUSTED SRS)")
    assert "signature by producer@example.org" in lines["manifest"]
    stranger = allowed_signers(tmp_path / "strangers", "someone@else", ssh_key(tmp_path, "other"))
    _verdict(_store_verify(s3_server, victim.bucket, tmp_path, "--allowed-signers", str(stranger)),
             10, "UNAUTHENTICATED: run r1")
    # in a clone, the signed tag is what is checked
    repo = clone(victim.root, tmp_path / "clone")
    env = machine_env(tmp_path, s3_server)
    tag = _verdict(cli(*VERIFY, "r1", "--allowed-signers", str(victim.allowed_signers), cwd=repo,
                       env=env), 0, "VALID (UNTRUSTED SRS)")
    assert "signed by producer@example.org" in tag["manifest"]
    _verdict(cli(*VERIFY, "r1", "--allowed-signers", str(stranger), cwd=repo, env=env), 10,
             "UNAUTHENTICATED: run r1: run tag runs/testproj/r1 has no valid signature")
    unsigned = _verdict(cli(*VERIFY, "r1", cwd=repo, env=env), 0, "VALID (UNTRUSTED SRS)")
    assert "no signature was checked" in unsigned["manifest"] and "UNTRUSTED" in unsigned["manifest"]
