"""The memory timeline: bytes live over time, the peak, and what was alive at the peak.

What is measured, precisely: every array an op *returns* while the profiler runs (the output
of an eager op, the gradients a backward rule returns) is counted from the moment the op
returns until Python frees that array (its last reference goes: the tensor, the tape node
that saved it, the ``.grad`` that holds it). Views (``reshape``, ``transpose``: arrays whose
``.base`` is another array) share memory and count zero bytes. Not counted: arrays that
existed before the profile started (parameters, the input batch), temporaries an op makes
inside itself and frees before returning, and the array library's own caches (CuPy's memory
pool keeps freed blocks; what is measured is what labgrad holds, not what the pool reserved).

So the curve answers "how much memory do the values of this computation keep alive?": the
activations saved for backward, the gradients, and when each is released.
"""
from __future__ import annotations

import weakref

__all__ = ["Allocation", "MemoryTimeline"]


class Allocation:
    """One observed array: which op made it, its shape and dtype, when it lived."""

    __slots__ = ("op", "phase", "shape", "dtype", "nbytes", "alloc", "free", "event",
                 "_born", "_died")

    def __init__(self, op, phase, shape, dtype, nbytes, alloc, event):
        self.op = op
        self.phase = phase
        self.shape = shape
        self.dtype = dtype
        self.nbytes = nbytes
        self.alloc = alloc          # seconds since the profile started
        self.free = None            # None: still alive when the profile ended
        self.event = event          # index of the event that returned it
        self._born = self._died = None   # positions in the timeline's points (exact order)

    def __repr__(self):
        phase = " (backward)" if self.phase == "backward" else ""
        return f"<{self.op}{phase} {self.dtype}{list(self.shape)}: {self.nbytes} bytes>"


class MemoryTimeline:
    """Filled by the profiler while it runs (``track``), read afterwards.

    ``points``: ``[(seconds, bytes_live), ...]``, one per change; ``peak_bytes``, ``peak_time``;
    ``alive_at_peak()``: the allocations alive at the peak, largest first.
    """

    def __init__(self, clock):
        self._clock = clock
        self.allocations = []
        self.points = [(0.0, 0)]
        self.live = 0
        self.peak_bytes = 0
        self.peak_time = 0.0
        self._peak_point = 0
        self._finalizers = {}
        self._open = True

    def track(self, value, op, phase, event):
        """Count the arrays in ``value`` (an array, a Tensor, or a tuple/list of those)."""
        if isinstance(value, (tuple, list)):
            for v in value:
                self.track(v, op, phase, event)
            return
        array = getattr(value, "data", None) if hasattr(value, "_backend") else value
        if array is None or not hasattr(array, "nbytes") or getattr(array, "base", None) is not None:
            return
        key = id(array)
        if key in self._finalizers and self._finalizers[key].alive:
            return                  # the same array handed on (an op that returns its input)
        try:
            finalizer = weakref.finalize(array, self._freed, len(self.allocations))
        except TypeError:           # NumPy scalars cannot be watched; they are tiny
            return
        self._finalizers[key] = finalizer
        t = self._clock()
        a = Allocation(op, phase, tuple(array.shape), str(array.dtype), int(array.nbytes), t, event)
        self.allocations.append(a)
        a._born = self._change(t, a.nbytes)

    def _freed(self, index):
        if not self._open:
            return
        a = self.allocations[index]
        a.free = self._clock()
        a._died = self._change(a.free, -a.nbytes)

    def _change(self, t, delta):
        self.live += delta
        self.points.append((t, self.live))
        if self.live > self.peak_bytes:
            self.peak_bytes = self.live
            self.peak_time = t
            self._peak_point = len(self.points) - 1
        return len(self.points) - 1

    def close(self):
        """Stop watching (the profile ended): arrays still alive stay counted as live."""
        self._open = False
        for finalizer in self._finalizers.values():
            finalizer.detach()
        self._finalizers.clear()

    def alive_at(self, t):
        """Allocations alive at time ``t`` (allocated at or before, freed after), largest first."""
        alive = [a for a in self.allocations if a.alloc <= t and (a.free is None or a.free > t)]
        return sorted(alive, key=lambda a: -a.nbytes)

    def alive_at_peak(self):
        """The allocations that made up the peak, largest first (their bytes sum to it)."""
        p = self._peak_point
        alive = [a for a in self.allocations if a._born <= p and (a._died is None or a._died > p)]
        return sorted(alive, key=lambda a: -a.nbytes)

    def summary(self, top=5):
        """The peak and the largest arrays alive at it, as text."""
        lines = [f"peak: {_fmt_bytes(self.peak_bytes)} live at {self.peak_time * 1e3:.3f} ms "
                 f"({len(self.allocations)} arrays observed)"]
        alive = self.alive_at_peak()
        for a in alive[:top]:
            phase = " (backward)" if a.phase == "backward" else ""
            lines.append(f"  {_fmt_bytes(a.nbytes):>10}  {a.op}{phase} -> {a.dtype}{list(a.shape)}")
        if len(alive) > top:
            rest = sum(a.nbytes for a in alive[top:])
            lines.append(f"  {_fmt_bytes(rest):>10}  {len(alive) - top} more")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<MemoryTimeline: {len(self.allocations)} arrays, peak {self.peak_bytes} bytes "
                f"at {self.peak_time * 1e3:.3f} ms>")


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
