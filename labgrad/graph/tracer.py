"""The ``Tracer``: records one call of a function as a graph, for ``lg.jit``.

While a function is traced, every op goes to the graph builder instead of running, and the
tracer keeps track of the real tensors the function touches. ``jit_function.py`` decides
when to trace and runs the result; this module is what happens during one trace.
What the tracer has to capture, and how:

* every op: a dispatch hook (``dispatch._hooks``) turns each ``apply`` into a graph node;
* in-place updates (``p -= lr * g``, ``buf *= m``, ``fill_``, ``copy_``, ``t[i] = v``):
  ``Tensor``'s in-place methods report to ``dispatch.tracer``, which records an ``assign``;
* ``.grad``: while tracing, ``Tensor.grad`` is swapped for a property that watches reads and
  writes. ``loss.backward()`` on a symbol computes symbolic gradients (``gradients``) for
  every captured leaf that requires grad and stores them in ``.grad`` the way eager autograd
  does (``g`` if ``.grad`` is None, else ``.grad + g``); after each run the compiled code puts
  real tensors there. Whether each ``.grad`` was None when the trace started is a *guard*:
  if it differs on a later call, the function is traced again;
* tensors created during the trace and then changed in place may be new state (an optimizer
  creating its buffers on the first step) or temporaries; if any of them is still alive at
  the next call, the function is traced again so that they become variables.

Python sees symbols, not values: ``if loss > 0:`` raises a ``TraceError`` pointing to
``lg.cond`` / ``lg.while_loop``. Python numbers read during the trace (a learning rate, a
step counter) are baked into the graph as constants.
"""
from __future__ import annotations

import weakref

import numpy as np

from .. import dispatch
from ..autograd import no_grad
from ..errors import GradError, ShapeError, TraceError, format_location, user_location
from ..ops.registry import Aval, fmt_shape
from ..ops.shape import full_like, setitem
from ..tensor import Tensor, normalize_index
from . import symbol
from .autodiff import gradients
from .build import make_assign
from .ir import ROOT, Node
from .symbol import Symbol, constant_node, make_node, to_input

__all__ = ["Tracer", "discover_names"]

_GRAD_SLOT = Tensor.__dict__["grad"]   # the real storage of Tensor.grad (a slot descriptor)


def _raw_grad(t):
    return _GRAD_SLOT.__get__(t, Tensor)


class _WatchedGrad:
    """Stands in for ``Tensor.grad`` while a function is traced (see the module docstring)."""

    def __init__(self, tracer):
        self.tracer = tracer

    def __get__(self, t, owner=None):
        return self if t is None else self.tracer.get_grad(t)

    def __set__(self, t, value):
        self.tracer.set_grad(t, value)


class _State:
    """What the tracer knows about one real tensor: the node its value was first read from,
    the node holding its current value (after in-place updates), and the variable to write."""

    __slots__ = ("tensor", "initial", "current", "created_in_trace", "target")

    def __init__(self, tensor, initial, created_in_trace):
        self.tensor = tensor
        self.initial = self.current = initial
        self.created_in_trace = created_in_trace
        self.target = None if created_in_trace else initial


