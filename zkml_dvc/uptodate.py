"""Is a pipeline already up to date? The answer `dvc repro` would reach, without its graph.

`dvc repro TARGET` of an unchanged pipeline imports networkx and builds the whole stage graph
(~0.3 s on our machines) only to find that no stage changed; `dvc status` does not. A no-op
`zkml-dvc run` asks DVC's own per-stage check (``Stage.changed``, what both commands use) for
every stage upstream of the targets and calls `dvc repro` only when one of them changed.
"""

from __future__ import annotations

import os
from typing import Any


def _overlaps(dep: str, out: str) -> bool:
    """Whether a dependency on path ``dep`` depends on the output at ``out`` (DVC's rule: the
    same path, or one inside the other)."""
    return dep == out or dep.startswith(out + os.sep) or out.startswith(dep + os.sep)


def upstream(stages: list[Any], targets: list[str]) -> list[Any] | None:
    """The stages ``targets`` (addressings) depend on, themselves included; None if a target
    is not one of ``stages`` (the caller leaves it to `dvc repro`)."""
    by_name = {s.addressing: s for s in stages}
    if any(t not in by_name for t in targets):
        return None
    outs = [(str(o.fs_path), s) for s in stages for o in s.outs]
    todo = [by_name[t] for t in targets]
    seen: dict[str, Any] = {}
    while todo:
        stage = todo.pop()
        if stage.addressing in seen:
            continue
        seen[stage.addressing] = stage
        for dep in stage.deps:
            path = str(dep.fs_path)
            todo.extend(owner for out, owner in outs if _overlaps(path, out))
    return list(seen.values())


def up_to_date(repo: Any, targets: list[str]) -> bool:
    """True when no stage upstream of ``targets`` changed and every output is in the workspace:
    `dvc repro` would skip them all. False when one changed or the answer is not certain."""
    from dvc.repo import lock_repo

    if not os.path.exists(os.path.join(repo.root_dir, "dvc.lock")):
        return False  # nothing was ever reproduced: spare the index `dvc repro` builds again
    with lock_repo(repo):
        stages = upstream(list(repo.index.stages), targets)
        if not stages:
            return False
        try:
            return not any(stage.changed() for stage in stages)
        except Exception:  # noqa: BLE001 (a missing dep and the like: `dvc repro` reports it)
            return False
