"""``profile``: the profiler as an interpreter hook on the eager dispatch point.

Installed with ``context.installed``, it sees every eager op (phase ``"forward"``) and every
backward rule autograd runs (phase ``"backward"``), times each with its device's clock, and
asks the op's ``cost`` rule for flops and bytes. When no profile is active nothing is
installed, so the eager hot path pays one empty-tuple check, as it does anyway.

Compiled code is profiled per node. ``codegen.generate(..., profile=True)`` writes a second
version of the program with a ``node_begin``/``node_end`` pair around each node (an op, a fused
kernel, a cond or while); the ``Executable`` runs that version, between ``graph_begin`` and
``graph_end``, only while a profile is active, and the plain one otherwise.
So profiled compiled code costs nothing when the profiler is off: no check per node, one
check of the installed hooks per call. The facts of each node (its name, device, flops and
bytes from the ops' ``cost`` rules, shapes) are worked out once, when the code is generated
(a ``NodeInfo``).

Other instrumented code uses the span API of this module::

    span = profiler.begin("fused_add_relu", category="kernel", device="cuda:0",
                          flops=n, bytes=12 * n)
    ...                      # run the kernel
    profiler.end(span)

``begin`` returns ``None`` when no profile is active and ``end(None)`` does nothing; a code
generator should emit these calls only when asked to compile with profiling, so that profiled
code costs nothing when the profiler is off (no check per node).
"""
from __future__ import annotations

import threading
import time

from ..backends import get_backend
from ..context import Hook, context
from ..ops.registry import aval_of
from .events import Event
from .memory import MemoryTimeline
from .roofline import roofline
from .table import ProfileTable
from .trace import write_chrome_trace

__all__ = ["profile", "Profile", "record", "begin", "end", "active", "NodeInfo"]


def active():
    """The innermost running ``Profile``, or ``None`` (cheap: scans the installed hooks)."""
    for hook in reversed(context.hooks):
        if hook.__class__ is Profile:
            return hook
    return None


