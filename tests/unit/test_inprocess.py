"""Which dvc.yaml commands `zkml-dvc run` runs in its own process (zkml_dvc/inprocess.py)."""

from __future__ import annotations

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
