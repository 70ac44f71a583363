"""Functions on tensors (and graph symbols): ``import labgrad.functional as F``.

Each function normalizes its arguments and applies one op, or composes a few ops (``mse_loss``,
``linear``, ``dropout``), in which case autograd differentiates the composition.
"""
from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .context import context
from .errors import DTypeError, ShapeError, format_location, user_location
from .ops import conv, elementwise as ew, linalg, nn, reduce as red, shape as sh
from .random import generator
from .tensor import OpsMixin, Tensor, _axis, apply   # apply: the eager interpreter (hands symbols on)


def _t(x):
    """Python lists and arrays as tensors, so ``F.relu([1, -2])`` works."""
    return x if isinstance(x, OpsMixin) else Tensor(x)


# ---- elementwise
# the methods of OpsMixin, as functions: F.exp(x) is x.exp() (also for arrays and symbols)
exp, log, sqrt, abs = OpsMixin.exp, OpsMixin.log, OpsMixin.sqrt, OpsMixin.abs
sin, cos, tanh, sigmoid, relu = OpsMixin.sin, OpsMixin.cos, OpsMixin.tanh, OpsMixin.sigmoid, OpsMixin.relu
def gelu(x): return apply(ew.gelu, x)
sign = OpsMixin.sign
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


def _axis_or_0(axis, dim):
    """``axis=`` or its alias ``dim=`` (default 0); the default is None so passing both is caught."""
    axis = _axis(axis, dim)
    return 0 if axis is None else axis


def concatenate(tensors, axis=None, *, dim=None):
    tensors = [_t(x) for x in tensors]
    axis = red.normalize_axis(_axis_or_0(axis, dim), tensors[0].ndim, "concatenate")[0]
    return apply(sh.concatenate, *tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=None, *, dim=None):
    tensors = [_t(x) for x in tensors]
    axis = red.normalize_axis(_axis_or_0(axis, dim), tensors[0].ndim + 1, "stack")[0]
    return apply(sh.stack, *tensors, axis=axis)


def split(x, sections, axis=None, *, dim=None):
    """Split into equal ``sections`` (an int) or at the given sizes (a list), as slices of ``x``."""
    axis = red.normalize_axis(_axis_or_0(axis, dim), x.ndim, "split")[0]
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


