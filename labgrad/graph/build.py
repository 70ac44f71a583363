"""Define-and-run, the TF1 way: declare placeholders and variables, build a graph, compile it.

::

    a = lg.placeholder((), name="a"); b = lg.placeholder((), name="b")
    c = a + b; d = c + 1              # nothing is computed yet: c and d are Symbols
    f = lg.compile(d)                 # an Executable: generated Python source, compiled once
    f(a=2.0, b=3.0)                   # tensor(6.)

State lives in ``lg.Variable``s; ``lg.assign(w, new_value)`` is a node that writes ``w`` when
the graph runs. Every read of a variable in one run sees its value from the start of that run;
the writes happen at the end, so the order in which update nodes were built does not matter.
"""
from __future__ import annotations

import numpy as np

from ..backends import parse_device
from ..creation import tensor
from ..errors import DTypeError, ShapeError, TraceError, format_location, user_location
from ..ops.registry import Aval, broadcast_shapes, fmt_shape
from ..tensor import Tensor
from .executable import Executable
from .ir import ROOT, Graph, Node, collect, current_frame
from .passes import lower, placer, resolve
from .symbol import Symbol, Variable, constant_node, to_input

__all__ = ["placeholder", "constant", "Variable", "assign", "compile"]


def placeholder(shape, dtype="float32", name=None, device=None):
    """An input fed when the graph runs; ``None`` in ``shape`` means "any size".

    >>> x = lg.placeholder((None, 64), "float32", name="x")
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) or shape is None else tuple(shape)
    for d in shape:
        if d is not None and (not isinstance(d, (int, np.integer)) or d < 0):
            raise ShapeError(f"placeholder: each size must be a non-negative int or None (any size), "
                             f"got shape {shape}")
    shape = tuple(None if d is None else int(d) for d in shape)
    node = Node("placeholder", aval=Aval(shape, np.dtype(dtype)), device=parse_device(device or "cpu"),
                name=name, location=user_location(), frame=ROOT)
    return Symbol(node)


def constant(value, name=None):
    """A value baked into the graph (a number, list, array or Tensor)."""
    if not isinstance(value, (Tensor, np.ndarray)) and not hasattr(value, "__cuda_array_interface__"):
        value = tensor(value)
    return Symbol(constant_node(value, name=name))


def assign(var, value):
    """A node that writes ``value`` into the variable ``var`` when the graph runs.

    It returns the new value as a Symbol. Compile it (alone, or next to other outputs) to make
    the executable perform the update::

        step = lg.compile([loss, lg.assign(w, w - 0.1 * gw)])
    """
    if not isinstance(var, Symbol) or var.node.kind != "variable":
        raise TypeError(f"assign: the target must be an lg.Variable, got {var!r}"
                        f"{format_location(user_location())}\n  Only variables hold state "
                        f"between runs; make one with w = lg.Variable(initial_value).")
    if not isinstance(value, Symbol):
        node = to_input(value)
        value = Symbol(node if isinstance(node, Node) else constant_node(np.asarray(node, dtype=var.dtype)))
    return make_assign(var.node, value, user_location())


def make_assign(target, value, location):
    """The assign node writing ``value`` (a Symbol) into the variable node ``target``.

    The value is broadcast and cast to the variable's shape and dtype with explicit nodes,
    so the graph says exactly what is stored.
    """
    if current_frame() is not ROOT:
        raise TraceError(f"state cannot be updated inside a cond branch or while body{format_location(location)}"
                         f"\n  Compute the new value with lg.cond / lg.while_loop and assign it outside.")
    if tuple(value.shape) != tuple(target.shape):
        try:
            ok = broadcast_shapes("assign", value.shape, target.shape) == tuple(target.shape)
        except ShapeError:
            ok = False
        if not ok:
            raise ShapeError(f"assign: cannot store a value of shape {fmt_shape(value.shape)} in "
                             f"variable {target.name or ''} of shape {fmt_shape(target.shape)}"
                             f"{format_location(location)}\n  A variable keeps its shape; reshape or "
                             f"reduce the value first.")
        value = value.broadcast_to(target.shape)
    if value.dtype != target.dtype:
        if not np.can_cast(value.dtype, target.dtype, casting="same_kind"):
            raise DTypeError(f"assign: cannot store a {value.dtype} value in the {target.dtype} "
                             f"variable {target.name or ''}{format_location(location)}\n  Convert "
                             f"it explicitly first, e.g. value.astype('{target.dtype}').")
        value = value.astype(target.dtype)
    node = Node("assign", (target, current_frame().capture(value.node)), aval=target.aval,
                device=target.device, name=target.name, location=location, frame=ROOT,
                requires_grad=value.requires_grad)
    return Symbol(node)


def compile(outputs, inputs=None, updates=(), name="graph", passes=None, placement=None):
    """Compile ``outputs`` (a Symbol, or a list of them) into an ``Executable``.

    The graph is found by walking back from the outputs and the ``updates`` (assign nodes to
    perform on every run without returning their values); every ``assign`` reached is
    performed. ``inputs`` fixes the order of positional feeds (default: the placeholders in the
    order they were made); feeds can always be given by name::

        train = lg.compile(loss, updates=[lg.assign(w, w - 0.1 * gw)])

    ``passes`` chooses the optimization passes run on the graph before code is generated:
    ``None`` for the default pipeline, ``()`` for none, or a list of pass names/functions
    (see ``labgrad.graph.passes``); ``executable.reports`` says what each one did.

    ``placement`` places the graph on several devices first (``passes/place.py``): pins such as
    ``{"matmul": "cuda"}`` (by op name, Symbol or function), or ``True`` for no pins; every other
    op goes where the fewest bytes cross between devices, with explicit transfer nodes.
    """
    single = not isinstance(outputs, (list, tuple))
    outs = [outputs] if single else list(outputs)
    nodes = [_root_node(o, f"output {i}") for i, o in enumerate(outs)]
    effects = []
    for i, u in enumerate([updates] if isinstance(updates, Symbol) else list(updates)):
        node = _root_node(u, f"update {i}")
        if node.kind != "assign":
            raise TypeError(f"compile: update {i} is a {node.op_name} node, not an lg.assign(...)")
        effects.append(node)
    reachable = [n for n in collect(nodes + effects) if n.kind == "placeholder"]
    if inputs is None:
        order = reachable
    else:
        inputs = [inputs] if isinstance(inputs, Symbol) else list(inputs)
        order = []
        for x in inputs:
            if not isinstance(x, Symbol) or x.node.kind != "placeholder":
                raise TypeError(f"compile: inputs must be placeholders, got {x!r}")
            order.append(x.node)
        listed = {n.id for n in order}
        missing = [n for n in reachable if n.id not in listed]
        if missing:
            raise TraceError("compile: the outputs depend on placeholder(s) not listed in inputs: "
                             + ", ".join(f"{n.name or 'unnamed'} {fmt_shape(n.shape)}"
                                         f"{format_location(n.location)}" for n in missing))
    graph = Graph(collect(nodes + effects), order, nodes, name=name)
    if placement is not None and placement is not False:
        passes = [placer(None if placement is True else placement)] + resolve(passes)
    graph, reports = lower(graph, passes)
    return Executable(graph, single=single, reports=reports)


def _root_node(value, what):
    if not isinstance(value, Symbol):
        raise TypeError(f"compile: {what} is a {type(value).__name__}, not a graph Symbol; "
                        f"outputs are values built from placeholders, variables and constants")
    if value.node.frame is not ROOT:
        raise TraceError(f"compile: {what} was computed inside a cond branch or while body"
                         f"{format_location(value.node.location)}")
    return value.node
