"""The drawing of a static ``Graph``: one shape per node of its IR, data flowing down.

What ``print(graph)`` lists line by line, this draws: placeholders, constants, variables
(cylinders: state that outlives a run), ops (ovals coloured by family, as in eager drawings),
assigns (with a dashed "writes" arrow back to their variable) and the graph's outputs (a thick
outline). A ``fused`` node (one generated kernel) is drawn as a cluster named after its
kernel: one small oval per step of the kernel, data flowing between them, and the kernel's
exit node, which its consumers read. A ``cond`` or ``while`` node is drawn with its subgraphs as clusters beside it
("cond: true branch", "cond: false branch", "while: cond", "while: body"): the operands flow
into each subgraph's inputs, and each subgraph's results flow into the node that picks (cond)
or repeats (while) them. Subgraphs nest, as control flow does.

Unlike an eager drawing there are no value boxes: a node *is* a value, so each shape says its
op and its aval, ``float32[?,64]`` with ``?`` for sizes only known when the graph runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from labgrad.errors import short_location

from . import graph_style, style
from .figure import Figure
from .forward_figure import COMPACT_OPS
from .labels import ascii_text, escape, fmt_attrs, fmt_values, is_small

SOURCES = ("placeholder", "constant", "variable")


# ---------------------------------------------------------------- text

def fmt_aval(aval) -> str:
    """``float32[?,64]``, as in the graph's text form; a tuple of avals for cond/while nodes."""
    if isinstance(aval, tuple):
        return "(" + ", ".join(fmt_aval(a) for a in aval) + ")"
    if aval is None:
        return "?"
    dims = ",".join("?" if d is None else str(d) for d in aval.shape)
    return f"{np.dtype(aval.dtype).name}[{dims}]"


def _small(text, size=9, color=style.MUTED):
    return f'<font point-size="{size}" color="{color}">{escape(text)}</font>'


def node_label(node, options, index=None) -> str:
    """The label of ``node``: what it is, its aval, and on request its value and source line.
    ``index``: for an ``arg`` node, its position in the subgraph's inputs."""
    kind = node.kind
    name = ascii_text(node.name) if node.name else None
    if kind == "variable" and node.attrs.get("slot") == "grad":
        name = f"{name or 'variable'}.grad"
    lines = []
    if kind == "op":
        lines.append(escape(node.op.name))
        attrs = fmt_attrs(node.attrs)
        if attrs:
            lines.append(_small(attrs, 8))
    elif kind == "assign":
        if name and node.attrs.get("slot") == "grad":
            name = f"{name}.grad"
        lines.append("assign" + (f" <b>{escape(name)}</b>" if name else ""))
    elif kind == "get":
        lines.append(escape(f"[{node.attrs.get('index', 0)}]"))
    elif kind in ("cond", "while"):
        lines.append(f"<b>{kind}</b>")
        limit = node.attrs.get("max_iterations")
        if limit is not None:
            lines.append(_small(f"max_iterations={limit}", 8))
    elif kind == "arg":
        lines.append(escape(name or f"arg {index}"))
    elif kind in SOURCES:
        lines.append(f"<b>{escape(name)}</b>" if name else escape(kind))
    else:
        lines.append(escape(node.op_name))
    aval = node.aval
    if kind in ("cond", "while") and isinstance(aval, tuple) and len(aval) == 1:
        aval = aval[0]
    lines.append(_small(fmt_aval(aval)))
    if options.values and kind in ("constant", "variable"):
        value = _value_of(node)
        if value is not None and is_small(value):
            lines.append(escape(fmt_values(value)))
    if options.source and kind != "arg":
        where = short_location(node.location)
        if where:
            lines.append(_small(where, 8))
    return "<br/>".join(lines)


def _value_of(node):
    """The array a constant holds, or the current value of the tensor a variable reads."""
    if node.kind == "constant":
        value = node.value
    else:
        tensor = node.tensor
        if tensor is None:
            return None
        value = tensor.grad if node.attrs.get("slot") == "grad" else tensor
    if value is None:
        return None
    if hasattr(value, "get") and not hasattr(value, "numpy"):   # a CuPy array
        value = value.get()
    return value


# ---------------------------------------------------------------- clusters

@dataclass(frozen=True)
class Region:
    """A cluster for one subgraph of a cond/while node (``kind``: its key, e.g. ``true``).
    ``number`` keeps two subgraphs with the same label apart."""

    number: int
    label: str
    kind: str

    def __str__(self):
        return self.label