class Tracer:
    """Records one call of a function as a graph (used by ``JitFunction``)."""

    def __init__(self, names):
        self.names = names          # id(tensor) -> readable name (from modules and optimizers)
        self.states = {}            # id(tensor) -> _State
        self.created_in_trace = {}  # id(tensor) -> weakref: tensors created during the trace
        self.grads = {}             # id(tensor) -> (tensor, .grad before the trace, read first?)
        self.grad_vars = {}         # id(tensor) -> variable node reading its .grad
        self.arg_nodes = []         # placeholders of tensor arguments that require grad
        self.arg_grads = {}         # placeholder id -> gradient symbol

    # ---- switching the hooks on and off
    def __enter__(self):
        if dispatch.tracer is not None:
            raise TraceError("lg.jit: already tracing another function")
        dispatch._hooks.append(self)
        dispatch.tracer = self
        symbol.active_jit_tracers.append(self)
        Tensor.grad = _WatchedGrad(self)
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:   # a failed trace leaves every .grad as it found it
            for t, before, _ in self.grads.values():
                _GRAD_SLOT.__set__(t, before)
        Tensor.grad = _GRAD_SLOT
        symbol.active_jit_tracers.remove(self)
        dispatch.tracer = None
        dispatch._hooks.remove(self)
        return False

    def on_op(self, op, inputs, attrs, run):
        return make_node(op, inputs, attrs)

    # ---- reading tensors
    def was_created_in_trace(self, t):
        ref = self.created_in_trace.get(id(t))
        return ref is not None and ref() is t

    def name_of(self, t):
        return self.names.get(id(t)) or t.name

    def read(self, t):
        """The node holding tensor ``t``'s current value in the trace."""
        st = self.states.get(id(t))
        if st is None:
            created = self.was_created_in_trace(t)
            aval = Aval(t.shape, t.dtype)
            leaf_rg = t._requires_grad and t.grad_fn is None
            if created:
                node = Node("constant", aval=aval, device=t.device, name=t.name, value=t.data,
                            location=user_location(), frame=ROOT, requires_grad=leaf_rg)
            else:
                node = Node("variable", aval=aval, device=t.device, name=self.name_of(t), value=t,
                            location=user_location(), frame=ROOT, requires_grad=leaf_rg)
            st = self.states[id(t)] = _State(t, node, created)
        return st.current

    # ---- in-place updates (called from Tensor's in-place methods)
    def _assign(self, t, value):
        self.read(t)
        st = self.states[id(t)]
        if st.target is None:   # a tensor made during the trace: write it through a weak reference
            st.target = Node("variable", aval=st.initial.aval, device=t.device, name=t.name or "new",
                             attrs={"weak": True}, value=weakref.ref(t), frame=ROOT)
        st.current = make_assign(st.target, value, user_location()).node
        return t

    def inplace(self, t, op, other):
        with no_grad():
            value = make_node(op, (t, other), {})
        if tuple(value.shape) != tuple(t.shape):
            raise ShapeError(f"in-place {op.name}: the result has shape {fmt_shape(value.shape)} but the "
                             f"tensor has shape {tuple(t.shape)}; an in-place op cannot change shape"
                             f"{format_location(user_location())}")
        return self._assign(t, value)

    def set_data(self, t, array):
        return self._assign(t, Symbol(constant_node(array)))

    def fill(self, t, value):
        with no_grad():
            return self._assign(t, full_like(t, value=value, dtype=None))

    def copy(self, t, src):
        src = src if isinstance(src, Symbol) else Symbol(to_input(src)) if isinstance(src, Tensor) \
            else Symbol(constant_node(np.asarray(src)))
        return self._assign(t, src)

    def setitem(self, t, index, value):
        """``t[index] = value``: the ``setitem`` op (a copy of ``t`` with ``value`` written at
        ``index``, last write wins), assigned back to ``t``. The index may hold traced values."""
        index = normalize_index(index, t)
        if not isinstance(value, (Symbol, Tensor, bool, int, float)):
            value = Symbol(constant_node(np.asarray(value, dtype=t.dtype)))
        with no_grad():
            self._assign(t, setitem(Symbol(self.read(t)), value, index=index))

    # ---- .grad
    def _touch(self, t, before, reading):
        """Remember ``t.grad`` as it was before the trace; if the trace *reads* it before
        writing it, the program depends on whether it was None (a guard)."""
        if id(t) not in self.grads and not self.was_created_in_trace(t):
            self.grads[id(t)] = (t, before, reading)

    def grad_var(self, t, like):
        """The variable node for ``t.grad`` (``like``: a tensor or aval it looks like)."""
        node = self.grad_vars.get(id(t))
        if node is None:
            node = self.grad_vars[id(t)] = Node(
                "variable", aval=Aval(like.shape, like.dtype), device=t.device, name=self.name_of(t),
                attrs={"slot": "grad"}, value=t, location=user_location(), frame=ROOT)
        return node

    def get_grad(self, t):
        try:
            value = _raw_grad(t)
        except AttributeError:
            return None
        self._touch(t, value, reading=True)
        entry = self.grads.get(id(t))
        if value.__class__ is Tensor and entry is not None and value is entry[1]:
            # the gradient left by earlier runs: read it live each time the graph runs
            sym = Symbol(self.grad_var(t, value))
            _GRAD_SLOT.__set__(t, sym)
            return sym
        return value

    def set_grad(self, t, value):
        try:
            before = _raw_grad(t)
        except AttributeError:      # a Tensor being constructed: made during the trace
            self.created_in_trace[id(t)] = weakref.ref(t)
            _GRAD_SLOT.__set__(t, value)
            return
        self._touch(t, before, reading=False)
        _GRAD_SLOT.__set__(t, value)

    # ---- loss.backward()
    def backward(self, y, grad=None):
        if grad is None and (None in y.shape or int(np.prod(y.shape, dtype=np.int64)) != 1):
            raise GradError(f"backward needs a starting gradient for a non-scalar output of shape "
                            f"{fmt_shape(y.shape)}: pass grad=..., or reduce it to a scalar first "
                            f"(y.sum().backward()).{format_location(user_location())}")
        leaves = [st for st in self.states.values()
                  if st.tensor._requires_grad and st.tensor.grad_fn is None]
        nodes = [st.initial for st in leaves] + self.arg_nodes
        if not nodes:
            raise GradError("backward(): the traced function uses no tensor that requires grad"
                            f"{format_location(user_location())}")
        gs = gradients([y], [Symbol(n) for n in nodes], grad_ys=None if grad is None else [grad],
                       allow_unused=True)
        if all(g is None for g in gs):
            raise GradError("backward() on a value that does not depend on any tensor that requires "
                            f"grad{format_location(user_location())}")
        for st, g in zip(leaves, gs):
            if g is None:
                continue
            t = st.tensor
            for hook in t._hooks or ():
                out = hook(g)
                g = out if out is not None else g
            t.grad = g if t.grad is None else t.grad + g
        for node, g in zip(self.arg_nodes, gs[len(leaves):]):
            if g is not None:
                prev = self.arg_grads.get(node.id)
                self.arg_grads[node.id] = g if prev is None else prev + g

    # ---- the end of the trace
    def finish(self):
        """Effects to perform at the end of each run, the guards for reusing the trace, and
        weak references to the tensors created during the trace and then changed in place
        (``written_new``: possibly new state, such as optimizer buffers)."""
        effects, written_new = [], []
        for st in self.states.values():
            if st.current is not st.initial:
                effects.append(st.current)
                if st.created_in_trace:
                    st.initial.value = st.initial.value.copy()   # the tensor itself gets written
                    written_new.append(weakref.ref(st.tensor))
        guards = []
        for t, before, read_first in self.grads.values():
            final = _raw_grad(t)
            _GRAD_SLOT.__set__(t, before)
            if read_first:
                guards.append((t, before is None))
            if final is before:
                continue
            if isinstance(final, Symbol):
                if final.node is self.grad_vars.get(id(t)):
                    continue
                value = final.node
            elif final is None:
                value = None
            elif final.__class__ is Tensor:
                value = self.read(final)
            else:
                raise TraceError(f"{self.name_of(t) or 'a tensor'}.grad was set to a "
                                 f"{type(final).__name__} during the trace; it must be a tensor or None")
            like = value.aval if isinstance(value, Node) else Aval(t.shape, t.dtype)
            target = self.grad_var(t, like)
            effects.append(Node("assign", (target, value), attrs={"slot": "grad"}, aval=like,
                                device=target.device, name=target.name, frame=ROOT))
        return effects, guards, written_new


