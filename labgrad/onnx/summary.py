"""Reading an ONNX model back: run it in onnxruntime, print it, draw it.

``summary`` is a text listing (one line per node, like ``print(graph)`` for a labgrad graph);
``to_graph`` returns plain data (nodes and edges) that a drawing library can lay out, and
``to_dot`` the Graphviz DOT source for it, so ``viz`` (or anything else) can show an exported
file without knowing ONNX.
"""
from __future__ import annotations

import os

import numpy as np

from .core import require

__all__ = ["load", "run", "session", "summary", "to_dot", "to_graph"]


def load(model):
    """An ``onnx.ModelProto`` from a path, bytes, or a ModelProto (returned as is)."""
    onnx = require("onnx")
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    return onnx.load(os.fspath(model))


def session(model, threads=1):
    """An onnxruntime ``InferenceSession`` on the CPU (``threads`` intra-op threads)."""
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    onnx = require("onnx")
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    elif not isinstance(model, (bytes, bytearray)):
        model = os.fspath(model)
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _array(x):
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


def run(model, *inputs, sess=None):
    """Run ``model`` (path, bytes, ModelProto) in onnxruntime on ``inputs`` (Tensors or arrays,
    in the order of the graph's inputs); a list of NumPy arrays, one per output."""
    sess = sess or session(model)
    names = [i.name for i in sess.get_inputs()]
    if len(inputs) != len(names):
        raise TypeError(f"lg.onnx.run: the model has {len(names)} input(s) {names}, got {len(inputs)}")
    return sess.run(None, {n: _array(x) for n, x in zip(names, inputs)})


def _shape(vi):
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        dims.append(d.dim_param if d.HasField("dim_param") else str(d.dim_value))
    return "[" + ",".join(dims) + "]"


def _dtype(vi):
    onnx = require("onnx")
    return onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name


def to_graph(model):
    """The model as plain data: ``{"name", "inputs", "outputs", "initializers", "nodes",
    "edges", "opset"}``. ``inputs``/``outputs``: ``{"name", "dtype", "shape"}``;
    ``initializers``: ``{"name", "dtype", "shape", "bytes"}``; ``nodes``: ``{"name",
    "op_type", "inputs", "outputs", "attrs", "doc"}``; ``edges``: ``(from, to, value)`` where
    ``from``/``to`` are node names, or ``"input:<name>"``/``"output:<name>"``/
    ``"init:<name>"``."""
    onnx = require("onnx")
    m = load(model)
    g = m.graph
    producer = {}
    for vi in g.input:
        producer[vi.name] = f"input:{vi.name}"
    inits = []
    for t in g.initializer:
        producer[t.name] = f"init:{t.name}"
        arr = onnx.numpy_helper.to_array(t)
        inits.append({"name": t.name, "dtype": arr.dtype.name, "shape": tuple(arr.shape), "bytes": arr.nbytes})
    nodes, edges = [], []
    for n in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
        nodes.append({"name": n.name, "op_type": n.op_type, "inputs": list(n.input),
                      "outputs": list(n.output), "attrs": attrs, "doc": n.doc_string})
        for x in n.input:
            if x and x in producer:
                edges.append((producer[x], n.name, x))
        for y in n.output:
            producer[y] = n.name
    for vi in g.output:
        if vi.name in producer:
            edges.append((producer[vi.name], f"output:{vi.name}", vi.name))
    return {"name": g.name,
            "opset": max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "inputs": [{"name": v.name, "dtype": _dtype(v), "shape": _shape(v)} for v in g.input],
            "outputs": [{"name": v.name, "dtype": _dtype(v), "shape": _shape(v)} for v in g.output],
            "initializers": inits, "nodes": nodes, "edges": edges}


def _fmt_attr(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_fmt_attr(x) for x in v) + "]"
    if hasattr(v, "dims"):          # a TensorProto attribute
        return "tensor"
    return str(v)


def summary(model, show_doc=True):
    """A text listing of the model: inputs, initializers (with sizes), one line per node
    (op, inputs -> outputs, attributes, and the labgrad node and source line it came from)."""
    info = to_graph(model)
    weights = sum(i["bytes"] for i in info["initializers"])
    lines = [f"ONNX graph {info['name']} (opset {info['opset']}): {len(info['nodes'])} nodes, "
             + f"{len(info['initializers'])} initializers, {weights:,} bytes of weights"]
    for v in info["inputs"]:
        lines.append(f"  input  {v['name']}: {v['dtype']}{v['shape']}")
    for t in info["initializers"]:
        if t["bytes"] > 64:
            shape = "[" + ",".join(map(str, t["shape"])) + "]"
            lines.append(f"  weight {t['name']}: {t['dtype']}{shape} ({t['bytes']:,} bytes)")
    small = sum(1 for t in info["initializers"] if t["bytes"] <= 64)
    if small:
        lines.append(f"  ({small} small constants)")
    for n in info["nodes"]:
        attrs = ", ".join(f"{k}={_fmt_attr(v)}" for k, v in n["attrs"].items())
        text = f"  {', '.join(n['outputs'])} = {n['op_type']}({', '.join(n['inputs'])})"
        if attrs:
            text += f" {{{attrs}}}"
        if show_doc and n["doc"]:
            text += f"   # {n['doc']}"
        lines.append(text)
    for v in info["outputs"]:
        lines.append(f"  output {v['name']}: {v['dtype']}{v['shape']}")
    return "\n".join(lines)


def _q(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(model, show_weights=False):
    """Graphviz DOT source for the model: a box per node (op type, and its labgrad origin),
    an oval per input and output; weights are drawn only with ``show_weights=True``."""
    info = to_graph(model)
    out = [f"digraph {_q(info['name'])} {{", '  rankdir=TB;', '  node [fontname="Helvetica", fontsize=10];']
    for v in info["inputs"]:
        out.append(f"  {_q('input:' + v['name'])} [shape=oval, label={_q(v['name'] + ' ' + v['shape'])}];")
    for v in info["outputs"]:
        out.append(f"  {_q('output:' + v['name'])} [shape=oval, label={_q(v['name'] + ' ' + v['shape'])}];")
    if show_weights:
        for t in info["initializers"]:
            out.append(f"  {_q('init:' + t['name'])} [shape=note, label={_q(t['name'])}];")
    for n in info["nodes"]:
        label = n["op_type"]
        if "QuantizeLinear" in label:
            color = ', style=filled, fillcolor="#fde2c4"'
        else:
            color = ', style=filled, fillcolor="#dbe8f7"'
        out.append(f"  {_q(n['name'])} [shape=box{color}, label={_q(label)}];")
    for a, b, value in info["edges"]:
        if a.startswith("init:") and not show_weights:
            continue
        out.append(f"  {_q(a)} -> {_q(b)};")
    out.append("}")
    return "\n".join(out)
