"""Which dvc.yaml commands `zkml-dvc run` runs in its own process (zkml_dvc/inprocess.py)."""

from __future__ import annotations

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


def test_stage_server_starts_only_where_a_heavy_stage_is_downstream(tmp_path) -> None:
    """In a real DVC graph: a light stage with a heavy one downstream (witness -> prove) starts
    the stage server, a heavy one does, a light stage with only light ones after it does not."""
    from dvc.repo import Repo

    from zkml_dvc.inprocess import _heavy_from

    (tmp_path / "input.json").write_text("{}")
    (tmp_path / "dvc.yaml").write_text("""stages:
  witness:
    cmd: zkml-dvc stage witness --model m
    deps: [input.json]
    outs: [witness.json]
  prove:
    cmd: zkml-dvc stage prove --model m
    deps: [witness.json]
    outs: [proof.json]
  verify:
    cmd: zkml-dvc stage verify --model m
    deps: [proof.json]
    outs: [verdict.json]
  metrics:
    cmd: zkml-dvc stage metrics --model m
    deps: [input.json]
    outs: [metrics.json]
  report:
    cmd: python report.py
    deps: [verdict.json]
    outs: [report.html]
""")
    repo = Repo.init(str(tmp_path), no_scm=True)
    try:
        stages = {s.name: s for s in repo.index.stages}
        assert _heavy_from(stages["witness"], "witness")
        assert _heavy_from(stages["prove"], "prove")
        assert not _heavy_from(stages["verify"], "verify")
        assert not _heavy_from(stages["metrics"], "metrics")
    finally:
        repo.close()
