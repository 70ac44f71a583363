"""Ops that pattern fusion (``graph/passes/patterns.py``) puts in place of several ops.

``fma(a, b, c)`` is ``a * b + c`` and ``linear(x, w, b, relu=...)`` is ``x @ w + b`` (then
``relu``): each computes exactly what the ops it replaces compute (the product is rounded
before the add, as in NumPy), but as one op, so that a code generator can write it as one loop
(``fma``'s ``expr``) and the interpreter makes fewer temporaries (``linear`` adds the bias and
applies ``relu`` in place, into the product's fresh array). They are ordinary ops: callable
eagerly, differentiable, with ``infer`` and ``cost`` rules.
"""
from __future__ import annotations

from ..errors import DTypeError, ShapeError
from .elementwise import relu_grad
from .linalg import matmul
from .registry import Aval, broadcast_shapes, defop, fmt_shape, nbytes
from .shape import transpose


@defop("elementwise", expr="({0} * {1} + {2})", flops=2, array_backward=True)
class fma:
    """``a * b + c`` in one op (a fused multiply-add; the product is rounded first, as NumPy's
    two ops round it)."""

    def forward(xp, a, b, c):
        y = xp.multiply(a, b)
        if (getattr(y, "ndim", 0) and xp.result_type(y, c) == y.dtype
                and xp.broadcast_shapes(y.shape, xp.shape(c)) == y.shape):
            return xp.add(y, c, out=y)     # the product is a fresh array: add into it
        return xp.add(y, c)

    def backward(ctx, g):
        a, b, _ = ctx.inputs
        need_a, need_b, need_c = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None), (g if need_c else None)


def _linear_infer(x, w, b, *, relu):
    if not isinstance(x, Aval) or not isinstance(w, Aval) or x.ndim != 2 or w.ndim != 2:
        raise ShapeError("linear: x and w must be matrices (2-D)")
    y = matmul.infer(x, w)
    if not isinstance(b, Aval):
        raise TypeError("linear: the bias must be an array")
    if broadcast_shapes("linear", y.shape, b.shape) != y.shape:
        raise ShapeError(f"linear: a bias of shape {fmt_shape(b.shape)} does not fit the product's "
                         f"shape {fmt_shape(y.shape)} (it may broadcast into it, not widen it)")
    if b.dtype != y.dtype:
        raise DTypeError(f"linear: the bias is {b.dtype} but the product is {y.dtype}; they must agree")
    return y


@defop("linalg", array_backward=True, saves_output=True)
class linear:
    """``x @ w + b``, then ``relu`` if ``relu=True``: a dense layer in one op. The bias is added
    and relu applied in place, into the product's own (fresh) array."""

    def forward(xp, x, w, b, *, relu):
        y = xp.matmul(x, w)
        xp.add(y, b, out=y)
        if relu:
            xp.maximum(y, 0, out=y)
        return y

    infer = _linear_infer

    def backward(ctx, g):
        x, w, _ = ctx.inputs
        if ctx.attrs["relu"]:
            g = relu_grad(g, ctx.output)   # output > 0 exactly where the pre-relu value is
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = matmul(g, transpose(w, axes=(1, 0))) if need_x else None
        gw = matmul(transpose(x, axes=(1, 0)), g) if need_w else None
        return gx, gw, (g if need_b else None)

    def cost(x, w, b, *, relu):
        y = _linear_infer(x, w, b, relu=relu)
        m, k = x.shape
        n = w.shape[1]
        flops = 2 * (1 if m is None else m) * (1 if k is None else k) * (1 if n is None else n)
        return {"flops": flops, "bytes": nbytes(x) + nbytes(w) + nbytes(b) + nbytes(y)}
