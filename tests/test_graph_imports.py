"""labgrad/graph imports at the top of each file only, and its modules import one way (no cycle)."""
from __future__ import annotations

import ast
from pathlib import Path

GRAPH = Path(__file__).resolve().parent.parent / "labgrad" / "graph"


def _modules():
    return {p.stem: ast.parse(p.read_text()) for p in sorted(GRAPH.glob("*.py"))}


def test_no_imports_inside_functions():
    inner = []
    for name, tree in _modules().items():
        top = {id(n) for n in tree.body}
        inner += [f"{name}.py:{n.lineno}" for n in ast.walk(tree)
                  if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top]
    assert inner == []


def test_graph_modules_import_one_way():
    edges = {}
    for name, tree in _modules().items():
        deps = set()
        for n in tree.body:
            if isinstance(n, ast.ImportFrom) and n.level == 1:
                deps |= {n.module} if n.module else {a.name for a in n.names}
        edges[name] = deps
    done, active = set(), []

    def visit(m):
        assert m not in active, "import cycle: " + " -> ".join(active[active.index(m):] + [m])
        if m in done:
            return
        active.append(m)
        for d in sorted(edges.get(m, ())):
            visit(d)
        active.pop()
        done.add(m)

    for m in edges:
        visit(m)
    assert "autodiff" not in edges["control"] and "control" in edges["autodiff"]
