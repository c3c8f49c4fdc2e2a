"""Bytes and time of a clean-room verification vs the whole run's artifact bytes.

Runs the example MLP pipeline, pushes it to a local SeaweedFS, then verifies it from a fresh clone
with an empty HOME and cache (what `zkml-dvc verify` downloads: proof, settings, vk, SRS).
Target (issue 4): under 5% of the run's bytes downloaded.
Run: .venv/bin/python benchmarks/cleanroom.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ZKML, bench_env, make_project, run, scratch  # noqa: E402


def main() -> dict[str, float]:
    from zkml_dvc import localstore

    with scratch() as td:
        tmp = Path(td)
        env = bench_env(tmp)
        root = make_project(tmp, "producer", env)
        run([ZKML, "store", "up", "--dir", str(tmp / "store")], root, env)
        try:
            run([ZKML, "run", "--run-id", "bench"], root, env)
            run(["git", "clone", "-q", str(root), str(tmp / "clone")], tmp, env)
            home = tmp / "home"
            home.mkdir()
            # another machine: its own HOME and cache, the store (and its CA) through env vars only
            cenv = {**env, "HOME": str(home), "ZKML_DVC_CACHE_DIR": str(home / "cache"),
                    **localstore.env_exports(tmp / "store")}
            t0 = time.perf_counter()
            # the benchmark proves with a local test SRS: accepted knowingly
            run([ZKML, "verify", "bench", "--allow-untrusted-srs", "--report", str(tmp / "r.json")],
                tmp / "clone", cenv)
            wall = time.perf_counter() - t0
            rep = json.loads((tmp / "r.json").read_text())
        finally:
            localstore.down(tmp / "store")
    ratio = rep["bytes_downloaded"] / rep["run_bytes_total"]
    print(f"clean-room verify: {rep['files_downloaded']} files, {rep['bytes_downloaded']:,} bytes of "
          f"the run's {rep['run_bytes_total']:,} -> {ratio:.2%} (target < 5%); "
          f"{wall:.2f} s wall ({rep['duration_s']:.2f} s inside verify)")
    return {"cleanroom_bytes_ratio": ratio, "cleanroom_verify_s": wall}


if __name__ == "__main__":
    main()
