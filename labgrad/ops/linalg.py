"""Matrix products."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .registry import Aval, broadcast_shapes, defop, fmt_shape, nbytes, numel
from .shape import squeeze, transpose, unsqueeze


def matrix_transpose(x):
    """Swap the last two axes (``x.mT``)."""
    ndim = x.ndim
    axes = _SWAP_LAST.get(ndim)
    if axes is None:
        axes = _SWAP_LAST[ndim] = tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    return transpose(x, axes=axes)


_SWAP_LAST = {}


def _matmul_infer(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: both operands need at least one dimension; use * to scale by a scalar")
    sa = (1,) + a.shape if a.ndim == 1 else a.shape
    sb = b.shape + (1,) if b.ndim == 1 else b.shape
    k1, k2 = sa[-1], sb[-2]
    if k1 is not None and k2 is not None and k1 != k2:
        raise ShapeError(
            f"matmul: shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)} do not line up: the "
            f"last axis of the left operand ({k1}) must equal the "
            f"{'only' if b.ndim == 1 else 'second-to-last'} axis of the right one ({k2}).\n"
            f"  Did you mean to transpose one of them (b.T), or swap the operands?")
    batch = broadcast_shapes("matmul", sa[:-2], sb[:-2])
    shape = batch + ((sa[-2],) if a.ndim > 1 else ()) + ((sb[-1],) if b.ndim > 1 else ())
    return Aval(shape, np.result_type(a.dtype, b.dtype))


@defop("linalg", array_backward=True)
class matmul:
    """``a @ b`` with NumPy's rules: batched over leading axes, 1-D operands as vectors."""

    def forward(xp, a, b):
        return xp.matmul(a, b)

    infer = _matmul_infer

    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:               # dot product: g is a scalar
            return (g * b if need_a else None), (g * a if need_b else None)
        if a.ndim == 1:                                # (k) @ (..., k, m) -> (..., m)
            ga = squeeze(matmul(b, unsqueeze(g, axis=(g.ndim,))), axis=(b.ndim - 1,)) if need_a else None
            gb = unsqueeze(a, axis=(1,)) * unsqueeze(g, axis=(g.ndim - 1,)) if need_b else None
            return ga, gb
        if b.ndim == 1:                                # (..., n, k) @ (k) -> (..., n)
            ga = unsqueeze(g, axis=(g.ndim,)) * b if need_a else None
            gb = squeeze(matmul(matrix_transpose(a), unsqueeze(g, axis=(g.ndim,))), axis=(a.ndim - 1,)) if need_b else None
            return ga, gb
        return (matmul(g, matrix_transpose(b)) if need_a else None,
                matmul(matrix_transpose(a), g) if need_b else None)

    def cost(a, b):
        out = _matmul_infer(a, b)
        k = a.shape[-1] or 1
        return {"flops": 2 * numel(out.shape) * k, "bytes": nbytes(a) + nbytes(b) + nbytes(out)}
