"""How drawings look: one place for colours, fonts and shapes, so every view agrees.

Ops are ovals filled with their family's colour (``FAMILY_COLORS``, keyed by ``op.family``);
tensors are boxes: parameters (leaves that require grad) in warm yellow, constants white
with a grey outline, Python numbers small and dashed. The highlight (the stepper's current
node) is a strong amber no family uses.
"""
from __future__ import annotations

FAMILY_COLORS = {
    "elementwise": "#cfe8ff", "compare": "#eeeeee", "reduce": "#ffe2b8", "shape": "#e3f4d7",
    "linalg": "#f8d0d0", "nn": "#e8d5f5", "creation": "#f5f5d0", "control": "#d7eef0",
    "transfer": "#f0e0c8", "state": "#fde2e4",
}
FONT = "Helvetica"          # graphviz-pure measures it with Arial-compatible metrics
INK = "#37474f"            # outlines, edges and text: a soft near-black
MUTED = "#78909c"          # secondary text (shapes, dtypes), constant outlines
GRAD_INK = "#c62828"       # gradients, wherever they appear
PARAM_FILL = "#fff3c4"
CONST_FILL = "#ffffff"
TENSOR_FILL = "#fafafa"
UNKNOWN_FAMILY = "#eeeeee"
HIGHLIGHT_FILL = "#ffb300"
HIGHLIGHT_LINE = "#e65100"
SCOPE_FILL = "#f6f8fa"
SCOPE_LINE = "#cfd8dc"
BACKWARD_SCOPE_FILL = "#fdf1f1"  # clusters of ops recorded by backward rules (higher order)
BACKWARD_SCOPE_LINE = "#ef9a9a"

CURRENT_ID = "lg-current"  # DOT/SVG id of the highlighted node (the first, if several)
HIGHLIGHT_CLASS = "lg-highlight"

GRAPH = {"fontname": FONT, "fontsize": "11", "nodesep": "0.3", "ranksep": "0.35",
         "bgcolor": "white", "pad": "0.15", "newrank": "true"}
NODE = {"fontname": FONT, "fontsize": "11", "color": INK, "fontcolor": INK, "penwidth": "1.0",
        "margin": "0.08,0.04", "height": "0.3"}
EDGE = {"fontname": FONT, "fontsize": "9", "color": INK, "fontcolor": MUTED, "arrowsize": "0.6",
        "penwidth": "0.9"}


def family_color(family) -> str:
    return FAMILY_COLORS.get(family, UNKNOWN_FAMILY)


def op_node(family) -> dict:
    return {"shape": "ellipse", "style": "filled", "fillcolor": family_color(family)}


def tensor_node(kind) -> dict:
    """``kind``: ``param``, ``const``, ``number``, ``value`` (an op's result), ``released``
    (a result backward() freed), ``output``,
    ``seed`` (a starting gradient) or ``grad`` (a leaf's gradient accumulator)."""
    if kind == "param":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": PARAM_FILL, "penwidth": "1.3"}
    if kind == "const":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": CONST_FILL, "color": MUTED}
    if kind == "number":
        return {"shape": "box", "style": "dashed", "color": MUTED, "fontsize": "9",
                "height": "0.2", "width": "0.3", "margin": "0.04,0.02"}
    if kind == "released":   # a value backward() freed: only its place in the graph is left
        return {"shape": "box", "style": "rounded,dashed", "color": MUTED, "fontcolor": MUTED}
    if kind == "output":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": TENSOR_FILL, "penwidth": "2.0"}
    if kind == "seed":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffebee", "color": GRAD_INK}
    if kind == "grad":
        return {"shape": "box", "style": "rounded,filled", "fillcolor": PARAM_FILL, "color": GRAD_INK,
                "penwidth": "1.3"}
    return {"shape": "box", "style": "rounded,filled", "fillcolor": TENSOR_FILL}


def fill_of(attrs) -> str:
    return attrs.get("fillcolor", "white") if "filled" in attrs.get("style", "") else "white"


SUM_NODE = {"shape": "circle", "width": "0.22", "height": "0.22", "fixedsize": "true", "style": "filled",
            "fillcolor": "#ffebee", "color": GRAD_INK, "fontcolor": GRAD_INK, "fontsize": "10",
            "margin": "0"}
ELLIPSIS = {"shape": "plaintext", "fontcolor": MUTED, "fontsize": "10"}
GRAD_EDGE = {"color": GRAD_INK, "fontcolor": GRAD_INK}
ACTIVE_EDGE = {"color": GRAD_INK, "fontcolor": GRAD_INK, "penwidth": "2.2", "dir": "back"}

# What a graph pass did to a node (``viz.PassExplorer``): outline colour, pen and the word written
# under the node. "removed" nodes (only in the graph before) are greyed and dashed.
PASS_MARKS = {
    "removed": {"color": "#9e9e9e", "fontcolor": "#9e9e9e", "penwidth": "1.4", "dashed": True},
    "merged": {"color": "#6a1b9a", "fontcolor": "#6a1b9a", "penwidth": "2.4"},
    "folded": {"color": "#1565c0", "fontcolor": "#1565c0", "penwidth": "2.4"},
    "rewritten": {"color": "#e65100", "fontcolor": "#e65100", "penwidth": "2.4"},
    "fused": {"color": "#00897b", "fontcolor": "#00897b", "penwidth": "2.4"},
    "added": {"color": "#2e7d32", "fontcolor": "#2e7d32", "penwidth": "2.4"},
}


def pass_mark(kind) -> dict:
    """Node attributes that mark what a pass did (``PASS_MARKS``): merged into the node's own."""
    mark = dict(PASS_MARKS[kind])
    mark.pop("fontcolor")
    return mark


HEAT_COLORS = ("#fff7bc", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#993404")


def heat_color(fraction) -> str:
    """Pale yellow (0, no time) to deep red-brown (1, the slowest op): ``viz.draw(..., heat=)``."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    return HEAT_COLORS[min(int(fraction * len(HEAT_COLORS)), len(HEAT_COLORS) - 1)]


#: outlines of nodes by device, when a drawing mixes devices (a placed graph): the CPU grey, then
#: one colour per other device in the order they appear
DEVICE_COLORS = ("#546e7a", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f")


def device_color(device, devices) -> str:
    """The outline colour of ``device`` among ``devices`` (sorted, ``cpu`` first)."""
    return DEVICE_COLORS[devices.index(str(device)) % len(DEVICE_COLORS)]