# ---- convolution, pooling, dropout: compositions of unfold with matmul or a reduction
def _pair(value, what, opname, minimum):
    """``3`` or ``(3, 3)`` -> ``(3, 3)``, checked to be ints >= ``minimum``."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise ValueError(f"{opname}: {what} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_image(opname, x, what="input"):
    if x.ndim != 4:
        hint = (" For a single image of shape (C, H, W), add a batch axis: x[None]." if x.ndim == 3
                else " Reshape it to (N, C, H, W).")
        raise ShapeError(f"{opname}: the {what} must be a batch of images of shape (N, C, H, W), got "
                         f"shape {sh.fmt_shape(x.shape)}.{hint}{format_location(user_location())}")


def _window_attrs(opname, x, kernel_size, stride, padding, dilation):
    """Canonical ``unfold`` attributes, checked against the input's height and width."""
    attrs = {"kernel_size": _pair(kernel_size, "kernel_size", opname, 1),
             "stride": _pair(stride, "stride", opname, 1),
             "padding": _pair(padding, "padding", opname, 0),
             "dilation": _pair(dilation, "dilation", opname, 1)}
    try:
        out = conv._window_counts(opname, tuple(x.shape[-2:]), **attrs)
    except ShapeError as e:
        raise ShapeError(f"{e}{format_location(user_location())}") from None
    return attrs, out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D convolution (really cross-correlation, as in every framework), NCHW like PyTorch.

    ``x`` is (N, C_in, H, W), ``weight`` is (C_out, C_in, kh, kw), ``bias`` is (C_out,).
    It is built from ops autograd already knows: ``unfold`` copies each window into a column,
    then one matrix product applies every filter to every window::

        cols = unfold(x)                       # (N, C_in*kh*kw, OH*OW)
        y = weight.reshape(C_out, -1) @ cols   # (N, C_out, OH*OW)
    """
    x, weight = _t(x), _t(weight)
    _check_image("conv2d", x)
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: the weight must have shape (C_out, C_in, kh, kw), got "
                         f"{sh.fmt_shape(weight.shape)}{format_location(user_location())}")
    c_out, c_in = weight.shape[0], weight.shape[1]
    if None not in (x.shape[1], c_in) and x.shape[1] != c_in:
        raise ShapeError(
            f"conv2d: the input has {x.shape[1]} channels (shape {sh.fmt_shape(x.shape)}) but the "
            f"weight expects {c_in} (shape {sh.fmt_shape(weight.shape)}, i.e. (C_out, C_in, kh, kw))."
            f"{format_location(user_location())}\n  Axis 1 of the input must equal axis 1 of the weight; "
            f"check the layer's in_channels, or that the input is NCHW rather than NHWC.")
    if bias is not None:
        bias = _t(bias)
        if tuple(bias.shape) != (c_out,):
            raise ShapeError(f"conv2d: the bias must have shape ({c_out},), one value per output "
                             f"channel, got {sh.fmt_shape(bias.shape)}{format_location(user_location())}")
    attrs, (oh, ow) = _window_attrs("conv2d", x, weight.shape[2:], stride, padding, dilation)
    cols = apply(conv.unfold, x, **attrs)
    y = apply(linalg.matmul, weight.reshape(c_out, -1), cols).reshape(-1, c_out, oh, ow)
    return y if bias is None else y + bias.reshape(c_out, 1, 1)


def _pool_windows(opname, x, kernel_size, stride, padding, dilation, pad_value):
    """The windows of ``x`` as (N, C, kh*kw, OH, OW), padded with ``pad_value``."""
    x = _t(x)
    _check_image(opname, x)
    attrs, (oh, ow) = _window_attrs(opname, x, kernel_size, kernel_size if stride is None else stride,
                                    padding, dilation)
    (kh, kw), (ph, pw) = attrs["kernel_size"], attrs["padding"]
    if 2 * ph > kh or 2 * pw > kw:
        raise ShapeError(f"{opname}: padding {attrs['padding']} is more than half the kernel "
                         f"{attrs['kernel_size']}, so some windows would see only padding."
                         f"{format_location(user_location())}\n  Use padding <= kernel_size // 2.")
    if pad_value != 0 and (ph or pw):
        x = apply(sh.pad, x, pad_width=((0, 0), (0, 0), (ph, ph), (pw, pw)), value=pad_value)
        attrs["padding"] = (0, 0)
    cols = apply(conv.unfold, x, **attrs)
    return cols.reshape(-1, x.shape[1], kh * kw, oh, ow)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """The largest value of each window (stride defaults to the kernel size, as in PyTorch).

    Padding counts as ``-inf``, so it is never the maximum.
    """
    return _pool_windows("max_pool2d", x, kernel_size, stride, padding, dilation, float("-inf")).max(axis=2)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """The mean of each window; padded zeros count (PyTorch's ``count_include_pad=True``)."""
    return _pool_windows("avg_pool2d", x, kernel_size, stride, padding, 1, 0).mean(axis=2)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The scaling keeps the expected value unchanged, so at evaluation time (``training=False``)
    dropout is simply the identity. The mask comes from the device's seeded generator
    (``lg.manual_seed``), so runs are reproducible.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"dropout: p is the probability of dropping an element and must be in "
                         f"[0, 1), got {p!r}{format_location(user_location())}")
    if not training or p == 0:
        return x
    x = _t(x)
    backend = getattr(x, "_backend", None)
    if backend is None:
        raise TypeError(f"dropout(training=True) needs an eager Tensor to draw its random mask, "
                        f"got {type(x).__name__}: graphs (lg.jit, lg.compile) have no random op yet. "
                        f"Train this model eagerly (e.g. nn.Trainer(..., jit=False)), or compile only "
                        f"evaluation, after model.eval(){format_location(user_location())}")
    keep = generator(backend).random(tuple(x.shape)) >= p
    mask = Tensor._wrap((keep * (1.0 / (1.0 - p))).astype(x.dtype), backend)
    return x * mask


# ---- more losses and normalization (compositions of existing ops; autograd differentiates them)
def _check_same_shape(opname, a, b, what=("input", "target")):
    if None not in tuple(a.shape) + tuple(b.shape) and tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"{opname}: the {what[0]} has shape {sh.fmt_shape(a.shape)} but the {what[1]} "
                         f"has shape {sh.fmt_shape(b.shape)}; they must match element for element "
                         f"(reshape the target, e.g. target.reshape(pred.shape)){format_location(user_location())}")


