"""``draw_onnx``: an exported ONNX model drawn like labgrad's own graphs.

>>> import labgrad.onnx
>>> lg.onnx.export(model, x, "model.onnx")
>>> viz.draw_onnx("model.onnx")                  # ops as ovals, coloured by family
>>> viz.draw_onnx("model.int8.onnx", show_weights=True)   # int8 weights, QDQ pairs in amber

The model is read with ``lg.onnx.to_graph`` (plain data: nodes, edges, initializers), so this
module knows nothing of protobuf; the picture is built with the same ``Figure`` and colours as
``viz.draw`` and rendered by ``viz.render``. Under each op, the labgrad node it was exported from
(``%8 add``) and the module it belongs to (``0:Conv2d``), read from the node's doc string; the
source file and line are left out, so the drawing is the same on every machine.
"""
from __future__ import annotations

import re

from . import style
from .figure import Figure
from .labels import escape
from .view import GraphView

__all__ = ["ONNX_FAMILIES", "QUANT_FILL", "draw_onnx", "onnx_family"]

#: ONNX op types -> the labgrad op family whose colour they get (``style.FAMILY_COLORS``)
ONNX_FAMILIES = {
    "linalg": ("MatMul", "Gemm", "Conv", "ConvTranspose", "QLinearMatMul", "QLinearConv", "MatMulInteger",
               "ConvInteger"),
    "reduce": ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceLogSumExp", "MaxPool",
               "AveragePool", "GlobalAveragePool", "Softmax", "LogSoftmax"),
    "shape": ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Expand", "Slice", "Gather", "Concat",
              "Pad", "Flatten", "Shape"),
    "compare": ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not", "Where"),
    "creation": ("OneHot", "ConstantOfShape", "Constant"),
}
_FAMILY_OF = {op: fam for fam, ops in ONNX_FAMILIES.items() for op in ops}
QUANT_FILL = "#ffd59e"      # QuantizeLinear / DequantizeLinear: the rounding points of int8
_ORIGIN = re.compile(r"^labgrad (%\d+ \S+)(?: at .*?)?(?: in (.+))?$")


def onnx_family(op_type) -> str:
    """The labgrad op family an ONNX op type is coloured as (``"elementwise"`` by default)."""
    return _FAMILY_OF.get(op_type, "elementwise")


def _origin(doc):
    """``("%8 add", "0:Conv2d")`` from the exporter's doc string, without the source line."""
    m = _ORIGIN.match(doc or "")
    if not m:
        return None, None
    scope = m.group(2)
    if scope:
        scope = scope.split("/", 1)[-1] if "/" in scope else scope
    return m.group(1), scope


def _small(text, size=9, color=style.MUTED):
    return f'<font point-size="{size}" color="{color}">{escape(text)}</font>'


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _shape_text(t):
    return f"{t['dtype']}[{','.join(map(str, t['shape']))}]"


def draw_onnx(model, *, show_weights=False, origin=True, rankdir="TB") -> GraphView:
    """Draw an ONNX model (a path, bytes or an ``onnx.ModelProto``).

    Graph inputs and outputs are boxes with their dtype and shape (``N``: the batch size, chosen
    at run time); each node is an oval with its op type, coloured like labgrad's op families
    (``QuantizeLinear``/``DequantizeLinear`` in amber). ``show_weights=True`` adds the
    initializers as boxes with dtype and shape (int8 weights show as ``int8[...]``); small
    constants (16 numbers or fewer: scales, zero points, shapes) are left out. ``origin=False`` leaves out the labgrad node and
    module under each op."""
    from labgrad.onnx import to_graph

    info = to_graph(model)
    fig = Figure(rankdir=rankdir, name="onnx")
    ids = {}
    for v in info["inputs"]:
        ids[f"input:{v['name']}"] = fig.add_node(
            f"<b>{escape(v['name'])}</b><br/>{_small(v['dtype'] + v['shape'])}", style.tensor_node("value"))
    inits = {t["name"]: t for t in info["initializers"]}
    if show_weights:
        for t in info["initializers"]:
            if _size(t["shape"]) > 16:
                kind = "param" if t["dtype"] == "float32" else "const"
                attrs = style.tensor_node(kind)
                if t["dtype"].startswith(("int", "uint")):
                    attrs = dict(attrs, fillcolor=QUANT_FILL, style="rounded,filled")
                ids[f"init:{t['name']}"] = fig.add_node(
                    f"{escape(t['name'])}<br/>{_small(_shape_text(t))}", attrs)
    for k, n in enumerate(info["nodes"]):
        label = f"<b>{escape(n['op_type'])}</b>"
        if origin:
            where, scope = _origin(n["doc"])
            if where:
                label += "<br/>" + _small(where + (f", {scope}" if scope else ""), 8)
        if n["op_type"] in ("QuantizeLinear", "DequantizeLinear"):
            attrs = {"shape": "ellipse", "style": "filled", "fillcolor": QUANT_FILL}
        else:
            attrs = style.op_node(onnx_family(n["op_type"]))
        ids[n["name"] or f"#node{k}"] = fig.add_node(label, attrs)
    for v in info["outputs"]:
        ids[f"output:{v['name']}"] = fig.add_node(
            f"<b>{escape(v['name'])}</b><br/>{_small(v['dtype'] + v['shape'])}", style.tensor_node("output"))
    # to_graph names edges by node name; unnamed nodes (quantize's compact form) are matched by order
    by_output = {}
    for k, n in enumerate(info["nodes"]):
        for y in n["outputs"]:
            by_output[y] = n["name"] or f"#node{k}"
    for k, n in enumerate(info["nodes"]):
        head = ids[n["name"] or f"#node{k}"]
        for x in n["inputs"]:
            if not x:
                continue
            if x in by_output:
                fig.add_edge(ids[by_output[x]], head)
            elif f"input:{x}" in ids:
                fig.add_edge(ids[f"input:{x}"], head)
            elif x in inits and f"init:{x}" in ids:
                fig.add_edge(ids[f"init:{x}"], head, {"color": style.MUTED})
    for v in info["outputs"]:
        src = by_output.get(v["name"])
        if src is not None:
            fig.add_edge(ids[src], ids[f"output:{v['name']}"])
        elif f"input:{v['name']}" in ids:
            fig.add_edge(ids[f"input:{v['name']}"], ids[f"output:{v['name']}"])
    return fig.view()
