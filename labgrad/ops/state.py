"""Writing into existing memory: the one op behind every in-place update.

``x += y``, ``x.fill_(0)``, ``x.copy_(src)`` and ``x[i] = v`` all compute a new value with
ordinary ops and then ``assign`` it into the tensor. Eagerly that writes the tensor's array;
under ``lg.jit`` the tracer records it as a state update of the graph, so the two agree.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from .registry import Aval, broadcast_shapes, defop, fmt_shape


@defop("state", differentiable=False, writes_input=0, effects=("writes_state",))
class assign:
    """Write ``value`` (broadcast, cast within its kind) into ``target``; returns ``target``."""

    def forward(xp, target, value):
        xp.copyto(target, value, casting="same_kind")
        return target

    def infer(target, value):
        if isinstance(value, Aval):
            shape = broadcast_shapes("assign", target.shape, value.shape)
            if len(shape) != len(target.shape) or any(
                    a is not None and b is not None and a != b for a, b in zip(shape, target.shape)):
                raise ShapeError(f"in-place update: a value of shape {fmt_shape(value.shape)} cannot be "
                                 f"written into a tensor of shape {fmt_shape(target.shape)}; an "
                                 f"in-place op cannot change shape")
            if not np.can_cast(value.dtype, target.dtype, casting="same_kind"):
                raise DTypeError(f"in-place update: a {value.dtype} value cannot be written into "
                                 f"this {target.dtype} tensor (it would change its dtype); "
                                 f"convert it first with .astype('{target.dtype}')")
        return Aval(target.shape, target.dtype)
