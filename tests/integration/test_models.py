"""Harder model families (docs/models.md), the mock stage before keygen, and the cost estimate:
each through `zkml-dvc run` against the real local store and a clean-room verify."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import (
    MODELS,
    VERIFY,
    S3Server,
    cli,
    clone,
    connect,
    machine_env,
    new_bucket,
    new_project,
)
from zkml_dvc.instances import decode_output
from zkml_dvc.layout import ModelLayout

pytestmark = pytest.mark.slow


def args_of(family: str) -> dict[str, object]:
    """models/<family>/args.yaml: what the family needs beyond `init`'s defaults, and how close
    its proved output must be to the float model's."""
    return dict(yaml.safe_load((MODELS / family / "args.yaml").read_text()))


def set_model_params(root: Path, model: str, extra: dict[str, object]) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    entry = params["models"][model]
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(entry.get(key), dict):
            entry[key] = {**entry[key], **value}
        else:
            entry[key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", f"{model}: args"], cwd=root, check=True)


def float_output(family: str) -> np.ndarray:
    """The float model's output on the family's input (onnx's reference evaluator)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(MODELS / family / "network.onnx")
    spec = model.graph.input[0]
    values = json.loads((MODELS / family / "input.json").read_text())["input_data"][0]
    shape = [d.dim_value or -1 for d in spec.type.tensor_type.shape.dim]
    x = np.asarray(values, dtype=np.float32).reshape(shape)
    return np.asarray(ReferenceEvaluator(model).run(None, {spec.name: x})[0]).flatten()


def run_and_verify_elsewhere(root: Path, family: str, run_id: str, s3: S3Server,
                             tmp_path: Path) -> None:
    """Run (pushing to the store), then verify in a fresh clone on another machine; the output the
    proof commits to is the float model's within the family's tolerance."""
    res = cli("run", "--run-id", run_id, cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " of 11 stages ran" in res.stdout, res.stdout  # settings may be cached from a failed run
    lay = ModelLayout(family)
    mock = json.loads((root / lay.mock_report).read_text())
    assert mock["mock"] == "passed"
    other = clone(root, tmp_path / f"{family}-verifier")
    v = cli(*VERIFY, run_id, cwd=other, env=machine_env(tmp_path, s3, f"{family}-verifier"))
    assert v.returncode == 0, v.stdout + v.stderr
    assert "VALID" in v.stdout
    claim = decode_output(root / lay.proof, root / lay.settings)
    proved = np.asarray([float(x) for tensor in claim.value for x in tensor])
    error = float(np.max(np.abs(proved - float_output(family))))
    tolerance = float(args_of(family)["tolerance"])  # type: ignore[arg-type]
    print(f"\n{family}: max abs error of the proved output {error:.5f} (tolerance {tolerance})")
    assert error <= tolerance, (family, error)


def test_an_input_beyond_calibration_fails_at_mock_before_any_keygen(
        s3_server: S3Server, tmp_path: Path) -> None:
    """The attention block's input lies beyond its calibration data: with init's defaults its
    softmax lookups are not satisfied. mock says so in seconds, naming the model and the fixes,
    and no setup runs; with the args docs/models.md gives, it proves and verifies."""
    root = new_project(tmp_path, "attention", model="attention", project_id="attn")
    connect(root, s3_server, new_bucket(s3_server))
    lay = ModelLayout("attention")
    res = cli("run", "--run-id", "a0", cwd=root)
    assert res.returncode == 7, res.stdout + res.stderr
    err = res.stderr.strip().splitlines()[-1]
    print(f"\n{err}")
    assert err.startswith("Error: stage mock@attention failed: model attention: ezkl mock:"), err
    assert "lookups not satisfied" in err and "no keygen ran" in err, err
    assert "lookup_safety_margin" in err and "Traceback" not in res.stderr, err
    assert not (root / lay.pk).exists() and not (root / lay.stage_record("setup")).exists()
    assert "setup@attention" not in (root / "dvc.lock").read_text()
    assert subprocess.run(["git", "tag"], cwd=root, capture_output=True, text=True).stdout == ""
    set_model_params(root, "attention", args_of("attention")["params"])  # type: ignore[arg-type]
    run_and_verify_elsewhere(root, "attention", "a1", s3_server, tmp_path)


@pytest.mark.parametrize("family", ["rnn", "trees"])
def test_model_family_runs_and_verifies_in_a_clean_room(family: str, s3_server: S3Server,
                                                        tmp_path: Path) -> None:
    root = new_project(tmp_path, family, model=family, project_id=family)
    connect(root, s3_server, new_bucket(s3_server))
    params = args_of(family)["params"]
    if family == "rnn":  # a symbolic dimension run_args.variables does not set: named, with the fix
        res = cli("run", "--run-id", "r0", cwd=root)
        assert res.returncode == 7, res.stdout + res.stderr
        assert "has symbolic dimension(s) seq_len that run_args.variables does not set" in \
            res.stderr and "models.rnn.run_args.variables: [[batch_size, N], [seq_len, N]]" in \
            res.stderr, res.stderr
    set_model_params(root, family, params)  # type: ignore[arg-type]
    run_and_verify_elsewhere(root, family, "r1", s3_server, tmp_path)


def test_run_refuses_keygen_the_estimate_says_cannot_fit(tmp_path: Path) -> None:
    """With less memory than the estimate for setup, `run` stops before keygen (exit 11) and says
    what it would need; --force runs anyway; afterwards the estimate rests on the project's own
    run and matches its pk size."""
    root = new_project(tmp_path)
    small = {"ZKML_DVC_MEMORY_LIMIT": "50M"}
    est = cli("estimate", "--json", cwd=root, env=small)
    assert est.returncode == 0, est.stderr
    predicted = json.loads(est.stdout)
    assert predicted["available_memory"] == 50 << 20
    assert predicted["setup_peak_rss"] > 50 << 20
    res = cli("run", "--run-id", "m0", "--no-push", cwd=root, env=small)
    assert res.returncode == 11, res.stdout + res.stderr
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("Error: stage setup@mlp failed: model mlp: setup at logrows 15 is "
                          "estimated to peak at"), err
    assert "$ZKML_DVC_MEMORY_LIMIT" in err and "--force" in err, err
    assert not (root / ModelLayout("mlp").pk).exists()
    res = cli("run", "--run-id", "m1", "--no-push", "--force", cwd=root, env=small)
    assert res.returncode == 0, res.stdout + res.stderr
    pk = (root / ModelLayout("mlp").pk).stat().st_size
    after = json.loads(cli("estimate", "--json", cwd=root, check=True).stdout)
    assert "run m1" in after["basis"], after["basis"]
    assert abs(after["pk_bytes"] - pk) <= 0.3 * pk
    # the stage records hold the peak memory the estimate learns from
    setup = json.loads((root / ModelLayout("mlp").stage_record("setup")).read_text())
    assert setup["peak_rss_bytes"] > pk
    table = cli("estimate", cwd=root, check=True).stdout
    assert "proving key" in table and "fits" in table
