"""The mapping table: which ONNX node(s) each labgrad op becomes.

Each entry is a function ``write(b, node, ins) -> (name, dyn)``: ``b`` is the ``Builder``,
``node`` the labgrad graph node (its ``attrs`` and ``aval``), ``ins`` its inputs as exported
values (``V``) or Python numbers; it returns the ONNX name of the result and the set of its
axes whose size is known only at run time (the batch axis, when ``dynamic_batch``).

=====================================  ==================================================
labgrad op                             ONNX
=====================================  ==================================================
add sub mul div pow                    Add Sub Mul Div Pow
maximum minimum                        Max Min
neg exp log sqrt abs sign sin cos      Neg Exp Log Sqrt Abs Sign Sin Cos
tanh sigmoid relu                      Tanh Sigmoid Relu
leaky_relu                             LeakyRelu(alpha)
gelu (tanh approximation)              Gelu(approximate="tanh") from opset 20, else the formula
                                       from Mul, Add, Tanh
where clip cast                        Where, Clip(x, lo, hi), Cast(to)
eq ne lt le gt ge                      Equal, Not(Equal), Less, LessOrEqual, Greater,
                                       GreaterOrEqual
logical_and logical_or logical_not     And Or Not
matmul                                 MatMul
linear (fused: x @ w + b, relu)        MatMul, Add (, Relu)
fma (fused: a * b + c)                 Mul, Add
transpose reshape                      Transpose(perm), Reshape (batch axis -> 0 or -1)
squeeze unsqueeze                      Squeeze, Unsqueeze (axes as an input)
broadcast_to broadcast_like            Expand (a batch axis keeps size 1: Expand broadcasts)
sum mean max min logsumexp             ReduceSum ReduceMean ReduceMax ReduceMin
                                       ReduceLogSumExp (keepdims)
var                                    ReduceMean, Sub, Mul, ReduceMean (times n/(n-ddof))
softmax log_softmax                    Softmax LogSoftmax (axis)
getitem, basic index                   Slice, then Squeeze (ints), Unsqueeze (None)
getitem, one integer array             Gather (embeddings)
concatenate stack                      Concat; Unsqueeze each, then Concat
pad                                    Pad (constant value)
one_hot                                OneHot, Cast
full_like                              Expand(value, Shape(x))
stop_gradient to_device                nothing: the same value
unfold -> matmul -> reshape (+ bias)   Conv (with bias)          (conv2d)
unfold -> reshape -> max over windows  MaxPool                   (max_pool2d)
unfold -> reshape -> mean over windows AveragePool               (avg_pool2d)
=====================================  ==================================================

BatchNorm in eval mode is ``(x - running_mean) / sqrt(running_var + eps) * weight + bias``:
elementwise ops on initializers, written as they are (onnxruntime folds them at load).

Not mapped (they raise ``OnnxExportError`` naming the op and the user's line): training-only
ops (``cross_entropy``, the ``*_grad`` ops, ``setitem``, ``fold``), ``unfold`` outside the
conv/pool patterns, and control flow (``cond``, ``while``).
"""
from __future__ import annotations

import numpy as np

from ..ops.shape import INDEX_INPUT
from .core import OnnxExportError, V

INT_MAX = np.iinfo(np.int64).max
INT_MIN = np.iinfo(np.int64).min

MAPPING = {}
IDENTITY_OPS = ("to_device", "stop_gradient")


def _reg(*names):
    def deco(fn):
        for n in names:
            MAPPING[n] = fn
        return fn
    return deco


# ---------------------------------------------------------------- dynamic axes

def bcast_dyn(ndim, *ins):
    """Axes of a broadcast result whose size is dynamic: any input's aligned axis that is."""
    out = set()
    for x in ins:
        if isinstance(x, V):
            out.update(ndim - x.ndim + a for a in x.dyn)
    return out


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(a % ndim for a in axis))


def _reduced_dyn(dyn, axes, keepdims):
    if keepdims:
        return {a for a in dyn if a not in axes}
    out = set()
    for a in dyn:
        if a not in axes:
            out.add(a - sum(1 for r in axes if r < a))
    return out


