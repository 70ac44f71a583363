"""``lg.jit``: run eager-style Python once on symbols, record a graph, compile it, reuse it.

::

    @lg.jit
    def train_step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        return loss

On the first call for a given *signature* (shapes, dtypes and devices of the tensor arguments,
values of the other arguments) the function is traced: each tensor argument becomes a
placeholder and every op goes to the graph builder instead of running. Tensors the function
reaches from outside (a model's parameters, an optimizer's momentum buffers) become graph
*variables* that alias those very tensors, so the compiled step updates the model that eager
code sees. Later calls with the same signature run the compiled code directly.

What the tracer has to capture, and how:

* every op: the tracer is a hook (``context.installed``) that turns each op call into a
  graph node instead of running it;
* in-place updates (``p -= lr * g``, ``buf *= m``, ``fill_``, ``copy_``, ``t[i] = v``): each
  is an op computing the new value followed by the ``assign`` op, which the tracer records
  as a state update;
* ``.grad``: while tracing (``context.tracer`` is set), ``Tensor.grad`` reads and writes go to
  the tracer. ``loss.backward()`` on a symbol computes symbolic gradients (``gradients``) for
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

import functools
import inspect
import weakref

import numpy as np

from ..context import context
from ..autograd import accumulate_grad, no_grad
from ..backends import CPU
from ..errors import GradError, ShapeError, TraceError, format_location, user_location
from ..ops.registry import Aval, fmt_shape
from ..ops.shape import full_like, getitem, getitem_grad
from ..ops.elementwise import gt, where
from ..tensor import Tensor, normalize_index
from . import ir
from .autodiff import gradients
from .build import make_assign
from .codegen import Executable
from .ir import ROOT, Graph, Node, Symbol, collect, constant_node

__all__ = ["jit", "JitFunction", "CacheInfo"]

class _State:
    """What the tracer knows about one real tensor: the node its value was first read from,
    the node holding its current value (after in-place updates), and the variable to write."""

    __slots__ = ("tensor", "initial", "current", "fresh", "target")

    def __init__(self, tensor, initial, fresh):
        self.tensor = tensor
        self.initial = self.current = initial
        self.fresh = fresh
        self.target = None if fresh else initial


class Tracer:
    """Records one call of a function as a graph (used by ``JitFunction``)."""

    def __init__(self, names):
        self.names = names          # id(tensor) -> readable name (from modules and optimizers)
        self.states = {}            # id(tensor) -> _State
        self.fresh = {}             # id(tensor) -> weakref: tensors created during the trace
        self.grads = {}             # id(tensor) -> (tensor, .grad before the trace, read first?)
        self.grad_vars = {}         # id(tensor) -> variable node reading its .grad
        self.arg_nodes = []         # placeholders of tensor arguments that require grad
        self.arg_grads = {}         # placeholder id -> gradient symbol

    # ---- switching the hooks on and off
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
        self._installed = None   # no cycle through the context manager: the states die with us
        return False

    def on_op(self, op, inputs, attrs, run, phase):
        """Every op call while tracing: a graph node instead of a computation; ``assign`` (the
        write behind every in-place update) becomes a state update of the traced tensor."""
        if op.writes_input is not None:
            target, value = inputs
            return self.assign(target, value)
        return ir.make_node(op, inputs, attrs)

    def created(self, t):
        """A tensor made while tracing (by a creation function, or an optimizer making its
        buffers): it may be new state, or a temporary."""
        self.fresh[id(t)] = weakref.ref(t)

    # ---- reading tensors
    def _is_fresh(self, t):
        ref = self.fresh.get(id(t))
        return ref is not None and ref() is t

    def name_of(self, t):
        return self.names.get(id(t)) or t.name

    def read(self, t):
        """The node holding tensor ``t``'s current value in the trace."""
        st = self.states.get(id(t))
        if st is None:
            fresh = self._is_fresh(t)
            aval = Aval(t.shape, t.dtype)
            leaf_rg = t._requires_grad and t.grad_fn is None
            if fresh:
                node = Node("constant", aval=aval, device=t.device, name=t.name, value=t.data,
                            location=user_location(), frame=ROOT, requires_grad=leaf_rg)
            else:
                node = Node("variable", aval=aval, device=t.device, name=self.name_of(t), value=t,
                            location=user_location(), frame=ROOT, requires_grad=leaf_rg)
            st = self.states[id(t)] = _State(t, node, fresh)
        return st.current

    # ---- in-place updates (called from Tensor's in-place methods)
    def _assign(self, t, value):
        self.read(t)
        st = self.states[id(t)]
        if st.target is None:   # a tensor made during the trace: write it through a weak reference
            st.target = Node("variable", aval=st.initial.aval, device=t.device, name=t.name or "fresh",
                             attrs={"weak": True}, value=weakref.ref(t), frame=ROOT)
        st.current = make_assign(st.target, value, user_location()).node
        return Symbol(st.current)

    def assign(self, t, value):
        """``t``'s value becomes ``value`` (broadcast and cast to ``t``'s shape and dtype)."""
        current = Symbol(self.read(t))
        if isinstance(value, Symbol):
            v = value
        elif isinstance(value, Tensor):
            v = Symbol(ir.to_input(value))
        elif isinstance(value, (bool, int, float)):
            with no_grad():
                return self._assign(t, full_like(current, value=value, dtype=None))
        else:
            v = Symbol(constant_node(np.asarray(value)))
        with no_grad():
            if tuple(v.shape) != tuple(t.shape):
                if len(v.shape) > len(t.shape) or any(
                        a not in (1, b) for a, b in zip(v.shape[::-1], tuple(t.shape)[::-1])):
                    raise ShapeError(f"in-place update: the new value has shape {fmt_shape(v.shape)} "
                                     f"but the tensor has shape {tuple(t.shape)}; an in-place op "
                                     f"cannot change shape{format_location(user_location())}")
                v = v.broadcast_to(tuple(t.shape))
            if v.dtype != t.dtype:
                v = v.astype(t.dtype)
        return self._assign(t, v)

    # ---- .grad
    def _touch(self, t, before, reading):
        """Remember ``t.grad`` as it was before the trace; if the trace *reads* it before
        writing it, the program depends on whether it was None (a guard)."""
        if id(t) not in self.grads and not self._is_fresh(t):
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
        """Effects to perform at the end of each run, and the guards for reusing the trace."""
        effects, written_fresh = [], []
        for st in self.states.values():
            if st.current is not st.initial:
                effects.append(st.current)
                if st.fresh:
                    st.initial.value = st.initial.value.copy()   # the tensor itself gets written
                    written_fresh.append(weakref.ref(st.tensor))
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
        return effects, guards, written_fresh


