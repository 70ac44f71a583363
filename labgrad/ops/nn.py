"""Neural-network ops: softmax family and losses. Each is one op with a fused, stable forward
and a backward written with labgrad ops."""
from __future__ import annotations


from ..errors import DTypeError, ShapeError
from .registry import Aval, defop, fmt_shape, nbytes, numel
from .reduce import count, sum_
from .elementwise import exp


@defop("nn", saves_output=True, array_backward=True)
class softmax:
    def forward(xp, a, *, axis):
        e = xp.exp(a - xp.max(a, axis=axis, keepdims=True))
        return e / xp.sum(e, axis=axis, keepdims=True)

    def infer(a, *, axis):
        return Aval(a.shape, a.dtype)

    def backward(ctx, g):
        y, axis = ctx.output, ctx.attrs["axis"]
        return (y * (g - sum_(g * y, axis=(axis,), keepdims=True)),)

    def cost(a, *, axis):
        return {"flops": 5 * numel(a.shape), "bytes": 2 * nbytes(a)}


@defop("nn", saves_output=True, array_backward=True)
class log_softmax:
    def forward(xp, a, *, axis):
        shifted = a - xp.max(a, axis=axis, keepdims=True)
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))

    def infer(a, *, axis):
        return Aval(a.shape, a.dtype)

    def backward(ctx, g):
        y, axis = ctx.output, ctx.attrs["axis"]
        return (g - exp(y) * sum_(g, axis=(axis,), keepdims=True),)

    def cost(a, *, axis):
        return {"flops": 5 * numel(a.shape), "bytes": 2 * nbytes(a)}


@defop("nn", differentiable=False)
class one_hot:
    def forward(xp, t, *, num_classes, dtype):
        return (t[..., None] == xp.arange(num_classes)).astype(dtype)

    def infer(t, *, num_classes, dtype):
        return Aval(t.shape + (num_classes,), dtype)


def check_class_targets(opname, what, scores, targets):
    """Scores of shape (N, C) (logits, log-probabilities) and integer class targets of shape (N,)."""
    if targets.dtype.kind not in "iu":
        raise DTypeError(f"{opname}: targets must be integer class indices, got dtype "
                         f"{targets.dtype}; convert with targets.astype('int64') (probabilities "
                         f"as targets are not supported)")
    if scores.ndim != 2 or targets.ndim != 1 or (None not in (scores.shape[0], targets.shape[0])
                                                 and scores.shape[0] != targets.shape[0]):
        raise ShapeError(f"{opname}: expects {what} of shape (N, C) and targets of shape "
                         f"(N,), got {fmt_shape(scores.shape)} and {fmt_shape(targets.shape)}")


@defop("nn", array_backward=True)
class cross_entropy:
    """Mean negative log-likelihood of integer ``targets`` under ``softmax(logits)``.

    One op rather than log_softmax + gather + mean, so its forward is stable and its
    backward is the famous ``(softmax(logits) - one_hot(targets)) / N``.
    """

    def forward(xp, logits, targets):
        shifted = logits - logits.max(axis=1, keepdims=True)
        picked = shifted[xp.arange(logits.shape[0]), targets]
        logz = xp.log(xp.exp(shifted).sum(axis=1))
        return (logz - picked).sum() / logits.dtype.type(logits.shape[0])

    def infer(logits, targets):
        check_class_targets("cross_entropy", "logits", logits, targets)
        return Aval((), logits.dtype)

    def backward(ctx, g):
        logits, targets = ctx.inputs
        return cross_entropy_grad(logits, targets, g), None

    def cost(logits, targets):
        return {"flops": 6 * numel(logits.shape), "bytes": nbytes(logits) + nbytes(targets)}


@defop("nn", array_backward=True)
class cross_entropy_grad:
    """``(softmax(logits) - one_hot(targets)) * g / N``: the backward of ``cross_entropy`` as one
    op (one dispatch, one pass), itself differentiable for second derivatives."""

    def forward(xp, logits, targets, g):
        e = xp.exp(logits - logits.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        p[xp.arange(logits.shape[0]), targets] -= 1
        p *= g / logits.dtype.type(logits.shape[0])
        return p

    def infer(logits, targets, g):
        check_class_targets("cross_entropy", "logits", logits, targets)
        return Aval(logits.shape, logits.dtype)

    def backward(ctx, gg):
        logits, targets, g = ctx.inputs
        n = count(logits, (0,))
        y = softmax(logits, axis=1)
        h = gg * (g / n)
        d_logits = y * (h - sum_(h * y, axis=(1,), keepdims=True))   # softmax's vector-Jacobian product
        delta = y - one_hot(targets, num_classes=logits.shape[1], dtype=logits.dtype)
        d_g = sum_(gg * delta, axis=None, keepdims=False) / n
        return d_logits, None, d_g

    def cost(logits, targets, g):
        return {"flops": 6 * numel(logits.shape), "bytes": 2 * nbytes(logits) + nbytes(targets)}
