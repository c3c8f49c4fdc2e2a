"""zkml-dvc's placement of outputs out of DVC's cache before DVC's checkout (prefetch.checkout):
real git and DVC in a temporary repository, no store."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from zkml_dvc import prefetch


def _repo(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root.mkdir()
    monkeypatch.chdir(root)  # DVC reads targets relative to the working directory
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    (root / "pk.key").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    for i in range(40):
        d = root / "evm" / ("sub" if i % 3 else "")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.bin").write_bytes(os.urandom(100 + i))
    (root / "evm" / "empty.bin").write_bytes(b"")
    subprocess.run(["dvc", "add", "-q", "pk.key", "evm"], cwd=root, check=True)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".dvc" not in p.relative_to(root).parts[:1]
            and not p.name.endswith(".dvc") and ".git" not in p.parts and p.name != ".gitignore"
            and p.name != ".dvcignore"}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_outputs_absent_from_the_workspace_are_placed_and_dvc_then_rewrites_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    before = _files(root)
    shutil.rmtree(root / "evm")
    (root / "pk.key").unlink()
    with Repo(str(root)) as repo:
        outs = prefetch._target_outs(repo, ["pk.key", "evm"])
        assert prefetch.place_outputs(repo, outs) == 2
        # each file's md5 is in DVC's state: its checkout and status need not read it again
        for p in before:
            _, hash_info = repo.state.get(str(root / p), repo.fs)
            assert hash_info is not None and hash_info.value == _md5(root / p), p
        inodes = {p: os.stat(root / p).st_ino for p in before}
        repo.checkout(targets=["pk.key", "evm"])  # DVC's own: finds them as it wants them
        assert {p: os.stat(root / p).st_ino for p in before} == inodes
        assert repo.status() == {}
    assert _files(root) == before
    cache_inodes = {p.stat().st_ino for p in (root / ".dvc" / "cache").rglob("*") if p.is_file()}
    for p in before:
        st = os.stat(root / p)
        assert st.st_mode & 0o777 == 0o666 & ~_umask()  # a writable copy, as DVC's copy makes
        assert st.st_nlink == 1 and st.st_ino not in cache_inodes
    assert (root / "evm" / "sub").stat().st_mode & 0o777 == 0o777 & ~_umask()
    assert not list(root.glob(".*incomplete*"))
    # plain DVC agrees, in another process
    res = subprocess.run(["dvc", "status"], cwd=root, capture_output=True, text=True, check=True)
    assert "up to date" in res.stdout


def test_an_output_in_the_workspace_or_missing_from_the_cache_is_left_to_dvc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    (root / "pk.key").unlink()
    (root / "pk.key").write_bytes(b"mine")  # changed by the user: never overwritten here
    shutil.rmtree(root / "evm")
    with Repo(str(root)) as repo:
        listing = Path(repo.cache.local.oid_to_path(
            next(o for o in repo.index.outs if o.fs_path.endswith("evm")).hash_info.value))
        first = json.loads(listing.read_text())[0]["md5"]
        Path(repo.cache.local.oid_to_path(first)).unlink()  # one file of evm/ not in the cache
        assert prefetch.place_outputs(repo, prefetch._target_outs(repo, ["pk.key", "evm"])) == 0
    assert (root / "pk.key").read_bytes() == b"mine"
    assert not (root / "evm").exists() and not list(root.glob(".evm*"))


def test_symlinks_are_dvcs_own_and_linked_files_are_reported(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    subprocess.run(["dvc", "config", "cache.type", "symlink"], cwd=root, check=True)
    expected = {str(p): _md5(p) for p in [root / "pk.key", *(root / "evm").rglob("*")]
                if p.is_file()}
    (root / "pk.key").unlink()
    shutil.rmtree(root / "evm")
    with Repo(str(root)) as repo:
        linked = prefetch.checkout(repo, ["pk.key", "evm"])
    assert (root / "pk.key").is_symlink()
    # every file DVC's checkout left linked to its cache object is reported with that object's
    # md5 (the caller need not read it again to know its bytes), and nothing else
    assert linked == expected and len(linked) == 42


@pytest.mark.parametrize("types", ["symlink", "reflink"])
def test_link_types_other_than_hardlink_or_copy_are_never_placed_by_copying(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, types: str):
    """With only symlinks (or reflinks) allowed, place_outputs copies nothing: DVC makes them."""
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    subprocess.run(["dvc", "config", "cache.type", types], cwd=root, check=True)
    (root / "pk.key").unlink()
    with Repo(str(root)) as repo:
        assert prefetch.place_outputs(repo, prefetch._target_outs(repo, ["pk.key"])) == 0
    assert not (root / "pk.key").exists()


def test_with_hardlink_first_outputs_are_linked_as_dvcs_checkout_links_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`cache.type hardlink`: an absent output is hard-linked to its cache object (an empty file
    made anew, as DVC makes it), recorded in DVC's state; DVC's checkout and status then find
    nothing to change, and the files are those DVC's own checkout would link."""
    from dvc.repo import Repo

    mine, dvcs = _repo(tmp_path / "mine", monkeypatch), _repo(tmp_path / "dvcs", monkeypatch)
    before = _files(mine)
    for root in (mine, dvcs):
        subprocess.run(["dvc", "config", "cache.type", "hardlink"], cwd=root, check=True)
        shutil.rmtree(root / "evm")
        (root / "pk.key").unlink()
    with Repo(str(dvcs)) as repo:
        repo.checkout(targets=["pk.key", "evm"])
    monkeypatch.chdir(mine)
    with Repo(str(mine)) as repo:
        placed = prefetch.checkout(repo, ["pk.key", "evm"])
        assert placed == {str(mine / p): _md5(mine / p) for p in before}
        inodes = {p: os.stat(mine / p).st_ino for p in before}
        repo.checkout(targets=["pk.key", "evm"])  # DVC's own: finds them as it wants them
        assert {p: os.stat(mine / p).st_ino for p in before} == inodes
        assert repo.status() == {}
    assert _files(mine) == before
    for root in (mine, dvcs):
        objects = {p.stat().st_ino: p for p in (root / ".dvc" / "cache").rglob("*")
                   if p.is_file()}
        linked = {p for p in before if os.stat(root / p).st_ino in objects}
        assert linked == {p for p in before if p != "evm/empty.bin"}, root
        assert (root / "pk.key").stat().st_nlink == 2
    res = subprocess.run(["dvc", "status"], cwd=mine, capture_output=True, text=True, check=True)
    assert "up to date" in res.stdout


