"""Elementwise ops: one output value per (broadcast) input position.

These are the ops the fusion pass can merge into a single kernel, which is why each has an
``expr`` template next to its NumPy ``forward``.
"""
from __future__ import annotations

import math

from .registry import defop

_GELU_C = math.sqrt(2.0 / math.pi)


@defop("elementwise", expr="({0} + {1})", array_backward=True, commutative=True, ufunc="add")
class add:
    def forward(xp, a, b):
        return xp.add(a, b)

    def backward(ctx, g):
        return g, g


@defop("elementwise", expr="({0} - {1})", array_backward=True, ufunc="subtract")
class sub:
    def forward(xp, a, b):
        return xp.subtract(a, b)

    def backward(ctx, g):
        return g, -g


@defop("elementwise", expr="({0} * {1})", array_backward=True, commutative=True, ufunc="multiply")
class mul:
    def forward(xp, a, b):
        return xp.multiply(a, b)

    def backward(ctx, g):
        a, b = ctx.inputs
        if a is b:                 # x * x: one product serves both inputs (they add up to 2gx)
            ga = g * a
            return ga, ga
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


@defop("elementwise", expr="({0} / {1})", saves_output=True, array_backward=True, ufunc="true_divide")
class div:
    def forward(xp, a, b):
        return xp.true_divide(a, b)

    def backward(ctx, g):
        _, b = ctx.inputs
        ga = g / b                                   # d(a/b)/da = 1/b
        gb = -(ga * ctx.output) if ctx.needs_input_grad[1] else None   # d(a/b)/db = -(a/b)/b
        return ga, gb


@defop("elementwise", expr="(-{0})", array_backward=True)
class neg:
    def forward(xp, a):
        return xp.negative(a)

    def backward(ctx, g):
        return (-g,)


@defop("elementwise", expr="pow({0}, {1})", saves_output=True, flops=10, array_backward=True)
class pow_:
    def forward(xp, a, b):
        return xp.power(a, b)

    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        ga = g * b * a ** (b - 1) if need_a else None
        gb = g * ctx.output * _log_of(a) if need_b else None
        return ga, gb


def _log_of(a):
    """``log(a)``; a Python number stays a number (as a tensor it would land on the CPU)."""
    if isinstance(a, (int, float)):
        return math.log(a) if a > 0 else (-math.inf if a == 0 else math.nan)
    return log(a)


@defop("elementwise", expr="exp({0})", saves_output=True, flops=10, array_backward=True)
class exp:
    def forward(xp, a):
        return xp.exp(a)

    def backward(ctx, g):
        return (g * ctx.output,)


@defop("elementwise", expr="log({0})", flops=10, array_backward=True)
class log:
    def forward(xp, a):
        return xp.log(a)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (g / a,)


@defop("elementwise", expr="sqrt({0})", saves_output=True, flops=4, array_backward=True)
class sqrt:
    def forward(xp, a):
        return xp.sqrt(a)

    def backward(ctx, g):
        return (g / (2 * ctx.output),)


@defop("elementwise", expr="abs({0})", array_backward=True)
class abs_:
    def forward(xp, a):
        return xp.abs(a)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (g * sign(a),)


@defop("elementwise", expr="where({0} > 0, 1, where({0} < 0, -1, 0))", differentiable=False)
class sign:
    """-1, 0 or 1 in the input's dtype; its derivative is zero almost everywhere."""

    def forward(xp, a):
        return xp.sign(a)


@defop("elementwise", expr="sin({0})", flops=10, array_backward=True)
class sin:
    def forward(xp, a):
        return xp.sin(a)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (g * cos(a),)


@defop("elementwise", expr="cos({0})", flops=10, array_backward=True)
class cos:
    def forward(xp, a):
        return xp.cos(a)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (-g * sin(a),)


@defop("elementwise", expr="tanh({0})", saves_output=True, flops=10, array_backward=True)
class tanh:
    def forward(xp, a):
        return xp.tanh(a)

    def backward(ctx, g):
        return (tanh_grad(g, ctx.output),)


@defop("elementwise", expr="(1 / (1 + exp(-{0})))", saves_output=True, flops=12, array_backward=True)
class sigmoid:
    def forward(xp, a):
        # exp(-log(1 + exp(-a))): logaddexp never overflows, and both tails stay accurate
        return xp.exp(-xp.logaddexp(0, -a))

    def backward(ctx, g):
        return (sigmoid_grad(g, ctx.output),)


@defop("elementwise", expr="max({0}, 0)", array_backward=True)
class relu:
    def forward(xp, a):
        return xp.maximum(a, 0)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (relu_grad(g, a),)


# ---------------------------------------------------------------- fused gradients
# The backward rules of tanh, sigmoid and relu as single ops (PyTorch has the same three): one
# dispatch instead of three. Each is an ordinary differentiable op, so second derivatives work.

@defop("elementwise", expr="({0} * (1 - {1} * {1}))", flops=3, array_backward=True)
class tanh_grad:
    """``g * (1 - y**2)``: the gradient of ``y = tanh(x)``, given ``y``."""

    def forward(xp, g, y):
        return g * (1 - y * y)

    def backward(ctx, gg):
        g, y = ctx.inputs
        return tanh_grad(gg, y), gg * g * (-2 * y)


