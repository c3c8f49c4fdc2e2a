"""How close `zkml-dvc estimate` comes to what a run then measures.

For each model (the examples, the harder families with their args.yaml, and a logrows-17 MLP not
among the shipped measurements), in a fresh project: `zkml-dvc estimate --json` before any keygen,
then `zkml-dvc run --no-push`, then compare the estimate with the run's pk size, setup and prove
seconds and peak memory (the stage records). Prints one table; the goal is within 30%.

    python benchmarks/estimate_check.py [--models mlp,digits,...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import REPO, ZKML, bench_env, make_mlp, run, scratch  # noqa: E402

DEFAULT = ["mlp", "digits", "attention", "rnn", "trees", "mlp-w256x3"]


def project_for(name: str, base: Path, env: dict[str, str]) -> Path:
    if name.startswith("mlp-w"):
        width, depth = (int(x) for x in name.removeprefix("mlp-w").split("x"))
        onnx, data, cal = make_mlp(width, base / f"{name}-model", depth=depth)
        extra: dict[str, object] = {"scales": [7]}
    else:
        m = REPO / "models" / name
        onnx, data, cal = m / "network.onnx", m / "input.json", m / "calibration.json"
        args = m / "args.yaml"
        extra = yaml.safe_load(args.read_text())["params"] if args.exists() else {"scales": [7]}
    root = base / name
    run([ZKML, "init", str(root), "--model", str(onnx), "--input", str(data), "--calibration",
         str(cal), "--name", "net", "--project", "estcheck"], base, env)
    params = yaml.safe_load((root / "params.yaml").read_text())
    entry = params["models"]["net"]
    for k, v in extra.items():
        entry[k] = {**entry[k], **v} if isinstance(v, dict) and isinstance(entry.get(k), dict) else v
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "args"], root, env)
    return root


def check(name: str, base: Path, env: dict[str, str]) -> list[dict[str, object]]:
    root = project_for(name, base, env)
    est = json.loads(run([ZKML, "estimate", "--json"], root, env).stdout)
    run([ZKML, "run", "--no-push", "--run-id", "c1"], root, env)
    art = root / "artifacts" / "net"
    rec = {s: json.loads((art / "reports" / "stages" / f"{s}.json").read_text())
           for s in ("setup", "prove")}
    measured = {
        "pk bytes": (art / "keys" / "pk.key").stat().st_size,
        "setup s": rec["setup"]["duration_s"], "prove s": rec["prove"]["duration_s"],
        "peak RSS": max(rec["setup"]["peak_rss_bytes"], rec["prove"]["peak_rss_bytes"]),
    }
    predicted = {"pk bytes": est["pk_bytes"], "setup s": est["setup_s"], "prove s": est["prove_s"],
                 "peak RSS": max(est["setup_peak_rss"], est["prove_peak_rss"])}
    return [{"model": name, "logrows": est["logrows"], "figure": k, "estimated": predicted[k],
             "measured": measured[k], "ratio": round(predicted[k] / measured[k], 2),
             "within_30pct": abs(predicted[k] / measured[k] - 1) <= 0.30, "basis": est["basis"]}
            for k in measured]


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT))
    ap.add_argument("--json", type=Path, help="also write the rows here")
    opts = ap.parse_args(argv)
    rows: list[dict[str, object]] = []
    with scratch() as tmp:
        env = bench_env(Path(tmp))
        for name in opts.models.split(","):
            rows += check(name, Path(tmp), env)
            for r in rows[-4:]:
                print(f"{r['model']:12} logrows {r['logrows']}  {r['figure']:9} estimated "
                      f"{r['estimated']:>14,}  measured {r['measured']:>14,}  ratio {r['ratio']:5.2f}"
                      f"  {'ok' if r['within_30pct'] else 'OFF'}", flush=True)
    met = sum(1 for r in rows if r["within_30pct"])
    print(f"{met} of {len(rows)} figures within 30%")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=1) + "\n")
    figures: dict[str, float] = {}
    for figure in ("pk bytes", "setup s", "prove s", "peak RSS"):
        ratios = [float(r["ratio"]) for r in rows if r["figure"] == figure]  # type: ignore[arg-type]
        figures[f"estimate/measured {figure} (min)"] = min(ratios)
        figures[f"estimate/measured {figure} (max)"] = max(ratios)
    return figures


if __name__ == "__main__":
    main()
