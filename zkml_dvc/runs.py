"""Run ids, run tags, and reading runs back from git.

A run is one `zkml-dvc run` of one model. Its id is ``YYYYMMDD-HHMMSSmmm-xxxxxx`` (UTC time to the
millisecond, then 6 random hex digits): unique, sortable by time, and safe as a git ref and as an
O3 object key. Users may give their own id (same character rules). Each run is an annotated git tag
``runs/<project>/<run_id>`` on the commit that holds its dvc.lock and manifest; the tag message is
JSON naming the model, the manifest path and the manifest's sha256, so an edited manifest is caught.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, HashMismatchError, InputError, IntegrityError, NotFoundError
from .fsutil import sha256_bytes
from .manifest import Manifest, parse_manifest
from .params import RUN_ID_RE  # noqa: E402  (one definition, also used by the manifest)

TAG_PREFIX = "runs"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(3)}"


def validate_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id) or ".." in run_id or run_id.endswith((".", ".lock")):
        raise InputError(
            f"run id {run_id!r} is not allowed",
            "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    return run_id


def tag_name(project: str, run_id: str) -> str:
    return f"{TAG_PREFIX}/{project}/{run_id}"


@dataclass(frozen=True)
class RunRef:
    run_id: str
    project: str
    model: str
    commit: str
    tag: str
    manifest_path: str
    manifest_sha256: str
    date: datetime


def open_git(root: Path) -> Any:
    import git

    try:
        return git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(f"{root} is not a git repository", "Run `git init` there.") from None


def commit_and_tag(
    root: Path, paths: list[str], message: str, tag: str, tag_info: dict[str, Any],
    signing_key: Path | None = None,
) -> str:
    """Commit ``paths`` and create the annotated run tag; return the commit sha. With
    ``signing_key`` (an SSH private key) the tag is signed with git's SSH signing.

    Refuses (before changing anything) if the tag exists or git has no identity.
    """
    import git

    repo = open_git(root)
    if tag in [t.name for t in repo.tags]:
        raise InputError(
            f"tag {tag} already exists", "Choose another --run-id (run ids are never reused)."
        )
    try:
        repo.git.var("GIT_COMMITTER_IDENT")
    except git.GitCommandError:
        raise ConfigError(
            "git has no user identity to commit the run with",
            'Set one: git config user.name "Your Name" && git config user.email you@example.org',
        ) from None
    repo.git.add("--", *paths)
    if repo.is_dirty(index=True, working_tree=False, untracked_files=False) or not repo.head.is_valid():
        try:  # the user's hooks run (secret scanners, linters): a refusal is theirs to lift
            repo.git.commit("-m", message)
        except git.GitCommandError as exc:
            if repo.head.is_valid():
                repo.git.reset("-q", "--", *paths)  # leave the index as it was
            detail = (str(exc.stderr).strip().splitlines() or ["no detail"])[-1]
            raise ConfigError(f"git refused the run's commit: {detail}",
                              "A git hook said no: fix what it reports and re-run; nothing was "
                              "tagged or pushed.") from None
    tag_message = json.dumps(tag_info, sort_keys=True)
    if signing_key is None:
        repo.create_tag(tag, message=tag_message)
    else:
        try:
            repo.git.execute(["git", "-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key}",
                              "tag", "-s", "-m", tag_message, tag])
        except git.GitCommandError as exc:
            raise ConfigError(f"git could not sign tag {tag} with {signing_key}: "
                              f"{str(exc.stderr).strip().splitlines()[-1] if exc.stderr else exc}",
                              "Check the key (an SSH private key, unencrypted or in ssh-agent).") from None
    return str(repo.head.commit.hexsha)


def _git(root: Path, *args: str) -> tuple[int, bytes]:
    """Run one read-only git command in the repository at ``root`` (its exit code and stdout).

    Reading runs back costs one git process, not gitpython's import (~0.1 s) and object walk:
    a no-op `zkml-dvc run` reads every run tag."""
    import subprocess

    if not (root / ".git").exists():  # as gitpython: ``root`` itself, never a parent directory
        raise ConfigError(f"{root} is not a git repository", "Run `git init` there.")
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    return done.returncode, done.stdout


def head_commit(root: Path) -> str | None:
    code, out = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return out.decode().strip() if code == 0 else None


_REF_FIELDS = ("%(refname)", "%(objecttype)", "%(objectname)", "%(*objectname)",
               "%(committerdate:unix)", "%(*committerdate:unix)", "%(contents)")


def list_runs(root: Path, project: str | None = None) -> list[RunRef]:
    """All run tags (of one project, or all), oldest first."""
    prefix = f"refs/tags/{TAG_PREFIX}/" + (f"{project}/" if project else "")
    code, out = _git(root, "for-each-ref", "--format=" + "%00".join(_REF_FIELDS) + "%00%01",
                     prefix)
    refs: list[RunRef] = []
    for record in out.decode(errors="replace").split("\0\x01\n") if code == 0 else []:
        fields = record.split("\0")
        if len(fields) != len(_REF_FIELDS):
            continue
        refname, kind, target, peeled, date, peeled_date, message = fields
        parts = refname.removeprefix("refs/tags/").split("/")
        if len(parts) != 3 or parts[0] != TAG_PREFIX:
            continue
        info: dict[str, Any] = {}
        if kind == "tag":  # an annotated tag: a signed one's message ends with its signature
            try:
                loaded = json.loads(message.split("-----BEGIN ", 1)[0])
                info = loaded if isinstance(loaded, dict) else {}
            except json.JSONDecodeError:
                info = {}
        refs.append(RunRef(
            run_id=parts[2], project=parts[1], model=str(info.get("model", "?")),
            commit=peeled or target, tag="/".join(parts),
            manifest_path=str(info.get("manifest", "")),
            manifest_sha256=str(info.get("manifest_sha256", "")),
            date=datetime.fromtimestamp(int(peeled_date or date or 0), UTC),
        ))
    return sorted(refs, key=lambda r: (r.date, r.run_id))


def find_run(root: Path, run_id: str, project: str | None = None) -> RunRef:
    validate_run_id(run_id)
    matches = [r for r in list_runs(root, project) if r.run_id == run_id]
    if not matches:
        raise NotFoundError(
            f"no run {run_id!r} in {root} (no tag {TAG_PREFIX}/<project>/{run_id})",
            "List runs with `zkml-dvc runs`; fetch tags from a shared repo with `git fetch --tags`.",
        )
    if len(matches) > 1:
        raise InputError(
            f"run id {run_id!r} exists in several projects", "Pass --project to choose one."
        )
    return matches[0]


def read_at(root: Path, commit: str, path: str) -> bytes:
    code, out = _git(root, "show", f"{commit}:{path}")
    if code != 0:
        raise NotFoundError(f"{path} is not in commit {commit[:10]}", "")
    return out


def files_at(root: Path, commit: str, directory: str) -> set[str]:
    """The paths git tracks under ``directory`` at ``commit``."""
    repo = open_git(root)
    out = repo.git.ls_tree("-r", "--name-only", commit, "--", directory)
    return set(out.splitlines())


def load_manifest(root: Path, run_id: str, project: str | None = None) -> tuple[RunRef, Manifest]:
    """The manifest committed for a run, checked against the sha256 pinned in its tag."""
    ref = find_run(root, run_id, project)
    if not ref.manifest_path:
        raise InputError(f"tag {ref.tag} was not made by zkml-dvc (no manifest named)", "")
    data = read_at(root, ref.commit, ref.manifest_path)
    actual = sha256_bytes(data)
    if ref.manifest_sha256 and actual != ref.manifest_sha256:
        raise HashMismatchError(f"manifest of run {run_id} ({ref.manifest_path})",
                                ref.manifest_sha256, actual)
    manifest = parse_manifest(data, f"{ref.tag}:{ref.manifest_path}")
    if manifest.run_id != run_id or manifest.project != ref.project:
        raise IntegrityError(
            f"the manifest of run {run_id} names run {manifest.run_id} of {manifest.project}",
            "The manifest belongs to another run or project; do not trust it.",
        )
    return ref, manifest


@dataclass(frozen=True)
class ArtifactChange:
    path: str
    kind: str  # same | expected-random | changed | added | removed
    sha_a: str | None
    sha_b: str | None


def diff(a: Manifest, b: Manifest) -> list[ArtifactChange]:
    """Compare two runs artifact by artifact.

    A differing hash of a non-reproducible artifact (proof bytes, compiled circuit, reports) is
    ``expected-random``; of a reproducible one (vk, pk, settings, witness) it is a real ``changed``.
    """
    left = {x.path: x for x in a.artifacts}
    right = {x.path: x for x in b.artifacts}
    out: list[ArtifactChange] = []
    for path in sorted(set(left) | set(right)):
        la, rb = left.get(path), right.get(path)
        if la is None:
            out.append(ArtifactChange(path, "added", None, rb.sha256 if rb else None))
        elif rb is None:
            out.append(ArtifactChange(path, "removed", la.sha256, None))
        elif la.sha256 == rb.sha256:
            out.append(ArtifactChange(path, "same", la.sha256, rb.sha256))
        elif not (la.reproducible and rb.reproducible):
            out.append(ArtifactChange(path, "expected-random", la.sha256, rb.sha256))
        else:
            out.append(ArtifactChange(path, "changed", la.sha256, rb.sha256))
    return out