def test_files_dvc_copies_are_not_reported_as_linked(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    subprocess.run(["dvc", "config", "cache.type", "copy"], cwd=root, check=True)
    (root / "pk.key").write_bytes(b"changed")  # in the workspace: DVC's checkout, which copies
    with Repo(str(root)) as repo:
        assert prefetch.linked_files(repo, prefetch._target_outs(repo, ["pk.key", "evm"])) == {}
        repo.checkout(targets=["pk.key"], force=True)
        assert prefetch.linked_files(repo, prefetch._target_outs(repo, ["pk.key"])) == {}
    assert (root / "pk.key").stat().st_nlink == 1


def test_nothing_is_written_through_a_symlink_out_of_the_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    (root / "keys").mkdir()
    (root / "keys" / "pk.key").write_bytes(os.urandom(1000))
    subprocess.run(["dvc", "add", "-q", "keys/pk.key"], cwd=root, check=True)
    # the .dvc file beside the repository's root, naming the file inside keys/
    dvcfile = (root / "keys" / "pk.key.dvc").read_text().replace("path: pk.key", "path: keys/pk.key")
    (root / "pk.dvc").write_text(dvcfile)
    shutil.rmtree(root / "keys")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "keys").symlink_to(outside, target_is_directory=True)
    with Repo(str(root)) as repo:
        assert prefetch.place_outputs(repo, prefetch._target_outs(repo, ["keys/pk.key"])) == 0
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad", [{"relpath": "../escape.bin"}, {"relpath": "/tmp/escape.bin"},
                                 {"md5": "../../../escape"}])
def test_a_listing_naming_a_place_outside_its_output_is_left_to_dvc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: dict[str, str]):
    """A directory's listing comes from the store and its md5 from the clone's dvc.lock: one
    that names a path out of the output, or an object name that is not one, places nothing."""
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    shutil.rmtree(root / "evm")
    with Repo(str(root)) as repo:
        out = next(o for o in repo.index.outs if o.fs_path.endswith("evm"))
        listing = Path(repo.cache.local.oid_to_path(out.hash_info.value))
        entries = json.loads(listing.read_text())
        entries[0] = {**entries[0], **bad}
        listing.chmod(0o644)
        listing.write_text(json.dumps(entries))
        assert prefetch.place_outputs(repo, [out]) == 0
    assert not (root / "evm").exists()
    assert not list(tmp_path.rglob("escape*")) and not Path("/tmp/escape.bin").exists()


def test_a_dvc_lock_md5_that_is_not_an_object_name_fetches_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An md5 from the clone's dvc.lock names a place in DVC's cache: one that is not a DVC object
    name makes fetch_objects return at once (DVC's pull judges it), creating nothing anywhere."""
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    bad = "../../../../escape/x.dir"  # cache/files/md5/../../../../ is the repository's root
    with Repo(str(root)) as repo:
        assert prefetch.fetch_objects(None, repo, {bad: None}) is False  # type: ignore[arg-type]
    assert not (root / "escape").exists()


def test_placed_outputs_are_recorded_as_dvcs_checkout_records_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """When the placement put every target's output in place, DVC's checkout is not run; what it
    would have recorded (each output's link, so that a later `dvc checkout` removes it once it is
    no output any more) is recorded all the same."""
    from dvc.repo import Repo

    mine, dvcs = _repo(tmp_path / "mine", monkeypatch), _repo(tmp_path / "dvcs", monkeypatch)
    for root in (mine, dvcs):
        shutil.rmtree(root / "evm")
        (root / "pk.key").unlink()
    with Repo(str(dvcs)) as repo:
        repo.checkout(targets=["pk.key", "evm"])
        theirs = sorted(repo.state.get_unused_links([], repo.fs))
    monkeypatch.chdir(mine)
    with Repo(str(mine)) as repo:
        prefetch.checkout(repo, ["pk.key", "evm"])
        assert sorted(repo.state.get_unused_links([], repo.fs)) == theirs == ["evm", "pk.key"]
    assert (mine / "pk.key").is_file() and (mine / "evm" / "sub").is_dir()
    res = subprocess.run(["dvc", "status"], cwd=mine, capture_output=True, text=True, check=True)
    assert "up to date" in res.stdout
    # pk.key stops being an output: DVC's checkout removes the file it (here: zkml-dvc) placed
    (mine / "pk.key.dvc").unlink()
    subprocess.run(["dvc", "checkout", "-q"], cwd=mine, check=True)
    assert not (mine / "pk.key").exists() and (mine / "evm" / "sub").is_dir()


def test_a_target_that_selects_no_output_still_gets_dvcs_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    root = _repo(tmp_path / "r", monkeypatch)
    (root / "pk.key").unlink()
    with Repo(str(root)) as repo, pytest.raises(DvcException):
        prefetch.checkout(repo, ["pk.key", "no-such-output"])
