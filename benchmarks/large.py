"""A large model end to end: the W256x4 MLP (four linear layers: 64 -> 256 -> 256 -> 256 -> 10, ReLU;
logrows 17, pk ~0.55 GB), each step beside its baseline.

1. run: `zkml-dvc run --no-push` (cold) vs a plain ezkl script making the same calls (settings,
   calibrate, compile, witness, setup, prove, verify) with the same SRS; wall time (each side run
   alone, cold, in a new directory or project: the median of ``--reps`` pairs whose order
   alternates, since this machine's speed drifts by tens of percent within minutes), and, from
   one more run of each side, peak RSS of the whole process tree: the sum over
   its processes of their proportional set sizes (PSS: a page two processes map, such as the
   ezkl library's, counts once), sampled every 50 ms (a stage process and the `zkml-dvc run`
   process that waits for it both hold memory), or the largest single process's peak RSS (GNU
   time's %M) if that is more;
2. push: `zkml-dvc push RUN` (DVC objects, SRS, run index) vs s5cmd uploading the same DVC
   objects;
3. second machine: `zkml-dvc pull RUN --for prove` in a fresh clone with an empty cache vs s5cmd
   downloading the same objects;
4. clean-room `zkml-dvc verify RUN` from that clone vs plain ezkl's verify in a fresh process.
Targets (issue 15): run <= 1.03x plain ezkl; push and pull >= 0.9x s5cmd; run's peak RSS within
100 MB of plain ezkl's. The SRS is made once, before both sides (neither pays for gen_srs).
Each zkml-dvc figure is measured per ``--cache-types``: ``default`` (the project leaves DVC's
``cache.type`` unset: on ext4 an output is copied into DVC's cache and, on a second machine, out
of it) and ``hardlink`` (the producer commits `dvc config cache.type hardlink`, DVC's setting for
large files, so the clone has it too: outputs are linked, not copied, and are read-only in the
workspace). The plain script's runs are shared: each rep runs plain and every cache type, in an
order that rotates.
Run: .venv/bin/python benchmarks/large.py [--width 256] [--depth 3] [--reps 3]
     [--cache-types default,hardlink]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ZKML, bench_env, ensure_s5cmd, make_mlp, run, scratch, settled  # noqa: E402

SETTINGS = r'''
import sys, ezkl
onnx, cal, s = sys.argv[1:4]
ra = ezkl.PyRunArgs()
ra.input_visibility, ra.output_visibility, ra.param_visibility = "public", "public", "fixed"
assert ezkl.gen_settings(onnx, s, py_run_args=ra)
assert ezkl.calibrate_settings(cal, onnx, s, "resources", scales=[7])
'''
REST = r'''
import sys, ezkl
from pathlib import Path
d, onnx, inp, srs = sys.argv[1:5]
d = Path(d)
s, c = str(d / "settings.json"), str(d / "network.compiled")
assert ezkl.compile_circuit(onnx, c, s)
ezkl.gen_witness(inp, c, str(d / "witness.json"))
assert ezkl.setup(c, str(d / "vk.key"), str(d / "pk.key"), srs_path=srs)
ezkl.prove(str(d / "witness.json"), c, str(d / "pk.key"), str(d / "proof.json"), srs_path=srs)
assert ezkl.verify(str(d / "proof.json"), s, str(d / "vk.key"), srs_path=srs)
'''
VERIFY = r'''
import sys, ezkl
d, srs = sys.argv[1:3]
assert ezkl.verify(f"{d}/proof.json", f"{d}/settings.json", f"{d}/vk.key", srs_path=srs)
'''


def _pss(proc: Any) -> int:
    """A process's proportional set size: its private pages, and its share of pages it maps
    with others (the ezkl library and the interpreter, mapped by a stage process and by
    `zkml-dvc run` alike), so that a tree's sum counts each page once. Its RSS where the kernel
    has no smaps_rollup."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return int(proc.memory_info().rss)


