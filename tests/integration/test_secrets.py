"""Secrets stay out of argv and tracked files, and automatic commits honour the user's git hooks
(issue 14, item 2)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import S3Server, cli, connect

pytestmark = pytest.mark.slow


def test_the_secret_key_is_never_a_command_line_argument(project: Path, s3_server: S3Server,
                                                         bucket: str) -> None:
    res = cli("remote", "set", f"s3://{bucket}", "--access-key-id", s3_server.access_key_id,
              "--secret-access-key", s3_server.secret_access_key, cwd=project)
    assert res.returncode == 2 and "No such option" in res.stderr
    assert s3_server.secret_access_key not in res.stderr
    connect(project, s3_server, bucket)  # the secret on stdin, as a password manager pipes it
    local = project / ".dvc" / "config.local"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert s3_server.secret_access_key in local.read_text()
    tracked = subprocess.run(["git", "grep", "-I", "-l", s3_server.secret_access_key], cwd=project,
                             capture_output=True, text=True)
    assert tracked.stdout == ""


def test_a_secret_in_the_tracked_dvc_config_is_refused_before_anything_runs(
        project: Path, s3_server: S3Server, bucket: str) -> None:
    connect(project, s3_server, bucket)
    subprocess.run(["dvc", "remote", "modify", "o3", "secret_access_key", "oops-in-git"],
                   cwd=project, check=True, capture_output=True)
    res = cli("run", "--run-id", "leak", cwd=project)
    assert res.returncode == 6, res.stdout + res.stderr
    assert "remote.o3.secret_access_key" in res.stderr and "config.local" in res.stderr
    assert "oops-in-git" not in res.stderr + res.stdout
    assert not (project / "artifacts").exists()  # no stage ran
    tags = subprocess.run(["git", "tag"], cwd=project, capture_output=True, text=True).stdout
    assert "leak" not in tags


def test_run_commits_through_the_users_hooks(project: Path) -> None:
    hook = project / ".git" / "hooks" / "pre-commit"
    marker = project.parent / "hook-ran"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\necho 'secret scanner: no' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = cli("run", "--run-id", "h1", "--no-push", cwd=project)
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert "git refused the run's commit" in refused.stderr and "Traceback" not in refused.stderr
    assert marker.exists()
    tags = subprocess.run(["git", "tag"], cwd=project, capture_output=True, text=True).stdout
    assert "h1" not in tags
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=project,
                            capture_output=True, text=True).stdout
    assert staged == ""  # the index is as it was
    os.remove(marker)
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    accepted = cli("run", "--run-id", "h2", "--no-push", cwd=project)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert marker.exists()
    assert "runs/testproj/h2" in subprocess.run(["git", "tag"], cwd=project, capture_output=True,
                                                text=True).stdout
