"""Nothing from the producer executes on the verifier's machine: a clone whose tracked DVC config
points DVC at an AWS config file with a `credential_process`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.conftest import Victim
from tests.conftest import VERIFY, S3Server, cli, clone, machine_env

pytestmark = pytest.mark.slow


def _booby_trapped_clone(victim: Victim, tmp_path: Path, marker: Path) -> Path:
    repo = clone(victim.root, tmp_path / "clone")
    (repo / "evil.config").write_text(
        f"[default]\ncredential_process = sh -c 'touch {marker}; exit 1'\n")
    subprocess.run(["dvc", "remote", "modify", "o3", "configpath", "evil.config"], cwd=repo,
                   check=True, capture_output=True)
    # (the tracked .dvc/config now carries the trap, as a producer's commit would)
    return repo


def test_credential_process_in_a_clone_never_runs(victim: Victim, s3_server: S3Server,
                                                  tmp_path: Path) -> None:
    marker = tmp_path / "credential-process-ran"
    repo = _booby_trapped_clone(victim, tmp_path, marker)
    env = machine_env(tmp_path, s3_server)
    # The verifier holds only endpoint and keys from its environment: no AWS_ACCESS_KEY_ID here
    # would make botocore fall through to the credential process, so drop them for the trap.
    bare = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS") and
            not k.startswith("AWS_SECRET")}
    pulled = cli("pull", "r1", "--for", "prove", cwd=repo, env={**os.environ, **bare})
    verified = cli(*VERIFY, "r1", cwd=repo, env={**os.environ, **bare})
    assert not marker.exists(), (pulled.stderr, verified.stderr)
    for res in (pulled, verified):
        assert "configpath" in res.stderr and "ignored by zkml-dvc" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    # with the verifier's own credentials both work, and still nothing ran
    assert cli("pull", "r1", "--for", "prove", cwd=repo, env=env).returncode == 0
    assert cli(*VERIFY, "r1", cwd=repo, env=env).returncode == 0
    assert not marker.exists()
    # The trap is real: plain `dvc pull` in the same clone runs the producer's command.
    plain = subprocess.run(["dvc", "pull", "-r", "o3", "artifacts/mlp/keys/vk.key"], cwd=repo,
                           env={**os.environ, **bare}, capture_output=True, text=True, timeout=300)
    assert marker.exists(), plain.stdout + plain.stderr
