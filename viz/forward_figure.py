"""The forward graph of an eager tensor: tensors as boxes, ops as ovals, data flowing down.

Small graphs show every tensor as a box (with its values when it has at most 6 elements).
Graphs with more than ``COMPACT_OPS`` ops are drawn compactly, as frameworks' graph viewers do:
ops only, the intermediate tensors' shapes written on the edges, ops clustered by scope.
"""
from __future__ import annotations

from . import style
from .figure import Figure, is_backward_scope
from .labels import escape, fmt_attrs, fmt_shape, fmt_type, fmt_values, is_small
from .tape import Released, Tape, distances

COMPACT_OPS = 40


class Annotations:
    """What a box says besides its name and type: its values and its gradient.

    ``value(entry)`` and ``grad(entry)`` return ``(array_or_None, visible)``; an invisible
    line is still laid out (in the box's own colour), so a sequence of drawings that reveal
    values one by one keeps the same layout. The default shows what the tensors hold now.
    """

    def __init__(self, values=True, grads=True):
        self.values, self.grads = values, grads

    def value(self, entry):
        if not self.values or entry.kind == "number" or isinstance(entry.value, Released):
            return None, False
        return entry.value, True

    def grad(self, entry):
        if not self.grads or entry.kind == "number":
            return None, False
        return entry.value.grad, True


def group_scopes(scope, grouped):
    """The clusters a node sits in: its whole scope when grouping; otherwise only the scopes
    of backward rules (higher-order graphs), which say where a node came from."""
    return scope if grouped else tuple(p for p in scope if is_backward_scope(p))


def common_prefix(scopes):
    scopes = list(scopes)
    if not scopes:
        return ()
    first = scopes[0]
    n = len(first)
    for s in scopes[1:]:
        n = min(n, len(s))
        for i in range(n):
            if s[i] != first[i]:
                n = i
                break
    return first[:n]


def place(users, home=None):
    """The scope to draw a tensor in, given the scopes of the ops that use it (``users``) and
    of the op that made it (``home``): with its maker if any user is inside the maker's scope,
    else with its users, as their input. Keeping a tensor that enters a scope inside that
    scope keeps long edges out of other clusters, which would push each cluster sideways
    (a staircase of blocks, in deep residual networks)."""
    users = list(users)
    if home is not None and (not users or any(u[:len(home)] == home for u in users)):
        return home
    return common_prefix(users)


def tensor_label(entry, annotations, fill) -> str:
    t = entry.value
    if entry.kind == "number":
        return escape(fmt_values(t))
    lines = []
    if isinstance(t, Released):
        return f'<font point-size="9" color="{style.MUTED}">released by backward()</font>'
    if t.name:
        lines.append(f"<b>{escape(t.name)}</b>")
    lines.append(f'<font point-size="9" color="{style.MUTED}">{escape(fmt_type(t))}</font>')
    value, shown = annotations.value(entry)
    if value is not None and is_small(value):
        lines.append(_maybe_hidden(escape(fmt_values(value)), shown, fill))
    grad, shown = annotations.grad(entry)
    if grad is not None and is_small(grad):
        lines.append(_maybe_hidden(f"grad {escape(fmt_values(grad))}", shown, fill, style.GRAD_INK))
    return "<br/>".join(lines)


def _maybe_hidden(text, shown, fill, color=None):
    if not shown:
        return f'<font color="{fill}">{text}</font>'
    return f'<font color="{color}">{text}</font>' if color else text


def op_label(node) -> str:
    attrs = fmt_attrs(node.attrs)
    label = escape(node.op.name)
    if attrs:
        label += f'<br/><font point-size="8" color="{style.MUTED}">{escape(attrs)}</font>'
    return label


