"""labgrad's modules import one way (no cycle), at the top of each file.

The layers (``../shared/DESIGN.md``): context and dispatch at the bottom, then the ops, then
autograd and tensor, then graphs, then nn/optim/data/io. A module that needs something from a
layer above it is a design error, not something to hide in a function-level import.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "labgrad"

# Function-level imports that load an optional dependency lazily (CuPy), not a labgrad module
# that would make a cycle.
LAZY_OPTIONAL = {"labgrad.backends.cupy_backend"}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name, path):
    """``(labgrad modules imported at the top, labgrad modules imported inside functions)``."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    at_top, inside = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("labgrad"):
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & set(MODULES)
            found = subs or {target}
        elif isinstance(node, ast.Import):
            found = {a.name for a in node.names if a.name.startswith("labgrad")}
        else:
            continue
        (at_top if id(node) in top else inside).update(found)
    return at_top, inside


def test_no_labgrad_imports_inside_functions():
    inside = {name: sorted(_imports(name, path)[1] - LAZY_OPTIONAL) for name, path in MODULES.items()}
    assert {k: v for k, v in inside.items() if v} == {}


def test_no_import_cycles():
    edges = {name: _imports(name, path)[0] - {name} for name, path in MODULES.items()}
    done, active = set(), []

    def visit(m):
        assert m not in active, "import cycle: " + " -> ".join(active[active.index(m):] + [m])
        if m in done:
            return
        active.append(m)
        for d in sorted(edges.get(m, ())):
            if not m.startswith(d + "."):   # a package's own __init__ runs first: not a cycle
                visit(d)
        active.pop()
        done.add(m)

    for m in sorted(edges):
        visit(m)


def test_the_bottom_layers_import_nothing_above_them():
    def deps(name):
        return _imports(name, MODULES[name])[0]
    assert deps("labgrad.context") == set()
    assert deps("labgrad.dispatch") == {"labgrad.context"}
    assert not {d for d in deps("labgrad.autograd") if d.startswith(("labgrad.tensor", "labgrad.graph"))}
    for name in MODULES:
        if name.startswith("labgrad.ops"):
            assert not {d for d in deps(name) if d.startswith(("labgrad.tensor", "labgrad.autograd",
                                                                 "labgrad.graph"))}, name
