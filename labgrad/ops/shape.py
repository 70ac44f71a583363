"""Ops that move, select or reshape data without arithmetic (except the gradient scatter)."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from .elementwise import cast, where
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
#
# An index is a tuple of ints, slices, None, Ellipsis and integer or boolean arrays, as NumPy
# takes it, held in the op's ``index`` attribute. An index array that is itself a graph value
# (a placeholder, a traced tensor) cannot be an attribute: it becomes an *input* of the op,
# and the attribute keeps a template with ``INDEX_INPUT`` in its place. So ``x[i, 1:]`` with
# ``i`` a placeholder is ``getitem(x, i, index=(INDEX_INPUT, slice(1, None)))``. The
# ``INDEX_INPUT`` entries take the index inputs in order (``fill_index``).


class _IndexInput:
    """Stands, in an index template, for the next index-array input of the op."""

    __slots__ = ()

    def __repr__(self):
        return "<input>"

    def __reduce__(self):
        return "INDEX_INPUT"   # copies and pickles stay the one marker


INDEX_INPUT = _IndexInput()


def fill_index(index, index_arrays):
    """The index to use: ``index`` with each ``INDEX_INPUT`` replaced by the next array."""
    if not index_arrays:
        return index
    arrays = iter(index_arrays)
    return tuple(next(arrays) if i is INDEX_INPUT else i for i in index)


def split_index(index, is_value):
    """``(template, values)``: the entries of ``index`` for which ``is_value`` holds (graph
    values) taken out as op inputs, ``INDEX_INPUT`` left in their place."""
    values = [i for i in index if is_value(i)]
    if not values:
        return index, ()
    return tuple(INDEX_INPUT if is_value(i) else i for i in index), tuple(values)


def _is_array(i):
    return hasattr(i, "shape") and hasattr(i, "dtype")


def index_shape(shape, index, what="getitem"):
    """The shape of ``a[index]`` for ``a`` of ``shape``, following NumPy's rules, without
    making any array. ``index`` holds ints, slices, None, Ellipsis and arrays or avals (anything
    with ``shape`` and ``dtype``); ``None`` sizes are unknown until run time."""
    index = index if isinstance(index, tuple) else (index,)
    consumed = 0
    for i in index:
        if _is_array(i):
            if i.dtype.kind not in "iub":
                raise DTypeError(f"{what}: index arrays must hold integers or bools, got {i.dtype}")
            consumed += len(i.shape) if i.dtype.kind == "b" else 1
        elif i is not None and i is not Ellipsis:
            consumed += 1
    if consumed > len(shape):
        raise ShapeError(f"{what}: too many indices ({consumed}) for shape {fmt_shape(shape)}")
    if sum(i is Ellipsis for i in index) > 1:
        raise ShapeError(f"{what}: an index can only have a single ellipsis ('...')")
    k = next((n for n, i in enumerate(index) if i is Ellipsis), len(index))
    index = index[:k] + (slice(None),) * (len(shape) - consumed) + index[k + 1:]
    has_arrays = any(_is_array(i) for i in index)
    out, advanced, where, axis = [], [], [], 0   # where: positions in the index of advanced entries
    first = 0   # how many result axes come before the first advanced entry
    for pos, i in enumerate(index):
        if not where and (_is_array(i) or (has_arrays and i is not None and not isinstance(i, slice))):
            first = len(out)
        if i is None:
            out.append(1)
        elif isinstance(i, slice):
            d = shape[axis]
            if d is None:
                n = len(range(_UNKNOWN)[i])
                out.append(None if n >= _UNKNOWN // 2 else n)   # x[:5] of an unknown size is 5
            else:
                out.append(len(range(d)[i]))
            axis += 1
        elif _is_array(i):
            if i.dtype.kind == "b":
                dims = shape[axis:axis + len(i.shape)]
                if any(a is not None and b is not None and a != b for a, b in zip(dims, i.shape)):
                    raise ShapeError(f"{what}: a boolean mask of shape {fmt_shape(i.shape)} does not "
                                     f"match the axes {fmt_shape(dims)} it selects from")
                # how many are True: counted for a constant mask, known only at run time otherwise
                advanced.append((None,) if isinstance(i, Aval) else (int(i.sum()),))
                axis += len(i.shape)
            else:
                _check_range(what, i, shape[axis], axis)
                advanced.append(tuple(i.shape))
                axis += 1
            where.append(pos)
        else:   # an int
            d = shape[axis]
            i = int(i)
            if d is not None and not -d <= i < d:
                raise ShapeError(f"{what}: index {i} is out of bounds for axis {axis} with size {d}")
            if has_arrays:   # with arrays, NumPy treats an int as a 0-d index array
                advanced.append(())
                where.append(pos)
            axis += 1
    if not advanced:
        return tuple(out)
    rank = max(len(s) for s in advanced)
    joint = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in advanced]):
        sizes = {d for d in dims if d != 1}
        if len(sizes - {None}) > 1:
            raise ShapeError(f"{what}: index arrays of shapes "
                             f"{', '.join(fmt_shape(s) for s in advanced)} do not broadcast together")
        joint.append(1 if not sizes else None if sizes == {None} else max(sizes - {None}))
    # arrays next to each other: their axes go where they are; separated: in front (NumPy's rule)
    adjacent = where == list(range(where[0], where[0] + len(where)))
    at = first if adjacent else 0
    return tuple(out[:at] + joint + out[at:])


def _check_range(what, i, size, axis):
    """Constant index arrays are checked while the graph is built; graph values when it runs."""
    if size is None or isinstance(i, Aval) or not getattr(i, "size", 0):
        return
    lo, hi = int(i.min()), int(i.max())
    if lo < -size or hi >= size:
        bad = hi if hi >= size else lo
        raise ShapeError(f"{what}: index {bad} is out of bounds for axis {axis} with size {size}")


_UNKNOWN = 2_147_483_629  # stands in for an unknown size when slicing it


@defop("shape", array_backward=True, view=True)
class getitem:
    """``a[index]``: basic slicing and integer-array indexing, as NumPy does it.

    Index arrays that are graph values come as inputs after ``a`` (see ``INDEX_INPUT``).
    """

    def forward(xp, a, *index_arrays, index):
        return a[fill_index(index, index_arrays)]

    def infer(a, *index_avals, index):
        return Aval(index_shape(a.shape, fill_index(index, index_avals)), a.dtype)

    def backward(ctx, g):
        a, *index_arrays = ctx.inputs
        return (getitem_grad(g, a, *index_arrays, index=ctx.attrs["index"]),) + (None,) * len(index_arrays)


@defop("shape", array_backward=True)
class getitem_grad:
    """The adjoint of ``getitem``: zeros shaped like ``ref`` with ``g`` added at ``index``.

    Repeated integer indices add up (``add.at``), which is what makes ``x[[0, 0]]`` give
    ``x.grad[0] == 2``.
    """

    def forward(xp, g, ref, *index_arrays, index):
        index = fill_index(index, index_arrays)
        out = xp.zeros(ref.shape, dtype=g.dtype)
        if any(hasattr(i, "shape") or isinstance(i, (list, tuple)) for i in index):
            xp.add.at(out, index, g)
        else:
            out[index] += g
        return out

    def infer(g, ref, *index_avals, index):
        return Aval(ref.shape, g.dtype)

    def backward(ctx, gg):
        _, _, *index_arrays = ctx.inputs
        return (getitem(gg, *index_arrays, index=ctx.attrs["index"]), None) + (None,) * len(index_arrays)


@defop("shape", array_backward=True)
class setitem:
    """``x[index] = v`` as a value: a copy of ``x`` with ``v`` written at ``index``.

    NumPy's rules: ``v`` broadcasts to the shape of ``x[index]`` and is cast to ``x``'s dtype;
    where an index repeats, the last write wins (``x[[0, 0]] = [1, 2]`` leaves 2). Gradients:
    ``x`` gets ``g`` with zeros where it was overwritten; ``v`` gets ``g[index]`` where its
    write won (zero where a later write replaced it), summed back to ``v``'s shape.
    """

    def forward(xp, x, v, *index_arrays, index):
        out = x.copy()
        out[fill_index(index, index_arrays)] = v
        return out

    def infer(x, v, *index_avals, index):
        part = index_shape(x.shape, fill_index(index, index_avals), "setitem")
        v_shape = v.shape if isinstance(v, Aval) else ()
        if tuple(broadcast_shapes("setitem", v_shape, part)) != tuple(part):
            raise ShapeError(f"setitem: cannot write a value of shape {fmt_shape(v_shape)} into "
                             f"x[index] of shape {fmt_shape(part)}")
        return Aval(x.shape, x.dtype)

    def backward(ctx, g):
        x, v, *index_arrays = ctx.inputs
        index = ctx.attrs["index"]
        need_x, need_v = ctx.needs_input_grad[:2]
        gx = setitem(g, 0, *index_arrays, index=index) if need_x else None
        gv = None
        if need_v:
            won = setitem_winners(x, *index_arrays, index=index)
            gv = where(won, getitem(g, *index_arrays, index=index), 0)
            if tuple(gv.shape) != tuple(v.shape):
                gv = sum_to(gv, shape=tuple(v.shape))
            if gv.dtype != v.dtype:
                gv = cast(gv, dtype=v.dtype)
        return (gx, gv) + (None,) * len(index_arrays)


@defop("shape", differentiable=False)
class setitem_winners:
    """For ``x[index] = v``: a bool array shaped like ``x[index]``, True where the value written
    there is the one that stays (with a repeated index, only the last write is kept).

    It numbers the writes 0, 1, 2, ..., performs them into an array of ``-1`` exactly as
    ``setitem`` would, and reads back which number stayed at each place.
    """

    def forward(xp, x, *index_arrays, index):
        index = fill_index(index, index_arrays)
        mark = xp.full(x.shape, -1, dtype=xp.int64)
        part = mark[index].shape
        ids = xp.arange(int(np.prod(part, dtype=np.int64)), dtype=xp.int64).reshape(part)
        mark[index] = ids
        return mark[index] == ids

    def infer(x, *index_avals, index):
        return Aval(index_shape(x.shape, fill_index(index, index_avals), "setitem"), np.bool_)


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
