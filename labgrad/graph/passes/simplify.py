"""Algebraic simplification: rewrite a node into something cheaper that computes the same.

Each rule states when it holds. "The same" means the same values bit for bit, with the same
shape and dtype, for *every* input, NaN, infinities and the sign of zero included; a rule that
only holds for some inputs is *unsafe* and runs only in ``simplify_unsafe`` (never by default).

=====================  ==========================  =============================================
rule                   rewrite                     condition
=====================  ==========================  =============================================
``mul_one``            ``x * 1``, ``1 * x`` -> x    the result has x's shape and dtype (no
                                                   broadcasting, no promotion: ``int * 1.0``
                                                   is a float)
``sub_zero``           ``x - 0`` -> x              same shape and dtype (exact for floats:
                                                   ``-0.0 - 0 == -0.0``)
``add_zero``           ``x + 0``, ``0 + x`` -> x    same shape and dtype, and x is an integer:
                                                   for floats ``-0.0 + 0`` is ``+0.0``
``mul_zero``           ``x * 0`` -> zeros like x    same shape and dtype, and x is an integer:
                                                   for floats ``nan * 0``, ``inf * 0`` are NaN
                                                   and ``-1.0 * 0`` is ``-0.0``
``neg_neg``            ``-(-x)`` -> x              same shape and dtype (integers wrap both
                                                   ways, so even the most negative one is fine)
``transpose_twice``    two transposes -> one       always (their permutations compose); none
                                                   when the composition is the identity
``reshape_twice``      two reshapes -> one         always (row-major order: the middle shape
                                                   does not matter); none when the last shape
                                                   is x's own, fully known shape
``exp_log`` (unsafe)   ``exp(log x)`` -> x         only for x > 0, and even then only up to
                                                   rounding (``exp(log 3.0)`` is
                                                   ``3.0000000000000004``); ``x < 0`` gives NaN
=====================  ==========================  =============================================

``1`` and ``0`` are literal numbers or constant nodes whose every element is that number.

One more condition for every rule whose result is x itself: if the node is an output of the
graph and x is a fed input, a variable or a constant (or a view of one), the node is left alone,
so that the caller never gets back an array that aliases its input or the model's state.
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import get_op
from ..ir import Node, rewrite
from .common import on_subgraphs
from .report import make_report, survivors

__all__ = ["algebraic_simplification", "simplify_unsafe", "RULES", "UNSAFE_RULES"]

_SOURCES = ("placeholder", "variable", "constant", "arg")


def _is_number(x, number):
    """Is ``x`` the literal ``number``, or a constant node holding only ``number``?"""
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, float)):
        return x == number and not (isinstance(x, float) and np.isnan(x))
    if isinstance(x, Node) and x.kind == "constant" and x.value.size <= 64:
        v = x.value.get() if hasattr(x.value, "get") else np.asarray(x.value)
        return v.dtype.kind in "iuf" and bool(np.all(v == number))
    return False


def _same_aval(node, x):
    return (isinstance(x, Node) and not isinstance(x.aval, tuple) and x.aval.shape == node.aval.shape
            and x.aval.dtype == node.aval.dtype and x.device == node.device)


def _exposes_source(x):
    """Would returning ``x`` hand out an input's, a variable's or a constant's memory?"""
    while isinstance(x, Node):
        if x.kind in _SOURCES:
            return True
        if x.kind == "op" and x.op.view:
            x = x.inputs[0]
        elif x.kind == "stop_gradient":
            x = x.inputs[0]
        else:
            return False
    return False


def _integer(x):
    return x.aval.dtype.kind in "iu"


def _binary(node, ins, name):
    return node.kind == "op" and node.op.name == name and len(ins) == 2


def _other(ins, number):
    """The operand next to ``number`` in a commutative binary op, or None."""
    a, b = ins
    if _is_number(b, number):
        return a
    if _is_number(a, number):
        return b
    return None


# ---- the rules: (node, inputs) -> replacement or None; identity results are checked later

def mul_one(node, ins):
    if _binary(node, ins, "mul"):
        x = _other(ins, 1)
        if _same_aval(node, x):
            return x
    return None


def sub_zero(node, ins):
    if _binary(node, ins, "sub") and _is_number(ins[1], 0) and _same_aval(node, ins[0]):
        return ins[0]
    return None


def add_zero(node, ins):
    if _binary(node, ins, "add"):
        x = _other(ins, 0)
        if _same_aval(node, x) and _integer(x):
            return x
    return None


def mul_zero(node, ins):
    if _binary(node, ins, "mul"):
        x = _other(ins, 0)
        if _same_aval(node, x) and _integer(x):
            return node.replace(op=get_op("full_like"), inputs=(x,), attrs={"value": 0, "dtype": None})
    return None


def neg_neg(node, ins):
    if node.kind == "op" and node.op.name == "neg":
        (inner,) = ins
        if isinstance(inner, Node) and inner.kind == "op" and inner.op.name == "neg" and _same_aval(node, inner.inputs[0]):
            return inner.inputs[0]
    return None


def transpose_twice(node, ins):
    if node.kind == "op" and node.op.name == "transpose":
        (inner,) = ins
        if isinstance(inner, Node) and inner.kind == "op" and inner.op.name == "transpose":
            p, q = inner.attrs["axes"], node.attrs["axes"]
            axes = tuple(int(p[i]) for i in q)
            x = inner.inputs[0]
            if axes == tuple(range(len(axes))):
                return x
            return node.replace(inputs=(x,), attrs={"axes": axes})
    return None


def reshape_twice(node, ins):
    if node.kind == "op" and node.op.name == "reshape":
        (inner,) = ins
        if isinstance(inner, Node) and inner.kind == "op" and inner.op.name == "reshape":
            x = inner.inputs[0]
            if None not in node.aval.shape and x.aval.shape == node.aval.shape:
                return x
            return node.replace(inputs=(x,))
    return None


def exp_log(node, ins):
    if node.kind == "op" and node.op.name == "exp":
        (inner,) = ins
        if isinstance(inner, Node) and inner.kind == "op" and inner.op.name == "log" and _same_aval(node, inner.inputs[0]):
            return inner.inputs[0]
    return None


RULES = [mul_one, sub_zero, add_zero, mul_zero, neg_neg, transpose_twice, reshape_twice]
UNSAFE_RULES = RULES + [exp_log]


def _simplify(graph, rules, name):
    outputs = {o.id for o in graph.outputs if isinstance(o, Node)}
    done, notes = [], []
    run_inside = (lambda g: _simplify(g, rules, name))

    def visit(node, ins):
        new, inner = on_subgraphs(node, run_inside, ins)
        if new is not None:
            notes.extend(inner)
            return new
        for rule in rules:
            out = rule(node, ins)
            if out is None:
                continue
            if isinstance(out, Node) and out is not node and node.id in outputs and _exposes_source(out):
                continue   # the caller would get an input's or the state's own memory back
            done.append((rule.__name__, node.id, out))
            return out
        return None

    after, env, converted = rewrite(graph, visit)
    rewritten = tuple((rule, i, converted[id(out)].id) for rule, i, out in done)
    return after, make_report(name, graph, after, survivors(graph, env, converted),
                              rewritten=rewritten, notes=tuple(notes))


def algebraic_simplification(graph):
    """``(graph, report)`` with the safe rules of ``RULES`` applied (module docstring)."""
    return _simplify(graph, RULES, "simplify")


def simplify_unsafe(graph):
    """Also the rules that change values for some inputs (``exp_log``); never by default."""
    return _simplify(graph, UNSAFE_RULES, "simplify_unsafe")
