"""The ``Tracer``: records one call of a function as a graph, for ``lg.jit``.

While a function is traced, every op goes to the graph builder instead of running, and the
tracer keeps track of the real tensors the function touches. ``jit_function.py`` decides
when to trace and runs the result; this module is what happens during one trace.
What the tracer has to capture, and how:

* every op: the tracer is a hook (``context.installed``) that turns each op call into a
  graph node instead of running it;
* in-place updates (``p -= lr * g``, ``buf *= m``, ``fill_``, ``copy_``, ``t[i] = v``): each
  is an op computing the new value followed by the ``assign`` op, which the tracer records
  as a state update of that tensor;
* ``.grad``: while tracing (``context.tracer`` is set), ``Tensor.grad`` reads and writes go to
  the tracer. ``loss.backward()`` on a symbol computes gradient graphs (``gradients``) for
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

from ..autograd import accumulate_grad, no_grad
from ..context import context
from ..errors import GradError, ShapeError, TraceError, format_location, user_location
from ..ops.registry import Aval, fmt_shape
from ..ops.shape import full_like
from ..tensor import Tensor
from .autodiff import gradients
from .build import make_assign
from .ir import ROOT, Node
from .symbol import Symbol, make_node, to_input

__all__ = ["Tracer", "discover_names"]

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

    # ---- switching on and off: the tracer is the context's tracer and a hook
    def __enter__(self):
        if context.tracer is not None:
            raise TraceError("lg.jit: already tracing another function")
        self._installed = context.installed(self)
        self._installed.__enter__()
        context.tracer = self
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:   # a failed trace leaves every .grad as it found it
            for t, before, _ in self.grads.values():
                t._grad = before
        context.tracer = None
        self._installed.__exit__(None, None, None)
        self._installed = None   # no reference cycle: the traced tensors' states die with us
        return False

    def on_op(self, op, inputs, attrs, run, phase):
        """Every op call while tracing: a graph node instead of a computation; ``assign`` (the
        write behind every in-place update) becomes a state update of the traced tensor."""
        if op.writes_input is not None:
            target, value = inputs
            return self.assign(target, value)
        return make_node(op, inputs, attrs)

    def created(self, t):
        """A tensor made while tracing (by a creation function, or an optimizer making its
        buffers): it may be new state, or a temporary (see ``finish``)."""
        self.created_in_trace[id(t)] = weakref.ref(t)

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

    # ---- in-place updates (the assign op, see on_op)
    def assign(self, t, value):
        """``t``'s value becomes ``value`` (broadcast and cast to ``t``'s shape and dtype)."""
        current = Symbol(self.read(t))
        with no_grad():
            if isinstance(value, (bool, int, float)):
                v = full_like(current, value=value, dtype=None)
            else:
                v = value if isinstance(value, Symbol) else Symbol(to_input(value))
                if tuple(v.shape) != tuple(t.shape):
                    if len(v.shape) > len(t.shape) or any(
                            a not in (1, b) for a, b in zip(v.shape[::-1], tuple(t.shape)[::-1])):
                        raise ShapeError(f"in-place update: the new value has shape {fmt_shape(v.shape)} "
                                         f"but the tensor has shape {tuple(t.shape)}; an in-place op "
                                         f"cannot change shape{format_location(user_location())}")
                    v = v.broadcast_to(tuple(t.shape))
                if v.dtype != t.dtype:
                    v = v.astype(t.dtype)
        st = self.states[id(t)]
        if st.target is None:   # a tensor made during the trace: write it through a weak reference
            st.target = Node("variable", aval=st.initial.aval, device=t.device, name=t.name or "new",
                             attrs={"weak": True}, value=weakref.ref(t), frame=ROOT)
        st.current = make_assign(st.target, v, user_location()).node
        return Symbol(st.current)

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
        value = t._grad
        self._touch(t, value, reading=True)
        entry = self.grads.get(id(t))
        if value.__class__ is Tensor and entry is not None and value is entry[1]:
            # the gradient left by earlier runs: read it live each time the graph runs
            sym = Symbol(self.grad_var(t, value))
            t._grad = sym
            return sym
        return value

    def set_grad(self, t, value):
        self._touch(t, t._grad, reading=False)
        t._grad = value

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
            accumulate_grad(st.tensor, g)
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
            final = t._grad
            t._grad = before
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
