"""How static graphs look, on top of ``viz.style`` (shared with the eager drawings).

Ops are the same family-coloured ovals as in eager drawings. What only a static graph has:

* placeholders (fed at run time): lavender boxes;
* variables (state that outlives a run): yellow cylinders, the parameters' yellow;
* assigns (state updates): amber-edged boxes with a dashed amber "writes" arrow back to the
  variable they write;
* ``cond`` / ``while`` subgraphs: tinted clusters, green for the true branch, orange for the
  false one, blue for a loop's condition, violet for its body.
"""
from __future__ import annotations

from . import style

PLACEHOLDER_FILL = "#e8eaf6"
ASSIGN_FILL = "#fff8e1"
ASSIGN_INK = "#b26a00"
CONTROL_FAMILY = "control"

# cluster kind -> (fill, outline, label colour)
REGIONS = {
    "true": ("#f1f8f1", "#81c784", "#2e7d32"),
    "false": ("#fdf4ee", "#efa67a", "#b4531b"),
    "cond": ("#eef5fb", "#90b4d6", "#1f5f99"),
    "body": ("#f4f1fa", "#b3a2d6", "#5e4a99"),
    "scope": (style.SCOPE_FILL, style.SCOPE_LINE, style.MUTED),
    "fused": ("#fff8e1", "#f0b429", "#8a5a00"),      # one generated kernel (a fused node)
}


def node_style(kind) -> dict:
    """Shape and colours of a node that is not an op: ``placeholder``, ``constant``,
    ``variable``, ``assign``, ``arg`` (an input of a subgraph) or ``get`` (one output of a
    cond/while)."""
    if kind == "placeholder":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": PLACEHOLDER_FILL, "penwidth": "1.3"}
    if kind == "constant":
        return style.tensor_node("const")
    if kind == "variable":
        return {"shape": "cylinder", "style": "filled", "fillcolor": style.PARAM_FILL, "penwidth": "1.3"}
    if kind == "assign":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": ASSIGN_FILL, "color": ASSIGN_INK,
                "penwidth": "1.6"}
    if kind == "arg":
        return {"shape": "box", "style": "rounded,dashed", "color": style.MUTED, "fontsize": "10",
                "margin": "0.06,0.02"}
    if kind == "get":
        return {"shape": "box", "style": "rounded", "color": style.MUTED, "fontsize": "9",
                "height": "0.2", "margin": "0.05,0.02"}
    raise ValueError(f"no style for a {kind!r} node")


def control_node() -> dict:
    attrs = style.op_node(CONTROL_FAMILY)
    attrs["penwidth"] = "1.4"
    return attrs


def region(kind) -> dict:
    """Cluster attributes for a subgraph (``true``, ``false``, ``cond``, ``body``) or a name scope."""
    fill, line, ink = REGIONS.get(kind, REGIONS["scope"])
    return {"style": "rounded,filled", "fillcolor": fill, "color": line, "fontcolor": ink,
            "fontsize": "10", "labeljust": "l", "margin": "8"}


def region_edge(kind) -> dict:
    """An edge from a subgraph's result to its cond/while node, in the subgraph's colour."""
    _, line, ink = REGIONS.get(kind, REGIONS["scope"])
    return {"color": line, "fontcolor": ink, "penwidth": "1.2"}


WRITE_EDGE = {"style": "dashed", "color": ASSIGN_INK, "fontcolor": ASSIGN_INK, "penwidth": "1.2",
              "dir": "back", "label": "writes"}
BIND_EDGE = {"style": "dashed", "color": style.MUTED}
OUTPUT_PEN = "2.2"
