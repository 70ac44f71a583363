"""``export``: a labgrad graph, after the optimization passes, written as an ONNX model.

A define-and-run graph is already what ONNX stores: a list of nodes, each an op applied to
named values, plus the weights. So exporting is a walk over ``executable.graph`` in order,
writing each node as one ONNX node (or a few) according to the table in ``mapping.py``:

* a ``placeholder`` becomes a graph input; with ``dynamic_batch=True`` its axis 0 is the
  symbolic dimension ``"N"`` (the batch size is chosen when the model runs);
* a ``variable`` (a parameter, a running statistic) or ``constant`` becomes an initializer:
  the weights stored inside the file;
* an op node becomes ONNX node(s), named ``n<id>_<op>`` after the labgrad node and carrying
  the user's source line in its ``doc_string``;
* the sliding-window compositions that ``conv2d``, ``max_pool2d`` and ``avg_pool2d`` build
  (``unfold`` then a matrix product, or ``unfold`` then a max or a mean) are recognized and
  written as ONNX ``Conv``, ``MaxPool`` and ``AveragePool``.

The ``onnx`` package is needed (``pip install labgrad[onnx]``); it is imported only when a
function here runs, so ``import labgrad.onnx`` always works.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import format_location
from ..graph import Executable
from ..graph.jit_function import JitFunction, jit
from ..graph.passes import DEFAULT_PIPELINE, lower
from ..nn import Module
from .core import BATCH_DIM, Builder, OnnxExportError, V, require
from .mapping import IDENTITY_OPS, MAPPING, SUPPORTED_OPS

__all__ = ["DEFAULT_OPSET", "OnnxExportError", "export", "require"]

DEFAULT_OPSET = 17
#: the passes whose output the mapping table knows; when a later pass of the default pipeline
#: (a fusion that makes kernel ops) leaves an op the table does not know, ``export`` writes the
#: built graph run through these passes only
EXPORT_PASSES = ("dce", "fold", "simplify", "cse", "patterns")
MIN_OPSET = 13


# ---------------------------------------------------------------- what to export

def _as_tuple(example_inputs):
    if isinstance(example_inputs, (list, tuple)):
        return tuple(example_inputs)
    return (example_inputs,)


def trace(model, example_inputs):
    """The ``Executable`` for ``model`` on ``example_inputs``: an Executable as is; a
    ``JitFunction`` run once on them; an ``nn.Module`` traced with ``lg.jit`` in eval mode
    (its training flag is restored afterwards); any other callable traced with ``lg.jit``."""
    if isinstance(model, Executable):
        return model
    inputs = _as_tuple(example_inputs)
    if isinstance(model, JitFunction):
        model(*inputs)
        return model.executable
    if isinstance(model, Module):
        was_training = model.training
        model.eval()
        try:
            def forward(*xs):
                return model(*xs)
            forward.__name__ = type(model).__name__
            fn = jit(forward)
            fn(*inputs)
            return fn.executable
        finally:
            model.train(was_training)
    if callable(model):
        fn = jit(model)
        fn(*inputs)
        return fn.executable
    raise TypeError(f"lg.onnx.export: expected an nn.Module, a function, a jit function or an "
                    f"Executable, got {type(model).__name__}")


# ---------------------------------------------------------------- patterns: conv and pooling

def _find_patterns(graph):
    """``(plans, skip)``: nodes written as a Conv/MaxPool/AveragePool (node id -> plan) and
    the nodes those absorb (not written at all)."""
    users = graph.users()
    outputs = {o.id for o in graph.outputs if hasattr(o, "id")}

    def only_user(node, user):
        return [u.id for u in users[node.id]] == [user.id] and node.id not in outputs

    plans, skip = {}, set()
    for n in graph.nodes:
        op = n.op_name
        if op == "matmul":
            w2, cols = n.inputs
            if not (getattr(cols, "op_name", None) == "unfold" and only_user(cols, n)):
                continue
            x_in = cols.inputs[0]
            kh, kw = cols.attrs["kernel_size"]
            folded = (w2.kind == "constant" and w2.aval.ndim == 2 and x_in.aval.shape[1] is not None
                      and w2.aval.shape[1] == x_in.aval.shape[1] * kh * kw)   # reshape already folded
            if not folded and not (getattr(w2, "op_name", None) == "reshape" and w2.inputs[0].aval.ndim == 4):
                continue
            after = users[n.id]
            if len(after) != 1 or n.id in outputs or after[0].op_name != "reshape" or after[0].aval.ndim != 4:
                continue
            out = after[0]
            plan = {"kind": "conv", "x": x_in, "w": None if folded else w2.inputs[0], "bias": None,
                    "attrs": dict(cols.attrs)}
            if folded:
                arr = _tensor_array(w2)
                plan["w_array"] = arr.reshape(arr.shape[0], x_in.aval.shape[1], kh, kw)
            skip.update({n.id, cols.id, out.id})
            if only_user(w2, n):
                skip.add(w2.id)
            # a bias added right after (conv2d adds bias.reshape(C_out, 1, 1))
            nxt = users[out.id]
            c_out = w2.aval.shape[0]
            if len(nxt) == 1 and nxt[0].op_name == "add" and out.id not in outputs:
                add = nxt[0]
                other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
                if (getattr(other, "op_name", None) == "reshape" and other.aval.shape == (c_out, 1, 1)
                        and other.inputs[0].aval.shape == (c_out,)):
                    plan["bias"] = other.inputs[0]
                    if only_user(other, add):
                        skip.add(other.id)
                    plans[add.id] = plan
                    continue
            skip.discard(out.id)
            plans[out.id] = plan
        elif op in ("max", "mean") and tuple(n.attrs.get("axis") or ()) == (2,) and not n.attrs.get("keepdims"):
            r = n.inputs[0]
            if not (r.op_name == "reshape" and r.aval.ndim == 5 and only_user(r, n)):
                continue
            u = r.inputs[0]
            if not (u.op_name == "unfold" and only_user(u, r)):
                continue
            kh, kw = u.attrs["kernel_size"]
            if r.aval.shape[2] != kh * kw:
                continue
            plans[n.id] = {"kind": "maxpool" if op == "max" else "avgpool", "x": u.inputs[0],
                           "attrs": dict(u.attrs)}
            skip.update({r.id, u.id})
    return plans, skip


def _write_pattern(b, plan, env):
    x = env[plan["x"].id]
    a = plan["attrs"]
    (ph, pw) = a["padding"]
    common = {"kernel_shape": list(a["kernel_size"]), "strides": list(a["stride"]), "pads": [ph, pw, ph, pw]}
    dyn = {0} if 0 in x.dyn else set()
    if plan["kind"] == "conv":
        w = b.const(plan["w_array"], name="conv_weight") if plan["w"] is None else env[plan["w"].id].name
        ins = [x.name, w] + ([env[plan["bias"].id].name] if plan["bias"] is not None else [])
        name = b.add("Conv", ins, dilations=list(a["dilation"]), **common)
    elif plan["kind"] == "maxpool":
        name = b.add("MaxPool", [x.name], dilations=list(a["dilation"]), **common)
    else:
        name = b.add("AveragePool", [x.name], count_include_pad=1, **common)
    return name, dyn


# ---------------------------------------------------------------- export

def _check_graph(graph):
    if graph.assigns:
        node = graph.assigns[0]
        raise OnnxExportError(
            f"lg.onnx.export: the graph writes state ({len(graph.assigns)} update(s), e.g. of "
            f"{node.inputs[0].name or 'a variable'}){format_location(node.location)}\n  An exported "
            f"model only computes outputs: call model.eval() (BatchNorm then uses its running "
            f"statistics) or export a function without lg.assign updates.")


def _tensor_array(node):
    if node.kind == "variable":
        t = node.tensor
        if t is None:
            raise OnnxExportError(f"lg.onnx.export: the variable {node.name!r} no longer exists")
        return np.asarray(t.numpy())
    v = node.value
    return v.get() if hasattr(v, "get") else np.asarray(v)


def export(model, example_inputs=None, path=None, *, dynamic_batch=True, opset=DEFAULT_OPSET,
           input_names=None, output_names=None, check=True):
    """Write ``model`` as an ONNX file at ``path`` (and return the ``onnx.ModelProto``).

    ``model`` is an ``nn.Module`` (traced with ``lg.jit`` in eval mode on ``example_inputs``),
    a function (traced with ``lg.jit``), a ``lg.jit`` function or an ``Executable`` (from
    ``lg.compile``; ``example_inputs`` may then be ``None``). What is written is the graph
    *after* the default optimization passes, ``executable.graph``.

    ``dynamic_batch=True`` makes axis 0 of every input (and everything computed from it) the
    symbolic size ``"N"``, so the file runs on any batch size; placeholders declared with
    ``None`` sizes are symbolic in any case. ``opset`` is the ONNX operator set version
    (13 or later). The model is checked with ``onnx.checker.check_model`` (``check=False``
    skips it). An op that has no ONNX mapping raises ``OnnxExportError`` naming the op and the
    line that created its node; ``lg.onnx.SUPPORTED_OPS`` lists those that have one.

    >>> model = nn.Sequential(nn.Linear(64, 10)); model.eval()
    >>> lg.onnx.export(model, lg.randn(2, 64), "mlp.onnx")
    """
    onnx = require("onnx")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"lg.onnx.export: opset must be an int >= {MIN_OPSET}, got {opset!r}")
    if input_names is None and isinstance(model, Module):
        n_in = len(_as_tuple(example_inputs))
        input_names = ["input"] if n_in == 1 else [f"input_{i}" for i in range(n_in)]
    executable = trace(model, example_inputs)
    graph = executable.graph
    _check_graph(graph)
    try:
        m = _write(graph, opset, dynamic_batch, input_names, output_names)
    except OnnxExportError as e:
        # an op that a pass made (a fused kernel, say) and the table does not know: export the
        # graph as built, run through the graph-level passes only
        built = {n.op_name for n in executable.built_graph.nodes}
        if getattr(e, "op_name", None) is None or e.op_name in built:
            raise
        safe = [p for p in DEFAULT_PIPELINE if p in EXPORT_PASSES]
        graph, _ = lower(executable.built_graph, safe)
        m = _write(graph, opset, dynamic_batch, input_names, output_names)
    if check:
        onnx.checker.check_model(m, full_check=True)
    if path is not None:
        path = os.fspath(path)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(m.SerializeToString())
        os.replace(tmp, path)
    return m


def _max_ir_version(opset):
    """An IR version that onnxruntime builds of the same era accept for ``opset``."""
    table = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
    return table.get(opset, 10)


def _write(graph, opset, dynamic_batch, input_names, output_names):
    """The ONNX model for ``graph`` (see ``export``)."""
    onnx = require("onnx")
    b = Builder(opset)
    plans, skip = _find_patterns(graph)
    env = {}
    graph_inputs = []
    helper = onnx.helper

    def value_info(v):
        dims = [BATCH_DIM if (i in v.dyn and i == 0) else (f"{v.name}_dim{i}" if (i in v.dyn or d is None) else int(d))
                for i, d in enumerate(v.shape)]
        return helper.make_tensor_value_info(v.name, helper.np_dtype_to_tensor_dtype(v.dtype), dims)

    in_names = list(input_names) if input_names is not None else None
    for i, node in enumerate(graph.nodes):
        b.current = node
        kind = node.kind
        if node.id in skip:
            continue
        if kind == "placeholder":
            want = in_names[len(graph_inputs)] if in_names and len(graph_inputs) < len(in_names) else node.name
            name = b.fresh(want or f"input_{len(graph_inputs)}")
            dyn = {a for a, d in enumerate(node.aval.shape) if d is None}
            if dynamic_batch and node.aval.ndim >= 1:
                dyn.add(0)
            v = V(name, node.aval.shape, node.aval.dtype, dyn)
            env[node.id] = v
            graph_inputs.append(value_info(v))
        elif kind in ("variable", "constant"):
            arr = _tensor_array(node)
            name = b.const(arr, name=node.name or kind)
            env[node.id] = V(name, arr.shape, arr.dtype)
        elif node.id in plans:
            name, dyn = _write_pattern(b, plans[node.id], env)
            env[node.id] = V(name, node.aval.shape, node.aval.dtype, dyn)
        elif kind == "stop_gradient" or node.op_name in IDENTITY_OPS:
            env[node.id] = env[node.inputs[0].id]
        elif kind == "op" and node.op_name in MAPPING:
            ins = [env[x.id] if hasattr(x, "aval") else x for x in node.inputs]
            try:
                name, dyn = MAPPING[node.op_name](b, node, ins)
            except OnnxExportError as e:
                raise OnnxExportError(f"{e}{format_location(node.location)}") from None
            env[node.id] = V(name, node.aval.shape, node.aval.dtype, dyn)
        else:
            what = "unfold (sliding windows)" if node.op_name == "unfold" else repr(node.op_name)
            extra = ("\n  unfold is exported only inside the conv2d / max_pool2d / avg_pool2d "
                     "patterns (unfold then matmul, or unfold then max/mean over the window axis)."
                     if node.op_name == "unfold" else "")
            err = OnnxExportError(
                f"lg.onnx.export: the op {what} (node %{node.id}) has no ONNX mapping"
                f"{format_location(node.location)}{extra}\n  Supported ops: {', '.join(SUPPORTED_OPS)}.")
            err.op_name = node.op_name
            raise err
    b.current = None
    # outputs: rename the producing node's output when possible, else an Identity
    out_names = list(output_names) if output_names is not None else None
    outputs, produced = [], {o for n in b.nodes for o in n.output}
    used_as_output = set()
    graph_input_names = {vi.name for vi in graph_inputs}
    for i, o in enumerate(graph.outputs):
        if not hasattr(o, "id"):
            raise OnnxExportError("lg.onnx.export: an output of the graph is a Python number, not a value")
        v = env[o.id]
        want = out_names[i] if out_names and i < len(out_names) else ("output" if len(graph.outputs) == 1 else f"output_{i}")
        want = b.fresh(want)
        if v.name in produced and v.name not in used_as_output and v.name not in graph_input_names:
            for n in b.nodes:
                for k, name in enumerate(n.output):
                    if name == v.name:
                        n.output[k] = want
                for k, name in enumerate(n.input):
                    if name == v.name:
                        n.input[k] = want
            for vv in env.values():
                if vv.name == v.name:
                    vv.name = want
            used_as_output.add(want)
            v = V(want, v.shape, v.dtype, v.dyn)
        else:
            b.add("Identity", [v.name], out=want)
            v = V(want, v.shape, v.dtype, v.dyn)
        outputs.append(value_info(v))
    onnx_graph = helper.make_graph(b.nodes, graph.name or "labgrad", graph_inputs, outputs,
                                   initializer=b.initializers,
                                   doc_string="exported by labgrad from executable.graph (after the passes)")
    version = getattr(sys.modules.get("labgrad"), "__version__", "")
    m = helper.make_model(onnx_graph, producer_name="labgrad", producer_version=str(version),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, _max_ir_version(opset))
    return m
