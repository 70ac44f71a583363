"""``measure_peaks``: what this device can do at best, measured, not taken from a datasheet.

Two numbers make a roofline: the memory bandwidth (bytes per second a large copy attains)
and the compute peak (flops per second a large matmul attains). Measured here because a
datasheet's numbers are never reached by a NumPy or CuPy call, and a roofline is useful when
it shows how far an op is from what *this* setup reaches.
"""
from __future__ import annotations

import time

from ..backends import get_backend

__all__ = ["Peaks", "measure_peaks"]


class Peaks:
    """Measured peaks of one device: ``bandwidth`` (bytes/s), ``flops`` (flop/s), and the
    ridge point ``ridge = flops / bandwidth`` (flop/byte): an op with a lower arithmetic
    intensity is bound by memory, a higher one by compute."""

    def __init__(self, device, bandwidth, flops, details=None):
        self.device = str(device)
        self.bandwidth = float(bandwidth)
        self.flops = float(flops)
        self.details = details or {}

    @property
    def ridge(self):
        return self.flops / self.bandwidth

    def roof(self, intensity):
        """The most flop/s an op of this arithmetic intensity can attain here."""
        return min(self.flops, intensity * self.bandwidth)

    def as_dict(self):
        return {"device": self.device, "bandwidth": self.bandwidth, "flops": self.flops,
                "ridge": self.ridge, **self.details}

    def __repr__(self):
        return (f"Peaks({self.device}: copy {self.bandwidth / 1e9:.1f} GB/s, "
                f"matmul {self.flops / 1e9:.1f} GFLOP/s, ridge {self.ridge:.1f} flop/byte)")


def _best_time(backend, fn, repeats):
    fn()                                    # warm up: allocation, kernel compilation
    backend.synchronize()
    best = float("inf")
    for _ in range(repeats):
        timer = backend.timer()
        timer.start()
        fn()
        best = min(best, timer.stop())
    return best


def measure_peaks(device="cpu", copy_mib=64, matmul_n=1024, dtype="float32", repeats=5):
    """Measure copy bandwidth and matmul flops on ``device`` and return ``Peaks``.

    Bandwidth: copying a ``copy_mib`` MiB array into another reads and writes it, so it moves
    ``2 * copy_mib`` MiB; the best of ``repeats`` runs counts. Compute: an
    ``n x n @ n x n`` matmul of ``dtype`` does ``2 n^3`` flops; best of ``repeats``. On a GPU
    both are timed with CUDA events. The arrays must be much larger than the caches for the
    copy to measure memory, not cache: keep ``copy_mib`` at 64 or more for real use.
    """
    backend = get_backend(device)
    xp = backend.xp
    n_items = copy_mib * (1 << 20) // 4
    src = backend.asarray(xp.ones(n_items, dtype="float32"))
    dst = xp.empty_like(src)
    t_copy = _best_time(backend, lambda: xp.copyto(dst, src), repeats)
    a = backend.asarray(xp.ones((matmul_n, matmul_n), dtype=dtype))
    b = backend.asarray(xp.ones((matmul_n, matmul_n), dtype=dtype))
    out = xp.empty((matmul_n, matmul_n), dtype=dtype)
    t_mm = _best_time(backend, lambda: xp.matmul(a, b, out=out), repeats)
    copy_bytes = 2 * src.nbytes
    flops = 2 * matmul_n ** 3
    return Peaks(backend.device, copy_bytes / t_copy, flops / t_mm,
                 {"copy_bytes": copy_bytes, "copy_s": t_copy, "matmul_n": matmul_n,
                  "matmul_dtype": dtype, "matmul_s": t_mm,
                  "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})
