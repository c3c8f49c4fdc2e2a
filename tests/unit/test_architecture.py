"""The package's shape, as docs/architecture.md states it: imports flow one way (no cycle, lazy
imports included, typing-only ones excluded), no module over 450 lines, and no branch on whether a
model or run is chunked outside the chunked subpackage and the shape chooser."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "zkml_dvc"
# Where the monolithic/chunked difference may be looked at: the chunked subpackage, the chooser, and
# the modules that define the fields and stage names.
SHAPE_AWARE = {"shapes.py", "manifest.py", "params.py", "layout.py"}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports anywhere, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    me = _module(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if not mod.startswith("zkml_dvc"):
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                cand = f"{mod}.{alias.name}"
                found.add(cand if (PKG.parent / cand.replace(".", "/")).with_suffix(".py").exists()
                          or (PKG.parent / cand.replace(".", "/")).is_dir() else mod)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("zkml_dvc")}
    return found - {_module(path)}


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in files} for m, p in files.items()}


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    assert len(graph) > 30
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    # the checker itself can fail: a two-module cycle through a lazy import is seen
    (tmp_path / "a.py").write_text("def f():\n    from zkml_dvc import cli\n")
    assert "zkml_dvc.cli" in _imports_as_if_in_package(tmp_path / "a.py")


def _imports_as_if_in_package(path: Path) -> set[str]:
    target = PKG / "_probe_module_for_test.py"
    target.write_text(path.read_text())
    try:
        return _imports(target)
    finally:
        target.unlink()


def test_no_module_is_over_450_lines() -> None:
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long


def test_no_branch_on_chunked_outside_the_chunked_package() -> None:
    pattern = re.compile(r"\.chunks\b|\.chunked\b|\.link\b|\bchunk_\w+|\bCHUNK_\w+")
    offenders = []
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG)
        if rel.parts[0] == "chunked" or rel.name in SHAPE_AWARE:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            tests = [node.test] if isinstance(node, ast.If | ast.IfExp | ast.While) else []
            tests += node.ifs if isinstance(node, ast.comprehension) else []
            for t in tests:
                if pattern.search(ast.unparse(t)):
                    offenders.append(f"{rel}:{node.lineno if hasattr(node, 'lineno') else '?'}: "
                                     f"{ast.unparse(t)}")
    assert not offenders, offenders