# ---------------------------------------------------------------- arguments and signatures

def _flatten(obj, leaves):
    """Structure of ``obj`` (nested tuples/lists/dicts), collecting its leaves in order."""
    cls = obj.__class__
    if cls is tuple or cls is list:
        return (cls.__name__, tuple([_flatten(v, leaves) for v in obj]))
    if cls is dict:
        keys = tuple(obj)
        return ("dict", keys, tuple([_flatten(obj[k], leaves) for k in keys]))
    leaves.append(obj)
    return "*"


def _paths(spec, path):
    """The path of each leaf of ``spec``, in ``_flatten``'s order: ``args[0]``, ``kwargs['lr']``."""
    if spec == "*":
        yield path
    elif spec[0] == "dict":
        for k, sub in zip(spec[1], spec[2]):
            yield from _paths(sub, f"{path}[{k!r}]")
    else:
        for i, sub in enumerate(spec[1]):
            yield from _paths(sub, f"{path}[{i}]")


def _unflatten(spec, it):
    if spec == "*":
        return next(it)
    if spec[0] == "dict":
        return {k: _unflatten(s, it) for k, s in zip(spec[1], spec[2])}
    values = [_unflatten(s, it) for s in spec[1]]
    return tuple(values) if spec[0] == "tuple" else values


def _leaf_signature(value):
    if value.__class__ is Tensor:
        data = value.data
        return ("tensor", data.shape, data.dtype, value._backend.device, value._requires_grad)
    if isinstance(value, np.ndarray):
        return ("tensor", value.shape, value.dtype, CPU.device, False)
    if isinstance(value, Symbol):
        raise TraceError("lg.jit: a graph Symbol was passed to a jitted function outside a trace")
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"lg.jit: argument of type {type(value).__name__} is neither a tensor nor "
                        f"hashable, so it cannot be part of the trace's cache key; pass tensors, "
                        f"numbers, strings, or tuples/lists/dicts of them") from None
    return ("static", type(value).__name__, value)


def _closest(keys, key):
    """The cached signature that differs from ``key`` in the fewest arguments: the change
    from it is the reason for a retrace (the latest trace may differ in more ways)."""
    def distance(old):
        if old[0] != key[0]:
            return float("inf")
        return sum(sum(x != y for x, y in zip(a, b)) + (len(a) != len(b)) for a, b in zip(old[1], key[1]))
    return min(reversed(list(keys)), key=distance)  # ties go to the most recent trace