@defop("elementwise", expr="({0} * {1} * (1 - {1}))", flops=3, array_backward=True)
class sigmoid_grad:
    """``g * y * (1 - y)``: the gradient of ``y = sigmoid(x)``, given ``y``."""

    def forward(xp, g, y):
        return g * y * (1 - y)

    def backward(ctx, gg):
        g, y = ctx.inputs
        return sigmoid_grad(gg, y), gg * g * (1 - 2 * y)


@defop("elementwise", expr="where({1} > 0, {0}, 0)", array_backward=True)
class relu_grad:
    """``g`` where ``x > 0``, else 0: the gradient of ``relu(x)``, given ``x``."""

    def forward(xp, g, x):
        return g * (x > 0)  # (faster than where: one pass, no scalar broadcast)

    def backward(ctx, gg):
        _, x = ctx.inputs
        return relu_grad(gg, x), None   # the mask is flat: no gradient for x


@defop("elementwise", expr="where({0} > 0, {0}, {0} * {alpha})", flops=2, array_backward=True)
class leaky_relu:
    def forward(xp, a, *, alpha):
        return xp.where(a > 0, a, a * alpha)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (where(a > 0, g, g * ctx.attrs["alpha"]),)


@defop("elementwise", flops=20,
       expr="(0.5 * {0} * (1 + tanh(0.7978845608028654 * ({0} + 0.044715 * {0} * {0} * {0}))))", array_backward=True)
class gelu:
    """GELU with the tanh approximation (PyTorch's ``approximate='tanh'``)."""

    def forward(xp, a):
        return 0.5 * a * (1 + xp.tanh(_GELU_C * (a + 0.044715 * a * a * a)))

    def backward(ctx, g):
        (a,) = ctx.inputs
        t = tanh(_GELU_C * (a + 0.044715 * a * a * a))
        dt = _GELU_C * (1 + 3 * 0.044715 * a * a)
        return (g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * dt),)


@defop("elementwise", expr="max({0}, {1})", array_backward=True, commutative=True)
class maximum:
    def forward(xp, a, b):
        return xp.maximum(a, b)

    def backward(ctx, g):
        a, b = ctx.inputs
        pick_a = a >= b
        return where(pick_a, g, 0.0), where(pick_a, 0.0, g)


@defop("elementwise", expr="min({0}, {1})", array_backward=True, commutative=True)
class minimum:
    def forward(xp, a, b):
        return xp.minimum(a, b)

    def backward(ctx, g):
        a, b = ctx.inputs
        pick_a = a <= b
        return where(pick_a, g, 0.0), where(pick_a, 0.0, g)


@defop("elementwise", expr="where({0}, {1}, {2})", array_backward=True)
class where:
    """``cond ? a : b``; the condition gets no gradient."""

    def forward(xp, cond, a, b):
        return xp.where(cond, a, b)

    def backward(ctx, g):
        cond, _, _ = ctx.inputs
        return None, where(cond, g, 0.0), where(cond, 0.0, g)


@defop("elementwise", expr="min(max({0}, {lo}), {hi})", array_backward=True)
class clip:
    def forward(xp, a, *, lo, hi):
        return xp.clip(a, lo, hi)

    def backward(ctx, g):
        (a,) = ctx.inputs
        lo, hi = ctx.attrs["lo"], ctx.attrs["hi"]
        inside = (a >= lo) * (a <= hi)
        return (where(inside, g, 0.0),)


@defop("elementwise", expr="{0}", array_backward=True, view=True)
class cast:
    """Change the dtype; the gradient is cast back to the input's dtype."""

    def forward(xp, a, *, dtype):
        return a.astype(dtype, copy=False)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (cast(g, dtype=a.dtype),)


# ---------------------------------------------------------------- comparisons: bool results

@defop("compare", expr="({0} == {1})", differentiable=False, commutative=True)
class eq:
    def forward(xp, a, b):
        return xp.equal(a, b)


@defop("compare", expr="({0} != {1})", differentiable=False, commutative=True)
class ne:
    def forward(xp, a, b):
        return xp.not_equal(a, b)


@defop("compare", expr="({0} < {1})", differentiable=False)
class lt:
    def forward(xp, a, b):
        return xp.less(a, b)


@defop("compare", expr="({0} <= {1})", differentiable=False)
class le:
    def forward(xp, a, b):
        return xp.less_equal(a, b)


@defop("compare", expr="({0} > {1})", differentiable=False)
class gt:
    def forward(xp, a, b):
        return xp.greater(a, b)


@defop("compare", expr="({0} >= {1})", differentiable=False)
class ge:
    def forward(xp, a, b):
        return xp.greater_equal(a, b)


@defop("compare", expr="logical_and({0}, {1})", differentiable=False, commutative=True)
class logical_and:
    def forward(xp, a, b):
        return xp.logical_and(a, b)


@defop("compare", expr="logical_or({0}, {1})", differentiable=False, commutative=True)
class logical_or:
    def forward(xp, a, b):
        return xp.logical_or(a, b)


@defop("compare", expr="logical_not({0})", differentiable=False)
class logical_not:
    def forward(xp, a):
        return xp.logical_not(a)
