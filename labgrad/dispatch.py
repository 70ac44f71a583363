"""``apply``: the one dispatch point. It picks the interpreter that gives an op call meaning.

An op call ``apply(op, *inputs, **attrs)`` (which is what ``op(*inputs)`` and ``x + y`` do)
means different things depending on what flows through it:

* raw backend arrays while autograd runs backward rules in *array mode*
  (``context.raw_arrays`` is set): just compute, ``op.forward(xp, *inputs)``;
* a type that names its interpreter with an ``_lg_apply(op, inputs, attrs)`` class method:
  ``Tensor`` (the eager interpreter: compute now, record a tape node; ``tensor.py``) or a
  graph ``Symbol`` (the graph builder: add a node; ``graph/symbol.py``);
* only Python numbers and NumPy arrays: an error that says to make one a tensor first.

The interpreters themselves consult ``labgrad.context`` for grad mode, hooks and the tracer.
This module is at the bottom of the engine: it imports no other part of it, so every layer
above (op definitions included) can call ``apply``.
"""
from __future__ import annotations

from .context import context


def apply(op, *inputs, **attrs):
    """Run ``op`` on ``inputs`` with the interpreter their types name (see the module docstring)."""
    xp = context.raw_arrays
    if xp is not None:
        return op.forward(xp, *inputs, **attrs)
    for x in inputs:
        interpret = getattr(x.__class__, "_lg_apply", None)
        if interpret is not None:
            return interpret(op, inputs, attrs)
    names = ", ".join(type(x).__name__ for x in inputs) or "no inputs"
    raise TypeError(f"{op.name}: none of its inputs ({names}) is a labgrad Tensor or graph "
                    f"Symbol, so there is nothing to say how to run it.\n  Make one of them a "
                    f"tensor first, e.g. lg.tensor(x), or call a function from labgrad.functional.")
