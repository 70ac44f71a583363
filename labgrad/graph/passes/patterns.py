"""Pattern fusion: a few known groups of ops become one op that does the same work.

=================================  =======================  ======================================
pattern                            becomes                  condition
=================================  =======================  ======================================
``a * b + c``, ``c + a * b``       ``fma(a, b, c)``         the product is used by this add only
                                                            (else it must exist anyway) and is not
                                                            an output; fma's inferred shape and
                                                            dtype are the add's
``matmul(x, w) + b``               ``linear(x, w, b)``      x and w are matrices, b is an array
                                                            that broadcasts into the product
                                                            without widening it, with the same
                                                            dtype; the product is used by this
                                                            add only and is not an output
``relu(linear(x, w, b))``          ``linear(..., relu)``    the same, for the sum: only the relu
                                                            uses it, and it is not an output
``relu_grad(g, x)``                ``relu_grad(g, relu(x))``  ``relu(x)`` is in the graph: ``x > 0``
                                                            exactly where ``relu(x) > 0`` (NaN
                                                            too), and the pre-activation ``x``
                                                            need not be kept for the backward, so
                                                            ``linear`` can take in the relu
=================================  =======================  ======================================

The ``relu_grad`` rule runs first, over the whole graph, so that the ``linear`` rules see the
pre-activation used by its ``relu`` only (the usual case in a training step).

The new ops compute exactly what the ops they replace compute (``ops/fused.py``), so values do
not change. A product that has another user, or that is returned, is *not fused because* it
would have to be computed anyway: the report lists such candidates in ``not_fused``.
"""
from __future__ import annotations

from ...ops.registry import get_op
from ..ir import Node, input_aval, rewrite
from .common import on_subgraphs
from .report import make_report, survivors

__all__ = ["pattern_fusion"]


def _is(x, name):
    return isinstance(x, Node) and x.kind == "op" and x.op.name == name


def _same(aval, node):
    return aval.shape == node.aval.shape and aval.dtype == node.aval.dtype


def _relu_grad_reads_relu(graph):
    """``relu_grad(g, x)`` -> ``relu_grad(g, relu(x))`` where ``relu(x)`` comes before it."""
    relu_of, rewritten = {}, []

    def visit(node, ins):
        if _is(node, "relu") and isinstance(ins[0], Node):
            out = node if all(a is b for a, b in zip(ins, node.inputs)) else node.replace(inputs=ins)
            relu_of.setdefault(id(ins[0]), out)
            return out
        if _is(node, "relu_grad") and isinstance(ins[1], Node) and id(ins[1]) in relu_of:
            rewritten.append(node.id)
            return node.replace(inputs=(ins[0], relu_of[id(ins[1])]))
        return None

    if not any(_is(n, "relu_grad") for n in graph.nodes):
        return graph, []
    new, _, _ = rewrite(graph, visit)
    return new, rewritten


def pattern_fusion(graph):
    """``(graph, report)`` with the patterns of the module docstring fused."""
    original = graph
    graph, relu_rewrites = _relu_grad_reads_relu(graph)
    users = {k: len(v) for k, v in graph.users().items()}
    outputs = {o.id for o in graph.outputs if isinstance(o, Node)}
    origin = {}           # id(new node) -> the old node it stands for
    fused, not_fused, notes = [], [], []
    absorbed = set()      # id() of fused nodes that a later fusion took in (linear -> +relu)

    def private(new_node, why, at):
        """Is the old node behind ``new_node`` used only by ``at``? Else say why not."""
        old = origin.get(id(new_node))
        if old is None:
            return False
        if old.id in outputs:
            not_fused.append((at.id, f"{why}: %{old.id} is an output, so it is computed anyway"))
            return False
        if users[old.id] != 1:
            not_fused.append((at.id, f"{why}: %{old.id} has {users[old.id]} users, so it is "
                                     f"computed anyway"))
            return False
        return True

    def make(node, op, ins, attrs, parts, label):
        try:
            aval = op.infer(*[input_aval(x) for x in ins], **attrs)
        except Exception:   # noqa: BLE001  (shapes or dtypes the fused op does not take)
            return None
        if not _same(aval, node):
            return None
        new = node.replace(op=op, inputs=tuple(ins), attrs=attrs)
        fused.append((label, tuple(parts), new))
        return new

    def visit(node, ins):
        new, inner = on_subgraphs(node, pattern_fusion, ins)
        if new is not None:
            notes.extend(inner)
            return new
        out = None
        if _is(node, "add") and len(ins) == 2:
            for k in (0, 1):
                m, other = ins[k], ins[1 - k]
                if other is m:    # add(p, p): the product is read twice, so it is kept anyway
                    not_fused.append((node.id, f"fma: both inputs are %{origin[id(m)].id}"
                                      if id(m) in origin else "fma: both inputs are the same"))
                    break
                if _is(m, "mul") and private(m, "fma", node):
                    out = make(node, get_op("fma"), [*m.inputs, other], {}, [origin[id(m)].id, node.id], "fma")
                elif (_is(m, "matmul") and isinstance(other, Node) and m.inputs[0].aval.ndim == 2
                      and m.inputs[1].aval.ndim == 2 and private(m, "linear", node)):
                    out = make(node, get_op("linear"), [*m.inputs, other], {"relu": False},
                               [origin[id(m)].id, node.id], "linear")
                if out is not None:
                    break
        elif _is(node, "relu") and _is(ins[0], "linear") and not ins[0].attrs["relu"]:
            lin = ins[0]
            if private(lin, "linear+relu", node):
                out = make(node, get_op("linear"), list(lin.inputs), {"relu": True},
                           [*_parts(lin), node.id], "linear")
                if out is not None:
                    absorbed.add(id(lin))
        if out is None:
            out = node if all(a is b for a, b in zip(ins, node.inputs)) else node.replace(inputs=ins)
        origin[id(out)] = node
        return out

    def _parts(new_node):
        for label, parts, made in fused:
            if made is new_node:
                return list(parts)
        return [origin[id(new_node)].id]

    after, env, converted = rewrite(graph, visit)
    kept = survivors(graph, env, converted)
    rewritten = tuple(("relu_grad reads relu's output", i, kept[i]) for i in relu_rewrites if i in kept)
    # a fusion that a later one absorbed (linear, then linear+relu) is reported once, as the last
    final = [(parts, made) for _, parts, made in fused if id(made) not in absorbed]
    report_fused = tuple((parts, converted[id(made)].id) for parts, made in final)
    taken = {i for parts, _ in final for i in parts}   # a candidate that was fused another way
    return after, make_report("patterns", original, after, kept, rewritten=rewritten,
                              fused=report_fused,
                              not_fused=tuple((i, why) for i, why in not_fused if i not in taken),
                              notes=tuple(notes))
