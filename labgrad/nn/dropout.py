"""``Dropout``: randomly silence activations while training, a cheap regularizer."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode and scale the survivors by
    ``1/(1-p)``; in ``eval()`` mode pass the input through unchanged."""

    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p is the probability of dropping an element and must be "
                             f"in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"
