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
