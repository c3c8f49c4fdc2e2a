"""Which dvc.yaml commands `zkml-dvc run` runs in its own process (zkml_dvc/inprocess.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from zkml_dvc.inprocess import HEAVY_STAGES, LIGHT_STAGES, parse_stage_command
from zkml_dvc.layout import CHUNK_MODEL_STAGES, CHUNK_STAGES, STAGES


def test_commands_as_dvc_yaml_writes_them() -> None:
    assert parse_stage_command("zkml-dvc stage witness --model mlp") == ("witness", "mlp", None)
    assert parse_stage_command("zkml-dvc stage chunk_witness --model wide --chunk 3") == \
        ("chunk_witness", "wide", 3)


def test_anything_else_is_left_to_dvc() -> None:
    for cmd in ("python train.py", "zkml-dvc stage witness", "zkml-dvc stage witness --model",
                "zkml-dvc stage witness --model mlp --verbose",
                "zkml-dvc stage chunk_witness --model wide --chunk x",
                "zkml-dvc stage witness --model mlp; rm -rf /", "zkml-dvc run --model mlp x",
                "zkml-dvc stage witness --model 'unterminated", ["zkml-dvc", "stage"], None):
        assert parse_stage_command(cmd) is None, cmd


def test_heavy_stages_keep_their_own_process() -> None:
    known = set(STAGES) | set(CHUNK_MODEL_STAGES) | set(CHUNK_STAGES)
    assert known >= LIGHT_STAGES
    assert known - LIGHT_STAGES == {"setup", "prove", "mock", "chunk_setup", "chunk_prove"} \
        == HEAVY_STAGES  # forked from the run's stage server, each its own process


def test_stage_server_starts_where_a_heavy_stage_is_downstream_in_dvc_yaml(tmp_path) -> None:
    """The stages that start the run's stage server (heavy ones, and light ones with a heavy one
    downstream) are what DVC's own graph of the shipped dvc.yaml says, chunked stages included."""
    import networkx as nx
    import yaml
    from dvc.repo import Repo

    from zkml_dvc.inprocess import LEAD_TO_HEAVY, _heavy_follows

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "dvc.yaml").write_text((root / "dvc.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["chunked"] = {"wide": {"onnx": "w.onnx", "calibration": "c.json", "chunks": 2}}
    params["chunk_stages"] = {f"wide-{i}": {"model": "wide", "index": i, "data": f"d{i}.json"}
                              for i in range(2)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    repo = Repo.init(str(tmp_path), no_scm=True)
    try:
        graph = repo.index.graph  # edges go from a stage to the stages it depends on
        seen: dict[str, bool] = {}
        for stage in graph:
            parsed = parse_stage_command(stage.cmd)
            assert parsed is not None, stage.cmd
            heavy_after = parsed[0] in HEAVY_STAGES or any(
                parse_stage_command(s.cmd)[0] in HEAVY_STAGES for s in nx.ancestors(graph, stage))
            assert seen.setdefault(parsed[0], heavy_after) == heavy_after, parsed
            assert _heavy_follows(parsed[0]) == heavy_after, parsed[0]
    finally:
        repo.close()
    assert {n for n, h in seen.items() if h} - HEAVY_STAGES == LEAD_TO_HEAVY
    assert set(seen) == LIGHT_STAGES | HEAVY_STAGES  # every stage kind was in the graph


_CHAIN = """stages:
  one:
    cmd: cp in.txt a.txt
    deps: [in.txt]
    params: [size]
    outs: [a.txt]
  two:
    cmd: cp a.txt b.txt && echo 2 >> b.txt
    deps: [a.txt]
    outs: [b.txt]
  three:
    foreach: [x, y]
    do:
      cmd: cat b.txt > c-${item}.txt
      deps: [b.txt]
      outs:
        - c-${item}.txt
"""


def _chain(where: Path) -> None:
    where.mkdir()
    (where / "dvc.yaml").write_text(_CHAIN)
    (where / "params.yaml").write_text("size: 3\n")
    (where / "in.txt").write_text("in\n")


def test_dvc_lock_rewrites_from_the_last_document_write_what_dvc_writes(tmp_path, monkeypatch):
    """Real DVC reproducing a chain of stages twice (cold, then after a change and with dvc.lock
    rewritten by someone else in between): with lockfile_memo, dvc.lock is byte for byte what
    DVC alone writes, and its round-trip parser ran only where the file was not DVC's last text."""
    from dvc.repo import Repo
    from dvc.utils.serialize import _yaml

    from zkml_dvc.inprocess import lockfile_memo

    parses: list[str] = []
    real_parse = _yaml.parse_yaml_for_update

    def counting(text: str, path: str) -> object:
        parses.append(path)
        return real_parse(text, path)

    monkeypatch.setattr(_yaml, "parse_yaml_for_update", counting)
    locks: dict[str, list[bytes]] = {}
    for name, memo in (("plain", False), ("memo", True)):
        root = tmp_path / name
        _chain(root)
        repo = Repo.init(str(root), no_scm=True)
        monkeypatch.chdir(root)  # DVC's targets are relative to the working directory
        try:
            with lockfile_memo() if memo else contextlib.nullcontext():
                parses.clear()
                repo.reproduce()
                cold = len(parses)
                # someone else rewrites dvc.lock (same content, other layout), input changes
                lock = root / "dvc.lock"
                lock.write_text(lock.read_text().replace("schema: '2.0'", 'schema: "2.0"'))
                (root / "in.txt").write_text("changed\n")
                parses.clear()
                repo.reproduce()
                again = len(parses)
            locks[name] = [lock.read_bytes()]
        finally:
            repo.close()
        if memo:
            assert cold == 0 and again == 1, (cold, again)  # new file; then the outside rewrite
        else:
            assert cold == 3 and again == 4, (cold, again)  # one per stage written after the first
    assert locks["plain"] == locks["memo"]
    assert b"c-y.txt" in locks["memo"][0]


def test_lockfile_memo_leaves_dvc_alone_when_its_private_helpers_are_gone(monkeypatch) -> None:
    """A DVC whose private YAML helpers moved: the memo patches nothing and DVC rewrites dvc.lock
    its own way."""
    import sys

    import dvc.dvcfile as dvcfile

    from zkml_dvc.inprocess import lockfile_memo

    theirs = dvcfile.modify_yaml
    monkeypatch.setitem(sys.modules, "dvc.utils.serialize._yaml", None)  # import -> ImportError
    with lockfile_memo():
        assert dvcfile.modify_yaml is theirs
    monkeypatch.undo()
    with lockfile_memo():
        assert dvcfile.modify_yaml is not theirs
    assert dvcfile.modify_yaml is theirs