def timed_rss(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes of the process tree (see the module's docstring), stdout.
    The sampling costs CPU (the kernel walks each process's page tables for its PSS, every 50 ms),
    more for a tree of several processes than for one: its seconds are not the command's own."""
    import threading

    import psutil

    rss_file = cwd / ".rss"
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *cmd], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_sum = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_sum
        top = psutil.Process(proc.pid)
        while not stop.is_set():
            total = 0
            try:
                tree = [top, *top.children(recursive=True)]
            except psutil.Error:
                break
            for p in tree:
                with contextlib.suppress(psutil.Error, OSError):
                    total += _pss(p)
            peak_sum = max(peak_sum, total)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    single = int(rss_file.read_text().split()[-1]) * 1024
    rss_file.unlink()
    return wall, max(single, peak_sum), out


def main() -> dict[str, float]:
    from zkml_dvc import localstore

    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3, help="hidden layers (linear layers - 1)")
    ap.add_argument("--reps", type=int, default=3,
                    help="rounds of timed runs (plain, then zkml-dvc per cache type)")
    ap.add_argument("--cache-types", default="default,hardlink",
                    help="DVC cache.type settings to measure zkml-dvc with (default: unset)")
    args = ap.parse_args([] if __name__ != "__main__" else None)
    kinds = [k.strip() for k in args.cache_types.split(",") if k.strip()]
    name = f"W{args.width}x{args.depth + 1}"
    s5 = ensure_s5cmd()
    py = sys.executable
    with scratch() as td:
        tmp = Path(td)
        env = bench_env(tmp)
        onnx, inp, cal = make_mlp(args.width, tmp / "model", depth=args.depth)
        # the SRS, once, into the cache both sides use (untimed): logrows from a first settings
        probe = tmp / "probe"
        probe.mkdir()
        run([py, "-c", SETTINGS, str(onnx), str(cal), str(probe / "settings.json")], probe, env)
        logrows = json.loads((probe / "settings.json").read_text())["run_args"]["logrows"]
        out = run([py, "-c", "import sys; from zkml_dvc import srs; "
                   "print(srs.obtain('local', int(sys.argv[1])).sha256)", str(logrows)], tmp, env)
        srs_file = Path(env["ZKML_DVC_CACHE_DIR"]) / "blobs" / out.stdout.split()[-1]

        def plain_side(where: Path, measure: Any) -> tuple[float, int]:
            """The plain script's two processes (settings and calibration, then the rest) in a
            new directory: their wall seconds and the larger peak memory (0 unsampled)."""
            where.mkdir()
            a = measure([py, "-c", SETTINGS, str(onnx), str(cal), str(where / "settings.json")],
                        where, env)
            b = measure([py, "-c", REST, str(where), str(onnx), str(inp), str(srs_file)], where,
                        env)
            return a[0] + b[0], max(a[1], b[1])

        def producer(where: Path, kind: str) -> Path:
            run([ZKML, "init", str(where), "--model", str(onnx), "--input", str(inp),
                 "--calibration", str(cal), "--name", "big", "--project", "bench"], tmp, env)
            params = (where / "params.yaml").read_text().replace("scales: null", "scales:\n    - 7")
            (where / "params.yaml").write_text(params)
            if kind != "default":
                run([str(Path(sys.executable).parent / "dvc"), "config", "cache.type", kind],
                    where, env)
            run(["git", "commit", "-qam", f"pin scale; cache.type {kind}"], where, env)
            # its remote: the local store (as `store up` in a project sets it; the run commits it)
            run([ZKML, "store", "up", "--dir", str(tmp / "store")], where, env)
            # a store root per cache type: each push sends every object
            run([str(Path(sys.executable).parent / "dvc"), "remote", "modify", "o3", "url",
                 f"s3://zkml-dvc/large-{kind}/dvc"], where, env)
            return where

        def alone(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
            return settled(lambda: run(cmd, cwd, env)), 0

        def sampled(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
            wall, rss, _ = timed_rss(cmd, cwd, env)
            return wall, rss

        run([ZKML, "store", "up", "--dir", str(tmp / "store"), "--no-configure"], tmp, env)
        figures: dict[str, float] = {}
        try:
            store_env = localstore.env_exports(tmp / "store")
            # wall times: each side alone, in rounds whose order rotates (this machine's speed
            # drifts by tens of percent within minutes), each run cold in a new project
            sides = ["plain", *kinds]
            times: dict[str, list[float]] = {side: [] for side in sides}
            for i in range(args.reps):
                for side in sides[i % len(sides):] + sides[:i % len(sides)]:
                    if side == "plain":
                        times[side].append(plain_side(tmp / f"plain{i}", alone)[0])
                        continue
                    proj = producer(tmp / f"producer{i}-{side}", side)
                    times[side].append(alone([ZKML, "run", "--no-push", "--run-id", "big"], proj,
                                             env)[0])
                    if i:
                        shutil.rmtree(proj)
                if i:
                    shutil.rmtree(tmp / f"plain{i}", ignore_errors=True)
            plain = tmp / "plain0"
            plain_s = statistics.median(times["plain"])
            pk_mb = (plain / "pk.key").stat().st_size / 1e6
            # peak memory: one more run of each side, sampled
            _, plain_rss = plain_side(tmp / "plain-sampled", sampled)
            t0 = time.perf_counter()
            run([py, "-c", VERIFY, str(plain), str(srs_file)], plain, env)
            plain_verify_s = time.perf_counter() - t0
            s5env = {**os.environ, **store_env}
            s5base = [s5, "--endpoint-url", store_env["AWS_ENDPOINT_URL_S3"]]
            print(f"{name}: logrows {logrows}, pk {pk_mb:.0f} MB; plain ezkl "
                  f"{' '.join(f'{t:.1f}' for t in times['plain'])} s, median {plain_s:.1f} s; "
                  f"peak RSS {plain_rss / 1e6:.0f} MB; verify {plain_verify_s:.1f} s", flush=True)
            for kind in kinds:
                label = name if kind == "default" else f"{name}, cache.type {kind}"
                run_s = statistics.median(times[kind])
                twin = producer(tmp / f"producer-sampled-{kind}", kind)
                _, run_rss, _ = timed_rss([ZKML, "run", "--no-push", "--run-id", "big"], twin, env)
                shutil.rmtree(twin)
                root = tmp / f"producer0-{kind}"
                # push vs s5cmd uploading the same DVC objects (the first round's project)
                t0 = time.perf_counter()
                run([ZKML, "push", "big"], root, env)
                push_s = time.perf_counter() - t0
                objects = root / ".dvc" / "cache" / "files" / "md5"
                nbytes = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
                t0 = time.perf_counter()
                subprocess.run([*s5base, "cp", f"{objects}/*", f"s3://zkml-dvc/s5-{kind}/"],
                               env=s5env, check=True, capture_output=True)
                s5_up = time.perf_counter() - t0
                # the second machine: a fresh clone, an empty cache, the store through env vars
                clone = tmp / f"clone-{kind}"
                run(["git", "clone", "-q", str(root), str(clone)], tmp, env)
                home = tmp / f"home-{kind}"
                home.mkdir()
                cenv = {**env, "HOME": str(home), "ZKML_DVC_CACHE_DIR": str(home / "cache"),
                        **store_env}
                t0 = time.perf_counter()
                run([ZKML, "pull", "big", "--for", "prove"], clone, cenv)
                pull_s = time.perf_counter() - t0
                down = tmp / f"s5down-{kind}"
                t0 = time.perf_counter()
                subprocess.run([*s5base, "cp", f"s3://zkml-dvc/s5-{kind}/*", f"{down}/"],
                               env=s5env, check=True, capture_output=True)
                s5_down = time.perf_counter() - t0
                shutil.rmtree(down)
                t0 = time.perf_counter()
                run([ZKML, "verify", "big", "--allow-untrusted-srs"], clone, cenv)
                verify_s = time.perf_counter() - t0
                print(f"{label}: zkml-dvc run {' '.join(f'{t:.1f}' for t in times[kind])} s -> "
                      f"median {run_s:.1f} s ({run_s / plain_s:.3f}x plain); peak RSS "
                      f"{run_rss / 1e6:.0f} MB ({(run_rss - plain_rss) / 1e6:+.0f} MB); push "
                      f"{push_s:.1f} s vs s5cmd {s5_up:.1f} s ({nbytes / 1e6:.0f} MB of DVC "
                      f"objects) -> {s5_up / push_s:.2f}x; pull --for prove {pull_s:.1f} s vs "
                      f"s5cmd {s5_down:.1f} s -> {s5_down / pull_s:.2f}x; clean-room verify "
                      f"{verify_s:.1f} s", flush=True)
                figures.update({
                    f"large {label}: run/plain ezkl ratio": run_s / plain_s,
                    f"large {label}: run peak RSS - plain ezkl's (MB)": (run_rss - plain_rss) / 1e6,
                    f"large {label}: push/s5cmd throughput ratio": s5_up / push_s,
                    f"large {label}: pull --for prove/s5cmd throughput ratio": s5_down / pull_s,
                    f"large {label}: clean-room verify/plain ezkl verify time ratio":
                        verify_s / plain_verify_s})
        finally:
            localstore.down(tmp / "store")
    return figures


if __name__ == "__main__":
    main()
