"""Common-subexpression elimination: compute each distinct value once.

Two nodes compute the same value when they apply the same pure op (no effects) to the same
inputs with equal attributes: the later one is *merged* into the earlier one (its users now
read the earlier node). Inputs count as the same when they are the same node (after earlier
merges) or literal numbers of the same type and value (``1`` and ``1.0`` differ: they give
different dtypes). For a ``commutative`` op the two inputs are put in a fixed order first, so
``a * b`` and ``b * a`` merge. Attributes compare by value (index arrays included: see
``ir.Attrs``). Sources (placeholders, variables, constants), effects (assign, random draws)
and nodes with subgraphs (cond, while) are never merged, with one exception: two constants
holding equal values (same dtype, shape, device and contents, at most ``MAX_CONSTANT``
elements, e.g. made by constant folding) are one constant. Runs inside subgraphs too.
"""
from __future__ import annotations

from ..ir import Node, attr_key, rewrite
from .common import on_subgraphs
from .report import make_report, survivors

__all__ = ["common_subexpression_elimination", "cse_key", "MAX_CONSTANT"]

MAX_CONSTANT = 1 << 16


def _input_key(x):
    return ("node", id(x)) if isinstance(x, Node) else ("literal", type(x).__name__, repr(x))


def cse_key(node, ins):
    """What identifies ``node``'s value, or None if it must not be merged."""
    op = node.op
    if node.kind == "constant":
        value = node.value
        if getattr(value, "size", MAX_CONSTANT + 1) > MAX_CONSTANT:
            return None
        return ("constant", str(node.device), node.aval, attr_key(value))
    if not op.pure or op.family == "source" or node.subgraphs:
        return None
    keys = [_input_key(x) for x in ins]
    if op.commutative and len(keys) == 2:
        keys.sort()
    return (op.name, id(op), tuple(keys), node.attrs, node.aval)


def common_subexpression_elimination(graph):
    """``(graph, report)`` with duplicate computations merged."""
    seen, merged, notes = {}, [], []

    def visit(node, ins):
        new, inner = on_subgraphs(node, common_subexpression_elimination, ins)
        if new is not None:
            notes.extend(inner)
            return new
        key = cse_key(node, ins)
        if key is None:
            return None
        hit = seen.get(key)
        if hit is not None:
            merged.append((node.id, hit[1]))
            return hit[0]
        out = node if all(a is b for a, b in zip(ins, node.inputs)) else node.replace(inputs=ins)
        seen[key] = (out, node.id)
        return out

    after, env, converted = rewrite(graph, visit)
    return after, make_report("cse", graph, after, survivors(graph, env, converted),
                              merged=tuple(merged), notes=tuple(notes))
