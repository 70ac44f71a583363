"""``lg.jit``: run eager-style Python once on symbols, record a graph, compile it, reuse it.

::

    @lg.jit
    def train_step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        return loss

On the first call for a given *signature* (``signature.py``: shapes, dtypes and devices of
the tensor arguments, values of the other arguments) the function is traced (``tracer.py``):
each tensor argument becomes a placeholder, and tensors reached from outside become variables.
The graph is compiled into an ``Executable``. Later calls with the same signature run the
compiled code directly; ``cache_info`` says how often, and why each new trace happened.
"""
from __future__ import annotations

import functools
import inspect
import re

import numpy as np

from ..autograd import accumulate_grad
from ..context import context
from ..backends import parse_device
from ..ops.registry import Aval
from ..tensor import Tensor
from .executable import Executable
from .ir import ROOT, Graph, Node, collect
from .passes import lower, placer, resolve
from .signature import closest, describe_change, flatten, leaf_signature, paths, unflatten
from .symbol import Symbol
from .tracer import Tracer, discover_names

__all__ = ["jit", "JitFunction", "CacheInfo"]

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


class _Entry:
    """One traced signature: its executable and how to feed it and read its results."""

    def __init__(self, key, executable, feed_leaves, out_spec, out_items, arg_grad_leaves, guards,
                 written_new, names):
        self.key = key
        self.executable = executable
        self.feed_leaves = feed_leaves
        self.out_spec = out_spec
        self.out_items = out_items            # ("result", k) | ("object", x) per output leaf
        self.arg_grad_leaves = arg_grad_leaves
        self.guards = guards
        self.written_new = written_new      # tensors created in the trace, then written
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
        for ref in self.written_new:
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
        return unflatten(self.out_spec, iter(values))


class JitFunction:
    """A function compiled on first use for each signature; see ``jit``.

    ``graph`` and ``code`` show the latest trace; ``cache_info`` counts hits, misses and why
    each trace happened.
    """

    def __init__(self, fn, passes=None):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.passes = passes
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
        spec = ("call", flatten(list(args), leaves), flatten(kwargs, leaves))
        key = (spec, tuple([leaf_signature(v) for v in leaves]))
        entry = self._cache.get(key)
        if entry is not None:
            why = entry.stale()
            if why is None:
                self.cache_info.hits += 1
                return entry.run(leaves)
        elif self._latest is None:
            why = "first call"
        else:
            why = describe_change(closest(self._cache, key), key,
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
        return list(paths(spec[1], "args")) + list(paths(spec[2], "kwargs"))

    def _trace(self, leaves, spec, key):
        names = discover_names(self.fn)
        tracer = Tracer(names)
        feed_leaves, placeholders, symbolic = [], [], []
        for i, (path, value) in enumerate(zip(self._leaf_paths(spec), leaves)):
            if value.__class__ is Tensor or isinstance(value, np.ndarray):
                t = value
                device = t.device if t.__class__ is Tensor else "cpu"
                rg = t.__class__ is Tensor and t._requires_grad
                node = Node("placeholder", aval=Aval(t.shape, t.dtype), device=parse_device(str(device)),
                            name=self._placeholder_name(path), frame=ROOT, requires_grad=rg)
                placeholders.append(node)
                feed_leaves.append(i)
                if rg:
                    tracer.arg_nodes.append(node)
                symbolic.append(Symbol(node))
            else:
                symbolic.append(value)
        it = iter(symbolic)
        sym_args = unflatten(spec[1], it)
        sym_kwargs = unflatten(spec[2], it)
        with tracer:
            out = self.fn(*sym_args, **sym_kwargs)
            out_leaves = []
            out_spec = flatten(out, out_leaves)
            outputs, out_items = [], []
            for v in out_leaves:
                if isinstance(v, Symbol):
                    out_items.append(("result", len(outputs)))
                    outputs.append(ROOT.capture(v.node))
                elif v.__class__ is Tensor and not tracer.was_created_in_trace(v):
                    out_items.append(("object", v))
                elif v.__class__ is Tensor:
                    out_items.append(("result", len(outputs)))
                    outputs.append(tracer.read(v))
                else:
                    out_items.append(("object", v))
            effects, guards, written_new = tracer.finish()
        arg_grad_leaves = []
        for node in tracer.arg_nodes:
            g = tracer.arg_grads.get(node.id)
            if g is not None:
                outputs.append(g.node)
                arg_grad_leaves.append(feed_leaves[placeholders.index(node)])
        graph = Graph(collect(outputs + effects), placeholders, outputs,
                      name=_identifier(getattr(self.fn, "__name__", "jit")))
        graph, reports = lower(graph, self.passes)
        executable = Executable(graph, single=len(outputs) == 1, reports=reports)
        return _Entry(key, executable, feed_leaves, out_spec, out_items, arg_grad_leaves, guards,
                      written_new, names)

    def _placeholder_name(self, path):
        label = self._label(path)
        if "(" in label:
            return label[label.index("(") + 1:-1]
        return label.replace("arg ", "arg").replace("[", "_").replace("]", "").replace("'", "")

    def __repr__(self):
        return f"<jit {getattr(self.fn, '__qualname__', self.fn)}: {self.cache_info!r}>"


def _identifier(name):
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else "_" + name


def jit(fn=None, *, passes=None, placement=None):
    """Trace ``fn`` into a graph on its first call for each signature, then run compiled code.

    >>> @lg.jit
    ... def f(x):
    ...     return (x * x).sum()
    >>> f(lg.ones(3)); f.cache_info
    CacheInfo(hits=0, misses=1, traces=['first call'])

    ``passes`` chooses the optimization passes, as in ``lg.compile`` (``@lg.jit(passes=())``:
    none; default: the full pipeline); ``f.executable.reports`` says what they did.
    ``placement`` (pins such as ``{"matmul": "cuda"}``) places each traced graph first, as in
    ``lg.compile``.
    """
    if placement is not None and placement is not False:
        passes = [placer(None if placement is True else placement)] + resolve(passes)
    if fn is None:
        return lambda f: JitFunction(f, passes=passes)
    return JitFunction(fn, passes=passes)
