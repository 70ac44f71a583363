"""The backend interface: everything the engine needs from an array library.

A backend owns one device. Ops never import numpy or cupy themselves: their ``forward`` gets the
backend's array module ``xp`` as its first argument, so the same definition runs on CPU and GPU.
"""
from __future__ import annotations

import time


class Device:
    """A place where tensors live: ``Device("cpu")``, ``Device("cuda", 0)``.

    Devices compare by value and print as PyTorch prints them (``cpu``, ``cuda:0``).
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None):
        self.type = type
        self.index = index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device('{self}')"

    def __eq__(self, other):
        if isinstance(other, str):
            other = parse_device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


def parse_device(spec) -> Device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``Device`` -> ``Device``."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a device is a string such as 'cpu' or 'cuda:0', not {type(spec).__name__}")
    kind, _, idx = spec.strip().lower().partition(":")
    if kind == "cpu":
        if idx not in ("", "0"):
            raise ValueError(f"there is one CPU device; got {spec!r}")
        return Device("cpu")
    if kind in ("cuda", "gpu"):
        if idx and not idx.isdigit():
            raise ValueError(f"a CUDA device index is a number, as in 'cuda:0'; got {spec!r}")
        return Device("cuda", int(idx) if idx else 0)
    raise ValueError(f"unknown device {spec!r}: use 'cpu', 'cuda' or 'cuda:N'")


class Backend:
    """What a device offers: its array module ``xp`` and a few services around it."""

    device: Device
    xp = None  # numpy or cupy

    def asarray(self, data, dtype=None):
        """Make (or move) ``data`` into an array on this device."""
        raise NotImplementedError

    def to_numpy(self, array):
        """Copy an array of this backend to host memory as ``numpy.ndarray``."""
        raise NotImplementedError

    def synchronize(self):
        """Wait until queued work is done (a no-op on CPU)."""

    def timer(self):
        """A ``Timer`` measuring elapsed device time between ``start()`` and ``stop()``."""
        return WallTimer()

    def random(self, seed):
        """A random generator of this device's array module."""
        raise NotImplementedError

    def compile_fused(self, kernel):
        """Compile a ``fusion.FusedKernel`` for this device: a callable taking this backend's
        arrays (one per kernel input) and returning the output array(s); its ``.source`` is
        the generated code a student can read."""
        raise NotImplementedError(f"{type(self).__name__} cannot compile fused kernels")

    def __repr__(self):
        return f"<{type(self).__name__} {self.device}>"


class WallTimer:
    """Elapsed wall-clock seconds; good for the CPU, where work is synchronous."""

    def start(self):
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        return time.perf_counter() - self._t0