class Profile(Hook):
    """A running (then finished) profile. Make one with ``lg.profiler.profile(...)``.

    After the ``with`` block: ``events`` (a list of ``Event``, in start order), ``memory``
    (a ``MemoryTimeline``, when ``profile_memory=True``), ``table()``,
    ``export_chrome_trace(path)``, ``roofline(peaks)``.
    """

    def __init__(self, record_shapes=True, profile_memory=True, with_cost=True):
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_cost = with_cost
        self.events = []
        self.memory = None
        self._t0 = None
        self._stacks = threading.local()
        self._installed = None
        self.wall_time = None
        self.started_at = None

    # ---- running
    def __enter__(self):
        if self._installed is not None:
            raise RuntimeError("this profile is running or has run already: a profile records "
                               "one run; make a new one with lg.profiler.profile() for the next")
        self._t0 = time.perf_counter()
        self.started_at = time.time()   # wall-clock epoch: lines up the traces of several ranks
        if self.profile_memory:
            self.memory = MemoryTimeline(self._now)
        self._installed = context.installed(self)
        self._installed.__enter__()
        return self

    def __exit__(self, *exc):
        self._installed.__exit__(*exc)
        if self.memory is not None:
            self.memory.close()
        self.wall_time = self._now()
        return False

    def _now(self):
        return time.perf_counter() - self._t0

    def _stack(self):
        stack = getattr(self._stacks, "stack", None)
        if stack is None:
            stack = self._stacks.stack = []
        return stack

    def _open(self, name, category, phase, device):
        stack = self._stack()
        parent = stack[-1] if stack else None
        event = Event(name, category, phase, self._now(), threading.get_ident(), parent,
                      len(stack), device)
        index = len(self.events)
        self.events.append(event)
        stack.append(index)
        return index

    def _close(self, index, dur):
        stack = self._stack()
        stack.pop()
        event = self.events[index]
        event.dur = dur
        if event.parent is not None:
            self.events[event.parent].children_time += dur

    def on_op(self, op, inputs, attrs, run, phase):
        if context.tracer is not None:     # lg.jit records the op into a graph: nothing runs
            return self._traced(op, run)
        backend = _backend_of(inputs)
        index = self._open(op.name, "op", phase, str(backend.device))
        event = self.events[index]
        event.scope = context.scope
        if self.record_shapes:
            event.shapes = [tuple(x.shape) if hasattr(x, "shape") else () for x in inputs]
            event.dtypes = [str(x.dtype) if hasattr(x, "dtype") else type(x).__name__ for x in inputs]
        if self.with_cost and phase == "forward" and op.cost is not None:
            try:
                cost = op.cost(*[aval_of(x) for x in inputs], **attrs)
                event.flops, event.bytes = cost.get("flops"), cost.get("bytes")
            except Exception:       # a cost rule that cannot handle these inputs: unknown
                pass
        timer = None if backend.xp.__name__ == "numpy" else backend.timer()
        t = time.perf_counter()
        event.start = t - self._t0      # the op's interval starts here, not before the bookkeeping
        if timer is None:
            try:
                out = run()
            finally:
                self._close(index, time.perf_counter() - t)
        else:               # device time between CUDA events; stop() waits for the op
            timer.start()
            try:
                out = run()
            finally:
                self._close(index, timer.stop())
        if self.memory is not None:
            self.memory.track(out, op.name, phase, index)
        return out

    def _traced(self, op, run):
        index = self._open(op.name, "trace", None, "cpu")
        t = time.perf_counter()
        try:
            return run()
        finally:
            self._close(index, time.perf_counter() - t)

    # ---- spans: ranges, communication, compiled kernels
    def begin(self, name, category="range", device=None, **args):
        backend = get_backend(device) if device is not None else None
        timer = None if backend is None or backend.xp.__name__ == "numpy" else backend.timer()
        index = self._open(name, category, None, str(backend.device) if backend else "cpu")
        event = self.events[index]
        event.flops = args.pop("flops", None)
        event.bytes = args.pop("bytes", None)
        event.args = args or None
        if timer is not None:
            timer.start()
        return (self, index, timer, time.perf_counter())

    # ---- compiled code (see the module docstring)
    def graph_begin(self, info):
        """Open the span of one run of a compiled graph; returns the span, to close with
        ``graph_end`` (or ``graph_abort`` if the run fails)."""
        index = self._open(info.name, "graph", None, info.device)
        event = self.events[index]
        event.args = info.args
        return index, len(self._stack()) - 1, time.perf_counter()

    def graph_end(self, span):
        index, _, t = span
        self._close(index, time.perf_counter() - t)

    def graph_abort(self, span):
        """A run failed: close every event it left open (its nodes', then its own)."""
        index, depth, t = span
        stack = self._stack()
        now = time.perf_counter()
        while len(stack) > depth:
            self._close(stack[-1], now - self._t0 - self.events[stack[-1]].start)

    def node_begin(self, info):
        """Open the event of one compiled node or fused kernel (``info``: its ``NodeInfo``)."""
        index = self._open(info.name, "kernel", None, info.device)
        event = self.events[index]
        event.args, event.scope = info.args, info.scope
        if self.with_cost:
            event.flops, event.bytes = info.flops, info.bytes
        if self.record_shapes:
            event.shapes, event.dtypes = info.shapes, info.dtypes
        timer = info.timer()
        if timer is not None:
            timer.start()
        t = time.perf_counter()
        event.start = t - self._t0
        return index, timer, t

    def node_end(self, span, value):
        """Close a node's event; ``value`` (its result) joins the memory timeline. Results
        written into the memory plan's buffers are views of them and count zero bytes."""
        index, timer, t = span
        self._close(index, timer.stop() if timer is not None else time.perf_counter() - t)
        if self.memory is not None:
            self.memory.track(value, self.events[index].name, None, index)

    # ---- results
    def table(self, sort_by="self", group_by="op", phase=None, limit=None):
        """The op table; see ``ProfileTable`` for the columns and what self and total mean."""
        return ProfileTable(self, sort_by=sort_by, group_by=group_by, phase=phase, limit=limit)

    def export_chrome_trace(self, path):
        """Write the profile in the Chrome trace event format (open it at ui.perfetto.dev)."""
        return write_chrome_trace(self, path)

    def roofline(self, peaks=None, group_by="op"):
        """Arithmetic intensity and attained throughput per op against ``peaks`` (measured
        with ``measure_peaks`` on this profile's device when not given); see ``roofline.py``."""
        return roofline(self, peaks, group_by=group_by)

    def __repr__(self):
        state = "running" if self.wall_time is None else f"{self.wall_time * 1e3:.3f} ms"
        return f"<Profile: {len(self.events)} events, {state}>"


