"""zkml-dvc's overhead over the same ezkl calls made by a plain script, in one process run.

Prints: wall time of the full pipeline through `zkml-dvc run` vs a plain script making the same
ezkl calls (same model, same params, same cached SRS), and a no-op `zkml-dvc run` vs `dvc status`.
Targets (issues 2 and 15): full run <= 1.10x the plain script; no-op run <= 1.3x `dvc status`.
Run: .venv/bin/python benchmarks/overhead.py [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ZKML, bench_env, make_project, run, scratch, timed  # noqa: E402

PLAIN = r'''
import json, sys, ezkl
from pathlib import Path
d, onnx, inp, cal, srs = (Path(a) for a in sys.argv[1:6])
ra = ezkl.PyRunArgs()
ra.input_visibility, ra.output_visibility, ra.param_visibility = "public", "public", "fixed"
s = d / "settings.json"
assert ezkl.gen_settings(str(onnx), str(s), py_run_args=ra)
assert ezkl.calibrate_settings(str(cal), str(onnx), str(s), "resources", scales=[7])
c = d / "network.compiled"
assert ezkl.compile_circuit(str(onnx), str(c), str(s))
ezkl.gen_witness(str(inp), str(c), str(d / "witness.json"))
assert ezkl.setup(str(c), str(d / "vk.key"), str(d / "pk.key"), srs_path=str(srs))
ezkl.prove(str(d / "witness.json"), str(c), str(d / "pk.key"), str(d / "proof.json"), srs_path=str(srs))
assert ezkl.verify(str(d / "proof.json"), str(s), str(d / "vk.key"), srs_path=str(srs))
'''


def main() -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args([] if __name__ != "__main__" else None)
    with scratch() as td:
        tmp = Path(td)
        env = bench_env(tmp)
        # warm the SRS cache so neither side pays for gen_srs
        warm = make_project(tmp, "warm", env)
        run([ZKML, "run", "--no-push"], warm, env)
        srs_sha = json.loads((warm / "artifacts/mlp/keys/srs.json").read_text())["sha256"]
        srs = Path(env["ZKML_DVC_CACHE_DIR"]) / "blobs" / srs_sha
        m = Path(__file__).resolve().parents[1] / "models" / "mlp"
        plain_t, zk_t, noop_t, status_t = [], [], [], []
        for i in range(args.reps):
            d = tmp / f"plain{i}"
            d.mkdir()
            plain_t.append(timed(lambda d=d: run(
                [sys.executable, "-c", PLAIN, str(d), str(m / "network.onnx"),
                 str(m / "input.json"), str(m / "calibration.json"), str(srs)], d, env)))
            proj = make_project(tmp, f"zk{i}", env)
            zk_t.append(timed(lambda p=proj: run([ZKML, "run", "--no-push"], p, env)))
            noop_t.append(timed(lambda p=proj: run([ZKML, "run", "--no-push"], p, env)))
            status_t.append(timed(lambda p=proj: run(["dvc", "status"], p, env)))
    res = {
        "plain_s": statistics.median(plain_t), "zkml_dvc_s": statistics.median(zk_t),
        "noop_run_s": statistics.median(noop_t), "dvc_status_s": statistics.median(status_t),
    }
    res["overhead_ratio"] = res["zkml_dvc_s"] / res["plain_s"]
    res["noop_ratio"] = res["noop_run_s"] / res["dvc_status_s"]
    print(f"full pipeline: plain ezkl script {res['plain_s']:.2f} s, zkml-dvc run "
          f"{res['zkml_dvc_s']:.2f} s -> ratio {res['overhead_ratio']:.2f}x (target <= 1.10x)")
    print(f"no-op: zkml-dvc run {res['noop_run_s']:.2f} s, dvc status {res['dvc_status_s']:.2f} s "
          f"-> ratio {res['noop_ratio']:.2f}x (target <= 1.3x)")
    print(f"(medians of {args.reps} reps; cores: {os.cpu_count()})")
    return res


if __name__ == "__main__":
    main()
