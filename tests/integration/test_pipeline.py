"""The real pipeline: ezkl through DVC in temporary git repos (slow: tens of seconds each)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODELS, cli, new_project
from zkml_dvc import pipeline
from zkml_dvc.fsutil import sha256_file
from zkml_dvc.layout import STAGES, ModelLayout
from zkml_dvc.project import Project
from zkml_dvc.runs import load_manifest

pytestmark = pytest.mark.slow
LAY = ModelLayout("mlp")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def test_run_records_commits_tags_and_is_a_noop_the_second_time(project: Path):
    res = cli("run", "--run-id", "r1", "--no-push", cwd=project)
    assert res.returncode == 0, res.stderr
    assert "run r1: model mlp, 11 of 11 stages ran, proof verified; tag runs/testproj/r1" in res.stdout
    ref, m = load_manifest(project, "r1")
    assert ref.tag == "runs/testproj/r1"
    assert m.tools.ezkl == "23.0.5" and m.tools.ezkl_key_format == "raw-bytes"
    assert m.srs.logrows <= 15 and m.srs.source == "local" and m.srs.insecure
    assert [s.stage for s in m.stages] == list(STAGES) and all(s.ran for s in m.stages)
    by_stage = {s.stage: s for s in m.stages}
    assert [c.function for c in by_stage["mock"].ezkl_calls] == ["gen_witness", "mock"]
    assert by_stage["setup"].ezkl_calls[0].function == "setup"
    assert by_stage["setup"].peak_rss_bytes and by_stage["prove"].peak_rss_bytes
    assert by_stage["mock"].peak_rss_bytes
    # the light stages ran inside `run`'s own process (inprocess.py): no process, so no peak
    assert all(by_stage[s].peak_rss_bytes is None
               for s in ("settings", "calibrate", "compile", "witness", "verify", "metrics"))
    assert m.model_facts.opset == 13 and m.model_facts.parameter_count == 4 * 8 + 8 + 8 * 2 + 2
    assert m.model_facts.inputs[0].shape == [1, 4] and m.model_facts.inputs[0].dtype == "float"
    assert m.params["model"]["run_args"]["param_visibility"] == "fixed"
    by_path = {a.path: a for a in m.artifacts}
    assert by_path[str(LAY.pk)].category == "keys" and by_path[str(LAY.pk)].md5
    assert by_path[str(LAY.proof)].reproducible is False
    assert by_path[str(LAY.vk)].sha256 == sha256_file(project / LAY.vk)
    assert by_path[str(LAY.pk)].object_key.startswith("dvc/files/md5/")
    # dvc.lock and the manifest are committed at the tag; the worktree is clean
    assert "dvc.lock" in git(project, "show", "--name-only", "runs/testproj/r1")
    assert git(project, "status", "--porcelain") == ""
    with Project(project) as handle:
        assert pipeline.status_clean(handle, "mlp")

    dvc = subprocess.run(["dvc", "repro"], cwd=project, capture_output=True, text=True)
    assert dvc.returncode == 0 and "Running stage" not in dvc.stdout + dvc.stderr

    # nothing changed: the run that records this state is named and no new run is recorded
    same = cli("run", "--run-id", "r2", "--no-push", cwd=project)
    assert same.returncode == 0, same.stderr
    assert "nothing changed: run r1 (tag runs/testproj/r1) already records this state" in same.stdout
    assert "r2" not in git(project, "tag")
    assert git(project, "status", "--porcelain") == ""
    res2 = cli("run", "--run-id", "r2", "--no-push", "--force", cwd=project)
    assert "0 of 11 stages ran" in res2.stdout, res2.stdout + res2.stderr
    _, m2 = load_manifest(project, "r2")
    assert not any(s.ran for s in m2.stages)

    # a forced re-prove: the proof differs (random blinding), the keys do not
    subprocess.run(["dvc", "repro", "-f", "-s", "prove@mlp"], cwd=project, check=True,
                   capture_output=True)
    assert cli("run", "--run-id", "r3", "--no-push", cwd=project).returncode == 0
    listing = cli("runs", "--json", cwd=project, check=True).stdout
    assert [r["run_id"] for r in json.loads(listing)] == ["r1", "r2", "r3"]
    shown = cli("show", "r3", cwd=project, check=True).stdout
    assert "pk.key" in shown and "cached" in shown and "ran" in shown
    d = cli("diff", "r2", "r3", cwd=project, check=True).stdout
    proof_line = next(ln for ln in d.splitlines() if "proof.json" in ln)
    vk_line = next(ln for ln in d.splitlines() if "vk.key" in ln)
    assert "expected-random" in proof_line and "same" in vk_line


def test_rerunning_early_stages_does_not_regenerate_keys(project: Path):
    assert cli("run", "--run-id", "a", "--no-push", cwd=project).returncode == 0
    pk = project / LAY.pk
    pk_sha, pk_mtime = sha256_file(pk), pk.stat().st_mtime_ns
    compiled_before = sha256_file(project / LAY.compiled)
    for stage in ("settings", "calibrate", "compile"):
        subprocess.run(["dvc", "repro", "-f", "-s", f"{stage}@mlp"], cwd=project, check=True,
                       capture_output=True)
    res = cli("run", "--run-id", "b", "--no-push", cwd=project)
    assert res.returncode == 0, res.stderr
    _, m = load_manifest(project, "b")
    ran = {s.stage for s in m.stages if s.ran}
    assert "setup" not in ran and "prove" not in ran
    assert sha256_file(pk) == pk_sha and pk.stat().st_mtime_ns == pk_mtime
    # the compiled circuit was really rebuilt (its bytes are not stable) yet keygen was skipped
    _, m_a = load_manifest(project, "a")
    starts = {s.stage: s.started for s in m_a.stages}
    compile_b = next(s for s in m.stages if s.stage == "compile")
    assert compile_b.started > starts["verify"]
    del compiled_before


def test_two_cold_runs_are_byte_identical_except_proofs(tmp_path: Path):
    a = new_project(tmp_path, "a")
    b = new_project(tmp_path, "b")
    for root in (a, b):
        assert cli("run", "--run-id", "cold", "--no-push", cwd=root).returncode == 0
    for path in (LAY.settings, LAY.vk, LAY.pk, LAY.witness, LAY.fingerprint):
        assert sha256_file(a / path) == sha256_file(b / path), path
    assert sha256_file(a / LAY.proof) != sha256_file(b / LAY.proof)
    pa, pb = (json.loads((r / LAY.proof).read_text()) for r in (a, b))
    assert pa["instances"] == pb["instances"]
    for root in (a, b):
        assert json.loads((root / LAY.verify_report).read_text())["verified"] is True


def _conv_model(dest: Path) -> tuple[Path, Path]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w = rng.normal(0, 0.5, (2, 1, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 2).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3],
                              strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    dest.mkdir(parents=True)
    onnx.save(model, dest / "conv.onnx")
    x = rng.uniform(-1, 1, 25).tolist()
    (dest / "in.json").write_text(json.dumps({"input_data": [x]}))
    return dest / "conv.onnx", dest / "in.json"


def test_init_and_run_on_a_model_not_among_the_examples(tmp_path: Path):
    onnx_path, input_path = _conv_model(tmp_path / "src")
    root = tmp_path / "convproj"
    res = cli("init", str(root), "--model", str(onnx_path), "--input", str(input_path),
              "--name", "conv")
    assert res.returncode == 0, res.stderr
    assert "Created project convproj" in res.stdout
    assert (root / ".dvc" / "config").exists() and (root / ".git").exists()
    params = (root / "params.yaml").read_text().replace("scales: null", "scales:\n    - 7")
    (root / "params.yaml").write_text(params)
    res = cli("run", "--no-push", cwd=root)
    assert res.returncode == 0, res.stderr
    assert "11 of 11 stages ran, proof verified" in res.stdout


# ---- bad input ---------------------------------------------------------------------------------
def _assert_clean_error(res, code: int, *needles: str) -> None:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    err_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(err_lines) == 1, res.stderr
    for n in needles:
        assert n in err_lines[0], (n, err_lines[0])


def test_init_refuses_bad_models_and_inputs_leaving_nothing(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf")
    target = tmp_path / "p"
    _assert_clean_error(cli("init", str(target), "--model", str(bad), "--input",
                            str(MODELS / "mlp" / "input.json")), 2, "bad.onnx", "not a valid ONNX")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"input_data": [[0.1, 0.2, 0.3]]}))
    _assert_clean_error(cli("init", str(target), "--model", str(MODELS / "mlp" / "network.onnx"),
                            "--input", str(wrong)), 2, "wrong.json", "expects shape [1, 4]")
    _assert_clean_error(cli("init", str(target), "--model", str(tmp_path / "missing.onnx"),
                            "--input", str(wrong)), 2, "missing.onnx", "not found")
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.")] == []


def test_run_errors_name_model_stage_and_run(project: Path):
    _assert_clean_error(cli("run", "--model", "nope", cwd=project), 8, "unknown model 'nope'", "mlp")
    _assert_clean_error(cli("run", "--run-id", "../x", cwd=project), 2, "run id")
    head = git(project, "rev-parse", "HEAD")
    (project / "models" / "mlp" / "calibration.json").write_text('{"input_data": [[1, 2, 3]]}')
    res = cli("run", "--run-id", "broken", "--no-push", cwd=project)
    _assert_clean_error(res, 7, "stage calibrate@mlp failed")
    assert git(project, "rev-parse", "HEAD") == head
    assert "broken" not in git(project, "tag")
    assert not (project / LAY.manifest).exists()
    assert not (project / LAY.settings).exists(), "no half-written calibrated settings"
    tv = cli("-v", "run", "--run-id", "broken", "--no-push", cwd=project)
    assert "Traceback" in tv.stderr


def test_run_id_that_exists_is_refused_before_any_work(project: Path):
    assert cli("run", "--run-id", "once", "--no-push", cwd=project).returncode == 0
    head = git(project, "rev-parse", "HEAD")
    _assert_clean_error(cli("run", "--run-id", "once", "--no-push", cwd=project), 2,
                        "runs/testproj/once already exists")
    assert git(project, "rev-parse", "HEAD") == head


def test_repository_pipeline_proves_the_digits_classifier(tmp_path: Path):
    """The repository itself is a project: its dvc.yaml/params.yaml run the digits example."""
    from tests.conftest import REPO

    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        (root / name).write_text((REPO / name).read_text())
    import shutil

    shutil.copytree(REPO / "models", root / "models")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "copy"], cwd=root, check=True)
    res = cli("run", "--model", "digits", "--no-push", cwd=root)
    assert res.returncode == 0, res.stderr
    _, m = load_manifest(root, res.stdout.split()[1].rstrip(":"))
    assert m.srs.logrows <= 15
    assert m.model_facts.inputs[0].shape == [1, 64]
    report = json.loads((root / "artifacts/digits/reports/verify.json").read_text())
    assert report["verified"] is True


def test_dvc_sees_exactly_the_repository_pipeline():
    """DVC collects every dvc.yaml in a repo: the packaged template and scratch projects must be
    ignored, or `dvc repro` in the repository fails to parse."""
    from tests.conftest import REPO

    res = subprocess.run(["dvc", "stage", "list"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    names = {line.split()[0] for line in res.stdout.splitlines() if line.strip()}
    from zkml_dvc.params import load_params

    expected = {f"{s}@{m}" for s in STAGES for m in load_params(REPO).models}
    assert names == expected


def test_a_light_stage_failing_inside_run_is_reported_once_with_its_exit_code(project: Path):
    # calibrate runs inside `zkml-dvc run`'s own process (inprocess.py); its failure must read as
    # a stage process's would: one line naming the stage and the file, its exit code, no
    # traceback, and nothing recorded for the stage
    params = (project / "params.yaml").read_text()
    calibration = next(line.split(":", 1)[1].strip() for line in params.splitlines()
                       if line.strip().startswith("calibration:"))
    (project / calibration).write_text('{"input_data": [[0.1, 0.2]')  # cut short
    subprocess.run(["git", "commit", "-qam", "broken calibration"], cwd=project, check=True)
    res = cli("run", "--run-id", "bad", "--no-push", cwd=project)
    err = res.stderr.strip().splitlines()[-1]  # after DVC's own lines about dvc.lock
    assert res.returncode not in (0, 1), (res.returncode, res.stderr)
    assert err.startswith("Error: stage calibrate@mlp failed:"), res.stderr
    assert "Traceback" not in res.stderr
    assert calibration in err
    assert "calibrate@mlp" not in ((project / "dvc.lock").read_text()
                                   if (project / "dvc.lock").exists() else "")
    assert not (project / LAY.settings).exists()
    assert "bad" not in git(project, "tag")
