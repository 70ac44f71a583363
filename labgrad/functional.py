"""Functions on tensors (and graph symbols): ``import labgrad.functional as F``.

Each function normalizes its arguments and applies one op, or composes a few ops (``mse_loss``,
``linear``, ``dropout``), in which case autograd differentiates the composition.
"""
from __future__ import annotations

import numpy as np

from .dispatch import apply
from .errors import ShapeError
from .ops import elementwise as ew, linalg, nn, reduce as red, shape as sh
from .tensor import OpsMixin, Tensor, _axis


def _t(x):
    """Python lists and arrays as tensors, so ``F.relu([1, -2])`` works."""
    return x if isinstance(x, OpsMixin) else Tensor(x)


# ---- elementwise
def exp(x): return apply(ew.exp, x)
def log(x): return apply(ew.log, x)
def sqrt(x): return apply(ew.sqrt, x)
def abs(x): return apply(ew.abs_, x)
def sin(x): return apply(ew.sin, x)
def cos(x): return apply(ew.cos, x)
def tanh(x): return apply(ew.tanh, x)
def sigmoid(x): return apply(ew.sigmoid, x)
def relu(x): return apply(ew.relu, x)
def gelu(x): return apply(ew.gelu, x)
def sign(x): return apply(ew.sign, x)
def neg(x): return apply(ew.neg, x)
def add(a, b): return apply(ew.add, a, b)
def sub(a, b): return apply(ew.sub, a, b)
def mul(a, b): return apply(ew.mul, a, b)
def div(a, b): return apply(ew.div, a, b)
def pow(a, b): return apply(ew.pow_, a, b)
def maximum(a, b): return apply(ew.maximum, a, b)
def minimum(a, b): return apply(ew.minimum, a, b)


def leaky_relu(x, negative_slope=0.01):
    return apply(ew.leaky_relu, x, alpha=float(negative_slope))


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b`` (broadcast); gradients flow to ``a`` and ``b``."""
    return apply(ew.where, cond, a, b)


def clip(x, min=None, max=None):
    return apply(ew.clip, x, lo=min, hi=max)


clamp = clip


# ---- reductions (methods do the argument handling)
def sum(x, axis=None, keepdims=False, *, dim=None): return _t(x).sum(axis, keepdims, dim=dim)
def mean(x, axis=None, keepdims=False, *, dim=None): return _t(x).mean(axis, keepdims, dim=dim)
def max(x, axis=None, keepdims=False, *, dim=None): return _t(x).max(axis, keepdims, dim=dim)
def min(x, axis=None, keepdims=False, *, dim=None): return _t(x).min(axis, keepdims, dim=dim)
def var(x, axis=None, keepdims=False, ddof=0, *, dim=None): return _t(x).var(axis, keepdims, ddof, dim=dim)
def logsumexp(x, axis=None, keepdims=False, *, dim=None): return _t(x).logsumexp(axis, keepdims, dim=dim)


# ---- shape
def reshape(x, shape): return _t(x).reshape(shape)
def transpose(x, axes=None): return _t(x).transpose(axes)
def squeeze(x, axis=None): return _t(x).squeeze(axis)
def unsqueeze(x, axis): return _t(x).unsqueeze(axis)
def broadcast_to(x, shape): return _t(x).broadcast_to(shape)
def matmul(a, b): return apply(linalg.matmul, a, b)


def concatenate(tensors, axis=0, *, dim=None):
    tensors = [_t(x) for x in tensors]
    axis = red.normalize_axis(_axis(axis, dim), tensors[0].ndim, "concatenate")[0]
    return apply(sh.concatenate, *tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=0, *, dim=None):
    tensors = [_t(x) for x in tensors]
    axis = red.normalize_axis(_axis(axis, dim), tensors[0].ndim + 1, "stack")[0]
    return apply(sh.stack, *tensors, axis=axis)


def split(x, sections, axis=0, *, dim=None):
    """Split into equal ``sections`` (an int) or at the given sizes (a list), as slices of ``x``."""
    axis = red.normalize_axis(_axis(axis, dim), x.ndim, "split")[0]
    n = x.shape[axis]
    if isinstance(sections, int):
        if n % sections:
            raise ShapeError(f"split: axis {axis} has size {n}, which {sections} equal sections cannot divide")
        sizes = [n // sections] * sections
    else:
        sizes = list(sections)
        if builtins_sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} add up to {builtins_sum(sizes)}, but axis {axis} has size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(x[(slice(None),) * axis + (slice(start, start + s),)])
        start += s
    return tuple(out)


def pad(x, pad_width, value=0.0):
    """Constant padding, NumPy style: ``pad_width`` is an int or one ``(before, after)`` per axis."""
    if isinstance(pad_width, int):
        pad_width = ((pad_width, pad_width),) * x.ndim
    pad_width = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    return apply(sh.pad, x, pad_width=pad_width, value=value)


# ---- neural-network functions
def softmax(x, axis=-1, *, dim=None): return _t(x).softmax(axis, dim=dim)
def log_softmax(x, axis=-1, *, dim=None): return _t(x).log_softmax(axis, dim=dim)


def one_hot(targets, num_classes, dtype=None):
    return apply(nn.one_hot, targets, num_classes=int(num_classes),
                 dtype=np.dtype(dtype or np.float32))


def cross_entropy(logits, targets):
    """Mean cross-entropy between ``logits`` (N, C) and integer class ``targets`` (N,)."""
    return apply(nn.cross_entropy, logits, targets)


def mse_loss(pred, target):
    """Mean squared error."""
    d = pred - target
    return (d * d).mean()


def linear(x, weight, bias=None):
    """``x @ weight + bias``; ``weight`` has shape (in_features, out_features)."""
    y = apply(linalg.matmul, x, weight)
    return y if bias is None else y + bias


builtins_sum = __builtins__["sum"] if isinstance(__builtins__, dict) else __builtins__.sum