def l1_loss(pred, target):
    """Mean absolute error ``mean(|pred - target|)``: less swayed by outliers than MSE."""
    pred, target = _t(pred), _t(target)
    _check_same_shape("l1_loss", pred, target)
    return (pred - target).abs().mean()


def nll_loss(log_probs, targets):
    """Mean negative log-likelihood: ``-mean(log_probs[i, targets[i]])``.

    Takes *log*-probabilities (N, C), e.g. from ``log_softmax``; ``nll_loss(log_softmax(z), t)``
    equals ``cross_entropy(z, t)``. The pick is written as a product with ``one_hot(targets)``,
    so the same code runs eagerly, under ``lg.jit`` and in a static graph.
    """
    log_probs, targets = _t(log_probs), _t(targets)
    try:
        nn.check_class_targets("nll_loss", "log-probabilities", log_probs, targets)
    except (DTypeError, ShapeError) as e:
        raise type(e)(f"{e}{format_location(user_location())}") from None
    picked = (log_probs * one_hot(targets, log_probs.shape[1], dtype=log_probs.dtype)).sum(axis=1)
    return -picked.mean()


def binary_cross_entropy_with_logits(logits, target):
    """Mean binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1], computed stably.

    The textbook ``-(y log s + (1-y) log(1-s))`` with ``s = sigmoid(z)`` gives ``log(0)`` for
    large ``|z|``. Rewritten, it is ``log(1 + exp(z)) - z*y = logsumexp([0, z]) - z*y``, and
    ``logsumexp`` subtracts the max before exponentiating, so nothing overflows. (The popular
    ``max(z, 0) - z*y + log(1 + exp(-|z|))`` is as stable, but its two kinks at 0 would give a
    wrong gradient there, ``-y`` instead of ``sigmoid(0) - y``, under subgradient conventions.)
    """
    logits, target = _t(logits), _t(target)
    _check_same_shape("binary_cross_entropy_with_logits", logits, target, ("logits", "target"))
    pairs = stack([logits * 0, logits], axis=-1)
    return (pairs.logsumexp(axis=-1) - logits * target).mean()


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1,
               eps=1e-5):
    """Normalize each channel (axis 1) over the batch (and spatial axes), then scale and shift.

    In training the statistics are the batch's own (biased variance), and the running estimates
    are moved towards them in place: ``running = (1 - momentum) * running + momentum * batch``
    (the variance stored there is the unbiased one, as in PyTorch). In evaluation the running
    estimates are used, so one example's output no longer depends on the rest of its batch.
    Under ``lg.jit`` the running update is traced as a state update; in a define-and-run graph
    built on placeholders the tensors are constants, so only the normalization is in the graph.
    """
    x = _t(x)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: needs a batch (N, C, ...), got shape {sh.fmt_shape(x.shape)}"
                         f"{format_location(user_location())}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        # eager tensors and lg.jit traces update the running statistics; a define-and-run graph
        # (placeholders, no tracer) cannot write to tensors, so it leaves them alone entirely
        if running_mean is not None and (isinstance(x, Tensor) or context.tracer is not None):
            sizes = [x.shape[a] for a in axes]
            with no_grad():
                if None in sizes:    # batch size unknown until run time (a placeholder): ask the op
                    unbiased = x.detach().var(axis=axes, ddof=1)
                else:
                    n = int(np.prod(sizes))
                    unbiased = var.detach().reshape(-1) * (n / builtins_max(n - 1, 1))
                running_mean *= 1 - momentum
                running_mean += momentum * mean.detach().reshape(-1)
                running_var *= 1 - momentum
                running_var += momentum * unbiased
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` axes of each example, then scale and
    shift: the same in training and evaluation, and independent of the batch size."""
    x = _t(x)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise ShapeError(f"layer_norm: the input's last {k} axes must have shape {normalized_shape}, "
                         f"got input shape {sh.fmt_shape(x.shape)}{format_location(user_location())}")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def embedding(indices, weight):
    """Rows of ``weight`` picked by integer ``indices`` (any shape): output ``indices.shape + (dim,)``.

    It is indexing, ``weight[indices]``; its gradient adds into the picked rows (a row picked
    twice gets both gradients).
    """
    indices = _t(indices)
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be integers, got dtype {indices.dtype}; convert "
                         f"with indices.astype('int64'){format_location(user_location())}")
    return weight[indices]


builtins_sum = __builtins__["sum"] if isinstance(__builtins__, dict) else __builtins__.sum
builtins_max = __builtins__["max"] if isinstance(__builtins__, dict) else __builtins__.max
