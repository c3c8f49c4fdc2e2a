"""Batch proving: proofs per minute for N inputs (default 32) with one run's keys.

Side by side, on the same keys and the same inputs:
- baseline: a sequential loop of plain ezkl (gen_witness + prove per input) in one process;
- `zkml-dvc prove-batch` on a local Ray instance (one actor per CPU; its wall time includes
  starting Ray, storing every input and proof, and rewriting the batch manifest after each);
then `zkml-dvc verify RUN --batch ID` of the whole batch from a fresh clone (clean room).
Prints proofs per minute of each and their ratio (issue 15: the figure, measured; no goal is set).
Run: .venv/bin/python benchmarks/batch.py [--inputs N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ZKML, bench_env, make_project, run, scratch  # noqa: E402

PLAIN = r'''
import sys, ezkl
from pathlib import Path
out, compiled, pk, vk, srs, *inputs = sys.argv[1:]
for i, inp in enumerate(inputs):
    w = Path(out) / f"w{i}.json"
    ezkl.gen_witness(inp, compiled, str(w), vk_path=vk, srs_path=srs)
    ezkl.prove(str(w), compiled, pk, str(Path(out) / f"p{i}.json"), srs_path=srs)
'''


def main() -> dict[str, float]:
    from zkml_dvc import localstore

    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=32)
    args = ap.parse_args([] if __name__ != "__main__" else None)
    n = args.inputs
    with scratch() as td:
        tmp = Path(td)
        env = bench_env(tmp)
        root = make_project(tmp, "producer", env)
        run([ZKML, "store", "up", "--dir", str(tmp / "store")], root, env)
        try:
            run([ZKML, "run", "--run-id", "bench"], root, env)
            rng = random.Random(15)
            ins = tmp / "inputs"
            ins.mkdir()
            files = []
            for i in range(n):
                f = ins / f"in{i:02d}.json"
                f.write_text(json.dumps({"input_data": [[round(rng.uniform(-1, 1), 4)
                                                         for _ in range(4)]]}))
                files.append(str(f))
            from zkml_dvc.layout import ModelLayout

            lay = ModelLayout("mlp")
            srs_sha = json.loads((root / lay.srs_pointer).read_text())["sha256"]
            srs = Path(env["ZKML_DVC_CACHE_DIR"]) / "blobs" / srs_sha
            out = tmp / "plain"
            out.mkdir()
            t0 = time.perf_counter()
            run([sys.executable, "-c", PLAIN, str(out), str(root / lay.compiled),
                 str(root / lay.pk), str(root / lay.vk), str(srs), *files], tmp, env)
            plain = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = run([ZKML, "prove-batch", "bench", *files, "--batch", "bench"], root, env)
            batch = time.perf_counter() - t0
            sha = res.stdout.split("batch.json sha256 ")[1].split(";")[0]
            run(["git", "clone", "-q", str(root), str(tmp / "clone")], tmp, env)
            home = tmp / "home"
            home.mkdir()
            # another machine: its own HOME and cache, the store (and its CA) through env vars only
            cenv = {**env, "HOME": str(home), "ZKML_DVC_CACHE_DIR": str(home / "cache"),
                    **localstore.env_exports(tmp / "store")}
            t0 = time.perf_counter()
            res = run([ZKML, "verify", "bench", "--batch", "bench", "--batch-sha256", sha,
                       "--allow-untrusted-srs"], tmp / "clone", cenv)
            verify = time.perf_counter() - t0
            assert f"{n} of {n} proofs verified" in res.stdout, res.stdout
        finally:
            localstore.down(tmp / "store")
    plain_rate, batch_rate = n / plain * 60, n / batch * 60
    print(f"{n} inputs, the example MLP's keys: plain ezkl loop {plain:.1f} s "
          f"({plain_rate:.1f} proofs/min); prove-batch on local Ray {batch:.1f} s "
          f"({batch_rate:.1f} proofs/min) -> {batch_rate / plain_rate:.2f}x; "
          f"verify --batch (clean room, every proof) {verify:.1f} s")
    return {f"batch {n} inputs: plain ezkl loop proofs/min": plain_rate,
            f"batch {n} inputs: prove-batch (local Ray) proofs/min": batch_rate,
            f"batch {n} inputs: prove-batch/plain proofs per minute ratio": batch_rate / plain_rate,
            f"batch {n} inputs: verify --batch seconds": verify}


if __name__ == "__main__":
    main()
