"""Each run's DVC metrics (reports/metrics.json): written by the metrics stage, committed with the
run, read unwrapped by `dvc metrics show` / `dvc metrics diff` between run tags, and by
`zkml-dvc diff`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli
from zkml_dvc.layout import ModelLayout

pytestmark = pytest.mark.slow
LAY = ModelLayout("mlp")


def dvc(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_runs_write_metrics_that_dvc_reads_and_diffs_between_run_tags(project: Path) -> None:
    res = cli("run", "--run-id", "r1", "--no-push", cwd=project)
    assert res.returncode == 0, res.stderr
    m = json.loads((project / LAY.metrics).read_text())
    assert m["logrows"] == 15 and m["input_scale"] == 7 and m["rows_used"] > 0
    assert m["bytes"]["pk"] == (project / LAY.pk).stat().st_size
    assert m["bytes"]["proof"] == (project / LAY.proof).stat().st_size
    assert m["seconds"]["setup"] > 0 and m["seconds"]["prove"] > 0
    assert m["peak_rss_mb"]["setup"] > 100 and m["peak_rss_mb"]["prove"] > 100
    # the proved output against the float model (onnx's reference evaluator)
    assert 0 <= m["output_error"]["mean_abs"] <= m["output_error"]["max_abs"] < 0.05
    # committed with the run (git-tracked, not a DVC object)
    committed = subprocess.run(["git", "show", f"runs/testproj/r1:{LAY.metrics}"], cwd=project,
                               capture_output=True, text=True, check=True).stdout
    assert json.loads(committed) == m
    shown = json.loads(dvc(project, "metrics", "show", "--json"))
    assert json.dumps(shown).count('"logrows": 15') >= 1, shown
    # a finer scale: another circuit, another error; diffed by DVC and by zkml-dvc
    params = (project / "params.yaml").read_text().replace("scales:\n    - 7", "scales:\n    - 9")
    (project / "params.yaml").write_text(params)
    subprocess.run(["git", "commit", "-qam", "scale 9"], cwd=project, check=True)
    res = cli("run", "--run-id", "r2", "--no-push", cwd=project)
    assert res.returncode == 0, res.stderr
    diff = json.loads(dvc(project, "metrics", "diff", "runs/testproj/r1", "runs/testproj/r2",
                          "--json"))
    changed = diff[str(LAY.metrics)]
    assert changed["input_scale"] == {"old": 7, "new": 9, "diff": 2}, changed
    assert "output_error.max_abs" in changed, changed
    out = cli("diff", "r1", "r2", cwd=project, check=True).stdout
    assert "input_scale" in out and "output_error.max_abs" in out, out
    # DVC's plots across the two run tags: stage seconds per run, error against scale
    plots = json.loads(dvc(project, "plots", "diff", "runs/testproj/r1", "runs/testproj/r2",
                           "--json", "--split"))
    def points(path: Path) -> list[dict[str, object]]:
        return list(plots["data"][str(path)][0]["anchor_definitions"]["<DVC_METRIC_DATA>"])

    scales = {(p["rev"], p["input_scale"]) for p in points(LAY.plot_accuracy)}
    assert scales == {("runs/testproj/r1", 7), ("runs/testproj/r2", 9)}, scales
    stages = {p["stage"] for p in points(LAY.plot_stage_seconds) if p["rev"] == "runs/testproj/r2"}
    assert stages >= {"setup", "prove", "verify"}, stages
    html = project / "plots-out"
    dvc(project, "plots", "diff", "runs/testproj/r1", "runs/testproj/r2", "-o", str(html))
    assert "vega" in (html / "index.html").read_text()


def test_an_experiment_runs_unwrapped_and_is_promoted_to_a_run(project: Path) -> None:
    """`dvc exp run -S` reproduces the pipeline through zkml-dvc's stages, `dvc exp show` compares
    its metrics, and `zkml-dvc run` on the applied experiment records it as a run without
    recomputing anything."""
    dvc(project, "exp", "run", "-S", "models.mlp.scales=[9]", "-n", "scale9")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(dvc(project, "exp", "show", "--csv"))))
    mine = next(r for r in rows if r["Experiment"] == "scale9")
    assert mine["input_scale"] == "9" and float(mine["output_error.max_abs"]) < 0.01, mine
    assert mine["logrows"] == "15" and int(mine["bytes.pk"]) > 0, mine
    res = cli("run", "--run-id", "scale9", "--no-push", cwd=project)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 of 11 stages ran" in res.stdout, res.stdout  # all computed by the experiment
    committed = subprocess.run(["git", "show", f"runs/testproj/scale9:{LAY.metrics}"],
                               cwd=project, capture_output=True, text=True, check=True).stdout
    assert json.loads(committed)["input_scale"] == 9
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status  # params.yaml, dvc.lock and the metrics are in the run's commit


def test_a_queue_of_experiments_runs_and_one_is_promoted(project: Path) -> None:
    """Queued experiments (`dvc exp run --queue`, then `dvc queue start`) run zkml-dvc's stages in
    DVC's own workers; `dvc exp show` compares them; one applied becomes a run with nothing
    recomputed."""
    import csv
    import io
    import time

    for scale in (5, 9):
        dvc(project, "exp", "run", "--queue", "-S", f"models.mlp.scales=[{scale}]", "-n", f"s{scale}")
    dvc(project, "queue", "start", "-j", "1")
    deadline = time.monotonic() + 600
    while True:
        status = dvc(project, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(2)
    rows = {r["Experiment"]: r for r in csv.DictReader(io.StringIO(dvc(project, "exp", "show",
                                                                       "--csv")))}
    for scale in (5, 9):
        row = rows[f"s{scale}"]
        assert row["State"] == "Success" and row["input_scale"] == str(scale), row
    assert float(rows["s5"]["output_error.max_abs"]) > float(rows["s9"]["output_error.max_abs"])
    dvc(project, "exp", "apply", "s9")
    res = cli("run", "--run-id", "s9", "--no-push", cwd=project)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 of 11 stages ran" in res.stdout, res.stdout