# ---------------------------------------------------------------- elementwise

def _operand_dtype(node, ins):
    for x in ins:
        if isinstance(x, V):
            return x.dtype
    return node.aval.dtype


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
           "maximum": "Max", "minimum": "Min"}
_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
            "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or"}
_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "sign": "Sign",
          "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu",
          "logical_not": "Not"}


@_reg(*_BINARY)
def binary(b, node, ins):
    dtype = node.aval.dtype
    a, c = (b.value(x, dtype) for x in ins)
    return b.add(_BINARY[node.op_name], [a, c]), bcast_dyn(node.aval.ndim, *ins)


@_reg(*_COMPARE, "ne")
def compare(b, node, ins):
    dtype = _operand_dtype(node, ins)
    a, c = (b.value(x, dtype) for x in ins)
    if node.op_name == "ne":
        name = b.add("Not", [b.add("Equal", [a, c])])
    else:
        name = b.add(_COMPARE[node.op_name], [a, c])
    return name, bcast_dyn(node.aval.ndim, *ins)


@_reg(*_UNARY)
def unary(b, node, ins):
    (x,) = ins
    return b.add(_UNARY[node.op_name], [x.name]), set(x.dyn)


@_reg("leaky_relu")
def leaky_relu(b, node, ins):
    return b.add("LeakyRelu", [ins[0].name], alpha=float(node.attrs["alpha"])), set(ins[0].dyn)


@_reg("gelu")
def gelu(b, node, ins):
    x = ins[0]
    if b.opset >= 20:
        return b.add("Gelu", [x.name], approximate="tanh"), set(x.dyn)
    dt = x.dtype
    c = lambda v: b.const(np.asarray(v, dtype=dt))
    cube = b.add("Mul", [b.add("Mul", [x.name, x.name]), x.name])
    inner = b.add("Add", [x.name, b.add("Mul", [cube, c(0.044715)])])
    t = b.add("Tanh", [b.add("Mul", [inner, c(np.sqrt(2.0 / np.pi))])])
    half_x = b.add("Mul", [x.name, c(0.5)])
    return b.add("Mul", [half_x, b.add("Add", [t, c(1.0)])]), set(x.dyn)


@_reg("where")
def where(b, node, ins):
    cond, a, c = ins
    dtype = node.aval.dtype
    cname = b.value(cond, np.bool_)
    return b.add("Where", [cname, b.value(a, dtype), b.value(c, dtype)]), bcast_dyn(node.aval.ndim, *ins)


@_reg("clip")
def clip(b, node, ins):
    x = ins[0]
    lo, hi = node.attrs["lo"], node.attrs["hi"]
    args = [x.name, "" if lo is None else b.const(np.asarray(lo, dtype=x.dtype)),
            "" if hi is None else b.const(np.asarray(hi, dtype=x.dtype))]
    while args[-1] == "":
        args.pop()
    return b.add("Clip", args), set(x.dyn)


@_reg("cast")
def cast(b, node, ins):
    helper = b.onnx.helper
    to = helper.np_dtype_to_tensor_dtype(np.dtype(node.aval.dtype))
    return b.add("Cast", [ins[0].name], to=to), set(ins[0].dyn)


@_reg("fma")
def fma(b, node, ins):
    dtype = node.aval.dtype
    a, m, c = (b.value(x, dtype) for x in ins)
    return b.add("Add", [b.add("Mul", [a, m]), c]), bcast_dyn(node.aval.ndim, *ins)


# ---------------------------------------------------------------- linear algebra

def _matmul_dyn(node, a, c):
    nd = node.aval.ndim
    out = set()
    if a.ndim >= 2 and (a.ndim - 2) in a.dyn:
        out.add(nd - 2)
    if c.ndim >= 2 and (c.ndim - 1) in c.dyn:
        out.add(nd - 1)
    if a.ndim == 1 and c.ndim >= 2 and (c.ndim - 1) in c.dyn:
        out.add(nd - 1)
    if c.ndim == 1 and a.ndim >= 2 and (a.ndim - 2) in a.dyn:
        out.add(nd - 1)
    for x in (a, c):      # batch axes
        if x.ndim > 2:
            out.update(nd - x.ndim + d for d in x.dyn if d < x.ndim - 2)
    return out


