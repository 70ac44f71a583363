"""Post-training int8 quantization of an exported model, written as QDQ ONNX.

An int8 number ``q`` stands for the real number ``scale * (q - zero_point)``. Quantizing a
model means choosing a ``scale`` (and ``zero_point``) for each tensor, then storing or computing
with the small integers. Here, for a float ONNX model from ``export``:

* **weights** of every ``MatMul`` and ``Conv`` are stored as int8, *per output channel*,
  symmetric (``zero_point = 0``, ``scale = max|w| / 127`` for each column of a MatMul weight,
  each filter of a Conv): a quarter of the bytes. A ``DequantizeLinear`` node turns them back
  into float32 when the model runs.
* **activations** entering and leaving those nodes get a ``QuantizeLinear`` ->
  ``DequantizeLinear`` pair (uint8, asymmetric: ``scale = (hi - lo) / 255``), with ``lo``/``hi``
  measured by running the float model on a few *calibration* batches (``calibrate``: the
  minimum and maximum, or percentiles, which ignore rare outliers).
* a Conv **bias** is stored as int32 with ``scale = input scale * weight scale``, the form
  integer kernels add directly to their int32 accumulators.

This is the "QDQ" format: the graph still says float32 everywhere, with explicit rounding
points, so any runtime can run it, and onnxruntime fuses each ``DequantizeLinear -> Conv ->
QuantizeLinear`` group into an integer kernel (``QLinearConv``) when it has one.
"""
from __future__ import annotations

import copy
import os

import numpy as np

from .core import require
from .summary import load, session

__all__ = ["QuantizeReport", "calibrate", "dequantize", "quantize", "quantize_weight"]

TARGET_OPS = ("MatMul", "Conv")


