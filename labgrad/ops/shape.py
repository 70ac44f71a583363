"""Ops that move, select or reshape data without arithmetic (except the gradient scatter)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .registry import Aval, broadcast_shapes, defop, fmt_shape, numel


def _known(shape):
    return all(d is not None for d in shape)


# ---------------------------------------------------------------- reshape / transpose

@defop("shape", array_backward=True, view=True)
class reshape:
    def forward(xp, a, *, shape):
        return xp.reshape(a, tuple(-1 if d is None else d for d in shape))

    def infer(a, *, shape):
        if _known(a.shape) and _known(shape) and numel(a.shape) != numel(shape):
            raise ShapeError(f"reshape: cannot reshape {fmt_shape(a.shape)} ({numel(a.shape)} "
                             f"elements) to {fmt_shape(shape)} ({numel(shape)} elements); the "
                             f"number of elements must stay the same (use -1 for one size to be inferred)")
        return Aval(shape, a.dtype)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (reshape(g, shape=a.shape),)


@defop("shape", array_backward=True, view=True)
class transpose:
    def forward(xp, a, *, axes):
        return xp.transpose(a, axes)

    def infer(a, *, axes):
        return Aval(tuple(a.shape[i] for i in axes), a.dtype)

    def backward(ctx, g):
        return (transpose(g, axes=tuple(np.argsort(ctx.attrs["axes"]).tolist())),)


@defop("shape", array_backward=True, view=True)
class squeeze:
    def forward(xp, a, *, axis):
        return xp.squeeze(a, axis=axis)

    def infer(a, *, axis):
        return Aval(tuple(d for i, d in enumerate(a.shape) if i not in axis), a.dtype)

    def backward(ctx, g):
        return (unsqueeze(g, axis=ctx.attrs["axis"]),)


@defop("shape", array_backward=True, view=True)
class unsqueeze:
    """Insert size-1 axes at positions ``axis`` of the *result* (NumPy's ``expand_dims``)."""

    def forward(xp, a, *, axis):
        return xp.expand_dims(a, axis)

    def infer(a, *, axis):
        shape = list(a.shape)
        for ax in sorted(axis):
            shape.insert(ax, 1)
        return Aval(shape, a.dtype)

    def backward(ctx, g):
        return (squeeze(g, axis=ctx.attrs["axis"]),)


# ---------------------------------------------------------------- broadcasting and its adjoint

@defop("shape", array_backward=True, view=True)
class broadcast_to:
    def forward(xp, a, *, shape):
        return xp.broadcast_to(a, shape)

    def infer(a, *, shape):
        out = broadcast_shapes("broadcast_to", a.shape, shape)
        if out != tuple(shape):
            raise ShapeError(f"broadcast_to: cannot broadcast {fmt_shape(a.shape)} to {fmt_shape(shape)}")
        return Aval(shape, a.dtype)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (sum_to(g, shape=a.shape),)


@defop("shape", array_backward=True, view=True)
class broadcast_like:
    """Broadcast ``a`` to the shape ``ref`` has at run time (works with unknown sizes)."""

    def forward(xp, a, ref):
        if ref.size <= _SMALL:  # filling a small array beats building a broadcast view
            out = xp.empty(ref.shape, dtype=a.dtype)
            out[...] = a
            return out
        return xp.broadcast_to(a, ref.shape)

    def infer(a, ref):
        return Aval(broadcast_shapes("broadcast_like", a.shape, ref.shape), a.dtype)

    def backward(ctx, g):
        a, _ = ctx.inputs
        return sum_to(g, shape=a.shape), None


_SMALL = 4096  # elements; below this, xp.broadcast_to's fixed cost exceeds a copy's


def sum_to_axes(from_shape, to_shape):
    """The axes to sum so that ``from_shape`` becomes ``to_shape`` (``None`` in it = keep)."""
    lead = len(from_shape) - len(to_shape)
    axes = tuple(range(lead))
    axes += tuple(lead + i for i, d in enumerate(to_shape) if d == 1 and from_shape[lead + i] != 1)
    return lead, axes


@defop("reduce", array_backward=True)
class sum_to:
    """Sum a broadcast gradient back to an input's shape: the adjoint of broadcasting."""

    def forward(xp, a, *, shape):
        lead, axes = sum_to_axes(a.shape, shape)
        if len(axes) == lead:  # only leading axes (a bias gradient): one plain sum
            return a.sum(axis=axes)
        out = a.sum(axis=axes, keepdims=True)
        return out.reshape(out.shape[lead:]) if lead else out

    def infer(a, *, shape):
        return Aval(shape, a.dtype)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (broadcast_like(g, a),)


# ---------------------------------------------------------------- indexing

@defop("shape", array_backward=True, view=True)
class getitem:
    """``a[index]``: basic slicing and integer-array indexing, as NumPy does it."""

    def forward(xp, a, *, index):
        return a[index]

    def infer(a, *, index):
        # index a zero-memory view of the right shape; unknown sizes stand in as a marker size
        shape = tuple(_UNKNOWN if d is None else d for d in a.shape)
        probe = np.broadcast_to(np.empty((), dtype=np.bool_), shape)[_host_index(index)]
        return Aval([None if d == _UNKNOWN else d for d in probe.shape], a.dtype)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (getitem_grad(g, a, index=ctx.attrs["index"]),)


_UNKNOWN = 2_147_483_629  # a size no real axis has


def _host_index(index):
    return tuple(i.get() if hasattr(i, "get") and not isinstance(i, (dict, slice)) else i for i in index)


@defop("shape", array_backward=True)
class getitem_grad:
    """The adjoint of ``getitem``: zeros shaped like ``ref`` with ``g`` added at ``index``.

    Repeated integer indices add up (``add.at``), which is what makes ``x[[0, 0]]`` give
    ``x.grad[0] == 2``.
    """

    def forward(xp, g, ref, *, index):
        out = xp.zeros(ref.shape, dtype=g.dtype)
        if any(hasattr(i, "shape") or isinstance(i, (list, tuple)) for i in index):
            xp.add.at(out, index, g)
        else:
            out[index] += g
        return out

    def infer(g, ref, *, index):
        return Aval(ref.shape, g.dtype)

    def backward(ctx, gg):
        return getitem(gg, index=ctx.attrs["index"]), None


# ---------------------------------------------------------------- joining and padding

@defop("shape", array_backward=True)
class concatenate:
    def forward(xp, *arrays, axis):
        return xp.concatenate(arrays, axis=axis)

    def infer(*avals, axis):
        first = avals[0]
        for a in avals[1:]:
            if a.ndim != first.ndim or any(d1 != d2 and None not in (d1, d2) for i, (d1, d2)
                                           in enumerate(zip(first.shape, a.shape)) if i != axis):
                raise ShapeError("concatenate: all shapes must match except along axis "
                                 f"{axis}; got {', '.join(fmt_shape(x.shape) for x in avals)}")
        sizes = [a.shape[axis] for a in avals]
        shape = list(first.shape)
        shape[axis] = None if None in sizes else sum(sizes)
        return Aval(shape, np.result_type(*[a.dtype for a in avals]))

    def backward(ctx, g):
        axis, start, grads = ctx.attrs["axis"], 0, []
        for x in ctx.inputs:
            n = x.shape[axis]
            grads.append(getitem(g, index=(slice(None),) * axis + (slice(start, start + n),)))
            start += n
        return tuple(grads)


@defop("shape", array_backward=True)
class stack:
    def forward(xp, *arrays, axis):
        return xp.stack(arrays, axis=axis)

    def infer(*avals, axis):
        if len({a.shape for a in avals}) != 1:
            raise ShapeError("stack: all tensors must have the same shape; got "
                             + ", ".join(fmt_shape(a.shape) for a in avals))
        shape = list(avals[0].shape)
        shape.insert(axis, len(avals))
        return Aval(shape, np.result_type(*[a.dtype for a in avals]))

    def backward(ctx, g):
        axis = ctx.attrs["axis"]
        return tuple(getitem(g, index=(slice(None),) * axis + (i,)) for i in range(len(ctx.inputs)))


@defop("shape", array_backward=True)
class pad:
    """Constant padding; ``pad_width`` is one ``(before, after)`` pair per axis."""

    def forward(xp, a, *, pad_width, value):
        return xp.pad(a, pad_width, mode="constant", constant_values=value)

    def infer(a, *, pad_width, value):
        if len(pad_width) != a.ndim:
            raise ShapeError(f"pad: need one (before, after) pair per axis: {a.ndim} for shape "
                             f"{fmt_shape(a.shape)}, got {len(pad_width)}")
        return Aval([None if d is None else d + lo + hi for d, (lo, hi) in zip(a.shape, pad_width)], a.dtype)

    def backward(ctx, g):
        index = tuple(slice(lo, (-hi) or None) for lo, hi in ctx.attrs["pad_width"])
        return (getitem(g, index=index),)


# ---------------------------------------------------------------- constants shaped like a tensor

@defop("creation", differentiable=False)
class full_like:
    def forward(xp, a, *, value, dtype):
        return xp.full(a.shape, value, dtype=dtype or a.dtype)

    def infer(a, *, value, dtype):
        return Aval(a.shape, dtype or a.dtype)