class GraphFigure(Figure):
    """A ``Figure`` whose scopes may also be subgraph ``Region``s, each a cluster of its own
    colour; plain strings are name scopes, drawn as in eager drawings."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rows = {}         # scope -> node ids to keep in one row (a subgraph's inputs)

    def same_row(self, node_ids, scope):
        """Lay ``node_ids`` (all in ``scope``) out side by side, like a function's parameters."""
        if len(node_ids) > 1:
            self._rows.setdefault(tuple(scope), []).append(list(node_ids))

    def _write_scopes(self, g) -> int:
        children, members = {(): []}, {(): []}
        for node in self._nodes:
            scope = node[3]
            for depth in range(1, len(scope) + 1):
                prefix = scope[:depth]
                if prefix not in children:
                    children[prefix], members[prefix] = [], []
                    children[prefix[:-1]].append(prefix)
            members[scope].append(node)
        count = [0]

        def write(graph, prefix):
            for node_id, label, attrs, _ in members[prefix]:
                graph.node(node_id, label, **attrs)
            for row in self._rows.get(prefix, ()):
                with graph.subgraph() as same:
                    same.attr(rank="same")
                    for node_id in row:
                        same.node(node_id)
            for child in children[prefix]:
                count[0] += 1
                part = child[-1]
                kind = part.kind if isinstance(part, Region) else "scope"
                with graph.subgraph(name=f"cluster_{count[0]}") as sub:
                    sub.attr(label=ascii_text(str(part)), **graph_style.region(kind))
                    write(sub, child)

        write(g, ())
        return count[0]


# ---------------------------------------------------------------- the drawing

def graph_figure(graph, options):
    """Draw a ``Graph`` (see ``viz.draw`` for the options); returns a ``GraphView``."""
    return _GraphDrawing(graph, options).draw()


def _highlighted_nodes(options) -> set:
    h = options.highlight
    if h is None:
        return set()
    items = h if isinstance(h, (list, tuple, set, frozenset)) else (h,)
    return {_origin(getattr(x, "node", x)) for x in items}


def _origin(node):
    """The builder node a graph node was made from (its id), so a Symbol highlights its node."""
    origin = getattr(node, "origin", None)
    return origin if origin is not None else getattr(node, "id", id(node))


def _region_label(node, key):
    if node.kind == "cond":
        return f"cond: {key} branch"
    return f"{node.kind}: {key}"