@_reg("matmul")
def matmul(b, node, ins):
    a, c = ins
    return b.add("MatMul", [a.name, c.name]), _matmul_dyn(node, a, c)


@_reg("linear")
def linear(b, node, ins):
    x, w, bias = ins
    y = b.add("Add", [b.add("MatMul", [x.name, w.name]), b.value(bias, node.aval.dtype)])
    if node.attrs.get("relu"):
        y = b.add("Relu", [y])
    return y, {0} if 0 in x.dyn else set()


# ---------------------------------------------------------------- shapes

@_reg("transpose")
def transpose(b, node, ins):
    x = ins[0]
    axes = node.attrs.get("axes")
    perm = list(reversed(range(x.ndim))) if axes is None else [a % x.ndim for a in axes]
    return b.add("Transpose", [x.name], perm=perm), {i for i, p in enumerate(perm) if p in x.dyn}


@_reg("reshape")
def reshape(b, node, ins):
    x = ins[0]
    target = list(node.attrs["shape"])
    target = [node.aval.shape[i] if d == -1 and node.aval.shape[i] is not None else d
              for i, d in enumerate(target)]
    dyn_pos = [i for i, d in enumerate(target) if d is None or d == -1]
    if x.dyn and not dyn_pos:
        if x.dyn != {0}:
            raise OnnxExportError(f"lg.onnx.export: reshape of a value whose run-time sized axes "
                                  f"are {sorted(x.dyn)} (only a batch axis 0 is supported)")
        dyn_pos = [0]
    spec = []
    minus = 0
    for i, d in enumerate(target):
        if i in dyn_pos:
            if i < x.ndim and i in x.dyn and all(j not in x.dyn for j in range(i)) and \
                    (d is None or d == -1 or d == x.shape[i]) and tuple(x.shape[:i]) == tuple(target[:i]):
                spec.append(0)          # ONNX: copy this size from the input
            else:
                spec.append(-1)
                minus += 1
        else:
            spec.append(int(d))
    if minus > 1:
        raise OnnxExportError("lg.onnx.export: a reshape with more than one size known only at run "
                              "time cannot be written (ONNX allows one -1)")
    return b.add("Reshape", [x.name, b.ints(spec)]), set(dyn_pos)


@_reg("squeeze")
def squeeze(b, node, ins):
    x = ins[0]
    axis = node.attrs.get("axis")
    axes = ([i for i, d in enumerate(x.shape) if d == 1] if axis is None else list(_axes(axis, x.ndim)))
    out = _reduced_dyn(x.dyn, axes, False)
    return b.add("Squeeze", [x.name, b.ints(axes)]), out


@_reg("unsqueeze")
def unsqueeze(b, node, ins):
    x = ins[0]
    nd = node.aval.ndim
    axes = list(_axes(node.attrs["axis"], nd))
    kept = [i for i in range(nd) if i not in axes]
    return b.add("Unsqueeze", [x.name, b.ints(axes)]), {kept[a] for a in x.dyn}


@_reg("broadcast_to")
def broadcast_to(b, node, ins):
    x = ins[0]
    shape = list(node.aval.shape)
    nd = len(shape)
    dyn = bcast_dyn(nd, x)
    spec = [1 if (i in dyn or d is None) else int(d) for i, d in enumerate(shape)]
    return b.add("Expand", [x.name, b.ints(spec)]), dyn


@_reg("broadcast_like")
def broadcast_like(b, node, ins):
    x, ref = ins
    return b.add("Expand", [x.name, b.add("Shape", [ref.name])]), bcast_dyn(node.aval.ndim, x, ref)


