"""The ``Executable``: a compiled graph that you call with feeds.

It compiles the source that ``codegen.generate`` writes, once, and then on each call checks
and converts the feeds (by position or by placeholder name; shapes, dtypes and devices against
the placeholders), runs the generated function and wraps the results as Tensors.

Errors while running are mapped back from the failing line of the generated code to its node,
and so to the user's line that defined it. The happy path has no per-node ``try``.
"""
from __future__ import annotations

import itertools
import linecache
import weakref

import numpy as np

from ..backends import CPU, get_backend
from ..context import context
from ..profiler.profile import active
from ..errors import DeviceError, DTypeError, LabgradError, ShapeError, format_location
from ..ops.registry import Aval, fmt_shape
from ..tensor import Tensor
from .codegen import generate
from .ir import Graph, Node
from .text import fmt_aval

__all__ = ["Executable"]

_program_ids = itertools.count()


class _Feed:
    """What one placeholder accepts; ``quick`` passes the common case without a detour."""

    __slots__ = ("name", "node", "shape", "dtype", "backend", "position", "on_cpu", "exact")

    def __init__(self, node, position):
        self.node = node
        self.name = node.name
        self.shape = node.aval.shape
        self.dtype = node.aval.dtype
        self.backend = get_backend(node.device)
        self.position = position
        self.on_cpu = self.backend.device.type == "cpu"
        self.exact = None not in self.shape

    def quick(self, value):
        """The array to feed when ``value`` already fits exactly, else None."""
        cls = value.__class__
        if cls is np.ndarray and self.on_cpu:
            array = value
        elif cls is Tensor and value._backend is self.backend:
            array = value.data
        else:
            return None
        if array.dtype == self.dtype and self.exact and array.shape == self.shape:
            return array
        return None


_MISSING = object()


