"""What a verifier may trust, and on what grounds: the SRS and the manifest.

- **SRS.** ezkl pins the sha256 of the public ceremony SRS (perpetual powers of tau) for each
  logrows in its source (``src/srs_sha.rs``); zkml-dvc carries that table as data
  (``data/public_srs_sha256.json``). An SRS is "public" only if its bytes hash to that entry. Any
  other SRS (``gen_srs`` output, ``srs: local``) was made by someone who could keep its toxic waste
  and forge proofs: it is UNTRUSTED whatever its metadata says.
- **Manifests.** A manifest is authenticated by a signature from a key the verifier lists
  (``--allowed-signers``, OpenSSH's allowed-signers format; git's SSH signing for tags and
  ``ssh-keygen -Y`` for the manifest in the run index), by a sha256 the verifier pins, or, in a
  clone, by the run tag (which pins the manifest's sha256; as trustworthy as the clone unless
  signed).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

from .errors import ConfigError, UnauthenticatedError

SIGNATURE_NAMESPACE = "zkml-dvc-manifest"  # ssh-keygen -Y's namespace for manifest signatures


@cache
def public_srs_table() -> dict[int, str]:
    """logrows -> sha256 of ezkl's public ceremony SRS (from ezkl's own source)."""
    raw = json.loads(resources.files("zkml_dvc").joinpath("data/public_srs_sha256.json").read_text())
    return {int(k): str(v) for k, v in raw["sha256_by_logrows"].items()}


def srs_is_public(logrows: int, sha256: str) -> bool:
    """True if ``sha256`` is ezkl's pinned hash of the public SRS for ``logrows``."""
    return public_srs_table().get(logrows) == sha256


def _ssh_keygen(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, check=False,
                              timeout=60)
    except FileNotFoundError:
        raise ConfigError("ssh-keygen is not installed: it signs and checks run signatures",
                          "Install OpenSSH's client tools (e.g. `apt-get install openssh-client`).") from None


def signing_key_of(root: Path, explicit: Path | None = None) -> Path:
    """The SSH private key to sign runs with: ``explicit``, else git's ``user.signingkey`` (a
    ``.pub`` path names its private key beside it)."""
    if explicit is not None:
        key = explicit.expanduser()
    else:
        proc = subprocess.run(["git", "config", "user.signingkey"], cwd=root, capture_output=True,
                              text=True, check=False)
        value = proc.stdout.strip()
        if not value or value.startswith(("ssh-", "key::")):
            raise ConfigError("no SSH signing key: git's user.signingkey names no key file",
                              "Pass --signing-key PATH (an SSH private key) or set "
                              "`git config user.signingkey ~/.ssh/id_ed25519`.")
        key = Path(value).expanduser()
    if key.suffix == ".pub":
        key = key.with_suffix("")
    if not key.is_file():
        raise ConfigError(f"signing key {key} does not exist",
                          "Pass --signing-key PATH (an SSH private key).")
    return key


def sign(data: bytes, key: Path) -> bytes:
    """A detached SSH signature (armored) of ``data`` with the private key ``key``."""
    if not key.exists():
        raise ConfigError(f"signing key {key} does not exist",
                          "Pass --signing-key PATH (an SSH private key), or set git's "
                          "user.signingkey.")
    with tempfile.TemporaryDirectory(prefix="zkml-sign-") as td:
        msg = Path(td) / "manifest.json"
        msg.write_bytes(data)
        proc = _ssh_keygen(["-Y", "sign", "-q", "-f", str(key), "-n", SIGNATURE_NAMESPACE, str(msg)])
        sig = Path(f"{msg}.sig")
        if proc.returncode != 0 or not sig.exists():
            detail = proc.stderr.decode(errors="replace").strip().splitlines()
            raise ConfigError(f"ssh-keygen could not sign with {key}: "
                              f"{detail[-1] if detail else 'no detail'}",
                              "Check that the key is an unencrypted SSH private key (or loaded in "
                              "ssh-agent).")
        return sig.read_bytes()


def verify_signature(data: bytes, signature: bytes, allowed_signers: Path, what: str) -> str:
    """The principal of ``allowed_signers`` whose key made ``signature`` over ``data``.

    Raises UnauthenticatedError if no listed key made it (or the data was changed)."""
    if not allowed_signers.is_file():
        raise ConfigError(f"allowed signers file {allowed_signers} does not exist",
                          "Pass an OpenSSH allowed-signers file: one `PRINCIPAL KEYTYPE KEY` a line.")
    with tempfile.TemporaryDirectory(prefix="zkml-verify-sig-") as td:
        sig = Path(td) / "manifest.json.sig"
        sig.write_bytes(signature)
        found = _ssh_keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)])
        principals = found.stdout.decode(errors="replace").split()
        if found.returncode != 0 or not principals:
            raise UnauthenticatedError(
                f"{what} is signed by a key that {allowed_signers} does not list",
                "Do not trust this run unless you add its signer's key deliberately.")
        principal = principals[0]
        check = _ssh_keygen(["-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                             "-n", SIGNATURE_NAMESPACE, "-s", str(sig)], data)
        if check.returncode != 0:
            raise UnauthenticatedError(
                f"the signature of {what} does not verify for {principal}",
                "The manifest was changed after it was signed; do not trust this run.")
        return principal


def verify_tag_signature(root: Path, tag: str, allowed_signers: Path) -> str:
    """Check the run tag's SSH signature (git's own) against ``allowed_signers``; the signer."""
    if not allowed_signers.is_file():
        raise ConfigError(f"allowed signers file {allowed_signers} does not exist",
                          "Pass an OpenSSH allowed-signers file: one `PRINCIPAL KEYTYPE KEY` a line.")
    proc = subprocess.run(
        ["git", "-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed_signers.resolve()}",
         "verify-tag", "--raw", tag],
        cwd=root, capture_output=True, text=True, check=False, timeout=60)
    out = proc.stderr + proc.stdout
    if proc.returncode != 0:
        raise UnauthenticatedError(
            f"run tag {tag} has no valid signature from a key in {allowed_signers}",
            "Do not trust this run unless its producer signed it (`zkml-dvc run --sign`).")
    signer = out.split('Good "git" signature for ', 1)[-1].split(" with", 1)[0].strip()
    return signer or "a listed key"
