"""Initial values for parameters, written in place from labgrad's seeded generator.

Each function fills an existing tensor under ``no_grad`` and returns it, so ``lg.manual_seed``
makes a model's starting point reproducible::

    lg.manual_seed(0)
    nn.init.kaiming_uniform_(layer.weight)

Fan-in and fan-out follow labgrad's layouts: a ``Linear`` weight is ``(in_features,
out_features)`` (so fan-in is ``shape[0]``, unlike PyTorch); a ``Conv2d`` weight is
``(out_channels, in_channels, kh, kw)`` (fan-in is ``in_channels * kh * kw``, as in PyTorch).
"""
from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import randn, uniform as _uniform
from ..errors import ShapeError


def _fill(tensor, values):
    with no_grad():
        tensor.copy_(values)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with values drawn uniformly from ``[a, b)``."""
    return _fill(tensor, _uniform(*tensor.shape, low=a, high=b, dtype=tensor.dtype, device=tensor.device))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with values drawn from a normal distribution."""
    values = randn(*tensor.shape, dtype="float64", device=tensor.device) * std + mean
    return _fill(tensor, values.astype(tensor.dtype))


def zeros_(tensor):
    with no_grad():
        return tensor.zero_()


def ones_(tensor):
    with no_grad():
        return tensor.fill_(1)


def constant_(tensor, value):
    with no_grad():
        return tensor.fill_(value)


def fans(shape):
    """``(fan_in, fan_out)``: how many inputs feed one output, and outputs one input feeds."""
    if len(shape) < 2:
        raise ShapeError(f"fan-in and fan-out need a weight with at least 2 dimensions, got shape "
                         f"{tuple(shape)}; initialize a bias with uniform_ or zeros_ instead")
    if len(shape) == 2:                       # Linear: (in_features, out_features)
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])          # Conv: (out_channels, in_channels, *kernel)
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """How much an activation shrinks the variance of its input, to be undone by the init."""
    if nonlinearity in ("linear", "sigmoid", "conv2d", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of "
                     f"linear, sigmoid, tanh, relu, leaky_relu")


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015): keeps the variance of activations steady through ReLU layers.

    Draws from ``U(-bound, bound)`` with ``bound = gain * sqrt(3 / fan)``.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', not {mode!r}")
    fan_in, fan_out = fans(tuple(tensor.shape))
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot & Bengio (2010): balances the variance of activations and of gradients.

    Draws from ``U(-bound, bound)`` with ``bound = gain * sqrt(6 / (fan_in + fan_out))``.
    """
    fan_in, fan_out = fans(tuple(tensor.shape))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)
