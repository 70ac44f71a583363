"""What the profiler records: one ``Event`` per op call, backward rule, range or kernel.

An event is an interval on one thread: it starts, may contain other events (its children,
for example the all-reduce a gradient hook starts inside a backward pass, or the ops inside
a ``profiler.record("step")`` range), and ends. Times are seconds since the profile started.

``dur`` is the *total* (inclusive) time of the event: from its start to its end, children
included. ``self_time`` is ``dur`` minus the total time of its direct children: the time
spent in the event itself. On a GPU ``dur`` is device time measured with CUDA events (see
``clock.py``); ``start`` is always the host's clock, so a timeline can place it.
"""
from __future__ import annotations

__all__ = ["Event"]


class Event:
    """One interval of the profile. Fields:

    ``name``      the op's name (``"matmul"``), a range's or kernel's name
    ``category``  ``"op"`` (an eager op or backward rule), ``"range"`` (``record``),
                  ``"comm"`` (communication), ``"kernel"`` (compiled code), ``"trace"``
                  (an op recorded by ``lg.jit`` while tracing: it did not run)
    ``phase``     ``"forward"`` or ``"backward"`` for ops; ``None`` otherwise
    ``start``     seconds since the profile started (host clock)
    ``dur``       total seconds, children included (device time on a GPU)
    ``tid``       the thread it ran on (``threading.get_ident()``)
    ``parent``    index of the enclosing event on the same thread, or ``None``
    ``depth``     nesting depth (0: top level)
    ``device``    ``"cpu"``, ``"cuda:0"``, ...
    ``shapes``    input shapes (``record_shapes=True``), else ``None``
    ``dtypes``    input dtypes (``record_shapes=True``), else ``None``
    ``flops``     floating-point operations, from the op's ``cost`` rule (forward only)
    ``bytes``     bytes read and written, from the op's ``cost`` rule (forward only)
    ``scope``     the name scope the op ran in (``"encoder/attn"``), or ``None``
    ``args``      anything else (a range's or kernel's keyword arguments)
    """

    __slots__ = ("name", "category", "phase", "start", "dur", "tid", "parent", "depth",
                 "device", "shapes", "dtypes", "flops", "bytes", "scope", "args", "children_time")

    def __init__(self, name, category, phase, start, tid, parent, depth, device):
        self.name = name
        self.category = category
        self.phase = phase
        self.start = start
        self.dur = 0.0
        self.tid = tid
        self.parent = parent
        self.depth = depth
        self.device = device
        self.shapes = None
        self.dtypes = None
        self.flops = None
        self.bytes = None
        self.scope = None
        self.args = None
        self.children_time = 0.0

    @property
    def end(self):
        return self.start + self.dur

    @property
    def self_time(self):
        """Total time minus the total time of direct children (never below zero)."""
        return max(self.dur - self.children_time, 0.0)

    @property
    def key(self):
        """``"matmul"`` or ``"matmul (backward)"``: how the table names an op event."""
        return f"{self.name} (backward)" if self.phase == "backward" else self.name

    def __repr__(self):
        phase = f" {self.phase}" if self.phase else ""
        return f"Event({self.name!r}{phase}, {self.category}, {self.dur * 1e6:.1f} us)"
