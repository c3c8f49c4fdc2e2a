"""Monolithic vs chunked proving of the same model, end to end (issue 5's benchmark, made honest
by issue 15).

For MLPs of width 128 and 256 (64 -> W -> W -> W -> 10, ReLU, fixed seeded weights): the
monolithic circuit, and N=2 and N=4 row-balanced chunks (zkml_dvc.chunked, polycommit links).
Every sample runs the whole path from the ONNX file to a verified result, each phase timed:

  monolithic: settings + calibration, compile, setup, witness, transfer, prove, verify
  chunked:    plan (split + calibrate every chunk), compile + setup per chunk, the witness chain
              (chunk i's input is chunk i-1's output), transfer per chunk, prove per chunk,
              verify every proof and check every link between neighbours (the links.py check)

"transfer" is what a prover on another machine waits for: its pk, compiled circuit and witness up
to the local store (HTTPS) and down again, sha256-checked. Each prove runs alone in a fresh
process that reports its wall and CPU seconds and its own peak RSS (VmHWM: `ru_maxrss` would
carry this driver's peak into it). Then the chunk proofs run again the product's way, as Ray
tasks on this machine that fetch their inputs from the store, and those proofs are verified and
link-checked too.

Figures (medians over --samples, >= 3):
- critical path = plan + max(compile + setup) + witness chain + max(transfer + prove) + verify:
  the end-to-end time with one machine per chunk; monolithic: the sum of its phases;
- this machine = plan + all compiles and setups + witness chain + uploads + the Ray run + verify:
  the end-to-end time on this one 2-core machine;
- total cpu = the CPU seconds of the chunk proves against the monolithic prove's;
- peak rss = the largest chunk prove's own peak RSS against the monolithic prove's.

Run: .venv/bin/python benchmarks/chunked.py [--widths 128,256] [--chunks 2,4] [--samples 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, make_mlp, scratch  # noqa: E402

PROVE_CHILD = r"""
import json, resource, sys, time
import ezkl
from zkml_dvc.peakrss import peak_rss_bytes
w, c, pk, proof, srs = sys.argv[1:6]
t0 = time.perf_counter()
ezkl.prove(w, c, pk, proof, srs_path=srs)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": peak_rss_bytes()}))
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