class Executable:
    """A compiled graph: call it with feeds, by position or by placeholder name.

    ``graph`` is the IR it runs (after the passes), ``code`` the Python source generated from
    it, ``reports`` the ``PassReport`` of each pass applied, in order (``built_graph``: the
    graph before them), ``kernels`` the source of each fused kernel the code calls, by name.
    Results come back as Tensors (a tuple if several outputs).
    """

    def __init__(self, graph: Graph, single=True, reports=()):
        self.graph = graph
        self.single = single
        self.reports = list(reports)
        self._build()

    @property
    def built_graph(self):
        """The graph as it was built, before any pass."""
        return self.reports[0].before if self.reports else self.graph

    def _build(self):
        graph = self.graph
        self._home = graph.outputs[0].device if graph.outputs else (graph.nodes[0].device if graph.nodes else CPU.device)
        self.code, self._fn, self._filename, self._line_map, self.kernels = self._load(profile=False)
        self._profiled = None      # the profiled version, made when first needed
        self._feeds = [_Feed(n, i) for i, n in enumerate(graph.inputs)]
        self._by_name = {f.name: f for f in self._feeds if f.name}
        self._out_backends = [get_backend(o.device) for o in graph.outputs]

    def _load(self, profile):
        source, namespace, fname, line_map, kernels = generate(self.graph, self._home, profile=profile)
        filename = f"<labgrad {self.graph.name}{' profiled' if profile else ''} #{next(_program_ids)}>"
        code = compile(source, filename, "exec")  # noqa: S102 - our own generated source
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        weakref.finalize(self, linecache.cache.pop, filename, None)
        exec(code, namespace)  # noqa: S102
        return source, namespace[fname], filename, line_map, kernels

    def _profiled_version(self):
        """``(source, function, file name, line map, NodeInfo of the run)``, made once."""
        if self._profiled is None:
            source, fn, filename, line_map, _ = self._load(profile=True)
            self._profiled = (source, fn, filename, line_map, fn.__globals__["_graph_info"])
        return self._profiled

    @property
    def profiled_code(self):
        """The source of the profiled version (an event around each node; see the docstring)."""
        return self._profiled_version()[0]

    # ---- feeding
    @property
    def input_names(self):
        return [f.name for f in self._feeds]

    def _signature_text(self):
        return ", ".join(f"{f.name or f'input {f.position}'}: {fmt_aval(f.node.aval)}" for f in self._feeds)

    def _arrays(self, args, feeds):
        n = len(self._feeds)
        if not feeds and len(args) == n:
            arrays = []
            for f, v in zip(self._feeds, args):
                a = f.quick(v)
                if a is None:
                    break
                arrays.append(a)
            else:
                return arrays
        if len(args) > n:
            raise TypeError(f"this executable takes {n} input(s) ({self._signature_text()}), "
                            f"but {len(args)} were given by position")
        values = list(args) + [_MISSING] * (n - len(args))
        for key, value in feeds.items():
            feed = self._by_name.get(key)
            if feed is None:
                raise TypeError(f"no placeholder named {key!r}; the inputs are: {self._signature_text()}")
            if values[feed.position] is not _MISSING:
                raise TypeError(f"input {key!r} was given twice (by position and by name)")
            values[feed.position] = value
        missing = [f for f, v in zip(self._feeds, values) if v is _MISSING]
        if missing:
            raise TypeError("missing input(s): " + ", ".join(
                f"{f.name or f'input {f.position}'} ({fmt_aval(f.node.aval)}){format_location(f.node.location)}"
                for f in missing) + "\n  Pass them by position or by name, e.g. f(x=batch).")
        return [self._convert(f, v) for f, v in zip(self._feeds, values)]

    def _convert(self, feed, value):
        label = feed.name or f"input {feed.position}"
        if value.__class__ is Tensor:
            if value._backend is not feed.backend:
                raise DeviceError(f"input {label!r} is on {value.device}, but its placeholder is on "
                                  f"{feed.backend.device}.\n  Move it first (x.to('{feed.backend.device}')), "
                                  f"or declare the placeholder on {value.device} and add an explicit "
                                  f".to(...) transfer node in the graph.")
            array = value.data
        elif isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
            on_cpu = isinstance(value, np.ndarray)
            if on_cpu != (feed.backend.device.type == "cpu"):
                where = "host (NumPy)" if on_cpu else "GPU"
                raise DeviceError(f"input {label!r} is a {where} array, but its placeholder is on "
                                  f"{feed.backend.device}.\n  Declare the placeholder on the device "
                                  f"the data lives on and move it inside the graph with .to(...), "
                                  f"or move the data first.")
            array = value
        else:
            try:
                array = np.asarray(value)
            except Exception:
                raise TypeError(f"input {label!r}: cannot use a {type(value).__name__} as data") from None
            if array.dtype == object:
                raise TypeError(f"input {label!r}: cannot use a {type(value).__name__} as data")
            array = feed.backend.asarray(array)
        if array.dtype != feed.dtype:
            if not np.can_cast(array.dtype, feed.dtype, casting="same_kind"):
                raise DTypeError(f"input {label!r} has dtype {array.dtype}, but its placeholder has "
                                 f"dtype {feed.dtype}, and {array.dtype} -> {feed.dtype} would lose "
                                 f"information.\n  Convert it explicitly (x.astype('{feed.dtype}')) "
                                 f"or declare the placeholder with dtype='{array.dtype}'.")
            array = array.astype(feed.dtype)
        shape = array.shape
        want = feed.shape
        if len(shape) != len(want) or any(w is not None and w != s for w, s in zip(want, shape)):
            raise ShapeError(f"input {label!r} has shape {fmt_shape(shape)}, but its placeholder "
                             f"expects {fmt_shape(want)} (? = any size)"
                             f"{format_location(feed.node.location)}")
        return array

    # ---- running
    def __call__(self, *args, **feeds):
        arrays = self._arrays(args, feeds)
        if context.hooks:
            return self._wrap(self._run_hooked(arrays))
        try:
            out = self._fn(*arrays)
        except Exception as e:
            raise self._explain(e) from e
        return self._wrap(out)

    def _run_hooked(self, arrays):
        """Run with hooks installed: the profiled version when a profile is active."""
        prof = active()
        if prof is None:
            try:
                return self._fn(*arrays)
            except Exception as e:
                raise self._explain(e) from e
        _, fn, filename, line_map, info = self._profiled_version()
        span = prof.graph_begin(info)
        try:
            out = fn(*arrays, prof)
        except Exception as e:
            prof.graph_abort(span)
            raise self._explain(e, filename, line_map) from e
        prof.graph_end(span)
        return out

    def run(self, feeds=None):
        """``run({"x": batch})`` or ``run({x_symbol: batch})``: feeds as a dict."""
        named = {}
        for k, v in (feeds or {}).items():
            named[k.node.name if hasattr(k, "node") else k] = v
            if hasattr(k, "node") and not k.node.name:
                raise TypeError("run(): feed unnamed placeholders by position with f(...) instead")
        return self(**named)

    def call_arrays(self, arrays):
        """Run on already-checked backend arrays; returns what the generated function returns."""
        if context.hooks:
            return self._run_hooked(arrays)
        try:
            return self._fn(*arrays)
        except Exception as e:
            raise self._explain(e) from e

    def _wrap(self, out):
        backends = self._out_backends
        if len(backends) == 1:
            t = Tensor._wrap(out, backends[0])
            return t if self.single else (t,)
        if not backends:
            return None
        return tuple([Tensor._wrap(a, b) for a, b in zip(out, backends)])

    def _explain(self, error, filename=None, line_map=None):
        """The node (and user line) behind an exception raised inside the generated code."""
        filename = filename or self._filename
        line_map = self._line_map if line_map is None else line_map
        tb, last = error.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                last = tb
            tb = tb.tb_next
        hit = line_map.get(last.tb_lineno) if last is not None else None
        if hit is None:
            return error
        graph, node, args = hit
        scope = dict(last.tb_frame.f_globals)
        scope.update(last.tb_frame.f_locals)
        avals = []
        for x, expr in zip(node.inputs, args):
            value = scope.get(expr) if isinstance(x, Node) else x
            avals.append(Aval(value.shape, value.dtype) if hasattr(value, "dtype") and hasattr(value, "shape") else x)
        explanation = f"{type(error).__name__}: {error}"
        cls = type(error) if isinstance(error, LabgradError) else (
            ShapeError if isinstance(error, (ValueError, IndexError)) else
            DTypeError if isinstance(error, TypeError) else LabgradError)
        opname, location = node.op_name, node.location
        if node.kind == "op":
            try:
                node.op.infer(*avals, **node.attrs)
            except (ShapeError, DTypeError) as e:
                cls, explanation = type(e), str(e)
            except Exception:
                pass
        elif node.kind == "fused":    # which op of the group: run their infer rules
            attr = node.attrs["kernel"]
            hit = attr.failing_step(avals)
            if hit is not None:
                k, e = hit
                step = attr.kernel.steps[k]
                opname = f"{step.op} (fused into {attr.name})"
                if k < len(attr.locations) and attr.locations[k] is not None:
                    location = attr.locations[k]
                if isinstance(e, (ShapeError, DTypeError)):
                    cls, explanation = type(e), str(e)
        if isinstance(error, IndexError):
            explanation += ("\n  An index read from the data is out of range: along an axis of size n, "
                            "indices must lie in [-n, n).")
        described = ", ".join(fmt_aval(a) if isinstance(a, Aval) else repr(a) for a in avals)
        where = "" if graph is self.graph else f" of subgraph {graph.name}"
        return cls(f"{opname} failed while running the compiled graph, at node "
                   f"%{graph.index(node)}{where} ({node.op_name} -> {fmt_aval(node.aval)}), "
                   f"defined{format_location(location)}\n"
                   f"  its inputs at run time: {described or 'none'}\n  {explanation}")

    def __repr__(self):
        return (f"<Executable {self.graph.name}({self._signature_text()}) -> "
                f"{len(self.graph.outputs)} output(s), {len(self.graph.nodes)} nodes>")
