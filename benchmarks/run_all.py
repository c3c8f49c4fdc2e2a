"""Every figure the project tracks, measured side by side in one run, as one table of
figure / goal / measured / met (also written as JSON): overhead against plain ezkl and `dvc status`,
transfers against s5cmd (one large object, many small ones), clean-room bytes, batch proving
(32 inputs with one run's keys: prove-batch on local Ray vs a plain ezkl loop), the W256x4 model
end to end (run, push, second-machine pull, clean-room verify, each against its baseline; the
run's time the median of 3 pairs in alternating order), chunked
proving (monolithic vs 2 and 4 chunks of width-128 and width-256 MLPs, end to end from the ONNX
file to verified and link-checked proofs, medians of 3 samples) and the cost estimate against
measured runs. Baselines it needs are installed into .venv-tools (s5cmd).

Run: make bench   (or .venv/bin/python benchmarks/run_all.py [--json build/bench.json])
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batch  # noqa: E402
import chunked  # noqa: E402
import cleanroom  # noqa: E402
import estimate_check  # noqa: E402
import large  # noqa: E402
import overhead  # noqa: E402
import transfer  # noqa: E402
from _common import REPO  # noqa: E402

# (pattern over figure names, comparison, goal): the goals of issues 3, 15 and 17
GOALS: list[tuple[str, str, float]] = [
    (r"^overhead_ratio$", "<=", 1.10),
    (r"^noop_ratio$", "<=", 1.3),
    # zkml-dvc's paths: the Python API's bundles, and its DVC path (the objects moved by its own
    # client; after a pull, the outputs placed out of DVC's cache). Plain DVC's rows are there
    # for comparison.
    (r"^transfer .*: (zkml-dvc bundles \(Python API\)|zkml-dvc's DVC path) (push|pull) ratio$",
     ">=", 0.9),
    (r"^cleanroom_bytes_ratio$", "<=", 0.05),
    (r"^large .*: run/plain ezkl ratio$", "<=", 1.03),
    (r"^large .*: run peak RSS - plain ezkl's \(MB\)$", "<=", 100),
    (r"^large .*: (push|pull --for prove)/s5cmd throughput ratio$", ">=", 0.9),
    (r"^chunked .* peak rss ratio$", "<=", 0.6),
    (r"^chunked .* critical path ratio$", "<=", 0.6),
    (r"^chunked .* total cpu ratio$", "<=", 2.5),
    (r"^estimate/measured .* \(min\)$", ">=", 0.7),
    (r"^estimate/measured .* \(max\)$", "<=", 1.3),
]


def goal_of(name: str) -> tuple[str, float] | None:
    for pattern, op, value in GOALS:
        if re.search(pattern, name):
            return op, value
    return None


def table(figures: dict[str, float]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, value in figures.items():
        goal = goal_of(name)
        met = None if goal is None else (value <= goal[1] if goal[0] == "<=" else value >= goal[1])
        rows.append({"figure": name, "goal": f"{goal[0]} {goal[1]:g}" if goal else "",
                     "measured": round(value, 3), "met": met})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path, default=REPO / "build" / "bench.json")
    args = ap.parse_args()
    figures: dict[str, float] = {}
    for name, mod in (("overhead", overhead), ("transfer", transfer), ("cleanroom", cleanroom),
                      ("batch", batch), ("large", large), ("chunked", chunked)):
        print(f"\n== {name}")
        figures.update(mod.main())
    print("\n== estimate")
    figures.update(estimate_check.main([]))
    rows = table(figures)
    print("\n== summary")
    print(f"{'figure':64s} {'goal':>8s} {'measured':>10s}  met")
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"{r['figure']:64s} {r['goal']:>8s} {r['measured']:>10}  {met}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"(written to {args.json})")


if __name__ == "__main__":
    main()