class Phases:
    """Seconds per phase of one sample; ``t(name, fn)`` times fn and adds to the phase."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}

    def t(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.s[name] = self.s.get(name, 0.0) + time.perf_counter() - t0
        return out


def transfer(store: Any, files: list[Path], prefix: str, dest: Path) -> tuple[float, float]:
    """Up to the store and down again, sha256-checked: (up seconds, down seconds)."""
    from zkml_dvc.fsutil import sha256_file

    shas = {f: sha256_file(f) for f in files}
    t0 = time.perf_counter()
    for f in files:
        store.put_file(f, f"{prefix}/{f.name}", sha256=shas[f], force=True)
    up = time.perf_counter() - t0
    dest.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for f in files:
        store.get_file(f"{prefix}/{f.name}", dest / f.name, shas[f], use_cache=False)
    return up, time.perf_counter() - t0


def monolithic(onnx: Path, data: Path, cal: Path, work: Path, store: Any) -> dict[str, Any]:
    from zkml_dvc import ezkl_adapter as ez
    from zkml_dvc.params import RunArgs

    work.mkdir()
    ph = Phases()
    s, c, vk, pk, w, proof = (work / n for n in ("settings.json", "network.compiled", "vk.key",
                                                  "pk.key", "witness.json", "proof.json"))
    args = RunArgs(input_visibility="public", output_visibility="public",
                   param_visibility="fixed", input_scale=7, param_scale=7).for_ezkl()
    ph.t("settings", lambda: (ez.gen_settings(onnx, s, args), ez.calibrate_settings(
        cal, onnx, s, "resources", [7], scale_rebase_multiplier=[1])))
    logrows = int(json.loads(s.read_text())["run_args"]["logrows"])
    srs = srs_for(logrows)
    ph.t("compile+setup", lambda: (ez.compile_circuit(onnx, c, s), ez.setup(c, vk, pk, srs)))
    ph.t("witness", lambda: ez.gen_witness(data, c, w, vk, srs))
    up, down = transfer(store, [pk, c, w], f"bench/{work.name}", work / "prover")
    ph.s["transfer"] = up + down
    res = prove_alone(w, c, pk, proof, srs, work / "ezkl")
    ph.s["prove"] = res["wall"]
    ph.t("verify", lambda: ez.verify(proof, s, vk, srs))
    return {"logrows": logrows, "pk_bytes": pk.stat().st_size, "phases": ph.s,
            "critical": sum(ph.s.values()), "machine": sum(ph.s.values()), **res}


def chunked(onnx: Path, data: Path, cal: Path, n: int, work: Path, store: Any,
            store_ref: Any) -> dict[str, Any]:
    from zkml_dvc import ezkl_adapter as ez
    from zkml_dvc.chunked import links
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
    ph = Phases()
    plan = ph.t("plan", lambda: chunking.make_plan(f"bench{n}", cp, plan_dir))
    srs = srs_for(plan.logrows)
    dirs = []
    setup_s, witness_s, up_s, xfer_s, prove_s = [], [], [], [], []
    rows, tasks = [], []
    prev_input = data
    for ch in plan.chunks:
        d = work / str(ch.index)
        d.mkdir()
        dirs.append(d)
        comp, vk, pk, w = d / "network.compiled", d / "vk.key", d / "pk.key", d / "witness.json"
        settings = plan_dir / f"{ch.index}.settings.json"
        t0 = time.perf_counter()
        ez.compile_circuit(plan_dir / f"{ch.index}.onnx", comp, settings)
        ez.setup(comp, vk, pk, srs)
        setup_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ez.gen_witness(prev_input, comp, w, vk, srs)
        prev_input = d / "input-next.json"
        chunking.next_input(w, prev_input)
        witness_s.append(time.perf_counter() - t0)
        up, down = transfer(store, [pk, comp, w], f"bench/{work.name}/{ch.index}", d / "prover")
        up_s.append(up)
        xfer_s.append(up + down)
        res = prove_alone(w, comp, pk, d / "proof.json", srs, d / "ezkl")
        prove_s.append(res["wall"])
        rows.append({"index": ch.index, "pk_bytes": pk.stat().st_size, **res})

        def ref(name: str, p: Path, key: str) -> FileRef:
            # no local path: the Ray worker fetches it from the store, as on a cluster
            return FileRef(name=name, sha256=sha256_file(p), size=p.stat().st_size,
                           store_key=key)
        key = f"bench/{work.name}/{ch.index}"
        tasks.append(ProveTask(index=ch.index, witness=ref("witness.json", w, f"{key}/witness.json"),
                               compiled=ref("network.compiled", comp, f"{key}/network.compiled"),
                               pk=ref("pk.key", pk, f"{key}/pk.key"),
                               srs=ref("kzg.srs", srs, f"bench/srs-{plan.logrows}"),
                               store=store_ref))
    counts = [links.link_counts(d / "witness.json", i, plan.link) for i, d in enumerate(dirs)]

    def verify_all(proofs: list[Path]) -> None:
        for i, p in enumerate(proofs):
            ez.verify(p, plan_dir / f"{i}.settings.json", dirs[i] / "vk.key", srs)
        bad = [c for c in links.check_chain(proofs, counts, plan.link) if not c.ok]
        if bad:
            raise SystemExit(f"chunked benchmark: {bad[0].name}: {bad[0].detail}")
    ph.t("verify", lambda: verify_all([d / "proof.json" for d in dirs]))
    store.put_file(srs, f"bench/srs-{plan.logrows}", force=False)
    t0 = time.perf_counter()
    results = prove_all(tasks)
    ray_wall = time.perf_counter() - t0
    for d, r in zip(dirs, results, strict=True):
        (d / "proof-ray.json").write_bytes(r.proof)
    verify_all([d / "proof-ray.json" for d in dirs])
    critical = (ph.s["plan"] + max(setup_s) + sum(witness_s)
                + max(x + p for x, p in zip(xfer_s, prove_s, strict=True)) + ph.s["verify"])
    machine = (ph.s["plan"] + sum(setup_s) + sum(witness_s) + sum(up_s) + ray_wall
               + ph.s["verify"])
    return {"logrows": plan.logrows, "boundaries": plan.boundaries, "chunks": rows,
            "critical": critical, "machine": machine, "ray_wall": ray_wall,
            "ray_rss": [r.max_rss_bytes for r in results],
            "fetched": sorted({v for r in results for v in r.fetched.values()}),
            "phases": {**ph.s, "max(compile+setup)": max(setup_s), "witness chain": sum(witness_s),
                       "max(transfer+prove)": max(x + p for x, p in zip(xfer_s, prove_s,
                                                                           strict=True))}}


def med(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(s[key]) for s in samples)


def main(widths: list[int] | None = None, chunk_counts: list[int] | None = None,
         samples: int = 3) -> dict[str, float]:
    from zkml_dvc import localstore
    from zkml_dvc.raywork import StoreRef
    from zkml_dvc.remote import store_from_config

    os.environ.setdefault("ZKML_DVC_CACHE_DIR", str(REPO / "build" / "cache"))
    os.environ["ZKML_DVC_NO_PROGRESS"] = "1"
    figures: dict[str, float] = {}
    with scratch() as td:
        base = Path(td)
        os.environ.setdefault("EZKL_REPO_PATH", str(base / "ezkl"))
        st = localstore.up(base / "store")
        try:
            os.environ.update(localstore.env_exports(base / "store"))
            url = localstore.project_root_url("chunked-bench")
            store = store_from_config(url, endpoint=st.endpoint)
            store_ref = StoreRef(url=url, endpoint=st.endpoint, region=None)
            for width in widths or [128, 256]:
                figures.update(_width(width, chunk_counts or [2, 4], samples, base, store,
                                      store_ref))
        finally:
            localstore.down(base / "store")
    print("\ntargets where chunking lowers logrows: rss/mono <= 0.6, crit/mono <= 0.6, "
          "cpu/mono <= 2.5")
    return figures


def _width(width: int, chunk_counts: list[int], samples: int, base: Path, store: Any,
           store_ref: Any) -> dict[str, float]:
    figures: dict[str, float] = {}
    onnx, data, cal = make_mlp(width, base / f"mlp{width}")
    mono = [monolithic(onnx, data, cal, base / f"mono{width}-{k}", store) for k in range(samples)]
    m_crit, m_cpu, m_rss = med(mono, "critical"), med(mono, "cpu"), med(mono, "rss")
    phases = {p: statistics.median(s["phases"][p] for s in mono) for p in mono[0]["phases"]}
    print(f"\nwidth {width}: monolithic logrows {mono[0]['logrows']}, pk "
          f"{mono[0]['pk_bytes'] / 1e6:.0f} MB, end to end {m_crit:.1f} s "
          f"({', '.join(f'{p} {v:.1f}' for p, v in phases.items())}), prove cpu {m_cpu:.1f} s, "
          f"peak RSS {m_rss / 1e6:.0f} MB  (medians of {samples})")
    print(f"{'N':>2} {'logrows':>7} {'pk MB/chunk':>12} {'RSS MB/chunk':>13} {'crit s':>7} "
          f"{'crit/mono':>9} {'machine s':>9} {'mach/mono':>9} {'cpu/mono':>8} {'rss/mono':>8}")
    for n in chunk_counts:
        runs = [chunked(onnx, data, cal, n, base / f"w{width}n{n}-{k}", store, store_ref)
                for k in range(samples)]
        first = runs[0]
        crit, machine = med(runs, "critical"), med(runs, "machine")
        cpu = statistics.median(sum(c["cpu"] for c in r["chunks"]) for r in runs) / m_cpu
        rss = statistics.median(max(c["rss"] for c in r["chunks"]) for r in runs) / m_rss
        pks = "/".join(f"{c['pk_bytes'] / 1e6:.0f}" for c in first["chunks"])
        rsss = "/".join(f"{statistics.median(r['chunks'][i]['rss'] for r in runs) / 1e6:.0f}"
                        for i in range(len(first["chunks"])))
        print(f"{n:>2} {first['logrows']:>7} {pks:>12} {rsss:>13} {crit:>7.1f} "
              f"{crit / m_crit:>9.2f} {machine:>9.1f} {machine / m_crit:>9.2f} {cpu:>8.2f} "
              f"{rss:>8.2f}   cuts {first['boundaries']}")
        ph = {p: statistics.median(r["phases"][p] for r in runs) for p in first["phases"]}
        print(f"   phases (median s): {', '.join(f'{p} {v:.1f}' for p, v in ph.items())}; Ray run "
              f"{med(runs, 'ray_wall'):.1f} s, workers' inputs from {first['fetched']}, "
              f"every proof verified and every link checked (both proof sets)")
        figures[f"chunked w{width} n{n} critical path ratio"] = crit / m_crit
        figures[f"chunked w{width} n{n} this machine (2 cores) end-to-end ratio"] = machine / m_crit
        figures[f"chunked w{width} n{n} total cpu ratio"] = cpu
        figures[f"chunked w{width} n{n} peak rss ratio"] = rss
        figures[f"chunked w{width} n{n} logrows drop"] = mono[0]["logrows"] - first["logrows"]
    return figures


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="128,256")
    ap.add_argument("--chunks", default="2,4")
    ap.add_argument("--samples", type=int, default=3)
    a = ap.parse_args()
    main([int(x) for x in a.widths.split(",")], [int(x) for x in a.chunks.split(",")], a.samples)