@_reg("full_like")
def full_like(b, node, ins):
    x = ins[0]
    value = b.const(np.asarray(node.attrs["value"], dtype=node.aval.dtype))
    return b.add("Expand", [value, b.add("Shape", [x.name])]), set(x.dyn)


_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin",
           "logsumexp": "ReduceLogSumExp"}


def _reduce(b, op_type, x, axes, keepdims):
    """One Reduce* node; its axes are an input from opset 18 (ReduceSum: 13), else an attribute."""
    if op_type == "ReduceSum" or b.opset >= 18:
        return b.add(op_type, [x, b.ints(axes)], keepdims=int(keepdims))
    return b.add(op_type, [x], axes=list(axes), keepdims=int(keepdims))


@_reg(*_REDUCE)
def reduce(b, node, ins):
    x = ins[0]
    axes = _axes(node.attrs.get("axis"), x.ndim)
    keep = bool(node.attrs.get("keepdims"))
    if not axes:
        return b.add("Identity", [x.name]), set(x.dyn)
    return _reduce(b, _REDUCE[node.op_name], x.name, axes, keep), _reduced_dyn(x.dyn, axes, keep)


@_reg("var")
def var(b, node, ins):
    x = ins[0]
    axes = _axes(node.attrs.get("axis"), x.ndim)
    keep = bool(node.attrs.get("keepdims"))
    ddof = node.attrs.get("ddof", 0) or 0
    mean = _reduce(b, "ReduceMean", x.name, axes, True)
    d = b.add("Sub", [x.name, mean])
    out = _reduce(b, "ReduceMean", b.add("Mul", [d, d]), axes, keep)
    if ddof:
        sizes = [x.shape[a] for a in axes]
        if any(a in x.dyn or s is None for a, s in zip(axes, sizes)):
            raise OnnxExportError("lg.onnx.export: var with ddof over an axis sized at run time")
        n = int(np.prod(sizes))
        out = b.add("Mul", [out, b.const(np.asarray(n / (n - ddof), dtype=node.aval.dtype))])
    return out, _reduced_dyn(x.dyn, axes, keep)


@_reg("softmax", "log_softmax")
def softmax(b, node, ins):
    x = ins[0]
    op = "Softmax" if node.op_name == "softmax" else "LogSoftmax"
    return b.add(op, [x.name], axis=int(node.attrs["axis"])), set(x.dyn)


@_reg("concatenate")
def concatenate(b, node, ins):
    axis = node.attrs["axis"] % node.aval.ndim
    dyn = set()
    for x in ins:
        dyn |= x.dyn
    return b.add("Concat", [x.name for x in ins], axis=axis), dyn


@_reg("stack")
def stack(b, node, ins):
    nd = node.aval.ndim
    axis = node.attrs["axis"] % nd
    parts = [b.add("Unsqueeze", [x.name, b.ints([axis])]) for x in ins]
    dyn = set()
    for x in ins:
        dyn |= {a if a < axis else a + 1 for a in x.dyn}
    return b.add("Concat", parts, axis=axis), dyn


@_reg("pad")
def pad(b, node, ins):
    x = ins[0]
    width = node.attrs["pad_width"]
    begins = [int(w[0]) for w in width]
    ends = [int(w[1]) for w in width]
    value = b.const(np.asarray(node.attrs.get("value", 0), dtype=x.dtype))
    return b.add("Pad", [x.name, b.ints(begins + ends), value], mode="constant"), set(x.dyn)


@_reg("one_hot")
def one_hot(b, node, ins):
    t = ins[0]
    helper = b.onnx.helper
    depth = b.const(np.asarray(node.attrs["num_classes"], dtype=np.int64))
    values = b.const(np.asarray([0, 1], dtype=np.float32))
    y = b.add("OneHot", [t.name, depth, values], axis=-1)
    to = helper.np_dtype_to_tensor_dtype(np.dtype(node.aval.dtype))
    return b.add("Cast", [y], to=to), set(t.dyn)


# ---------------------------------------------------------------- indexing