def _describe_change(old, new, paths):
    """Why a new signature differs from the last one traced: 'arg 0 shape (32, 64) -> (16, 64)'."""
    (old_spec, old_sigs), (new_spec, new_sigs) = old, new
    if old_spec != new_spec:
        def shape_of(spec):
            _, args, kwargs = spec
            return f"{len(args[1])} positional, keywords {kwargs[1]}"
        if shape_of(old_spec) != shape_of(new_spec):
            return f"the arguments changed: {shape_of(new_spec)} instead of {shape_of(old_spec)}"
        return "the nesting of the arguments (tuples, lists, dicts) changed"
    labels = ("kind", "shape", "dtype", "device", "requires_grad")
    for path, a, b in zip(paths, old_sigs, new_sigs):
        if a == b:
            continue
        if a[0] != b[0]:
            return f"{path} was a {'tensor' if a[0] == 'tensor' else a[1]}, now a {'tensor' if b[0] == 'tensor' else b[1]}"
        if a[0] == "static":
            return f"{path} value {a[2]!r} -> {b[2]!r}"
        for i in range(1, 5):
            if a[i] != b[i]:
                va, vb = a[i], b[i]
                if labels[i] == "dtype":
                    va, vb = va.name, vb.name
                return f"{path} {labels[i]} {va} -> {vb}"
    return "new signature"


class CacheInfo:
    """How a jitted function's cache has done: ``hits``, ``misses``, and one reason per trace."""

    def __init__(self):
        self.hits = 0
        self.misses = 0
        self.traces = []

    @property
    def retraces(self):
        """Reasons for every trace after the first."""
        return self.traces[1:]

    def __repr__(self):
        return f"CacheInfo(hits={self.hits}, misses={self.misses}, traces={self.traces!r})"


def _discover_names(fn):
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


class _Entry:
    """One traced signature: its executable and how to feed it and read its results."""

    def __init__(self, key, executable, feed_leaves, out_spec, out_items, arg_grad_leaves, guards,
                 written_fresh, names):
        self.key = key
        self.executable = executable
        self.feed_leaves = feed_leaves
        self.out_spec = out_spec
        self.out_items = out_items            # ("result", k) | ("object", x) per output leaf
        self.arg_grad_leaves = arg_grad_leaves
        self.guards = guards
        self.written_fresh = written_fresh
        self.names = names
        self.n_results = len(executable.graph.outputs)
        self.backends = executable._out_backends

    def stale(self):
        """Why this trace cannot be reused now, or None."""
        for t, was_none in self.guards:
            if (t.grad is None) != was_none:
                name = self.names.get(id(t)) or t.name or "a captured tensor"
                before, now = ("None", "a tensor") if was_none else ("a tensor", "None")
                return f"{name}.grad was {before} when traced, now {now}"
        for ref in self.written_fresh:
            if ref() is not None:
                return ("tensors the previous call created and changed in place are still alive "
                        "(new state, e.g. optimizer buffers): tracing again to read them as variables")
        return None

    def run(self, leaves):
        arrays = []
        for i in self.feed_leaves:
            x = leaves[i]
            arrays.append(x.data if x.__class__ is Tensor else x)
        out = self.executable.call_arrays(arrays)
        results = (out,) if self.n_results == 1 else (out or ())
        tensors = [Tensor._wrap(a, b) for a, b in zip(results, self.backends)]
        if not self.arg_grad_leaves and self.out_spec == "*":
            return tensors[0] if self.out_items[0][0] == "result" else self.out_items[0][1]
        n_user = len(tensors) - len(self.arg_grad_leaves)
        stored = set()
        for i, g in zip(self.arg_grad_leaves, tensors[n_user:]):
            x = leaves[i]
            if x.__class__ is Tensor:
                accumulate_grad(x, g, stored)
        values = [tensors[k] if kind == "result" else k for kind, k in self.out_items]
        return _unflatten(self.out_spec, iter(values))


