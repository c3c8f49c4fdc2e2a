"""Helpers shared by the benchmarks: a scratch project on the example MLP and timing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ZKML = str(BIN / "zkml-dvc")


def bench_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ZKML_DVC_CACHE_DIR", str(REPO / "build" / "cache"))
    env["ZKML_DVC_NO_PROGRESS"] = "1"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for k, v in {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
                 "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}.items():
        env.setdefault(k, v)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_project(parent: Path, name: str, env: dict[str, str], model: str = "mlp") -> Path:
    root = parent / name
    m = REPO / "models" / model
    run([ZKML, "init", str(root), "--model", str(m / "network.onnx"), "--input",
         str(m / "input.json"), "--calibration", str(m / "calibration.json"), "--name", model,
         "--project", "bench"], parent, env)
    params = (root / "params.yaml").read_text().replace("scales: null", "scales:\n    - 7")
    (root / "params.yaml").write_text(params)
    run(["git", "commit", "-qam", "pin scale"], root, env)
    return root


def scratch() -> tempfile.TemporaryDirectory[str]:
    (REPO / "build").mkdir(exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="bench-", dir=REPO / "build")
