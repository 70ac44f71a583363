"""``GraphView``: a drawn graph, as DOT text and (rendered on first use) SVG.

A view shows itself in Jupyter as an inline SVG and saves to ``.svg``, ``.png`` or ``.dot``.
Its text form names no memory addresses, so notebooks that print it stay comparable.
"""
from __future__ import annotations

import os

from .render import render, render_svg

SAVE_FORMATS = (".svg", ".png", ".dot", ".gv")


class GraphView:
    """One drawing. ``.dot`` is the DOT source; ``.svg`` is rendered once and cached.

    >>> view = viz.draw(loss)
    >>> view                      # in a notebook: the picture
    >>> view.save("loss.png")
    """

    def __init__(self, dot: str, num_nodes: int, num_edges: int, num_clusters: int = 0):
        self.dot = dot
        self.num_nodes = num_nodes
        self.num_edges = num_edges
        self.num_clusters = num_clusters
        self._svg = None

    @property
    def svg(self) -> str:
        """The SVG markup (from ``<svg`` on), rendered on first access."""
        if self._svg is None:
            self._svg = render_svg(self.dot)
        return self._svg

    def _repr_svg_(self):
        return self.svg

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/svg+xml": self.svg, "text/plain": repr(self)}

    def save(self, path):
        """Write the drawing to ``path``; the suffix picks the format (.svg, .png, .dot/.gv)."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".svg":
            data = render(self.dot, "svg")
        elif suffix == ".png":
            data = render(self.dot, "png")
        elif suffix in (".dot", ".gv"):
            data = self.dot.encode("utf-8")
        else:
            raise ValueError(f"GraphView.save({path!r}): cannot tell the format from the suffix "
                             f"{suffix or '(none)'!r}; use one of {', '.join(SAVE_FORMATS)}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def __repr__(self):
        parts = [_count(self.num_nodes, "node"), _count(self.num_edges, "edge")]
        if self.num_clusters:
            parts.append(_count(self.num_clusters, "cluster"))
        return f"GraphView({', '.join(parts)})"


def _count(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"
