"""``Figure``: collects nodes, edges and scope clusters, then writes deterministic DOT.

Drawers describe *what* to show; the figure takes care of the DOT details every drawing
shares: node ids from a counter in the order nodes are added (never ``id()``, so the same
graph gives the same text in every run), nested clusters for scopes, and the highlight.
"""
from __future__ import annotations

import graphviz

from . import style
from .labels import ascii_text
from .view import GraphView


def is_backward_scope(part: str) -> bool:
    """Scopes named ``"<op> backward"`` hold the ops a backward rule recorded (create_graph)."""
    return part.endswith(" backward")


class Figure:
    """A drawing under construction.

    >>> fig = Figure(rankdir="TB")
    >>> a = fig.add_node("<b>x</b>", style.tensor_node("param"))
    >>> b = fig.add_node("mul", style.op_node("elementwise"), scope=("layer1",))
    >>> fig.add_edge(a, b)
    >>> fig.view()
    GraphView(2 nodes, 1 edge, 1 cluster)
    """

    def __init__(self, rankdir="TB", name="labgrad"):
        self.name = name
        self.rankdir = rankdir
        self._nodes = []        # (id, label, attrs, scope)
        self._edges = []        # (tail, head, attrs)
        self._highlights = 0

    def add_node(self, label, attrs, *, scope=(), highlight=False) -> str:
        """Add a node; ``label`` is Graphviz HTML-like markup without the outer ``<>``."""
        node_id = f"n{len(self._nodes)}"
        attrs = dict(attrs)
        if highlight:
            attrs.update(style="filled" if attrs.get("shape") == "ellipse" else "rounded,filled",
                         fillcolor=style.HIGHLIGHT_FILL, color=style.HIGHLIGHT_LINE, penwidth="2.5")
            attrs["class"] = style.HIGHLIGHT_CLASS
            if self._highlights == 0:
                attrs["id"] = style.CURRENT_ID
            self._highlights += 1
        self._nodes.append((node_id, f"<{label}>", attrs, tuple(scope or ())))
        return node_id

    def add_edge(self, tail, head, attrs=None):
        self._edges.append((tail, head, dict(attrs or {})))

    def view(self) -> GraphView:
        g = graphviz.Digraph(self.name)
        g.attr("graph", rankdir=self.rankdir, **style.GRAPH)
        g.attr("node", **style.NODE)
        g.attr("edge", **style.EDGE)
        clusters = self._write_scopes(g)
        for tail, head, attrs in self._edges:
            g.edge(tail, head, **attrs)
        return GraphView(g.source, len(self._nodes), len(self._edges), clusters)

    def _write_scopes(self, g) -> int:
        """Write the nodes, nested in one cluster per scope prefix; return the cluster count."""
        children = {(): []}
        members = {(): []}
        for node in self._nodes:
            scope = node[3]
            for depth in range(1, len(scope) + 1):
                prefix = scope[:depth]
                if prefix not in children:
                    children[prefix] = []
                    members[prefix] = []
                    children[prefix[:-1]].append(prefix)
            members[scope].append(node)
        counter = [0]

        def write(graph, prefix):
            for node_id, label, attrs, _ in members[prefix]:
                graph.node(node_id, label, **attrs)
            for child in children[prefix]:
                counter[0] += 1
                backward = is_backward_scope(child[-1])
                with graph.subgraph(name=f"cluster_{counter[0]}") as sub:
                    sub.attr(label=ascii_text(child[-1]), style="rounded,filled",
                             fillcolor=style.BACKWARD_SCOPE_FILL if backward else style.SCOPE_FILL,
                             color=style.BACKWARD_SCOPE_LINE if backward else style.SCOPE_LINE,
                             fontcolor=style.MUTED, fontsize="10", labeljust="l", margin="8")
                    write(sub, child)

        write(g, ())
        return counter[0]