def discover_names(fn):
    """Readable names for tensors the function can reach: ``model.0.weight``,
    ``opt.momentum_buffer[model.0.weight]``; found in its closure, globals and ``self``."""
    found = {}
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    candidates = {}
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            candidates[name] = cell.cell_contents
        except ValueError:
            pass
    for name in code.co_names:
        if name in fn.__globals__:
            candidates.setdefault(name, fn.__globals__[name])
    owner = getattr(fn, "__self__", None)
    if owner is not None:
        candidates.setdefault("self", owner)
    names = {}
    for label, obj in candidates.items():
        if hasattr(obj, "named_parameters") and callable(obj.named_parameters):
            try:
                for pname, p in obj.named_parameters():
                    names.setdefault(id(p), f"{label}.{pname}")
                for bname, b in obj.named_buffers():
                    names.setdefault(id(b), f"{label}.{bname}")
            except Exception:
                continue
        elif isinstance(obj, Tensor):
            names.setdefault(id(obj), label)
    for label, obj in candidates.items():
        state = getattr(obj, "state", None)
        if hasattr(obj, "param_groups") and isinstance(state, dict):
            for p, entries in state.items():
                pname = names.get(id(p), getattr(p, "name", None) or "param")
                for key, value in (entries or {}).items():
                    if isinstance(value, Tensor):
                        names.setdefault(id(value), f"{label}.{key}[{pname}]")
    found.update(names)
    return found
