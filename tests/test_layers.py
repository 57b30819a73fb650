"""Imports run downwards only, with no circles: cli > tasks > training > models >
datasets/metrics > registry > runtime (and engines) > io > errors.

Every ``import avtool...`` statement counts, at module level or inside a function (a lazy
import is still a dependency); imports under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import avtool

PACKAGE = Path(avtool.__file__).parent
#: Layer of each top-level part of the package; a module may import its own layer or lower.
LAYERS = {
    "cli": 9,
    "tasks": 8,
    "training": 7,
    "models": 6,
    "datasets": 5,
    "metrics": 5,
    "registry": 4,
    "runtime": 3,
    "engines": 3,
    "io": 2,
    "errors": 1,
}


def module_names() -> dict[str, Path]:
    """``avtool.x.y`` -> its file, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        out[name] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The package modules that module ``name`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("avtool.") and target != name:
                yield target


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: set(imported(name, path, modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_imports_run_downwards_only():
    upward = [
        f"{a} -> {b}"
        for a, targets in sorted(import_graph().items())
        for b in sorted(targets)
        if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)  # type: ignore[operator]
    ]
    assert upward == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_checker_sees_an_upward_import_and_a_circle():
    graph = {"avtool.io.a": {"avtool.models.b"}, "avtool.models.b": {"avtool.io.a"}}
    assert layer("avtool.models.b") > layer("avtool.io.a")  # type: ignore[operator]
    assert cycles(graph) == [["avtool.io.a", "avtool.models.b"]]
    modules = module_names()
    assert "avtool.models.loading" in modules and "avtool.cli.main" in modules
    assert "avtool.registry" in set(
        imported("avtool.models.loading", modules["avtool.models.loading"], modules)
    )