def quantize_weight(w, axis):
    """``(q, scale)``: ``w`` as int8, symmetric, one scale per index of ``axis``:
    ``w ~= q * scale`` (broadcast along ``axis``) with ``q`` in [-127, 127]."""
    w = np.asarray(w, dtype=np.float32)
    other = tuple(a for a in range(w.ndim) if a != axis)
    m = np.abs(w).max(axis=other) if other else np.abs(w)
    scale = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def activation_params(lo, hi):
    """``(scale, zero_point)`` for uint8 covering ``[lo, hi]`` (always including 0, so that
    zero padding and ReLU's zeros are exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zp)


def dequantize(q, scale, zero_point=0):
    """The real numbers int8/uint8 ``q`` stands for: ``scale * (q - zero_point)``."""
    return (np.asarray(q, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)


def _targets(graph):
    """Names of the activations to calibrate: inputs and outputs of MatMul/Conv that are not
    initializers."""
    inits = {t.name for t in graph.initializer}
    names = []
    for n in graph.node:
        if n.op_type in TARGET_OPS:
            x = n.input[0]
            if x not in inits and x not in names:
                names.append(x)
            if n.output[0] not in names:
                names.append(n.output[0])
    return names


def calibrate(model, batches, method="minmax", percentile=99.99):
    """Run the float ``model`` (path or ModelProto) in onnxruntime on ``batches`` (an iterable
    of input arrays, or tuples of them for several inputs) and return ``{activation name:
    (lo, hi)}`` for every input and output of a MatMul or Conv.

    ``method="minmax"``: the smallest and largest value seen; ``"percentile"``: the
    ``100 - percentile`` and ``percentile`` percentiles over all batches (outliers clipped)."""
    onnx = require("onnx")
    if method not in ("minmax", "percentile"):
        raise ValueError(f"calibrate: method must be 'minmax' or 'percentile', got {method!r}")
    m = copy.deepcopy(load(model))
    names = _targets(m.graph)
    have = {o.name for o in m.graph.output}
    for name in names:
        if name not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = session(m)
    in_names = [i.name for i in sess.get_inputs()]
    seen = {n: [] for n in names}
    count = 0
    for batch in batches:
        batch = batch if isinstance(batch, (tuple, list)) else (batch,)
        feeds = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in zip(in_names, batch)}
        outs = sess.run(names, feeds)
        for n, v in zip(names, outs):
            seen[n].append(v.ravel() if method == "percentile" else np.array([v.min(), v.max()]))
        count += 1
    if count == 0:
        raise ValueError("calibrate: no calibration batches were given")
    ranges = {}
    for n, parts in seen.items():
        allv = np.concatenate(parts)
        if method == "minmax":
            ranges[n] = (float(allv.min()), float(allv.max()))
        else:
            ranges[n] = (float(np.percentile(allv, 100 - percentile)), float(np.percentile(allv, percentile)))
    return ranges


class QuantizeReport:
    """What ``quantize`` did: ``weights`` (name -> (shape, axis, max abs rounding error)),
    ``activations`` (name -> (scale, zero_point)), bytes of float and int8 weights."""

    def __init__(self):
        self.weights, self.activations = {}, {}
        self.float_weight_bytes = self.int8_weight_bytes = 0

    def __repr__(self):
        return (f"<QuantizeReport: {len(self.weights)} weight tensors int8 per channel "
                f"({self.float_weight_bytes:,} -> {self.int8_weight_bytes:,} bytes), "
                f"{len(self.activations)} activations with QDQ>")


def quantize(model, calibration, path=None, *, per_channel=True, method="minmax", percentile=99.99,
             activations=True, strip_doc=True, compact=True, report=None):
    """An int8 QDQ copy of the float ONNX ``model`` (path or ModelProto); written to ``path``
    if given; returns the ``onnx.ModelProto``.

    ``calibration`` is either the ranges ``calibrate`` returns, or batches of inputs to
    calibrate on now (with ``method``/``percentile``). ``per_channel=False`` uses one scale for
    a whole weight tensor. ``activations=False`` quantizes only the weights (smaller file, float
    arithmetic). ``strip_doc`` drops the per-node source notes and ``compact`` renames inner
    values to short names and drops node names: in a small model they are a noticeable part of
    the file (the inputs, outputs and the graph's meaning are unchanged). Pass a ``QuantizeReport()`` as ``report`` to learn what was done.
    """
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    float_model = load(model)
    if activations:
        ranges = calibration if isinstance(calibration, dict) else calibrate(float_model, calibration, method, percentile)
    else:
        ranges = {}
    m = copy.deepcopy(float_model)
    g = m.graph
    report = report if report is not None else QuantizeReport()
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    new_nodes, new_inits, drop = [], [], set()
    act_qdq = {}    # activation name -> dequantized name
    w_scales = {}   # weight name -> per-channel scales

    def qdq_activation(name):
        if name in act_qdq:
            return act_qdq[name]
        if name not in ranges:
            return name
        scale, zp = activation_params(*ranges[name])
        s = f"{name}_scale"
        z = f"{name}_zero_point"
        new_inits.append(numpy_helper.from_array(np.asarray(scale, np.float32), s))
        new_inits.append(numpy_helper.from_array(np.asarray(zp, np.uint8), z))
        q = helper.make_node("QuantizeLinear", [name, s, z], [f"{name}_quantized"], name=f"{name}_Q")
        dq = helper.make_node("DequantizeLinear", [f"{name}_quantized", s, z], [f"{name}_dequantized"],
                              name=f"{name}_DQ")
        report.activations[name] = (float(scale), int(zp))
        act_qdq[name] = (q, dq, f"{name}_dequantized")
        return act_qdq[name]

    def quantize_init(name, axis):
        if name in w_scales:
            return w_scales[name]
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        if per_channel:
            q, scale = quantize_weight(w, axis)
        else:
            q, scale = quantize_weight(w.reshape(1, -1), 0)
            q, scale = q.reshape(w.shape), scale.reshape(())
        new_inits.append(numpy_helper.from_array(q, f"{name}_int8"))
        new_inits.append(numpy_helper.from_array(scale, f"{name}_scale"))
        attrs = {"axis": axis} if per_channel else {}
        dq = helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [name],
                              name=f"{name}_DQ", **attrs)
        new_nodes.append(dq)
        drop.add(name)
        err = np.abs(q.astype(np.float32) * (scale.reshape([-1 if a == axis else 1 for a in range(w.ndim)])
                                             if per_channel else scale) - w).max()
        report.weights[name] = (tuple(w.shape), axis if per_channel else None, float(err))
        report.float_weight_bytes += w.nbytes
        report.int8_weight_bytes += q.nbytes + scale.nbytes
        w_scales[name] = scale
        return scale

    body = []
    for n in g.node:
        if n.op_type in TARGET_OPS and len(n.input) >= 2 and n.input[1] in inits:
            w_name = n.input[1]
            w = inits[w_name]
            axis = 0 if n.op_type == "Conv" else len(w.dims) - 1
            if len(w.dims) >= 2:
                quantize_init(w_name, axis)
            if activations:
                x = n.input[0]
                hit = qdq_activation(x) if x not in inits else x
                if isinstance(hit, tuple):
                    q, dq, deq = hit
                    if q not in body:
                        body.extend([q, dq])
                    n.input[0] = deq
                # int32 bias for Conv: scale = input scale * weight scale
                if n.op_type == "Conv" and len(n.input) == 3 and n.input[2] in inits and x in report.activations \
                        and len(w.dims) >= 2 and per_channel:
                    b_name = n.input[2]
                    bias = numpy_helper.to_array(inits[b_name]).astype(np.float64)
                    bscale = (np.float64(report.activations[x][0]) * w_scales[w_name].astype(np.float64))
                    qb = np.round(bias / bscale).astype(np.int32)
                    new_inits.append(numpy_helper.from_array(qb, f"{b_name}_int32"))
                    new_inits.append(numpy_helper.from_array(bscale.astype(np.float32), f"{b_name}_scale"))
                    body.append(helper.make_node("DequantizeLinear", [f"{b_name}_int32", f"{b_name}_scale"],
                                                 [f"{b_name}_dequantized"], name=f"{b_name}_DQ", axis=0))
                    n.input[2] = f"{b_name}_dequantized"
                    if all(c is n for c in consumers.get(b_name, [])):
                        drop.add(b_name)
            body.append(n)
            outputs = {o.name for o in g.output}
            if activations and n.output[0] not in outputs:   # a model's outputs stay float
                y = n.output[0]
                hit = qdq_activation(y)
                if isinstance(hit, tuple):
                    q, dq, deq = hit
                    body.extend([q, dq])
                    # the users of y read the dequantized value
                    for user in consumers.get(y, []):
                        for k, name in enumerate(user.input):
                            if name == y:
                                user.input[k] = deq
        else:
            body.append(n)
    if strip_doc:
        for n in body:
            n.doc_string = ""
        g.doc_string = ""
    del g.node[:]
    g.node.extend(new_nodes + body)
    keep = [t for t in g.initializer if t.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    if m.opset_import[0].version < 13:
        raise ValueError("quantize: the model's opset must be 13 or later (per-channel DequantizeLinear)")
    m.graph.name = g.name + "_int8"
    if compact:
        _compact(g)
    onnx.checker.check_model(m)
    if path is not None:
        path = os.fspath(path)
        with open(path + ".tmp", "wb") as f:
            f.write(m.SerializeToString())
        os.replace(path + ".tmp", path)
    return m


def _short(i):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        i, r = divmod(i, 36)
        out = digits[r] + out
        if i == 0:
            return "t" + out


def _compact(g):
    """Rename every value but the graph's inputs and outputs to ``t0, t1, ...`` and drop node
    names (both optional in ONNX)."""
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    names, counter = {}, iter(range(10 ** 9))

    def new(name):
        if not name or name in keep:
            return name
        if name not in names:
            names[name] = _short(next(counter))
        return names[name]

    for t in g.initializer:
        t.name = new(t.name)
    for n in g.node:
        n.name = ""
        for k, x in enumerate(n.input):
            n.input[k] = new(x)
        for k, y in enumerate(n.output):
            n.output[k] = new(y)
    del g.value_info[:]
