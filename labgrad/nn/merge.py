"""Layers that join branches: ``Add`` (residual connections) and ``Concat`` (Inception, U-Net).

They take several inputs, so they appear in models with their own ``forward`` or in declarative
configs (``nn.from_config``), where ``bottom`` names the branches to join.
"""
from __future__ import annotations

from .. import functional as F
from ..errors import ShapeError
from .module import Module


class Add(Module):
    """The elementwise sum of its inputs (broadcasting): ``Add()(x, f(x))`` is a residual connection."""

    def forward(self, *xs):
        if len(xs) < 2:
            raise ShapeError(f"Add joins at least two inputs, got {len(xs)}")
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(Module):
    """Its inputs joined along ``axis`` (default 1: channels of (N, C, ...) or features of (N, F))."""

    def __init__(self, axis=1):
        super().__init__()
        self.axis = int(axis)

    def forward(self, *xs):
        return F.concatenate(list(xs), axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"
