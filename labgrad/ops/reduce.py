"""Reductions over axes: sum, mean, max, min, var, logsumexp.

Attributes are canonical so that equal calls compare equal (CSE relies on it): ``axis`` is a
sorted tuple of non-negative ints, or ``None`` for all axes; ``keepdims`` is a bool.
"""
from __future__ import annotations

import math

from ..errors import ShapeError
from .registry import Aval, defop
from .shape import broadcast_like, unsqueeze
from .elementwise import cast, eq, exp


def normalize_axis(axis, ndim, opname="reduce"):
    """``None`` | int | sequence -> ``None`` or a sorted tuple of non-negative axes."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for ax in axes:
        if not -ndim <= ax < max(ndim, 1):
            raise ShapeError(f"{opname}: axis {ax} is out of range for a tensor with {ndim} "
                             f"dimension(s); valid axes are {-ndim}..{ndim - 1}")
        out.append(ax % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ShapeError(f"{opname}: axis {axis} names the same axis twice")
    return tuple(sorted(out))


def reduced_shape(shape, axis, keepdims):
    axes = range(len(shape)) if axis is None else axis
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def reduce_infer(a, *, axis, keepdims, **_):
    return Aval(reduced_shape(a.shape, axis, keepdims), a.dtype)


def float_reduce_infer(a, *, axis, keepdims, **_):
    dtype = a.dtype if a.dtype.kind in "fc" else "float64"
    return Aval(reduced_shape(a.shape, axis, keepdims), dtype)


def keep_axes(g, a, axis, keepdims):
    """Put back the reduced axes of ``g`` as size-1 axes, so it broadcasts against ``a``."""
    if keepdims or a.ndim == 0 or (axis is None and g.ndim == 0):
        return g  # (a 0-d gradient broadcasts against ``a`` as it is)
    return unsqueeze(g, axis=tuple(range(a.ndim)) if axis is None else axis)


def count(a, axis):
    """How many elements a reduction of ``a`` over ``axis`` covers: a Python int when the
    sizes are known, else a 0-d ``element_count`` result computed at run time (a graph built
    from a placeholder of shape ``(None, 64)`` learns its batch size only when it runs)."""
    dims = a.shape if axis is None else [a.shape[i] for i in axis]
    if any(d is None for d in dims):
        return element_count(a, axis=axis, dtype=a.dtype)
    return math.prod(dims)


@defop("shape", differentiable=False)
class element_count:
    """The number of elements along ``axis`` (all axes for ``None``), as a 0-d array."""

    def forward(xp, a, *, axis, dtype):
        dims = a.shape if axis is None else [a.shape[i] for i in axis]
        return xp.asarray(math.prod(dims), dtype=dtype)

    def infer(a, *, axis, dtype):
        return Aval((), dtype)


@defop("reduce", array_backward=True)
class sum_:
    def forward(xp, a, *, axis, keepdims):
        return xp.sum(a, axis=axis, keepdims=keepdims)

    def infer(a, *, axis, keepdims):
        dtype = a.dtype if a.dtype.kind in "fc" else ("int64" if a.dtype.kind in "iub" else a.dtype)
        return Aval(reduced_shape(a.shape, axis, keepdims), dtype)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (broadcast_like(keep_axes(g, a, **ctx.attrs), a),)


@defop("reduce", array_backward=True)
class mean:
    def forward(xp, a, *, axis, keepdims):
        return xp.mean(a, axis=axis, keepdims=keepdims)

    infer = float_reduce_infer

    def backward(ctx, g):
        (a,) = ctx.inputs
        n = count(a, ctx.attrs["axis"])
        return (broadcast_like(keep_axes(g, a, **ctx.attrs) / n, a),)


def _extreme_backward(ctx, g):
    """max/min: the gradient goes to the positions holding the extreme, split evenly on ties."""
    (a,) = ctx.inputs
    axis, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
    hit = cast(eq(a, keep_axes(ctx.output, a, axis, keepdims)), dtype=a.dtype)
    share = keep_axes(g, a, axis, keepdims) / sum_(hit, axis=axis, keepdims=True)
    return (hit * share,)


@defop("reduce", saves_output=True)
class max_:
    def forward(xp, a, *, axis, keepdims):
        return xp.max(a, axis=axis, keepdims=keepdims)

    infer = reduce_infer
    backward = _extreme_backward


@defop("reduce", saves_output=True)
class min_:
    def forward(xp, a, *, axis, keepdims):
        return xp.min(a, axis=axis, keepdims=keepdims)

    infer = reduce_infer
    backward = _extreme_backward


@defop("reduce", array_backward=True)
class var:
    """Variance; ``ddof=0`` is the population variance, ``ddof=1`` the sample variance."""

    def forward(xp, a, *, axis, keepdims, ddof):
        return xp.var(a, axis=axis, keepdims=keepdims, ddof=ddof)

    infer = float_reduce_infer

    def backward(ctx, g):
        (a,) = ctx.inputs
        axis, keepdims, ddof = ctx.attrs["axis"], ctx.attrs["keepdims"], ctx.attrs["ddof"]
        n = count(a, axis)
        centered = a - mean(a, axis=axis, keepdims=True)
        return (keep_axes(g, a, axis, keepdims) * centered * (2.0 / (n - ddof)),)


@defop("reduce", saves_output=True, flops=3, array_backward=True)
class logsumexp:
    """``log(sum(exp(a)))`` computed stably by shifting by the maximum."""

    def forward(xp, a, *, axis, keepdims):
        m = xp.max(a, axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
        return out if keepdims else xp.squeeze(out, axis=axis)

    infer = float_reduce_infer

    def backward(ctx, g):
        (a,) = ctx.inputs
        axis, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
        softmax = exp(a - keep_axes(ctx.output, a, axis, keepdims))
        return (keep_axes(g, a, axis, keepdims) * softmax,)


@defop("reduce", differentiable=False)
class any_:
    """True where any element along ``axis`` is nonzero."""

    def forward(xp, a, *, axis, keepdims):
        return xp.any(a, axis=axis, keepdims=keepdims)

    def infer(a, *, axis, keepdims):
        return Aval(reduced_shape(a.shape, axis, keepdims), "bool")


@defop("reduce", differentiable=False)
class all_:
    """True where every element along ``axis`` is nonzero."""

    def forward(xp, a, *, axis, keepdims):
        return xp.all(a, axis=axis, keepdims=keepdims)

    def infer(a, *, axis, keepdims):
        return Aval(reduced_shape(a.shape, axis, keepdims), "bool")
