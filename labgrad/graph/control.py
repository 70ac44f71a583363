"""Control flow that a graph can hold: ``cond`` and ``while_loop``.

With eager Tensors they are plain Python (``if`` and ``while``). With graph Symbols (or inside
``lg.jit``) each branch or loop body is *traced* once, by calling the function on fresh
symbols, into a subgraph; the ``cond``/``while`` node holds the subgraphs and picks or repeats
them at run time. A branch may use values from outside it: they become extra inputs of the
node (closure conversion), so a subgraph never points outside itself.

Gradients: ``cond``'s backward is another ``cond``, whose branches compute the gradients of
the two branches. ``while_loop`` can be differentiated when it has ``max_iterations``: the
backward pass replays the loop as that many guarded steps (each a ``cond``: run the body if
the condition still holds) and differentiates the replay.
"""
from __future__ import annotations

import numpy as np

from ..context import context
from ..errors import GradError, TraceError, format_location, user_location
from ..ops.shape import full_like
from .ir import Frame, Graph, Node, collect, current_frame, frame_scope
from .symbol import Symbol, constant_node, make_node, to_input
from .text import fmt_aval

__all__ = ["cond", "while_loop", "call_graph"]


def _static(values):
    return context.tracer is not None or any(isinstance(v, Symbol) for v in values)


def _as_node(x):
    """A value as a node of the current frame (Python numbers become constants)."""
    n = to_input(x)
    return n if isinstance(n, Node) else constant_node(n)


def _flat(out):
    """A function's result as ``(list of values, rebuild)``: one value or a tuple/list."""
    if isinstance(out, (tuple, list)):
        kind = type(out)
        return list(out), (lambda vals: kind(vals))
    return [out], (lambda vals: vals[0])


def _trace(fn, args, label):
    """Call ``fn`` on fresh symbols in a new frame: its subgraph (without captures yet)."""
    frame = Frame(parent=current_frame(), label=label)
    with frame_scope(frame):
        syms = [Symbol(frame.new_arg(a.aval, a.device, name=a.name, requires_grad=a.requires_grad))
                for a in args]
        out = fn(*syms)
        values, rebuild = _flat(out)
        outs = [_as_node(v) for v in values]
    return frame, outs, rebuild


def _close(frames_outs, labels, n_args):
    """Give each traced frame the same extra inputs: every outer value any of them captured."""
    outer = {}
    for frame, _ in frames_outs:
        for node_id, (node, _) in frame.captures.items():
            outer.setdefault(node_id, node)
    order = sorted(outer)
    graphs = []
    for (frame, outs), label in zip(frames_outs, labels):
        inputs = list(frame.args[:n_args])
        for node_id in order:
            hit = frame.captures.get(node_id)
            inputs.append(hit[1] if hit is not None else Node("arg", aval=outer[node_id].aval,
                                                              device=outer[node_id].device, frame=frame))
        graphs.append(Graph(collect(outs), inputs, outs, name=label))
    parent = current_frame()
    return graphs, [parent.capture(outer[i]) for i in order]


def _control_node(kind, inputs, attrs, subgraphs, out_nodes, location):
    """A cond/while node and one ``get`` node per output (returned as Symbols)."""
    frame = current_frame()
    inputs = [frame.capture(x) for x in inputs]
    avals = tuple(o.aval for o in out_nodes)
    grad_on = context.grad_enabled
    requires = grad_on and any(x.requires_grad for x in inputs)
    node = Node(kind, inputs, attrs, aval=avals, device=out_nodes[0].device if out_nodes else None,
                location=location, subgraphs=subgraphs, frame=frame, stop_gradient=not grad_on,
                requires_grad=requires)
    return [Symbol(Node("get", (node,), {"index": i}, aval=o.aval, device=o.device, location=location,
                        frame=frame, stop_gradient=not grad_on, requires_grad=requires))
            for i, o in enumerate(out_nodes)]


def _same_avals(what, a_outs, b_outs, a_label, b_label, location):
    if len(a_outs) != len(b_outs):
        raise TraceError(f"{what}: the {a_label} returns {len(a_outs)} value(s) but the {b_label} "
                         f"returns {len(b_outs)}{format_location(location)}\n  Both must return the "
                         f"same number of values, with the same shapes and dtypes.")
    for i, (a, b) in enumerate(zip(a_outs, b_outs)):
        if a.aval != b.aval:
            raise TraceError(f"{what}: value {i} is {fmt_aval(a.aval)} from the {a_label} but "
                             f"{fmt_aval(b.aval)} from the {b_label}{format_location(location)}\n  "
                             f"Make them agree, e.g. with .astype(...), lg.zeros_like(...) or "
                             f".broadcast_to(...).")


# ---------------------------------------------------------------- cond

