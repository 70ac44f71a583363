"""Constant folding: compute at compile time what depends only on constants.

A node is folded when its op is an eager op that is pure (no effects: never a variable read,
never a random draw, never a state update), it moves no data between devices, every input is
a constant node or a literal number, and the result is small (at most ``MAX_ELEMENTS``
elements, or no larger than its largest constant input: folding ``broadcast_to`` of a scalar
to a big shape would bake a big array into the graph, where computing it costs nothing). The
value is the op's own ``forward`` on the constants' values, with the array module of the
node's device, so it is exactly what running the graph would have computed. A folded node
becomes a constant node; the nodes it read from may then be dead, for the next ``dce``.
Folding runs inside cond and while subgraphs too. Variables are never constants: they are
state, read live on every run.
"""
from __future__ import annotations

import numpy as np

from ...backends import get_backend
from ...ops.registry import numel
from ..ir import Node, rewrite
from .common import on_subgraphs
from .report import make_report, survivors

__all__ = ["constant_folding", "MAX_ELEMENTS"]

MAX_ELEMENTS = 1 << 16


def _foldable(node, ins):
    op = node.op
    if node.kind != "op" or not op.pure or op.output_device is not None or node.subgraphs:
        return False
    if not all(x.kind == "constant" for x in ins if isinstance(x, Node)):
        return False
    size = numel(node.aval.shape) if None not in node.aval.shape else None
    biggest = max((x.value.size for x in ins if isinstance(x, Node)), default=0)
    return size is not None and (size <= MAX_ELEMENTS or size <= biggest)


def _evaluate(node, ins):
    """The node's value from its constant inputs, or None if it cannot be computed here."""
    xp = get_backend(node.device).xp
    values = [x.value if isinstance(x, Node) else x for x in ins]
    try:
        with np.errstate(all="ignore"):
            out = node.op.forward(xp, *values, **node.attrs)
    except Exception:   # noqa: BLE001  it fails at run time too, with a better error there
        return None
    out = xp.asarray(out)
    if out.dtype != node.aval.dtype or tuple(out.shape) != node.aval.shape:
        return None
    if node.op.view or any(out is v for v in values) or getattr(out, "base", None) is not None:
        out = out.copy()   # a view of another constant: the graph owns its own copy
    return out


def constant_folding(graph):
    """``(graph, report)`` with every foldable node replaced by a constant."""
    folded, notes = [], []

    def fold(node, ins):
        new, inner = on_subgraphs(node, constant_folding, ins)
        if new is not None:
            notes.extend(inner)
            return new
        if not _foldable(node, ins):
            return None
        value = _evaluate(node, ins)
        if value is None:
            return None
        new = node.replace(op="constant", inputs=(), attrs={}, value=value, subgraphs=None)
        folded.append((node.id, new))
        return new

    after, env, converted = rewrite(graph, fold)
    pairs = tuple((i, converted[id(new)].id) for i, new in folded)
    return after, make_report("fold", graph, after, survivors(graph, env, converted),
                              folded=pairs, notes=tuple(notes))
