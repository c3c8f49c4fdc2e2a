"""The no-op check of `zkml-dvc run` (zkml_dvc/uptodate.py) agrees with `dvc repro`.

Real DVC and git in a temporary repository; the stages are shell commands, not ezkl."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from zkml_dvc.uptodate import up_to_date

DVC_YAML = """\
stages:
  a:
    cmd: cp src.txt a.txt
    deps: [src.txt]
    outs: [a.txt]
  b:
    cmd: mkdir -p bdir && cp a.txt bdir/b.txt && cp other.txt bdir/o.txt
    deps: [a.txt, other.txt]
    params: [n]
    outs: [bdir]
  c:
    cmd: cat bdir/b.txt > c.txt
    deps: [bdir/b.txt]
    outs: [c.txt]
  lone:
    cmd: cp other.txt lone.txt
    deps: [other.txt]
    outs: [lone.txt]
"""


def _sh(root: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path):  # type: ignore[no-untyped-def]
    from dvc.repo import Repo

    root = tmp_path / "p"
    root.mkdir()
    _sh(root, "git", "init", "-q")
    _sh(root, "dvc", "init", "-q")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("n: 1\n")
    (root / "src.txt").write_text("src\n")
    (root / "other.txt").write_text("other\n")
    _sh(root, "dvc", "repro", "-q")
    return root, Repo


def _check(root: Path, repo_cls, targets: list[str]) -> bool:  # type: ignore[no-untyped-def]
    # as Project.dvc(): the working directory at the root, where DVC resolves stage names
    with repo_cls(str(root)) as r, contextlib.chdir(root):
        return up_to_date(r, targets)


def test_an_unchanged_pipeline_is_up_to_date(repo) -> None:  # type: ignore[no-untyped-def]
    root, cls = repo
    assert _check(root, cls, ["c"]) and _check(root, cls, ["c", "lone"])


@pytest.mark.parametrize("change", [
    lambda root: (root / "src.txt").write_text("edited\n"),      # a dep two stages up
    lambda root: (root / "params.yaml").write_text("n: 2\n"),    # a param upstream
    lambda root: (root / "a.txt").unlink(),                      # an upstream output missing
    lambda root: (root / "bdir" / "o.txt").write_text("x\n"),    # a file inside a dir output
    lambda root: (root / "c.txt").write_text("x\n"),             # the target's own output
])
def test_any_change_upstream_is_seen(repo, change) -> None:  # type: ignore[no-untyped-def]
    root, cls = repo
    change(root)
    assert not _check(root, cls, ["c"])


def test_a_change_outside_the_targets_upstream_is_not(repo) -> None:  # type: ignore[no-untyped-def]
    root, cls = repo
    (root / "lone.txt").write_text("x\n")
    assert _check(root, cls, ["c"]) and not _check(root, cls, ["lone"])


def test_an_unknown_target_is_left_to_dvc_repro(repo) -> None:  # type: ignore[no-untyped-def]
    root, cls = repo
    assert not _check(root, cls, ["nope"])


def test_an_output_is_copied_into_the_cache_once(tmp_path: Path) -> None:
    """Without reflinks, DVC's default (reflink, copy) copies a committed output into the cache
    and then copies it back over the workspace file; the repo zkml-dvc opens copies once, so the
    file the stage wrote stays as it was (its distinctive mtime: a copy would carry today's)."""
    from zkml_dvc.dvclinks import reflinks_work
    from zkml_dvc.pipeline import open_repo

    root = tmp_path / "p"
    root.mkdir()
    _sh(root, "git", "init", "-q")
    _sh(root, "dvc", "init", "-q")
    (root / "dvc.yaml").write_text(
        "stages:\n  big:\n    cmd: head -c 3000000 /dev/urandom > big.bin && "
        "touch -d 2000-01-01T00:00:00Z big.bin\n    outs: [big.bin]\n")
    repo = open_repo(root)
    try:
        if reflinks_work(repo):
            assert repo.cache.repo.cache_types == ["reflink", "copy"]  # cloning is free
            return
        assert repo.cache.repo.cache_types == repo.cache.legacy.cache_types == ["copy"]
        with contextlib.chdir(root):
            repo.reproduce("big")
    finally:
        repo.close()
    out = root / "big.bin"
    assert out.stat().st_mtime == 946684800  # 2000-01-01: the stage's own file, not a copy
    cached = [p for p in (root / ".dvc" / "cache").rglob("*") if p.is_file()]
    assert len(cached) == 1 and cached[0].read_bytes() == out.read_bytes()


def test_the_users_cache_type_is_left_alone(tmp_path: Path) -> None:
    from zkml_dvc.pipeline import open_repo

    root = tmp_path / "p"
    root.mkdir()
    _sh(root, "git", "init", "-q")
    _sh(root, "dvc", "init", "-q")
    _sh(root, "dvc", "config", "cache.type", "reflink,copy")
    with open_repo(root) as repo:
        assert repo.cache.repo.cache_types == ["reflink", "copy"]