def cond(pred, true_fn, false_fn, *operands):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, in eager code and graphs.

    ``pred`` is a boolean scalar. In a graph, both branches are traced (so both must return
    values of the same shapes and dtypes) and the choice is made when the graph runs::

        y = lg.cond(x.sum() > 0, lambda x: x * 2, lambda x: -x, x)
    """
    location = user_location()
    if not _static((pred,) + operands):
        return true_fn(*operands) if bool(pred) else false_fn(*operands)
    if isinstance(pred, (bool, np.bool_)):
        return true_fn(*operands) if pred else false_fn(*operands)
    pred_node = _as_node(pred)
    if None in pred_node.aval.shape or int(np.prod(pred_node.aval.shape, dtype=np.int64)) != 1:
        raise TraceError(f"cond: the predicate must be a single value, got {fmt_aval(pred_node.aval)}"
                         f"{format_location(location)}\n  Reduce it first, e.g. (x > 0).all() or x.sum() > 0.")
    ins = [_as_node(x) for x in operands]
    t_frame, t_outs, rebuild = _trace(true_fn, ins, "true branch")
    f_frame, f_outs, _ = _trace(false_fn, ins, "false branch")
    _same_avals("cond", t_outs, f_outs, "true branch", "false branch", location)
    (g_true, g_false), caps = _close([(t_frame, t_outs), (f_frame, f_outs)], ["true", "false"], len(ins))
    outs = _control_node("cond", [pred_node] + ins + caps, {}, {"true": g_true, "false": g_false},
                         t_outs, location)
    return rebuild(outs)


# ---------------------------------------------------------------- while_loop

def while_loop(cond_fn, body_fn, loop_vars, max_iterations=None):
    """``while cond_fn(*vars): vars = body_fn(*vars)``, in eager code and graphs.

    ``loop_vars`` is one value or a tuple/list of them; the body returns the same structure,
    with the same shapes and dtypes. ``max_iterations`` stops the loop after that many steps
    (and is needed to differentiate it)::

        i, x = lg.while_loop(lambda i, x: x.sum() < 100, lambda i, x: (i + 1, x * 2), (0, x))
    """
    location = user_location()
    values, rebuild = _flat(loop_vars)
    if max_iterations is not None and (not isinstance(max_iterations, (int, np.integer)) or max_iterations < 0):
        raise ValueError(f"while_loop: max_iterations must be a non-negative int or None, got {max_iterations!r}")
    if not _static(values):
        steps = 0
        while max_iterations is None or steps < max_iterations:
            c = cond_fn(*values)
            if isinstance(c, Symbol):   # the condition reads a graph value: build a graph instead
                return _static_while(cond_fn, body_fn, values, rebuild, max_iterations, location)
            if not bool(c):
                break
            values, _ = _flat(body_fn(*values))
            steps += 1
        return rebuild(values)
    return _static_while(cond_fn, body_fn, values, rebuild, max_iterations, location)


def _static_while(cond_fn, body_fn, values, rebuild, max_iterations, location):
    ins = [_as_node(x) for x in values]
    c_frame, c_outs, _ = _trace(cond_fn, ins, "while condition")
    if len(c_outs) != 1 or None in c_outs[0].aval.shape or int(np.prod(c_outs[0].aval.shape, dtype=np.int64)) != 1:
        raise TraceError(f"while_loop: cond_fn must return one boolean scalar, got "
                         f"{', '.join(fmt_aval(o.aval) for o in c_outs)}{format_location(location)}")
    b_frame, b_outs, _ = _trace(body_fn, ins, "while body")
    if len(b_outs) != len(ins):
        raise TraceError(f"while_loop: the body returns {len(b_outs)} value(s) for {len(ins)} loop "
                         f"variable(s){format_location(location)}")
    for i, (a, b) in enumerate(zip(ins, b_outs)):
        if a.aval != b.aval:
            raise TraceError(f"while_loop: loop variable {i} is {fmt_aval(a.aval)} before the loop "
                             f"but the body returns {fmt_aval(b.aval)}{format_location(location)}\n  "
                             f"A loop variable keeps its shape and dtype across iterations; start it "
                             f"with the right dtype (e.g. lg.tensor(0.0)) or cast in the body.")
    (g_cond, g_body), caps = _close([(c_frame, c_outs), (b_frame, b_outs)], ["cond", "body"], len(ins))
    attrs = {"n_loop": len(ins), "max_iterations": None if max_iterations is None else int(max_iterations)}
    outs = _control_node("while", ins + caps, attrs, {"cond": g_cond, "body": g_body}, ins, location)
    return rebuild(outs)


# ---------------------------------------------------------------- replaying a subgraph

def call_graph(graph, args):
    """Rebuild ``graph``'s nodes in the current frame on ``args`` (Symbols); its outputs.

    This is how a gradient rule re-enters a branch: the branch is recomputed, then
    differentiated (rematerialization instead of storing every intermediate).
    """
    env = {}
    for inp, a in zip(graph.inputs, args):
        env[inp.id] = a.node if isinstance(a, Symbol) else _as_node(a)
    for n in graph.nodes:
        if n.id in env:
            continue
        kind = n.kind
        if kind == "get":
            env[n.id] = env[n.inputs[0].id][n.attrs["index"]].node
            continue
        ins = [Symbol(env[x.id]) if isinstance(x, Node) else x for x in n.inputs]
        if kind == "op":
            out = make_node(n.op, ins, n.attrs, location=n.location).node
            out.stop_gradient = out.stop_gradient or n.stop_gradient
        elif kind == "constant":
            out = Node("constant", aval=n.aval, device=n.device, name=n.name, location=n.location,
                       value=n.value, frame=current_frame())
        elif kind == "stop_gradient":
            out = ins[0].detach().node
        elif kind in ("cond", "while"):
            outs = _control_node(kind, [s.node for s in ins], dict(n.attrs), n.subgraphs,
                                 [_AvalOnly(a, n.device) for a in n.aval], n.location)
            env[n.id] = outs   # a list: its get nodes pick from it
            continue
        else:
            raise TraceError(f"a {kind} node cannot appear inside a branch or loop body")
        env[n.id] = out
    return [Symbol(env[o.id]) if isinstance(o, Node) else o for o in graph.outputs]


class _AvalOnly:
    __slots__ = ("aval", "device")

    def __init__(self, aval, device):
        self.aval, self.device = aval, device


# ---------------------------------------------------------------- gradients

def _zeros_like(x):
    return full_like(x, value=0, dtype=None)


def vjp(node, out_grads, live, gradients):
    """``(input, gradient)`` pairs of a cond or while node, given its outputs' gradients.

    ``gradients`` is the symbolic differentiator (``autodiff.gradients``): a branch's gradient
    is found by differentiating the branch. It is passed in rather than imported, so that
    imports point one way only: ``autodiff`` uses this module, not the reverse.
    """
    if node.kind == "cond":
        return _cond_vjp(node, out_grads, live, gradients)
    return _while_vjp(node, out_grads, live, gradients)


def _cond_vjp(node, out_grads, live, gradients):
    pred, ins = node.inputs[0], node.inputs[1:]
    diff = [i for i, x in enumerate(ins) if isinstance(x, Node) and x.id in live]
    picked = [k for k, g in enumerate(out_grads) if g is not None]
    if not diff or not picked:
        return []

    def branch(graph):
        def vjp_fn(*args):
            xs, gys = args[:len(ins)], args[len(ins):]
            outs = call_graph(graph, xs)
            grads = gradients([outs[k] for k in picked], [xs[i] for i in diff], grad_ys=list(gys),
                              allow_unused=True)
            return tuple(_zeros_like(xs[i]) if g is None else g if g.dtype == xs[i].dtype else g.astype(xs[i].dtype)
                         for g, i in zip(grads, diff))
        return vjp_fn

    res = cond(Symbol(pred), branch(node.subgraphs["true"]), branch(node.subgraphs["false"]),
               *[Symbol(x) for x in ins], *[out_grads[k] for k in picked])
    return [(ins[i], g) for i, g in zip(diff, res)]


def _while_vjp(node, out_grads, live, gradients):
    limit = node.attrs.get("max_iterations")
    if limit is None:
        raise GradError(
            f"cannot differentiate lg.while_loop without max_iterations{format_location(node.location)}\n"
            f"  Reverse mode needs every iterate of the loop, and a graph must be finite. Pass "
            f"max_iterations=N: the gradient then replays the loop as N guarded steps (each one "
            f"runs the body only while the condition holds) and differentiates that. If the count "
            f"is fixed, a Python for loop (unrolled while tracing) works as well.")
    n = node.attrs["n_loop"]
    ins = node.inputs
    diff = [i for i, x in enumerate(ins) if isinstance(x, Node) and x.id in live]
    picked = [k for k, g in enumerate(out_grads) if g is not None]
    if not diff or not picked:
        return []
    syms = [Symbol(x) for x in ins]
    vals, caps = syms[:n], syms[n:]
    body, test = node.subgraphs["body"], node.subgraphs["cond"]
    for _ in range(limit):
        go = call_graph(test, vals + caps)[0]
        vals = list(cond(go, lambda *a: tuple(call_graph(body, a)), lambda *a: tuple(a[:n]), *vals, *caps))
    grads = gradients([vals[k] for k in picked], [syms[i] for i in diff],
                      grad_ys=[out_grads[k] for k in picked], allow_unused=True)
    return [(ins[i], g) for i, g in zip(diff, grads) if g is not None]