class NodeInfo:
    """What the profiler records about one node of a compiled graph, worked out when the code
    is generated: ``name`` (the op, or the fused kernel with its steps), ``device``, ``flops``
    and ``bytes`` (the node's ``cost``), input ``shapes`` and ``dtypes``, ``scope``, and
    ``args`` (the node's number and the user's line, shown in the trace viewer)."""

    __slots__ = ("name", "device", "flops", "bytes", "shapes", "dtypes", "scope", "args", "_backend")

    def __init__(self, name, device, flops=None, bytes=None, shapes=None, dtypes=None, scope=None, args=None):
        self.name = name
        self.device = str(device)
        self.flops = flops
        self.bytes = bytes
        self.shapes = shapes
        self.dtypes = dtypes
        self.scope = scope
        self.args = args
        self._backend = get_backend(device)

    def timer(self):
        """A CUDA-event timer on a GPU (device time), None on the CPU (the host clock)."""
        return None if self._backend.xp.__name__ == "numpy" else self._backend.timer()

    def __repr__(self):
        return f"NodeInfo({self.name!r}, {self.device})"


def profile(record_shapes=True, profile_memory=True, with_cost=True):
    """Profile the eager ops (and backward rules) run inside a ``with`` block::

        with lg.profiler.profile() as prof:
            loss = model(x).mean(); loss.backward()
        print(prof.table(sort_by="total"))
        prof.export_chrome_trace("step.json")

    ``record_shapes``: keep input shapes and dtypes per event (grouping by shape needs it).
    ``profile_memory``: keep the memory timeline (``prof.memory``).
    ``with_cost``: ask each op's ``cost`` rule for flops and bytes (the roofline needs it).
    """
    return Profile(record_shapes=record_shapes, profile_memory=profile_memory, with_cost=with_cost)


def begin(name, category="range", device=None, **args):
    """Open a span in the active profile (``None`` when there is none); close it with ``end``.

    This is the call compiled code makes around a node or fused kernel: ``category="kernel"``,
    ``device`` the device it runs on (CUDA spans are timed with CUDA events), and ``flops`` /
    ``bytes`` from the kernel's cost so the roofline can place it. Other keyword arguments go
    to the event's ``args`` (shown in the trace viewer).
    """
    prof = active()
    return None if prof is None else prof.begin(name, category, device, **args)


def end(span):
    """Close a span opened by ``begin`` (nothing happens for ``None``)."""
    if span is None:
        return
    prof, index, timer, t = span
    prof._close(index, timer.stop() if timer is not None else time.perf_counter() - t)


class record:
    """``with lg.profiler.record("data loading"):`` marks a range of your code in the profile
    (a no-op when no profile is active). Ops inside become its children in the trace and
    the table, so its self time is the time spent outside any op."""

    __slots__ = ("name", "category", "args", "span")

    def __init__(self, name, category="range", **args):
        self.name = name
        self.category = category
        self.args = args
        self.span = None

    def __enter__(self):
        self.span = begin(self.name, self.category, **self.args)
        return self

    def __exit__(self, *exc):
        end(self.span)
        self.span = None
        return False


def _backend_of(inputs):
    for x in inputs:
        b = getattr(x, "_backend", None)
        if b is not None:
            return b
    for x in inputs:
        if hasattr(x, "__cuda_array_interface__"):
            return get_backend(f"cuda:{x.device.id}")
    return get_backend("cpu")