class JitFunction:
    """A function compiled on first use for each signature; see ``jit``.

    ``graph`` and ``code`` show the latest trace; ``cache_info`` counts hits, misses and why
    each trace happened.
    """

    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cache_info = CacheInfo()
        self._cache = {}
        self._latest = None
        try:
            self._params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            self._params = []

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    @property
    def graph(self):
        return None if self._latest is None else self._latest.executable.graph

    @property
    def code(self):
        return None if self._latest is None else self._latest.executable.code

    @property
    def executable(self):
        return None if self._latest is None else self._latest.executable

    def __call__(self, *args, **kwargs):
        if context.tracer is not None:   # called from a function being traced: trace through it
            return self.fn(*args, **kwargs)
        leaves = []
        spec = ("call", _flatten(list(args), leaves), _flatten(kwargs, leaves))
        key = (spec, tuple([_leaf_signature(v) for v in leaves]))
        entry = self._cache.get(key)
        if entry is not None:
            why = entry.stale()
            if why is None:
                self.cache_info.hits += 1
                return entry.run(leaves)
        elif self._latest is None:
            why = "first call"
        else:
            why = _describe_change(_closest(self._cache, key), key,
                                   [self._label(p) for p in self._leaf_paths(spec)])
        entry = self._trace(leaves, spec, key)
        self.cache_info.misses += 1
        self.cache_info.traces.append(why)
        self._cache[key] = self._latest = entry
        return entry.run(leaves)

    def _label(self, path):
        """``args[0]`` -> ``arg 0 (xb)``."""
        if path.startswith("args["):
            i = int(path[5:path.index("]")])
            rest = path[path.index("]") + 1:]
            name = self._params[i] if i < len(self._params) else None
            return f"arg {i}{rest}" + (f" ({name})" if name and not rest else "")
        return "arg " + path[len("kwargs"):].strip("[]")

    @staticmethod
    def _leaf_paths(spec):
        return list(_paths(spec[1], "args")) + list(_paths(spec[2], "kwargs"))

    def _trace(self, leaves, spec, key):
        names = _discover_names(self.fn)
        tracer = Tracer(names)
        feed_leaves, placeholders, symbolic = [], [], []
        for i, (path, value) in enumerate(zip(self._leaf_paths(spec), leaves)):
            if value.__class__ is Tensor or isinstance(value, np.ndarray):
                t = value
                device = t.device if t.__class__ is Tensor else "cpu"
                rg = t.__class__ is Tensor and t._requires_grad
                node = Node("placeholder", aval=Aval(t.shape, t.dtype), device=_dev(device),
                            name=self._placeholder_name(path), frame=ROOT, requires_grad=rg)
                placeholders.append(node)
                feed_leaves.append(i)
                if rg:
                    tracer.arg_nodes.append(node)
                symbolic.append(Symbol(node))
            else:
                symbolic.append(value)
        it = iter(symbolic)
        sym_args = _unflatten(spec[1], it)
        sym_kwargs = _unflatten(spec[2], it)
        with tracer:
            out = self.fn(*sym_args, **sym_kwargs)
            out_leaves = []
            out_spec = _flatten(out, out_leaves)
            outputs, out_items = [], []
            for v in out_leaves:
                if isinstance(v, Symbol):
                    out_items.append(("result", len(outputs)))
                    outputs.append(ir.ROOT.capture(v.node))
                elif v.__class__ is Tensor and not tracer._is_fresh(v):
                    out_items.append(("object", v))
                elif v.__class__ is Tensor:
                    out_items.append(("result", len(outputs)))
                    outputs.append(tracer.read(v))
                else:
                    out_items.append(("object", v))
            effects, guards, written_fresh = tracer.finish()
        arg_grad_leaves = []
        for node in tracer.arg_nodes:
            g = tracer.arg_grads.get(node.id)
            if g is not None:
                outputs.append(g.node)
                arg_grad_leaves.append(feed_leaves[placeholders.index(node)])
        graph = Graph(collect(outputs + effects), placeholders, outputs,
                      name=_identifier(getattr(self.fn, "__name__", "jit")))
        executable = Executable(graph, single=len(outputs) == 1)
        return _Entry(key, executable, feed_leaves, out_spec, out_items, arg_grad_leaves, guards,
                      written_fresh, names)

    def _placeholder_name(self, path):
        label = self._label(path)
        if "(" in label:
            return label[label.index("(") + 1:-1]
        return label.replace("arg ", "arg").replace("[", "_").replace("]", "").replace("'", "")

    def __repr__(self):
        return f"<jit {getattr(self.fn, '__qualname__', self.fn)}: {self.cache_info!r}>"


def _identifier(name):
    import re
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else "_" + name


def _dev(device):
    from ..backends import parse_device
    return parse_device(str(device))


def jit(fn):
    """Trace ``fn`` into a graph on its first call for each signature, then run compiled code.

    >>> @lg.jit
    ... def f(x):
    ...     return (x * x).sum()
    >>> f(lg.ones(3)); f.cache_info
    CacheInfo(hits=0, misses=1, traces=['first call'])
    """
    return JitFunction(fn)
