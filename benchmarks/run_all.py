"""Every figure the project tracks, in one run: overhead, transfer ratios, clean-room bytes,
chunked proving (monolithic vs 2 and 4 chunks of width-128 and width-256 MLPs: the longest part) and
the cost estimate against measured runs.

Run: make bench   (or .venv/bin/python benchmarks/run_all.py)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chunked  # noqa: E402
import cleanroom  # noqa: E402
import estimate_check  # noqa: E402
import overhead  # noqa: E402
import transfer  # noqa: E402


def main() -> None:
    figures: dict[str, float] = {}
    for name, mod in (("overhead", overhead), ("transfer", transfer), ("cleanroom", cleanroom),
                      ("chunked", chunked)):
        print(f"\n== {name}")
        figures.update(mod.main())
    print("\n== estimate")
    figures.update(estimate_check.main([]))
    print("\n== summary")
    for k, v in figures.items():
        print(f"{k:40s} {v:10.3f}")


if __name__ == "__main__":
    main()
