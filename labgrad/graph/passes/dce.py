"""Dead-code elimination: drop every node that no output and no effect needs.

A node stays if an output uses it, if it has an effect that must happen (``writes_state``:
an ``assign``; ``random``: a draw that advances a generator), or if it is an input of the
graph (the feeds do not change). Everything those need stays too; the rest is dead. Inside
cond and while subgraphs the same rule runs (their inputs and outputs stay as they are).
"""
from __future__ import annotations

from ..ir import Graph, Node
from .common import on_subgraphs
from .report import make_report

__all__ = ["dead_code_elimination", "must_keep"]


def must_keep(node) -> bool:
    """Does running ``node`` matter even if nobody reads its value?"""
    op = node.op
    return op.writes_state or op.random


def dead_code_elimination(graph):
    """``(graph, report)`` with the dead nodes gone (see the module docstring)."""
    roots = [o for o in graph.outputs if isinstance(o, Node)]
    roots += [n for n in graph.nodes if must_keep(n)]
    live, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n.id in live:
            continue
        live.add(n.id)
        stack.extend(x for x in n.inputs if isinstance(x, Node) and x.id not in live)
    live.update(n.id for n in graph.inputs)
    env, order, notes = {}, [], []
    for n in graph.nodes:
        if n.id not in live:
            continue
        ins = tuple(env[x.id] if isinstance(x, Node) else x for x in n.inputs)
        new, inner = on_subgraphs(n, dead_code_elimination, ins)
        notes += inner
        if new is None:
            new = n if all(a is b for a, b in zip(ins, n.inputs)) else n.replace(inputs=ins)
        env[n.id] = new
        order.append(new)
    after, converted = Graph.make(order, [env[n.id] for n in graph.inputs],
                                  [env[o.id] if isinstance(o, Node) else o for o in graph.outputs],
                                  graph.name)
    kept = {old: converted[id(new)].id for old, new in env.items()}
    return after, make_report("dce", graph, after, kept, notes=tuple(notes))
