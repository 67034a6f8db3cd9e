"""corokey's modules import each other without a circle.

Every import counts: at the top, inside a function (imported late for start-up time) and
under TYPE_CHECKING (mypy follows those). A circle means that one of its modules cannot be
understood, tested or loaded without the others; the start-up paths' budgets
(tests/test_startup_imports.py) are a separate matter.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import corokey

PACKAGE = Path(corokey.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    name = ".".join(("corokey", *parts))
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def import_graph() -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        imported: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[_module_name(path)] = {m for m in imported if m.startswith("corokey")}
    return graph


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.get(module, ())):
            if other not in graph:
                continue
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_finder_sees_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_of_corokey_imports_itself_through_others() -> None:
    graph = import_graph()
    assert "corokey.errors" in graph and "corokey.profiles" in graph["corokey.cli.common"]
    assert circles(graph) == []


def test_errors_needs_nothing_of_corokey_but_exit_codes() -> None:
    """Every module raises errors: it must be the bottom of the graph."""
    assert import_graph()["corokey.errors"] <= {"corokey.exitcodes"}
