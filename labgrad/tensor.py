"""``Tensor``: an array on a device plus its place on the autograd tape, and the eager
interpreter that runs ops on tensors.

Operators and methods live in ``OpsMixin``, shared with the static graph's ``Symbol``: the same
user code builds an eager tape or a static graph depending only on what flows through it.

The eager interpreter is ``apply`` below: check devices, run the op's ``forward`` on the
backend's arrays, wrap the result, and (when gradients are wanted) record a ``TapeNode``.
Inputs that are not tensors or numbers (a graph ``Symbol``) are handed to their own
interpreter. Hooks (the profiler's, the jit tracer's) see each op first; with none installed
they cost one check.
"""
from __future__ import annotations

from numbers import Number

import numpy as np

from .autograd import no_grad, register_leaf_hook, retain_grad
from .autograd import backward as _backward
from .tape import OUTPUT_OVERWRITTEN, TapeNode
from .backends import CPU, get_backend, parse_device
from .context import call_hooked, context, stamps
from .errors import (DeviceError, DTypeError, GradError, LabgradError, ShapeError, format_location,
                     user_location)
from .ops import device as transfer, elementwise as ew, linalg, nn, reduce as red, shape as sh, state
from .ops.registry import aval_of, fmt_shape

_default_float = np.dtype(np.float32)
_add, _sub, _mul, _div, _pow, _neg, _matmul = ew.add, ew.sub, ew.mul, ew.div, ew.pow_, ew.neg, linalg.matmul


def get_default_dtype():
    return _default_float


def set_default_dtype(dtype):
    """The dtype of tensors made from Python floats (float32 unless you change it)."""
    global _default_float
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise DTypeError(f"the default dtype must be a floating dtype, not {dtype}")
    _default_float = dtype


def _shape_arg(shape):
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)) and shape[0] is not None:
        shape = tuple(shape[0])
    return tuple(None if d is None else int(d) for d in shape)


