"""``Flatten``: from image batches to feature rows, between a conv stack and a ``Linear``."""
from __future__ import annotations

from .module import Module


class Flatten(Module):
    """Merge every axis from ``start_axis`` on: ``(N, C, H, W) -> (N, C*H*W)``."""

    def __init__(self, start_axis=1):
        super().__init__()
        self.start_axis = int(start_axis)

    def forward(self, x):
        return x.flatten(self.start_axis)

    def extra_repr(self):
        return f"start_axis={self.start_axis}"
