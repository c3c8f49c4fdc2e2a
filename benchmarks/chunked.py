"""Monolithic vs chunked proving of the same model (issue 5's benchmark).

For MLPs of width 128 and 256 (64 -> W -> W -> W -> 10, ReLU, fixed seeded weights): the
monolithic circuit, and N=2 and N=4 row-balanced chunks (zkml_dvc.chunked, polycommit links).
Each prove runs alone in its own process, which reports its wall time, CPU seconds and peak RSS;
then the chunk proofs run together as Ray tasks on this machine (wall time). Ratios are against
the monolithic run on the same machine, side by side.

Run: .venv/bin/python benchmarks/chunked.py [--widths 128,256] [--chunks 2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, make_mlp, scratch  # noqa: E402

PROVE_CHILD = r"""
import json, resource, sys, time
import ezkl
w, c, pk, proof, srs = sys.argv[1:6]
t0 = time.perf_counter()
ezkl.prove(w, c, pk, proof, srs_path=srs)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss * 1024}))
"""


def prove_alone(witness: Path, compiled: Path, pk: Path, proof: Path, srs: Path,
                ezkl_home: Path) -> dict[str, float]:
    env = {**os.environ, "EZKL_REPO_PATH": str(ezkl_home)}
    out = subprocess.run([sys.executable, "-c", PROVE_CHILD, str(witness), str(compiled), str(pk),
                          str(proof), str(srs)], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def srs_for(logrows: int) -> Path:
    from zkml_dvc import srs as srs_mod

    return srs_mod.path_for(srs_mod.obtain("local", logrows))


def monolithic(onnx: Path, data: Path, cal: Path, work: Path) -> dict[str, float]:
    from zkml_dvc import ezkl_adapter as ez
    from zkml_dvc.params import RunArgs

    work.mkdir()
    s, c, vk, pk, w = (work / n for n in ("settings.json", "network.compiled", "vk.key", "pk.key",
                                           "witness.json"))
    ez.gen_settings(onnx, s, RunArgs(input_visibility="public", output_visibility="public",
                                     param_visibility="fixed", input_scale=7, param_scale=7).for_ezkl())
    ez.calibrate_settings(cal, onnx, s, "resources", [7], scale_rebase_multiplier=[1])
    logrows = int(json.loads(s.read_text())["run_args"]["logrows"])
    srs = srs_for(logrows)
    ez.compile_circuit(onnx, c, s)
    ez.setup(c, vk, pk, srs)
    ez.gen_witness(data, c, w, vk, srs)
    res = prove_alone(w, c, pk, work / "proof.json", srs, work / "ezkl")
    return {"logrows": logrows, "pk_bytes": pk.stat().st_size, **res}


def chunked(onnx: Path, data: Path, cal: Path, n: int, work: Path) -> dict[str, object]:
    from zkml_dvc import ezkl_adapter as ez
    from zkml_dvc.chunked import plan as chunking
    from zkml_dvc.chunked.ray_prove import FileRef, ProveTask, prove_all
    from zkml_dvc.fsutil import sha256_file
    from zkml_dvc.params import ChunkedModelParams

    plan_dir = work / "plan"
    plan_dir.mkdir(parents=True)
    cp = ChunkedModelParams.model_validate({
        "onnx": str(onnx), "input": str(data), "calibration": str(cal),
        "run_args": {"input_visibility": "public", "output_visibility": "public",
                     "param_visibility": "fixed"}, "scales": [7], "chunks": n})
    plan = chunking.make_plan(f"bench{n}", cp, plan_dir)
    srs = srs_for(plan.logrows)
    rows, tasks = [], []
    prev_input = data
    for c in plan.chunks:
        d = work / str(c.index)
        d.mkdir()
        comp, vk, pk, w = d / "network.compiled", d / "vk.key", d / "pk.key", d / "witness.json"
        ez.compile_circuit(plan_dir / f"{c.index}.onnx", comp, plan_dir / f"{c.index}.settings.json")
        ez.setup(comp, vk, pk, srs)
        ez.gen_witness(prev_input, comp, w, vk, srs)
        prev_input = d / "input-next.json"
        chunking.next_input(w, prev_input)
        res = prove_alone(w, comp, pk, d / "proof.json", srs, d / "ezkl")
        rows.append({"index": c.index, "num_rows": c.num_rows, "pk_bytes": pk.stat().st_size, **res})

        def ref(name: str, p: Path) -> FileRef:
            return FileRef(name=name, sha256=sha256_file(p), size=p.stat().st_size,
                           local_path=str(p))
        tasks.append(ProveTask(index=c.index, witness=ref("witness.json", w),
                               compiled=ref("network.compiled", comp), pk=ref("pk.key", pk),
                               srs=ref("kzg.srs", srs)))
    t0 = time.perf_counter()
    prove_all(tasks)
    ray_wall = time.perf_counter() - t0
    return {"logrows": plan.logrows, "boundaries": plan.boundaries, "chunks": rows,
            "ray_wall": ray_wall}


def main(widths: list[int] | None = None, chunk_counts: list[int] | None = None) -> dict[str, float]:
    os.environ.setdefault("ZKML_DVC_CACHE_DIR", str(REPO / "build" / "cache"))
    figures: dict[str, float] = {}
    with scratch() as td:
        base = Path(td)
        os.environ.setdefault("EZKL_REPO_PATH", str(base / "ezkl"))
        for width in widths or [128, 256]:
            onnx, data, cal = make_mlp(width, base / f"mlp{width}")
            mono = monolithic(onnx, data, cal, base / f"mono{width}")
            print(f"\nwidth {width}: monolithic logrows {mono['logrows']}, pk "
                  f"{mono['pk_bytes'] / 1e6:.0f} MB, prove {mono['wall']:.1f} s, cpu "
                  f"{mono['cpu']:.1f} s, peak RSS {mono['rss'] / 1e6:.0f} MB")
            print(f"{'N':>2} {'logrows':>7} {'pk MB/chunk':>12} {'prove s (each)':>22} "
                  f"{'crit/mono':>9} {'cpu/mono':>8} {'rss/mono':>8} {'ray wall s':>10}")
            for n in chunk_counts or [2, 4]:
                r = chunked(onnx, data, cal, n, base / f"w{width}n{n}")
                chunks = r["chunks"]
                assert isinstance(chunks, list)
                crit = max(c["wall"] for c in chunks) / mono["wall"]
                cpu = sum(c["cpu"] for c in chunks) / mono["cpu"]
                rss = max(c["rss"] for c in chunks) / mono["rss"]
                each = "/".join(f"{c['wall']:.1f}" for c in chunks)
                pks = "/".join(f"{c['pk_bytes'] / 1e6:.0f}" for c in chunks)
                print(f"{n:>2} {r['logrows']:>7} {pks:>12} {each:>22} {crit:>9.2f} {cpu:>8.2f} "
                      f"{rss:>8.2f} {r['ray_wall']:>10.1f}   cuts {r['boundaries']}")
                figures[f"chunked w{width} n{n} critical path ratio"] = crit
                figures[f"chunked w{width} n{n} total cpu ratio"] = cpu
                figures[f"chunked w{width} n{n} peak rss ratio"] = rss
    print("\ntargets where chunking lowers logrows: rss/mono <= 0.6, crit/mono <= 0.6, "
          "cpu/mono <= 2.5")
    return figures


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="128,256")
    ap.add_argument("--chunks", default="2,4")
    a = ap.parse_args()
    main([int(x) for x in a.widths.split(",")], [int(x) for x in a.chunks.split(",")])
