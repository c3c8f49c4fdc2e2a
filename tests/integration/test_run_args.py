"""ezkl's own run args from params.yaml reach ezkl (real gen_settings on the example MLP)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import MODELS
from zkml_dvc import ezkl_adapter
from zkml_dvc.params import RunArgs


def test_run_args_beyond_the_visibilities_reach_ezkls_settings(tmp_path: Path) -> None:
    args = RunArgs.model_validate({
        "input_visibility": "public", "output_visibility": "public", "param_visibility": "fixed",
        "num_inner_cols": 1, "lookup_range": [-4096, 4096], "decomp_legs": 3,
        "check_mode": "unsafe",
    })
    settings = tmp_path / "settings.json"
    ezkl_adapter.gen_settings(MODELS / "mlp" / "network.onnx", settings, args.for_ezkl())
    run_args = json.loads(settings.read_text())["run_args"]
    assert run_args["num_inner_cols"] == 1
    assert list(run_args["lookup_range"]) == [-4096, 4096]
    assert run_args["decomp_legs"] == 3
    assert str(run_args["check_mode"]).lower() == "unsafe"


def test_calibration_options_reach_ezkls_calibration(tmp_path: Path) -> None:
    args = RunArgs(input_visibility="public", output_visibility="public", param_visibility="fixed")
    settings = tmp_path / "settings.json"
    onnx = MODELS / "mlp" / "network.onnx"
    ezkl_adapter.gen_settings(onnx, settings, args.for_ezkl())
    ezkl_adapter.calibrate_settings(MODELS / "mlp" / "calibration.json", onnx, settings,
                                    "resources", [7],
                                    options={"max_logrows": 16, "lookup_safety_margin": 2})
    assert json.loads(settings.read_text())["run_args"]["logrows"] <= 16
    # a cap below what the model needs is ezkl's own error, named
    import pytest

    from zkml_dvc.errors import EzklError

    with pytest.raises(EzklError, match="calibrate_settings"):
        ezkl_adapter.calibrate_settings(MODELS / "mlp" / "calibration.json", onnx, settings,
                                        "resources", [7], options={"max_logrows": 4})