def resolve_shape(old, new, opname="reshape"):
    """Replace a ``-1`` in ``new`` with the size that keeps the element count."""
    if sum(1 for d in new if d == -1) > 1:
        raise ShapeError(f"{opname}: only one size can be -1, got {fmt_shape(new)}"
                         f"{format_location(user_location())}")
    if -1 not in new:
        return new
    if any(d is None for d in old) or any(d is None for d in new):
        return tuple(None if d == -1 else d for d in new)
    known = int(np.prod([d for d in new if d != -1]))
    total = int(np.prod(old))
    if known == 0 or total % known:
        raise ShapeError(f"{opname}: cannot reshape {fmt_shape(old)} ({total} elements) to "
                         f"{fmt_shape(new)}: {total} is not a multiple of {known}, so no size fits "
                         f"the -1{format_location(user_location())}")
    return tuple(total // known if d == -1 else d for d in new)


def _axis(axis, dim):
    if dim is not None:
        if axis is not None:
            raise TypeError("pass axis= or its alias dim=, not both")
        return dim
    return axis


class OpsMixin:
    """The operator surface shared by ``Tensor`` and graph ``Symbol``: needs ``shape``, ``dtype``."""

    __slots__ = ()
    __array_ufunc__ = None  # numpy_array + tensor -> Tensor.__radd__, not an object array

    @property
    def ndim(self):
        return len(self.shape)

    # ---- arithmetic
    def __add__(self, other): return apply(_add, self, other)
    def __radd__(self, other): return apply(_add, other, self)
    def __sub__(self, other): return apply(_sub, self, other)
    def __rsub__(self, other): return apply(_sub, other, self)
    def __mul__(self, other): return apply(_mul, self, other)
    def __rmul__(self, other): return apply(_mul, other, self)
    def __truediv__(self, other): return apply(_div, self, other)
    def __rtruediv__(self, other): return apply(_div, other, self)
    def __pow__(self, other): return apply(_pow, self, other)
    def __rpow__(self, other): return apply(_pow, other, self)
    def __matmul__(self, other): return apply(_matmul, self, other)
    def __rmatmul__(self, other): return apply(_matmul, other, self)
    def __neg__(self): return apply(_neg, self)
    def __pos__(self): return self
    def __abs__(self): return apply(ew.abs_, self)

    # ---- comparisons (bool results, no gradient)
    def __lt__(self, other): return apply(ew.lt, self, other)
    def __le__(self, other): return apply(ew.le, self, other)
    def __gt__(self, other): return apply(ew.gt, self, other)
    def __ge__(self, other): return apply(ew.ge, self, other)
    def __eq__(self, other): return apply(ew.eq, self, other)
    def __ne__(self, other): return apply(ew.ne, self, other)
    __hash__ = object.__hash__
    def __and__(self, other): return apply(ew.logical_and, self, other)
    def __or__(self, other): return apply(ew.logical_or, self, other)
    def __invert__(self): return apply(ew.logical_not, self)

    # ---- elementwise functions
    def exp(self): return apply(ew.exp, self)
    def log(self): return apply(ew.log, self)
    def sqrt(self): return apply(ew.sqrt, self)
    def abs(self): return apply(ew.abs_, self)
    def sin(self): return apply(ew.sin, self)
    def cos(self): return apply(ew.cos, self)
    def tanh(self): return apply(ew.tanh, self)
    def sigmoid(self): return apply(ew.sigmoid, self)
    def relu(self): return apply(ew.relu, self)
    def sign(self): return apply(ew.sign, self)

    def clip(self, min=None, max=None):
        return apply(ew.clip, self, lo=min, hi=max)

    clamp = clip

    def astype(self, dtype):
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else apply(ew.cast, self, dtype=dtype)

    def float(self): return self.astype(np.float32)
    def double(self): return self.astype(np.float64)
    def long(self): return self.astype(np.int64)

    # ---- reductions
    def _reduce(self, op, axis, keepdims, **attrs):
        if axis is not None:
            axis = red.normalize_axis(axis, self.ndim, op.name)
        return apply(op, self, axis=axis, keepdims=bool(keepdims), **attrs)

    def sum(self, axis=None, keepdims=False, *, dim=None):
        return self._reduce(red.sum_, _axis(axis, dim), keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None):
        return self._reduce(red.mean, _axis(axis, dim), keepdims)

    def max(self, axis=None, keepdims=False, *, dim=None):
        return self._reduce(red.max_, _axis(axis, dim), keepdims)

    def min(self, axis=None, keepdims=False, *, dim=None):
        return self._reduce(red.min_, _axis(axis, dim), keepdims)

    def var(self, axis=None, keepdims=False, ddof=0, *, dim=None):
        return self._reduce(red.var, _axis(axis, dim), keepdims, ddof=int(ddof))

    def std(self, axis=None, keepdims=False, ddof=0, *, dim=None):
        return self.var(axis, keepdims, ddof, dim=dim).sqrt()

    def any(self, axis=None, keepdims=False, *, dim=None):
        """A bool tensor: is any element nonzero? (``if (x > 0).any():`` reads it as a bool.)"""
        return self._reduce(red.any_, _axis(axis, dim), keepdims)

    def all(self, axis=None, keepdims=False, *, dim=None):
        return self._reduce(red.all_, _axis(axis, dim), keepdims)

    def logsumexp(self, axis=None, keepdims=False, *, dim=None):
        return self._reduce(red.logsumexp, _axis(axis, dim), keepdims)

    def softmax(self, axis=-1, *, dim=None):
        return apply(nn.softmax, self, axis=red.normalize_axis(_axis(axis, dim), self.ndim)[0])

    def log_softmax(self, axis=-1, *, dim=None):
        return apply(nn.log_softmax, self, axis=red.normalize_axis(_axis(axis, dim), self.ndim)[0])

    # ---- shape
    def reshape(self, *shape):
        shape = resolve_shape(self.shape, _shape_arg(shape))
        return self if shape == tuple(self.shape) else apply(sh.reshape, self, shape=shape)

    view = reshape

    def flatten(self, start_axis=0):
        start = start_axis % max(self.ndim, 1)
        return self.reshape(tuple(self.shape[:start]) + (-1,))

    def transpose(self, *axes):
        if not axes or axes == (None,):
            axes = tuple(reversed(range(self.ndim)))
        elif len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])
        if len(axes) == 2 and self.ndim != 2:   # PyTorch's transpose(dim0, dim1)
            perm = list(range(self.ndim))
            i, j = (a % self.ndim for a in axes)
            perm[i], perm[j] = perm[j], perm[i]
            axes = tuple(perm)
        axes = tuple(a % self.ndim for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ShapeError(f"transpose: {axes} is not a permutation of the {self.ndim} axes of {fmt_shape(self.shape)}")
        return apply(sh.transpose, self, axes=axes)

    def permute(self, *axes):
        return self.transpose(*axes)

    @property
    def T(self):
        return self.transpose()

    @property
    def mT(self):
        return linalg.matrix_transpose(self)

    def swapaxes(self, a, b):
        perm = list(range(self.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return apply(sh.transpose, self, axes=tuple(perm))

    def squeeze(self, axis=None, *, dim=None):
        axis = _axis(axis, dim)
        if axis is None:
            axes = tuple(i for i, d in enumerate(self.shape) if d == 1)
        else:
            axes = red.normalize_axis(axis, self.ndim, "squeeze")
            bad = [a for a in axes if self.shape[a] != 1]
            if bad:
                raise ShapeError(f"squeeze: axis {bad[0]} of {fmt_shape(self.shape)} has size "
                                 f"{self.shape[bad[0]]}, not 1; only size-1 axes can be squeezed")
        return apply(sh.squeeze, self, axis=axes) if axes else self

    def unsqueeze(self, axis, *, dim=None):
        axis = _axis(axis, dim)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        n = self.ndim + len(axes)
        return apply(sh.unsqueeze, self, axis=tuple(sorted(a % n for a in axes)))

    expand_dims = unsqueeze

    def broadcast_to(self, *shape):
        shape = _shape_arg(shape)
        shape = tuple(old if new == -1 else new for old, new in
                      zip((None,) * (len(shape) - self.ndim) + tuple(self.shape), shape))
        return self if shape == tuple(self.shape) else apply(sh.broadcast_to, self, shape=shape)

    expand = broadcast_to

    def __getitem__(self, index):
        template, index_values = _split_index(normalize_index(index, self))
        return apply(sh.getitem, self, *index_values, index=template)

    def matmul(self, other):
        return apply(linalg.matmul, self, other)

    def dot(self, other):
        return apply(linalg.matmul, self, other)


def _split_index(index):
    """Index entries that are graph values (a placeholder, a traced tensor) become op inputs;
    the rest stays in the ``index`` attribute (see ``ops.shape.split_index``)."""
    return sh.split_index(index, lambda i: hasattr(i.__class__, "_lg_apply"))


def normalize_index(index, x):
    """A hashable-ish tuple index with tensors and lists turned into backend arrays."""
    if not isinstance(index, tuple):
        index = (index,)
    backend = getattr(x, "_backend", CPU)
    out = []
    for i in index:
        if isinstance(i, Tensor):
            if i.dtype.kind not in "iub":
                raise DTypeError(f"indexing with a {i.dtype} tensor: index tensors must hold integers or bools")
            i = i.data
        elif isinstance(i, (list, np.ndarray)):
            i = backend.asarray(i)
            if i.dtype.kind not in "iub":
                raise DTypeError(f"indexing with a {i.dtype} array: indices must be integers or bools")
        elif isinstance(i, np.integer):
            i = int(i)
        out.append(i)
    return tuple(out)


# ---------------------------------------------------------------- the eager interpreter

_SCALARS = (float, int, bool)
_new = object.__new__


def apply(op, *inputs, **attrs):
    """Run ``op`` now on ``inputs`` (Tensors and Python numbers; anything else is handed on).

    This is the eager fast path, kept flat on purpose: it runs for every op of every step.
    """
    if context.hooks:
        return _apply_hooked(op, inputs, attrs)
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
            if op.output_device is not None:   # a transfer: the result lives elsewhere
                backend = get_backend(op.output_device(attrs))
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
    t._grad = None
    if tracked and context.grad_enabled and op.differentiable:
        node = _new(TapeNode)
        node.op = op
        node._inputs = inputs
        node.attrs = attrs
        node.saved_output = out if op.saves_output else None
        node.stamp = next(stamps)
        node.scope = context.scope
        t._requires_grad = True
        t.grad_fn = node
    else:
        t._requires_grad = False
        t.grad_fn = None
    return t


def _apply_hooked(op, inputs, attrs):
    # Its own function: a closure inside ``apply`` would make every variable there slower.
    return call_hooked(context.hooks, op, inputs, attrs, lambda: apply(op, *inputs, **attrs),
                       "forward")


def _apply_other(op, inputs, attrs):
    """Inputs that are not all Tensors and numbers: symbols, NumPy arrays, NumPy scalars."""
    if context.raw_arrays is not None:  # a backward rule run on raw arrays (see autograd.py)
        return op.forward(context.raw_arrays, *inputs, **attrs)
    for x in inputs:
        interpret = getattr(x.__class__, "_lg_apply", None)
        if interpret is not None and x.__class__ is not Tensor:
            return interpret(op, inputs, attrs)
    converted = []
    for x in inputs:
        if isinstance(x, Tensor):
            converted.append(x)
        elif isinstance(x, np.generic):
            converted.append(x.item())
        elif isinstance(x, Number):
            converted.append(float(x) if isinstance(x, float) else x)
        elif isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
            converted.append(array_as_tensor(x))
        else:
            raise TypeError(f"{op.name}: cannot use an input of type {type(x).__name__}; "
                            f"pass a labgrad Tensor, a NumPy array or a Python number")
    return apply(op, *converted, **attrs)


def array_as_tensor(x):
    """A NumPy (or CuPy) array as a constant Tensor on its own device, without copying."""
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


# ---------------------------------------------------------------- Tensor

class Tensor(OpsMixin):
    """An n-dimensional array on a device, which can record how it was computed.

    >>> x = lg.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    tensor([2., 4.])
    """

    __slots__ = ("data", "_requires_grad", "_grad", "grad_fn", "_backend", "__dict__", "__weakref__")
    # rarely set, so class defaults rather than a store per op: a tensor gets its own value
    # (in a lazily made __dict__) only when a name, hook or in-place change gives it one
    name = None
    _hooks = None
    _modified_at = 0

    def __init__(self, data, dtype=None, device=None, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        backend = get_backend(device) if device is not None else (
            CPU if not hasattr(data, "__cuda_array_interface__") else get_backend(f"cuda:{data.device.id}"))
        if dtype is None and not hasattr(data, "dtype"):
            probe = np.asarray(data)
            dtype = _default_float if probe.dtype.kind == "f" else None
            data = probe
        self.data = backend.asarray(data, dtype=None if dtype is None else np.dtype(dtype))
        self._backend = backend
        self._grad = None
        self.grad_fn = None
        if name is not None:
            self.name = name
        self._requires_grad = False
        self.requires_grad = requires_grad
        if context.tracer is not None:
            context.tracer.created(self)

    @classmethod
    def _wrap(cls, data, backend=None):
        """A Tensor around an existing array: no copy, no checks (the engine's fast path)."""
        t = _new(cls)
        t.data = data
        t._backend = backend or CPU
        t._requires_grad = False
        t._grad = t.grad_fn = None
        if context.tracer is not None:
            context.tracer.created(t)
        return t

    @staticmethod
    def _lg_apply(op, inputs, attrs):
        """The interpreter that ``dispatch.apply`` uses for tensors: the eager one."""
        return apply(op, *inputs, **attrs)

    # ---- properties
    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (``None`` until then).

        While ``lg.jit`` traces, reads and writes go to the tracer, which records them.
        """
        tracer = context.tracer
        return self._grad if tracer is None else tracer.get_grad(self)

    @grad.setter
    def grad(self, value):
        tracer = context.tracer
        if tracer is None:
            self._grad = value
        else:
            tracer.set_grad(self, value)

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.dtype.kind not in "fc":
            raise DTypeError(f"only floating-point tensors can require gradients; this one is "
                             f"{self.dtype}. Convert it first: x = x.astype('float32')")
        if not value and self.grad_fn is not None:
            raise GradError("cannot turn off requires_grad on a computed tensor; use y.detach()")
        self._requires_grad = bool(value)

    def requires_grad_(self, value=True):
        self.requires_grad = value
        return self

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def device(self):
        return self._backend.device

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ---- conversion
    def numpy(self):
        """The values as a NumPy array (copied from the GPU when needed)."""
        return self._backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {tuple(self.shape)}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.size} elements is ambiguous; "
                             f"use (x > 0).any() style reductions, or .item() on a single element")
        return bool(self.item())

    def __float__(self): return float(self.item())
    def __int__(self): return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self.item())

    def __format__(self, spec):
        return format(self.item(), spec) if spec and self.size == 1 else format(str(self), spec)

    def detach(self):
        """The same values, cut off from the tape (shares memory)."""
        return Tensor._wrap(self.data, self._backend)

    def clone(self):
        return self + 0 if self._requires_grad else Tensor._wrap(self.data.copy(), self._backend)

    def to(self, target):
        """Move to a device (``"cpu"``, ``"cuda:0"``) or change dtype; differentiable."""
        try:
            dev = parse_device(target)
        except (TypeError, ValueError):
            return self.astype(target)
        return self if dev == self.device else apply(transfer.to_device, self, device=str(dev))

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    # ---- autograd
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad."""
        _backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, fn):
        """Call ``fn(grad)`` when this tensor's gradient is computed; a returned value replaces it."""
        if not self.requires_grad:
            raise GradError("register_hook on a tensor that does not require grad")
        return register_leaf_hook(self, fn) if self.grad_fn is None else self.grad_fn.register_hook(fn)

    def retain_grad(self):
        retain_grad(self)
        return self

    # ---- in-place updates: an op computes the new value, the ``assign`` op writes it
    def _check_inplace(self, what, other=None):
        if context.grad_enabled and (self._requires_grad or getattr(other, "_requires_grad", False)):
            if self.grad_fn is None and self._requires_grad:
                why = ("it is a leaf that requires grad: changing it in place would change the value "
                       "its gradient is taken at")
            else:
                why = "it is part of the recorded graph"
            raise GradError(f"{what} on a tensor that requires grad is not allowed: {why}.\n"
                            f"  Build a new tensor instead (y = y + ..., or lg.where for parts), "
                            f"or update it inside `with lg.no_grad():` (as optimizers do).")

    def _inplace(self, op, other):
        if context.grad_enabled:
            self._check_inplace(f"in-place {op.name}", other)
        if op.ufunc and not context.hooks and self._update_with_ufunc(op.ufunc, other):
            return self
        with no_grad():
            return self._assign(apply(op, self, other))

    def _update_with_ufunc(self, ufunc, other):
        """The common case (``p -= lr * g``) straight into this tensor's memory with the op's
        ufunc and ``out=``: what ``assign(self, op(self, other))`` computes, without a
        temporary array or a copy. False when it does not apply (other devices, shapes that
        would grow, dtypes that would change): the general path then explains."""
        if other.__class__ is Tensor:
            if other._backend is not self._backend:
                return False
            other = other.data
        elif other.__class__ not in (float, int):
            return False
        try:
            getattr(self._backend.xp, ufunc)(self.data, other, out=self.data)
        except (ValueError, TypeError):  # broadcasting or casting: checked before any writing
            return False
        self._mark_modified()
        return True

    def _assign(self, value):
        """Write ``value`` (a tensor, array, list or number; broadcast) into this tensor's memory."""
        if not isinstance(value, (OpsMixin, bool, int, float)):   # lists, NumPy arrays
            value = array_as_tensor(self._backend.asarray(value))
        out = apply(state.assign, self, value)
        if out.__class__ is Tensor:   # while tracing, the tracer recorded the write instead
            self._mark_modified()
        return self

    def _mark_modified(self):
        self._modified_at = context.last_inplace = next(stamps)
        node = self.grad_fn
        if node is not None and node.saved_output is not None:
            node.saved_output = OUTPUT_OVERWRITTEN  # its backward needed the old value: it must refuse

    def __iadd__(self, other): return self._inplace(ew.add, other)
    def __isub__(self, other): return self._inplace(ew.sub, other)
    def __imul__(self, other): return self._inplace(ew.mul, other)
    def __itruediv__(self, other): return self._inplace(ew.div, other)

    def __setitem__(self, index, value):
        """``t[index] = value``: the ``setitem`` op computes the new value (NumPy's rules; with
        a repeated index the last write wins), ``assign`` writes it into this tensor."""
        self._check_inplace("assigning into part of a tensor (t[i] = v)")
        if not isinstance(value, (OpsMixin, bool, int, float)):   # lists, NumPy arrays
            value = array_as_tensor(self._backend.asarray(value, dtype=self.dtype))
        template, index_values = _split_index(normalize_index(index, self))
        with no_grad():
            return self._assign(apply(sh.setitem, self, value, *index_values, index=template))

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self._check_inplace("fill_")
        with no_grad():
            return self._assign(value)

    def copy_(self, src):
        self._check_inplace("copy_")
        with no_grad():
            return self._assign(src)

    # ---- printing
    def __repr__(self):
        data = self.numpy()
        body = np.array2string(data, separator=", ", precision=4, prefix="tensor(",
                               floatmode="maxprec_equal" if data.dtype.kind == "f" else "maxprec")
        extras = []
        if data.dtype != _default_float and not (data.dtype.kind in "b" or data.dtype == np.int64):
            extras.append(f"dtype={data.dtype}")
        elif data.dtype.kind in "iub" and data.size == 0:
            extras.append(f"dtype={data.dtype}")
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.op.name}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__
