"""The clean room: ezkl steps in a child process whose HOME, EZKL_REPO_PATH and cache are empty
directories inside a temp dir, so nothing from the machine's workspace (keys, SRS files, caches)
can stand in for a file the verifier did not download and check.

``run(room, action, args)`` starts ``python -m zkml_dvc.cleanroom ACTION ARGS`` and returns the
JSON it prints: ``verify`` (ezkl verify), ``verify-many`` (ezkl verify of many proofs of one vk),
``evm-render`` (ezkl's Solidity verifier for a vk) and
``audit`` (re-derive settings, circuit and keys).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import ezkl_adapter
from .errors import ConfigError, ZkmlError
from .fsutil import sha256_file
from .params import RunArgs


@contextlib.contextmanager
def room() -> Iterator[Path]:
    """A fresh temporary directory with an empty ``files/`` for the downloads; removed after."""
    with tempfile.TemporaryDirectory(prefix="zkml-cleanroom-") as td:
        (Path(td) / "files").mkdir()
        yield Path(td)


def run(room: Path, action: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``action`` in a child Python with HOME and EZKL_REPO_PATH isolated in ``room``."""
    home = room / "home"
    home.mkdir(exist_ok=True)
    child_env = {
        "HOME": str(home),
        "EZKL_REPO_PATH": str(room / "ezkl"),
        "ZKML_DVC_CACHE_DIR": str(room / "cache"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    if os.environ.get("EZKL_KEY_FORMAT"):
        child_env["EZKL_KEY_FORMAT"] = os.environ["EZKL_KEY_FORMAT"]
    proc = subprocess.run(
        [sys.executable, "-m", "zkml_dvc.cleanroom", action, json.dumps(args)],
        cwd=room, env=child_env, capture_output=True, text=True, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise ConfigError(
            f"the clean-room {action} process failed (exit {proc.returncode}): "
            f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}",
            "Run with -v for details.",
        )
    return dict(json.loads(lines[-1]))


def _worker_main(action: str, raw: str) -> int:
    args = json.loads(raw)
    out: dict[str, Any]
    try:
        if action == "verify":
            ezkl_adapter.verify(Path(args["proof"]), Path(args["settings"]), Path(args["vk"]),
                                Path(args["srs"]))
            out = {"ok": True}
        elif action == "verify-many":  # one child for many proofs of one vk: each one's error
            out = {"ok": True, "errors": [_verify_one(Path(proof), args) for proof in args["proofs"]]}
        elif action == "evm-render":
            ezkl_adapter.create_evm_verifier(Path(args["vk"]), Path(args["settings"]),
                                             Path(args["srs"]), Path(args["out"]))
            out = {"ok": True, "sha256": sha256_file(Path(args["out"]))}
        elif action == "audit":
            out = {"ok": True, **rederive(args)}
        elif action == "audit-chunked":
            out = {"ok": True, **rederive_chunked(args)}
        else:
            out = {"ok": False, "error": f"unknown action {action}"}
    except ZkmlError as exc:
        out = {"ok": False, "error": exc.message}
    print(json.dumps(out), flush=True)
    return 0


def _verify_one(proof: Path, args: dict[str, Any]) -> str | None:
    try:
        ezkl_adapter.verify(proof, Path(args["settings"]), Path(args["vk"]), Path(args["srs"]))
    except ZkmlError as exc:
        return exc.message
    return None


def rederive(args: dict[str, Any]) -> dict[str, Any]:
    """In the clean room's child process: settings, circuit and keys from the model and SRS."""
    d = Path(args["dir"])
    settings, compiled, vk, pk = d / "settings.json", d / "network.compiled", d / "vk.key", d / "pk.key"
    onnx = Path(args["onnx"])
    params = args["params"]
    ezkl_adapter.gen_settings(onnx, settings, RunArgs.model_validate(params["run_args"]).for_ezkl())
    ezkl_adapter.calibrate_settings(Path(args["calibration"]), onnx, settings,
                                    params["calibration_target"], params["scales"],
                                    options=params.get("calibration_options") or {})
    ezkl_adapter.compile_circuit(onnx, compiled, settings)
    ezkl_adapter.setup(compiled, vk, pk, Path(args["srs"]))
    return {"derived": {"settings": sha256_file(settings), "vk": sha256_file(vk)},
            "onnx_sha256": sha256_file(onnx)}


def rederive_chunked(args: dict[str, Any]) -> dict[str, Any]:
    """The same for a chunked model: split it again (the plan), then each chunk's circuit and keys."""
    from .chunked.plan import make_plan
    from .params import ChunkedModelParams

    d = Path(args["dir"])
    cp = ChunkedModelParams.model_validate({**args["params"], "onnx": args["onnx"],
                                            "calibration": args["calibration"]})
    plan_dir = d / "plan"
    plan_dir.mkdir()
    plan = make_plan(args["model"], cp, plan_dir)
    derived: dict[str, str] = {}
    for c in plan.chunks:
        settings = plan_dir / f"{c.index}.settings.json"
        compiled, vk, pk = d / f"{c.index}.compiled", d / f"{c.index}.vk", d / f"{c.index}.pk"
        ezkl_adapter.compile_circuit(plan_dir / f"{c.index}.onnx", compiled, settings)
        ezkl_adapter.setup(compiled, vk, pk, Path(args["srs"]))
        pk.unlink()  # a proving key per chunk adds up; only the vk's hash is compared
        derived[f"chunk {c.index} settings"] = sha256_file(settings)
        derived[f"chunk {c.index} vk"] = sha256_file(vk)
    return {"derived": derived, "onnx_sha256": sha256_file(Path(args["onnx"]))}


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1], sys.argv[2]))
