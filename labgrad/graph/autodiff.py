"""Gradient graphs: reverse-mode autodiff applied to a graph, with the same backward rules as
eager autograd, run on Symbols.

``gradients(loss, [w, b])`` walks the graph from ``loss`` back to ``w`` and ``b`` in reverse
topological order and calls each op's ``backward(ctx, g)``. The rule is written with labgrad
ops, so called with Symbols it adds nodes: the result is a *gradient graph* that can be
compiled, optimized, or differentiated again (gradients of gradients).

As in the eager engine, a gradient that has the broadcast shape of an op's output is summed
back to its input's shape with the ``sum_to`` op.
"""
from __future__ import annotations

from ..autograd import enable_grad
from ..errors import GradError, ShapeError, format_location, user_location
from ..ops.registry import Ctx, fmt_shape
from ..ops.shape import full_like, sum_to
from . import control
from .ir import Node, collect
from .symbol import Symbol, constant_node

__all__ = ["gradients", "SymbolicContext"]


class SymbolicContext(Ctx):
    """The ``ctx`` a backward rule receives, for a graph node (the ``Ctx`` protocol):
    ``inputs`` (Symbols and literal numbers), ``attrs``, ``output`` and ``needs_input_grad``."""

    __slots__ = ("node", "inputs", "attrs", "needs_input_grad")

    def __init__(self, node, needs_input_grad):
        self.node = node
        self.inputs = tuple(Symbol(x) if isinstance(x, Node) else x for x in node.inputs)
        self.attrs = node.attrs
        self.needs_input_grad = needs_input_grad

    @property
    def output(self):
        return Symbol(self.node)

    @property
    def op(self):
        return self.node.op


def _is_float(node):
    avals = node.aval if isinstance(node.aval, tuple) else (node.aval,)
    return any(a.dtype.kind in "fc" for a in avals)


def _grad_inputs(node):
    """The inputs a node passes gradient to."""
    kind = node.kind
    if kind == "op":
        return node.inputs if node.op.differentiable and not node.stop_gradient else ()
    if kind == "assign":
        return node.inputs[1:]
    if kind == "get":
        return node.inputs
    if kind == "cond":
        return node.inputs[1:]
    if kind == "while":
        return node.inputs
    return ()


def gradients(ys, xs, grad_ys=None, allow_unused=False):
    """Symbols for d(sum of ys)/d(x) for each x in ``xs``: a list, one per x.

    ``grad_ys`` (one per y) weights the outputs; without it each y is weighted by ones, as in
    TF1, so a non-scalar y gives the gradient of its sum. An x that the ys do not depend on
    raises, unless ``allow_unused=True`` (then its entry is ``None``).

    >>> gw, gb = lg.gradients(loss, [w, b])
    """
    ys = [ys] if not isinstance(ys, (list, tuple)) else list(ys)
    xs = [xs] if not isinstance(xs, (list, tuple)) else list(xs)
    for i, v in enumerate(ys + xs):
        if not isinstance(v, Symbol):
            what = f"ys[{i}]" if i < len(ys) else f"xs[{i - len(ys)}]"
            raise TypeError(f"gradients: {what} is a {type(v).__name__}, not a graph Symbol")
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    elif not isinstance(grad_ys, (list, tuple)):
        grad_ys = [grad_ys]
    if len(grad_ys) != len(ys):
        raise ValueError(f"gradients: got {len(grad_ys)} grad_ys for {len(ys)} ys")
    with enable_grad():   # the gradient graph is itself differentiable
        grads = _backprop([y.node for y in ys], grad_ys, [x.node for x in xs])
    out = []
    for x in xs:
        g = grads.get(x.node.id)
        if g is None and not allow_unused:
            raise GradError(
                f"gradients: the outputs do not depend on {x!r} (or only through integer values, "
                f"non-differentiable ops or stop_gradient), so it has no gradient."
                f"{format_location(user_location())}\n  Pass allow_unused=True to get None for it.")
        out.append(g)
    return out


def _backprop(y_nodes, grad_ys, x_nodes):
    """The gradient of each node reached, as a dict ``node id -> Symbol``."""
    order = collect(y_nodes)
    x_ids = {x.id for x in x_nodes}
    live = set()   # nodes whose value depends differentiably on some x
    for n in order:
        if n.id in x_ids:
            if _is_float(n):
                live.add(n.id)
        elif _is_float(n) and any(isinstance(i, Node) and i.id in live for i in _grad_inputs(n)):
            live.add(n.id)

    grads = {}
    for y, g in zip(y_nodes, grad_ys):
        if y.id not in live:
            continue
        _accumulate(grads, y, _seed(y, g))
    results = {}
    for node in reversed(order):
        if node.id not in live:
            continue
        g = grads.pop(node.id, None)
        if g is None:
            continue
        if node.id in x_ids:
            results[node.id] = g
        for x, gx in _node_vjp(node, g, live):
            if gx is None or not isinstance(x, Node) or x.id not in live:
                continue
            if not isinstance(gx, (Symbol, _OutputGrad)):
                gx = (full_like(Symbol(x), value=gx, dtype=None) if isinstance(gx, (int, float))
                      else Symbol(constant_node(gx)))
            if isinstance(gx, Symbol) and tuple(gx.shape) != tuple(x.aval.shape):
                gx = sum_to(gx, shape=tuple(x.aval.shape))
            _accumulate(grads, x, gx)
    return results


def _seed(y, g):
    if g is None:
        return full_like(Symbol(y), value=1.0, dtype=None)
    g = g if isinstance(g, Symbol) else Symbol(constant_node(g))
    if tuple(g.shape) != tuple(y.aval.shape) and None not in y.aval.shape:
        raise ShapeError(f"gradients: grad_ys has shape {fmt_shape(g.shape)} but its y has shape "
                         f"{fmt_shape(y.aval.shape)}")
    return g


def _accumulate(grads, node, g):
    """Add ``g`` to the gradient of ``node`` (an ``_OutputGrad`` for cond and while nodes)."""
    prev = grads.get(node.id)
    grads[node.id] = g if prev is None else prev + g


def _node_vjp(node, g, live):
    """``(input, gradient)`` pairs for one node, given the gradient ``g`` of its output."""
    kind = node.kind
    if kind == "op":
        needs = tuple(isinstance(x, Node) and x.id in live for x in node.inputs)
        in_grads = node.op.backward(SymbolicContext(node, needs), g)
        if len(in_grads) != len(node.inputs):
            raise GradError(f"the backward rule of {node.op.name} returned {len(in_grads)} "
                            f"gradients for {len(node.inputs)} inputs")
        return zip(node.inputs, in_grads)
    if kind == "assign":
        return [(node.inputs[1], g)]
    if kind == "get":
        source = node.inputs[0]
        return [(source, _OutputGrad(node.attrs["index"], g, len(source.aval)))]
    if kind in ("cond", "while"):
        return control.vjp(node, g.grads, live, gradients)
    return []


class _OutputGrad:
    """Gradients of the outputs of a several-output node (cond, while), one slot per output."""

    __slots__ = ("grads",)

    def __init__(self, index, g, n):
        self.grads = [None] * n
        self.grads[index] = g

    def __add__(self, other):
        out = _OutputGrad(0, None, len(self.grads))
        out.grads = [a if b is None else b if a is None else a + b
                     for a, b in zip(self.grads, other.grads)]
        return out
