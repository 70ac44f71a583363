"""``Linear``: the affine layer ``x @ W + b``."""
from __future__ import annotations

import math

from .. import functional as F
from ..creation import zeros
from . import init
from .module import Module, Parameter


class Linear(Module):
    """``y = x @ weight + bias``, with ``weight`` of shape ``(in_features, out_features)``.

    The layout is PyTorch's transposed on purpose: ``x @ W`` reads like the maths on the
    board and like the static-graph examples (``a @ w``), with no hidden ``.T``. Convert a
    PyTorch ``nn.Linear`` weight with ``.T`` when moving values across.

    Both weight and bias start uniform in ``(-1/sqrt(in_features), 1/sqrt(in_features))``,
    drawn from labgrad's seeded generator (``lg.manual_seed``).

    >>> fc = nn.Linear(64, 10)
    >>> fc(lg.zeros(32, 64)).shape
    (32, 10)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, device=None):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
        self.weight = Parameter(zeros(self.in_features, self.out_features, dtype=dtype, device=device))
        init.uniform_(self.weight, -bound, bound)
        if bias:
            self.bias = Parameter(zeros(self.out_features, dtype=dtype, device=device))
            init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