class _GraphDrawing:
    def __init__(self, graph, options):
        self.graph = graph
        self.options = options
        self.fig = GraphFigure(rankdir=options.rankdir, name=ascii_text(graph.name or "graph"))
        self.ids = {}                   # id(node) -> DOT id (subgraphs number their nodes apart)
        self.hot = _highlighted_nodes(options)
        self.regions = 0
        ops = sum(1 for n in graph.nodes if n.kind not in SOURCES)
        self.grouped = options.group if options.group is not None else ops > COMPACT_OPS
        self.visible, self.hidden = self._cut(graph, options.depth)
        self.ellipsis = None
        # a graph on several devices (placement): each node outlined and labelled by its device
        found = {str(n.device) for n in graph.nodes}
        self.devices = sorted(found, key=lambda d: (d != "cpu", d)) if len(found) > 1 else None

    # ---- which top-level nodes to show (``depth``)
    @staticmethod
    def _cut(graph, depth):
        """The top-level nodes within ``depth`` steps of an output or state update, plus the
        sources and variables they touch; and how many computing nodes were left out."""
        if depth is None:
            return None, 0
        roots = list(graph.outputs) + [n for n in graph.nodes if n.kind == "assign"]
        dist, frontier = {}, []
        for r in roots:
            if r.kind not in SOURCES and r.id not in dist:
                dist[r.id] = 0
                frontier.append(r)
        while frontier:
            nxt = []
            for node in frontier:
                for x in node.input_nodes:
                    if x.kind not in SOURCES and x.id not in dist:
                        dist[x.id] = dist[node.id] + 1
                        nxt.append(x)
            frontier = nxt
        visible = {i for i, d in dist.items() if d < depth}
        for node in graph.nodes:
            if node.id in visible:
                visible.update(x.id for x in node.input_nodes if x.kind in SOURCES)
        visible.update(r.id for r in roots if r.kind in SOURCES)
        computing = [n for n in graph.nodes if n.kind not in SOURCES]
        return visible, sum(1 for n in computing if n.id not in visible)

    def draw(self):
        graph = self.graph
        outputs = {o.id for o in graph.outputs if hasattr(o, "id")}
        listed = set()
        for node in list(graph.inputs) + list(graph.nodes):
            if node.id in listed:
                continue
            listed.add(node.id)
            if self.visible is not None and node.id not in self.visible:
                continue
            self.add(node, (), top=True, output=node.id in outputs)
        return self.fig.view()

    # ---- nodes
    def scope_of(self, node, path, top):
        if top and self.grouped and node.scope:
            return path + tuple(node.scope.split("/"))
        return path

    def add(self, node, path, top=False, output=False, index=None):
        kind = node.kind
        scope = self.scope_of(node, path, top)
        if kind in ("cond", "while") or (node.subgraphs and kind != "op"):
            self.add_control(node, scope, output)
            return
        if kind == "fused" and node.attrs.get("kernel") is not None:
            self.add_fused(node, scope, output)
            return
        if kind == "op":
            attrs = style.op_node(node.op.family)
        elif kind == "stop_gradient":
            attrs = style.op_node(None)
        else:
            try:
                attrs = graph_style.node_style(kind)
            except ValueError:
                attrs = style.op_node(None)
        if output:
            attrs.update(penwidth=graph_style.OUTPUT_PEN, color=attrs.get("color", style.INK)
                         if kind == "assign" else style.INK)
        label = _with_heat(node_label(node, self.options, index), attrs, self.options.heat_of(node))
        label = self.with_device(label, attrs, node)
        self.ids[id(node)] = me = self.fig.add_node(label, attrs, scope=scope,
                                                   highlight=_origin(node) in self.hot)
        if kind == "assign":
            value, target = node.inputs[1], node.inputs[0]
            self.fig.add_edge(self.source(value, scope), me)
            if id(target) in self.ids:   # drawn downwards, arrow at the variable: keeps the layout flowing down
                self.fig.add_edge(self.ids[id(target)], me, dict(graph_style.WRITE_EDGE))
            return
        ins = node.inputs
        numbered = kind == "op" and len(ins) > 1 and not node.op.commutative
        for position, x in enumerate(ins):
            attrs = {"label": str(position)} if numbered else {}
            self.fig.add_edge(self.source(x, scope), me, attrs)

    def with_device(self, label, attrs, node):
        """On a graph that mixes devices: the node's device under its label, in its colour,
        which also outlines the node (transfers, ``to_device``, sit between two colours)."""
        if self.devices is None or str(node.device) not in self.devices:
            return label
        color = style.device_color(node.device, self.devices)
        attrs.update(color=color, penwidth="2")
        return f"{label}<br/>{_small(str(node.device), 8, color)}"

    def source(self, x, scope):
        """The DOT id that feeds an input ``x``: its node's, a new box for a Python number, or
        the shared "..." standing for nodes the depth limit left out."""
        if hasattr(x, "id") and hasattr(x, "inputs"):
            if id(x) in self.ids:
                return self.ids[id(x)]
            return self.cut_marker()
        return self.fig.add_node(escape(fmt_values(x)), style.tensor_node("number"), scope=scope)

    def cut_marker(self):
        if self.ellipsis is None:
            n = self.hidden
            self.ellipsis = self.fig.add_node(f"... {n} more node{'s' if n != 1 else ''}", style.ELLIPSIS)
        return self.ellipsis

    # ---- fused kernels
    def add_fused(self, node, scope, output):
        """A ``fused`` node: a cluster named after its kernel, holding one oval per step (the
        op and the step's dtype), fed by the node's operands; the outputs flow into the kernel's
        exit box, which is what the node's users (and ``get`` nodes) read."""
        attr = node.attrs["kernel"]
        kernel = getattr(attr, "kernel", attr)
        self.regions += 1
        reduce = getattr(kernel, "reduce", None)
        title = f"kernel {kernel.name}" + ("" if reduce is None else f" (then {reduce.kind})")
        inner = scope + (Region(self.regions, title, "fused"),)
        feeds = {}                      # kernel input name -> DOT id of the operand
        for inp, x in zip(kernel.inputs, node.inputs):
            feeds[inp.name] = self.source(x, scope)
        made = {}                       # step name -> DOT id of its oval
        for step in kernel.steps:
            label = escape(step.op)
            shown = {k: v for k, v in sorted(step.attrs.items())}
            if shown:
                label += "<br/>" + _small(fmt_attrs(shown), 8)
            label += "<br/>" + _small(np.dtype(step.dtype).name)
            me = self.fig.add_node(label, style.op_node(_family(step.op)), scope=inner)
            made[step.name] = me
            numbered = len(step.refs) > 1 and not _commutative(step.op)
            for position, ref in enumerate(step.refs):
                attrs = {"label": str(position)} if numbered else {}
                if isinstance(ref, str) and ref in made:
                    self.fig.add_edge(made[ref], me, attrs)
                elif isinstance(ref, str) and ref in feeds:
                    self.fig.add_edge(feeds[ref], me, attrs)
                else:
                    self.fig.add_edge(self.source(ref, inner), me, attrs)
        attrs = style.op_node(None)
        attrs.update(shape="box", style="rounded,filled")
        if output:
            attrs.update(penwidth=graph_style.OUTPUT_PEN, color=style.INK)
        exit_label = [escape(kernel.name), _small(fmt_aval(node.aval))]
        label = _with_heat("<br/>".join(exit_label), attrs, self.options.heat_of(node))
        label = self.with_device(label, attrs, node)
        self.ids[id(node)] = out = self.fig.add_node(label, attrs, scope=inner,
                                                     highlight=_origin(node) in self.hot)
        many = len(kernel.outputs) > 1
        for i, o in enumerate(kernel.outputs):
            tail = made.get(o.name, feeds.get(o.name))
            if tail is not None:
                self.fig.add_edge(tail, out, {"label": f"out [{i}]"} if many else {})

    # ---- control flow
    def add_control(self, node, scope, output):
        """A cond/while node: its subgraphs as clusters (operands flowing into their inputs),
        then the node itself, fed by the predicate and by each subgraph's results."""
        ins = list(node.inputs)
        operands = ins[1:] if node.kind == "cond" else ins
        into_node = []
        for key, sub in (node.subgraphs or {}).items():
            self.regions += 1
            region = Region(self.regions, _region_label(node, key), key)
            inner = scope + (region,)
            used = {x.id for n in sub.nodes for x in n.input_nodes}   # args the subgraph reads
            used.update(o.id for o in sub.outputs if hasattr(o, "id"))
            row = []
            for j, arg in enumerate(sub.inputs):
                if arg.id not in used:
                    continue
                self.add(arg, inner, index=j)
                row.append(self.ids[id(arg)])
                if j < len(operands):
                    self.fig.add_edge(self.source(operands[j], scope), self.ids[id(arg)], dict(graph_style.BIND_EDGE))
            self.fig.same_row(row, inner)
            args = {a.id for a in sub.inputs}
            for n in sub.nodes:
                if n.id not in args:
                    self.add(n, inner)
            many = len(sub.outputs) > 1
            for i, out in enumerate(sub.outputs):
                into_node.append((self.source(out, inner), _result_label(node.kind, key, i, many),
                                  graph_style.region_edge(key)))
        attrs = graph_style.control_node()
        if output:
            attrs["penwidth"] = graph_style.OUTPUT_PEN
        me = self.fig.add_node(node_label(node, self.options), attrs, scope=scope, highlight=_origin(node) in self.hot)
        self.ids[id(node)] = me
        if node.kind == "cond":
            self.fig.add_edge(self.source(ins[0], scope), me, {"label": "pred"})
        for tail, label, attrs in into_node:
            self.fig.add_edge(tail, me, dict(attrs, label=label))


def _with_heat(label, attrs, heat):
    """A node's label and fill for ``viz.draw(..., heat=...)``: its time under it, its fill
    from pale yellow to deep red by its share of the slowest node's time."""
    if heat is None:
        return label
    attrs.update(fillcolor=style.heat_color(heat[0]), penwidth="1.5")
    if "filled" not in attrs.get("style", ""):
        attrs["style"] = ",".join(filter(None, [attrs.get("style"), "filled"]))
    if heat[0] > 0.7:       # dark fills: light text
        attrs["fontcolor"] = "white"
    return f'{label}<br/><font point-size="8">{heat[1]}</font>'


def _commutative(opname):
    try:
        from labgrad.ops.registry import get_op
        return bool(get_op(opname).commutative)
    except Exception:
        return False


def _family(opname):
    """The family of a registered op (for its colour), or ``None``."""
    try:
        from labgrad.ops.registry import get_op
        return get_op(opname).family
    except Exception:   # an op the registry does not know: drawn in the neutral colour
        return None


def _result_label(kind, key, i, many):
    if kind == "cond":
        word = key
    elif kind == "while":
        word = "repeat?" if key == "cond" else "next"
    else:
        word = key
    return f"{word} [{i}]" if many else word
