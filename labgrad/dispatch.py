"""``apply``: the one place where every op is executed.

Eager tensors go through the fast path below: check devices, run the op's ``forward`` on the
backend's arrays, wrap the result, and (when gradients are wanted) record a ``TapeNode``.
Anything else that flows through ops, such as a static-graph ``Symbol``, names its own
interpreter with an ``_lg_apply`` class method, which ``apply`` hands the call to.

Hooks (the profiler's) are called around each eager op; with no hook installed they cost one
check of a module global.
"""
from __future__ import annotations

import itertools
from numbers import Number

import numpy as np

from .backends import CPU
from .errors import DeviceError, DTypeError, LabgradError, ShapeError, format_location, user_location

grad_enabled = True   # switched by no_grad / enable_grad (see autograd.py)
clock = itertools.count(1)  # stamps tape nodes and in-place changes, in the order they happen
last_inplace = 0      # the stamp of the latest in-place change (0: none yet)
array_xp = None       # set while autograd runs a backward rule on raw arrays: ops just compute
scope = None          # the current name scope ("block1/attn"), recorded on each tape node
_hooks: list = []     # objects with on_op(op, inputs, attrs, run) -> output; run() runs the op
tracer = None         # the active lg.jit tracer; Tensor's in-place methods report to it (graph/trace.py)

_SCALARS = (float, int, bool)


def apply(op, *inputs, **attrs):
    """Run ``op`` on ``inputs`` (Tensors, Python numbers, NumPy arrays, or graph symbols).

    This is the eager fast path, kept flat on purpose: it runs for every op of every step.
    """
    if _hooks and not _in_hook:
        return _call_hooked(op, inputs, attrs)
    backend = None
    args = []
    tracked = False
    for x in inputs:
        cls = x.__class__
        if cls is Tensor:
            b = x._backend
            if backend is None:
                backend = b
            elif b is not backend:
                raise _device_error(op, inputs)
            args.append(x.data)
            if x._requires_grad:
                tracked = True
        elif cls in _SCALARS:
            args.append(x)
        else:
            return _apply_other(op, inputs, attrs)
    if backend is None:
        backend = CPU
    try:
        if attrs or len(args) > 2:
            out = op.forward(backend.xp, *args, **attrs)
        elif len(args) == 2:  # a direct call: star-unpacking costs more than the op itself
            out = op.forward(backend.xp, args[0], args[1])
        else:
            out = op.forward(backend.xp, *args)
    except LabgradError:
        raise
    except Exception as e:
        raise explain_failure(op, inputs, attrs, e) from None
    t = _new(Tensor)
    t.data = out
    t._backend = backend
    t.grad = None
    if tracked and grad_enabled and op.differentiable:
        node = _new(TapeNode)
        node.op = op
        node._inputs = inputs
        node.attrs = attrs
        node._out = out if op.saves_output else None
        node._stamp = next(clock)
        node.scope = scope
        t._requires_grad = True
        t.grad_fn = node
    else:
        t._requires_grad = False
        t.grad_fn = None
    return t


_in_hook = False


def _call_hooked(op, inputs, attrs):
    """Let the innermost hook (e.g. the profiler) wrap this op; ``run()`` executes it."""
    def run():
        global _in_hook
        _in_hook = True
        try:
            return apply(op, *inputs, **attrs)
        finally:
            _in_hook = False
    return _hooks[-1].on_op(op, inputs, attrs, run)


def _apply_other(op, inputs, attrs):
    """Inputs that are not all Tensors and numbers: symbols, NumPy arrays, NumPy scalars."""
    if array_xp is not None:  # a backward rule run on raw arrays (see autograd._ArrayCtx)
        return op.forward(array_xp, *inputs, **attrs)
    for x in inputs:
        apply_fn = getattr(type(x), "_lg_apply", None)
        if apply_fn is not None and type(x) is not Tensor:
            return apply_fn(op, inputs, attrs)
    converted = []
    for x in inputs:
        if isinstance(x, Tensor):
            converted.append(x)
        elif isinstance(x, np.generic):
            converted.append(x.item())
        elif isinstance(x, Number):
            converted.append(float(x) if isinstance(x, float) else x)
        elif isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
            converted.append(as_tensor(x))
        else:
            raise TypeError(f"{op.name}: cannot use an input of type {type(x).__name__}; "
                            f"pass a labgrad Tensor, a NumPy array or a Python number")
    return apply(op, *converted, **attrs)


def as_tensor(x):
    """A NumPy (or CuPy) array as a constant Tensor on its own device, without copying."""
    from .backends import get_backend

    if isinstance(x, np.ndarray):
        return Tensor._wrap(x, CPU)
    return Tensor._wrap(x, get_backend(f"cuda:{x.device.id}"))


def _describe(x):
    if isinstance(x, Tensor):
        return f"{x.dtype}{list(x.shape)} on {x.device}"
    return repr(x)


def _device_error(op, inputs):
    devices = [str(x.device) for x in inputs if isinstance(x, Tensor)]
    first = devices[0]
    other = next(d for d in devices if d != first)
    return DeviceError(
        f"{op.name}: inputs are on different devices: {first} and {other} "
        f"({', '.join(_describe(x) for x in inputs)}).{format_location(user_location())}\n"
        f"  Move one of them first, e.g. y = y.to('{first}').")


def explain_failure(op, inputs, attrs, error):
    """Turn an exception from a backend into a labgrad error that teaches.

    The op's ``infer`` rule is consulted first: it knows *why* shapes or dtypes do not fit.
    """
    from .ops.registry import aval_of

    where = format_location(user_location())
    try:
        op.infer(*[aval_of(x) for x in inputs], **attrs)
    except (ShapeError, DTypeError) as e:
        return type(e)(f"{e}{where}")
    except Exception:
        pass
    described = ", ".join(_describe(x) for x in inputs)
    cls = ShapeError if isinstance(error, ValueError) else (DTypeError if isinstance(error, TypeError) else LabgradError)
    return cls(f"{op.name} failed on inputs ({described}): {type(error).__name__}: {error}{where}")


_new = object.__new__
Tensor = TapeNode = None  # bound by tensor.py once both classes exist (they import this module)