def forward_figure(tape: Tape, options, annotations=None, active=None):
    """Draw ``tape`` (see ``viz.draw`` for the options). ``active``: an op whose edges carry
    gradients right now (the stepper's backward step), drawn red, pointing back; inputs that
    need no gradient (constants, numbers) keep plain edges."""
    annotations = annotations or Annotations(options.values, options.grads)
    highlighted = options.highlighted()
    highlighted_results = options.highlighted_results()
    dist = distances(tape)
    shown_ops = [op for op in tape.ops if options.depth is None or dist[op] < options.depth]
    visible = set(shown_ops)
    compact = len(shown_ops) > COMPACT_OPS
    grouped = options.group if options.group is not None else compact
    fig = Figure(rankdir=options.rankdir)
    ids, cut, scopes = {}, [], {}

    def own_scope(op):
        return group_scopes(op.scope, grouped)

    def entry_scope(entry):
        if id(entry) not in scopes:
            users = (own_scope(op) for op in entry.consumers if op in visible)
            home = own_scope(tape.by_node[entry.producer]) if entry.producer is not None else None
            scopes[id(entry)] = place(users, home)
        return scopes[id(entry)]

    def boxed(entry):
        """Compact drawings leave out the boxes of op results, except those crossing scopes."""
        if entry.kind != "value" or not compact:
            return True
        return grouped and entry_scope(entry) != own_scope(tape.by_node[entry.producer])

    def add_tensor(entry):
        if id(entry) not in ids:
            attrs = style.tensor_node("released" if isinstance(entry.value, Released) else entry.kind)
            is_hot = entry.kind != "number" and (
                id(entry.value) in highlighted or id(entry.producer) in highlighted_results)
            ids[id(entry)] = fig.add_node(tensor_label(entry, annotations, style.fill_of(attrs)), attrs,
                                          scope=entry_scope(entry), highlight=is_hot)
        return ids[id(entry)]

    for op in shown_ops:
        node = op.node
        hot = id(node) in highlighted or (not boxed(op.output) and id(node) in highlighted_results)
        label, attrs = op_label(node), style.op_node(node.op.family)
        heat = options.heat_of(node)
        if heat is not None:
            label += f'<br/><font point-size="8">{heat[1]}</font>'
            attrs.update(fillcolor=style.heat_color(heat[0]), penwidth="1.5")
            if heat[0] > 0.7:       # dark fills: light text
                attrs["fontcolor"] = "white"
        op_id = fig.add_node(label, attrs, scope=own_scope(op), highlight=hot)
        ids[id(op)] = op_id
        numbered = len(op.inputs) > 1 and not node.op.commutative
        edge_active = style.ACTIVE_EDGE if op is active else {}
        for position, entry in enumerate(op.inputs):
            producer = tape.by_node.get(entry.producer) if entry.producer is not None else None
            attrs = dict(edge_active) if entry.kind in ("param", "value") else {}
            if numbered:
                attrs["label"] = str(position)
            if boxed(entry):
                if producer is not None and producer not in visible and entry not in cut:
                    cut.append(entry)
                fig.add_edge(add_tensor(entry), op_id, attrs)
            elif producer in visible:
                attrs["label"] = _shape_label(entry, attrs.get("label"))
                fig.add_edge(ids[id(producer)], op_id, attrs)
            else:
                fig.add_edge(_ellipsis(fig, ids, tape, visible), op_id, attrs)
        if boxed(op.output):
            fig.add_edge(op_id, add_tensor(op.output), dict(edge_active))
    if not tape.ops:
        add_tensor(tape.tensors[0])
    for entry in cut:
        fig.add_edge(_ellipsis(fig, ids, tape, visible), ids[id(entry)], {"style": "dashed"})
    return fig.view()


def _shape_label(entry, position):
    shape = "released" if isinstance(entry.value, Released) else fmt_shape(entry.value.shape)
    return f"{position}: {shape}" if position else shape


def _ellipsis(fig, ids, tape, visible):
    """One shared node standing for every op the depth limit left out."""
    if "..." not in ids:
        hidden = len(tape.ops) - len(visible)
        ids["..."] = fig.add_node(f"... {hidden} more op{'s' if hidden != 1 else ''}", style.ELLIPSIS)
    return ids["..."]