def _is_array(i):
    return hasattr(i, "shape") and hasattr(i, "dtype")


@_reg("getitem")
def getitem(b, node, ins):
    x, arrays = ins[0], list(ins[1:])
    index = node.attrs["index"]
    index = index if isinstance(index, tuple) else (index,)
    advanced = [k for k, i in enumerate(index) if i is INDEX_INPUT or _is_array(i) or isinstance(i, (list, tuple))]
    # expand the ellipsis
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    if Ellipsis in [i for i in index if not _is_array(i)]:
        k = next(n for n, i in enumerate(index) if not _is_array(i) and i is Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - consumed) + index[k + 1:]
    else:
        index = index + (slice(None),) * (x.ndim - consumed)
    if advanced:
        return _gather(b, node, x, index, arrays)
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    axis = 0
    for i in index:
        if i is None:
            continue
        if isinstance(i, slice):
            if i != slice(None):
                step = 1 if i.step is None else int(i.step)
                start = (0 if step > 0 else INT_MAX) if i.start is None else int(i.start)
                stop = (INT_MAX if step > 0 else INT_MIN) if i.stop is None else int(i.stop)
                if axis in x.dyn and not (i.start in (None, 0) and i.stop is None and step == 1):
                    pass   # fine: Slice clamps at run time; the axis stays dynamic
                starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
        elif isinstance(i, (int, np.integer)):
            i = int(i)
            starts.append(i), ends.append(i + 1 if i != -1 else INT_MAX), axes.append(axis), steps.append(1)
            squeeze.append(axis)
        else:
            raise OnnxExportError(f"lg.onnx.export: getitem with index entry {i!r} is not supported")
        axis += 1
    y = x.name
    if starts:
        y = b.add("Slice", [y, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    dyn = set(x.dyn)
    if squeeze:
        y = b.add("Squeeze", [y, b.ints(squeeze)])
        dyn = _reduced_dyn(dyn, squeeze, False)
    # None entries: new axes at their output positions
    new_axes, pos = [], 0
    for i in index:
        if i is None:
            new_axes.append(pos)
            pos += 1
        elif isinstance(i, slice):
            pos += 1
    if new_axes:
        y = b.add("Unsqueeze", [y, b.ints(new_axes)])
        kept = [k for k in range(node.aval.ndim) if k not in new_axes]
        dyn = {kept[a] for a in dyn}
    if y == x.name:
        y = b.add("Identity", [y])
    return y, dyn


def _gather(b, node, x, index, arrays):
    adv = [k for k, i in enumerate(index) if i is INDEX_INPUT or _is_array(i) or isinstance(i, (list, tuple))]
    rest_ok = all(isinstance(i, slice) and i == slice(None) for k, i in enumerate(index) if k not in adv)
    if len(adv) != 1 or not rest_ok or None in index:
        raise OnnxExportError("lg.onnx.export: getitem with integer arrays is exported only as one "
                              "integer array on one axis, other axes whole (an embedding lookup)")
    axis = adv[0]
    i = index[axis]
    if i is INDEX_INPUT:
        idx = arrays[0]
        if idx.dtype.kind == "b":
            raise OnnxExportError("lg.onnx.export: boolean-mask indexing has no ONNX mapping here")
        iname, idyn, ind = idx.name, idx.dyn, idx.ndim
    else:
        arr = np.asarray(i.get() if hasattr(i, "get") else i)
        if arr.dtype.kind == "b":
            raise OnnxExportError("lg.onnx.export: boolean-mask indexing has no ONNX mapping here")
        iname, idyn, ind = b.const(arr.astype(np.int64)), set(), arr.ndim
    y = b.add("Gather", [x.name, iname], axis=axis)
    dyn = {a for a in x.dyn if a < axis} | {axis + a for a in idyn} | {a - 1 + ind for a in x.dyn if a > axis}
    return y, dyn


SUPPORTED_OPS = sorted(set(MAPPING) | set(IDENTITY_OPS) | {"unfold (in conv2d/max_pool2d/avg_pool2d)"})
