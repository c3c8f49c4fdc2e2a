"""Measure what keygen and proving cost, for `zkml-dvc estimate` to fit its model to.

For each model below (the example models, the harder families of docs/models.md and ReLU MLPs of
growing width and depth, logrows 15 to 17), run ezkl's settings, calibrate and compile, then
`setup` and `prove` each in a child process, and record: the settings' features (logrows, rows,
assignments, lookups, ...), pk/vk bytes, setup and prove seconds and each child's peak RSS.

    python benchmarks/estimate_measure.py [--out zkml_dvc/data/cost_measurements.json] [--quick]

The file it writes ships with the package; `estimate` fits to it and to the project's own runs.
Takes ~10 min on a 2-core machine (the logrows-17 model's pk is ~0.5 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import REPO, make_mlp, scratch  # noqa: E402

# step in a child process: its own peak RSS (VmHWM: ru_maxrss would carry this process's over)
CHILD = """
import json, sys, time
import ezkl
from zkml_dvc.peakrss import peak_rss_bytes
step, args = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
if step == "setup":
    ok = ezkl.setup(args[0], args[1], args[2], srs_path=args[3])
else:
    ok = ezkl.prove(args[0], args[1], args[2], args[3], srs_path=args[4])
wall = time.perf_counter() - t0
print(json.dumps({"seconds": wall, "peak_rss": peak_rss_bytes()}))
"""

# the settings.json fields kept with each row (estimate.features reads them)
KEPT = ("run_args", "num_rows", "total_assignments", "total_const_size", "required_lookups",
        "required_range_checks", "num_dynamic_lookups", "num_shuffles", "model_output_scales")

# (name, source: a models/ directory or ("mlp", width, depth), run args, scales, calibration options)
MODELS: list[tuple[str, object, dict[str, object], list[int], dict[str, object]]] = [
    ("mlp", "mlp", {}, [7], {}),
    ("digits", "digits", {}, [7], {}),
    ("attention", "attention", {}, [10], {}),
    ("rnn", "rnn", {"variables": [("batch_size", 1), ("seq_len", 5)]}, [7], {}),
    ("trees", "trees", {}, [7], {}),
    ("mlp-w64x2", ("mlp", 64, 2), {}, [7], {}),
    ("mlp-w128x3", ("mlp", 128, 3), {}, [7], {}),
    ("mlp-w64x2-cols4", ("mlp", 64, 2), {"num_inner_cols": 4}, [7], {}),
    ("mlp-w256x4", ("mlp", 256, 4), {}, [7], {}),
    ("mlp-w128x2-k16", ("mlp", 128, 2), {"decomp_base": 32768}, [7], {}),
    # further shapes (columns, lookups, hashing) for the fit a never-measured shape falls back to
    ("mlp-cols1", "mlp", {"num_inner_cols": 1}, [7], {}),
    ("digits-cols3", "digits", {"num_inner_cols": 3}, [7], {}),
    ("digits-hashed", "digits", {"input_visibility": "hashed"}, [7], {}),
    ("rnn-cols1", "rnn", {"variables": [("batch_size", 1), ("seq_len", 5)], "num_inner_cols": 1},
     [7], {}),
    ("attention-cols1", "attention", {"num_inner_cols": 1}, [10], {}),
]


def measure(name: str, source: object, run_args: dict[str, object], scales: list[int],
            options: dict[str, object], work: Path, srs_dir: Path) -> dict[str, object]:
    import ezkl

    d = work / name
    d.mkdir(parents=True)
    if isinstance(source, tuple):
        onnx, data, cal = make_mlp(source[1], d / "model", depth=source[2])
    else:
        m = REPO / "models" / str(source)
        onnx, data, cal = m / "network.onnx", m / "input.json", m / "calibration.json"
    args = ezkl.PyRunArgs()
    args.input_visibility, args.output_visibility, args.param_visibility = "public", "public", "fixed"
    for k, v in run_args.items():
        setattr(args, k, v)
    settings, compiled = d / "settings.json", d / "network.compiled"
    ezkl.gen_settings(str(onnx), str(settings), py_run_args=args)
    ezkl.calibrate_settings(str(cal), str(onnx), str(settings), "resources", scales=scales, **options)
    ezkl.compile_circuit(str(onnx), str(compiled), str(settings))
    kept = {k: v for k, v in json.loads(settings.read_text()).items() if k in KEPT}
    logrows = int(kept["run_args"]["logrows"])
    srs = srs_dir / f"k{logrows}.srs"
    if not srs.exists():
        ezkl.gen_srs(str(srs), logrows)
    ezkl.gen_witness(str(data), str(compiled), str(d / "witness.json"))
    pk, vk, proof = d / "pk.key", d / "vk.key", d / "proof.json"
    setup = _child("setup", compiled, vk, pk, srs)
    prove = _child("prove", d / "witness.json", compiled, pk, proof, srs)
    row = {"model": name, "settings": kept, "pk_bytes": pk.stat().st_size,
           "vk_bytes": vk.stat().st_size, "setup_s": round(setup["seconds"], 2),
           "prove_s": round(prove["seconds"], 2), "setup_peak_rss": setup["peak_rss"],
           "prove_peak_rss": prove["peak_rss"]}
    for f in (pk, vk, compiled):
        f.unlink()
    return row


def _child(step: str, *paths: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, step, *map(str, paths)],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "zkml_dvc" / "data" / "cost_measurements.json")
    ap.add_argument("--quick", action="store_true", help="skip the logrows-17 model")
    opts = ap.parse_args()
    rows = []
    with scratch() as tmp:
        base = Path(tmp)
        os.environ.setdefault("EZKL_REPO_PATH", str(base / "ezkl"))
        (base / "srs").mkdir()
        for spec in MODELS:
            if opts.quick and spec[0] == "mlp-w256x4":
                continue
            t0 = time.perf_counter()
            row = measure(*spec, work=base, srs_dir=base / "srs")
            rows.append(row)
            logrows = row["settings"]["run_args"]["logrows"]
            print(f"{spec[0]:18} logrows {logrows}  pk {row['pk_bytes'] / 1e6:8.1f} MB"
                  f"  setup {row['setup_s']:6.1f} s  prove {row['prove_s']:6.1f} s  peak "
                  f"{max(row['setup_peak_rss'], row['prove_peak_rss']) / 1e6:7.0f} MB"
                  f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    import ezkl

    doc = {"measured": datetime.now(UTC).isoformat(timespec="seconds"),
           "ezkl_version": ezkl.__version__,
           "machine": {"cpus": os.cpu_count(), "machine": platform.machine()},
           "rows": rows}
    opts.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
