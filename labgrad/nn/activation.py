"""Activation layers: modules around the functions in ``labgrad.functional``.

They hold no parameters; they exist so activations can sit in a ``Sequential`` and show up,
named, in drawings of the model.
"""
from __future__ import annotations

from .. import functional as F
from .module import Module


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere: negative inputs keep a gradient."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class GELU(Module):
    """The Gaussian error linear unit of transformer MLPs, ``x * Phi(x)``, in its tanh
    approximation (PyTorch's ``GELU(approximate="tanh")``)."""

    def forward(self, x):
        return F.gelu(x)


class Softmax(Module):
    """Probabilities along ``axis`` (for a classifier's output at inference; train on logits
    with ``CrossEntropyLoss``, which is more stable)."""

    def __init__(self, axis=-1, *, dim=None):
        super().__init__()
        self.axis = axis if dim is None else dim

    def forward(self, x):
        return F.softmax(x, axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"
