"""The package's layering: no import cycles, no private name imported from another module.

Every ``import`` of a ``cardigan_utils`` module is read from the source (at module level and
inside functions alike), so an import hidden in a function to dodge a cycle is still an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cardigan_utils"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """Internal import edges of every module, and the private names imported across modules.

    Returns:
        ``({module: {imported module, ...}}, ["a imports _x from b", ...])``.
    """
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        edges[module].add(alias.name)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, node, path.name == "__init__.py")
                if target not in modules:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:  # ``from . import study``: an import of the submodule
                        edges[module].add(sub)
                        continue
                    edges[module].add(target)
                    if alias.name.startswith("_") and not alias.name.endswith("__") and target != module:
                        private.append(f"{module} imports {alias.name} from {target}")
    for module in edges:
        edges[module].discard(module)
    return edges, private


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a closed path of modules), or None.

    A package's ``__init__`` importing its own submodules, and those importing siblings, is not a
    cycle by itself; an edge from a module back to its own package ``__init__`` is ignored for the
    same reason (Python imports the package first in any case).
    """
    def parents(m: str) -> set[str]:
        parts = m.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}

    graph = {m: {t for t in targets if t not in parents(m)} for m, targets in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle():
    edges, _ = import_edges(_modules())
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_import_across_modules():
    _, private = import_edges(_modules())
    assert not private, "private names imported from another module:\n" + "\n".join(private)


def test_the_package_imports_its_own_modules_at_module_level():
    """An internal import inside a function hides the layering (and usually dodges a cycle)."""
    modules = _modules()
    hidden = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("cardigan_utils")):
                    hidden.append(f"{module}.{fn.name} (line {node.lineno})")
                elif isinstance(node, ast.Import) and any(a.name.startswith("cardigan_utils") for a in node.names):
                    hidden.append(f"{module}.{fn.name} (line {node.lineno})")
    assert not hidden, "package imports inside functions:\n" + "\n".join(hidden)


def test_the_checks_catch_a_cycle_and_a_private_import(tmp_path, monkeypatch):
    """The two checks above fail on a planted cycle and a planted private import."""
    pkg = tmp_path / "cardigan_utils"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("")
    (pkg / "c.py").write_text("from cardigan_utils.a import _hidden\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    edges, private = import_edges(_modules())
    assert find_cycle(edges) == ["cardigan_utils.a", "cardigan_utils.b", "cardigan_utils.c", "cardigan_utils.a"]
    assert private == ["cardigan_utils.c imports _hidden from cardigan_utils.a"]
    (pkg / "c.py").write_text("")
    edges, private = import_edges(_modules())
    assert find_cycle(edges) is None and not private


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_has_a_docstring(module):
    tree = ast.parse(_modules()[module].read_text())
    assert ast.get_docstring(tree), f"{module} has no module docstring saying what it is for"
