"""The backward graph of an eager tensor: what ``backward()`` will run, step by step.

One oval per backward rule, numbered in the order the engine runs them (its topological
order, from the output back), edges carrying gradients from the output towards the leaves,
and one box per leaf that requires grad: the ``.grad`` the gradients accumulate into. Where a
tensor was used more than once, a small (+) sums the gradients of its uses before they flow
on, as the engine does (the multivariable chain rule).
"""
from __future__ import annotations

from collections import Counter

from labgrad.autograd import topological_order
from labgrad.errors import GradError

from . import style
from .figure import Figure
from .forward_figure import COMPACT_OPS, group_scopes, place
from .labels import escape, fmt_shape, fmt_type, fmt_values, is_small
from .tape import Released, Tape, distances


def backward_figure(tape: Tape, options):
    """Draw the backward pass of ``tape.root`` (see ``viz.draw`` for the options)."""
    root = tape.root
    if not root.requires_grad:
        raise GradError("viz.draw(..., backward=True): this tensor does not require grad, so "
                        "backward() would have nothing to run.\n  Create the inputs you want "
                        "gradients for with requires_grad=True.")
    highlighted = options.highlighted()
    fig = Figure(rankdir=options.rankdir)
    name = escape(root.name) if root.name else "output"
    seed = fig.add_node(
        f"<b>d {name} / d {name} = 1</b><br/><font point-size=\"9\" color=\"{style.MUTED}\">"
        f"{escape(fmt_type(root))}</font>", style.tensor_node("seed"))
    if root.grad_fn is None:
        leaf = _accumulator(fig, root, options, (), id(root) in highlighted)
        fig.add_edge(seed, leaf, dict(style.GRAD_EDGE, label=_shape(root)))
        return fig.view()
    engine_order = topological_order([root.grad_fn], for_backward=False)
    dist = distances(tape)
    steps = [tape.by_node[n] for n in engine_order
             if options.depth is None or dist[tape.by_node[n]] < options.depth]
    visible = set(steps)
    grouped = options.group if options.group is not None else len(steps) > COMPACT_OPS
    ids, accumulators, sums, ellipsis = {}, {}, {}, []
    for number, op in enumerate(steps, 1):
        label = f"<b>{number}</b>  {escape(op.node.op.name)} backward"
        ids[id(op)] = fig.add_node(label, style.op_node(op.node.op.family),
                                   scope=group_scopes(op.scope, grouped),
                                   highlight=id(op.node) in highlighted)
    fig.add_edge(seed, ids[id(steps[0])], dict(style.GRAD_EDGE, label=_shape(root)))
    uses = Counter(id(e) for op in steps for e in op.inputs)

    def users(entry):
        return [group_scopes(c.scope, grouped) for c in entry.consumers if c in visible]

    for op in steps:
        for entry in op.inputs:
            if entry.kind not in ("param", "value", "output"):
                continue
            attrs = dict(style.GRAD_EDGE, label=_shape(entry.value))
            if entry.kind == "param":
                if id(entry) not in accumulators:
                    accumulators[id(entry)] = _accumulator(fig, entry.value, options, place(users(entry)),
                                                           id(entry.value) in highlighted)
                fig.add_edge(ids[id(op)], accumulators[id(entry)], attrs)
                continue
            producer = tape.by_node[entry.producer]
            if producer in visible:
                target = ids[id(producer)]
            else:
                if not ellipsis:
                    hidden = len(engine_order) - len(steps)
                    ellipsis.append(fig.add_node(f"... {hidden} more step{'s' if hidden != 1 else ''}",
                                                 style.ELLIPSIS))
                target, attrs["style"] = ellipsis[0], "dashed"
            if uses[id(entry)] > 1:
                if id(entry) not in sums:
                    home = group_scopes(producer.scope, grouped)
                    sums[id(entry)] = fig.add_node("+", style.SUM_NODE, scope=place(users(entry), home))
                    fig.add_edge(sums[id(entry)], target, dict(attrs))
                target = sums[id(entry)]
            fig.add_edge(ids[id(op)], target, attrs)
    return fig.view()


def _shape(t):
    return "released" if isinstance(t, Released) else fmt_shape(t.shape)


def _accumulator(fig, leaf, options, scope, highlight):
    """The box a leaf's gradients are added into."""
    name = f"{escape(leaf.name)}.grad" if leaf.name else ".grad"
    lines = [f"<b>{name}</b>",
             f'<font point-size="9" color="{style.MUTED}">{escape(fmt_type(leaf))}</font>']
    if options.grads and leaf.grad is not None and is_small(leaf.grad):
        lines.append(f'<font color="{style.GRAD_INK}">{escape(fmt_values(leaf.grad))}</font>')
    return fig.add_node("<br/>".join(lines), style.tensor_node("grad"), scope=scope, highlight=highlight)
