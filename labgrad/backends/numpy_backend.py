"""The CPU backend: NumPy arrays."""
from __future__ import annotations

import numpy as np

from .base import Backend, Device
from .fusion_cpu import compile_cpu


class NumpyBackend(Backend):
    xp = np

    def __init__(self):
        self.device = Device("cpu")

    def asarray(self, data, dtype=None):
        if hasattr(data, "__cuda_array_interface__") and hasattr(data, "get"):
            data = data.get()  # a CuPy array: copy device -> host
        return np.asarray(data, dtype=dtype)

    def to_numpy(self, array):
        return np.asarray(array)

    def random(self, seed):
        return np.random.default_rng(seed)

    def compile_fused(self, kernel):
        """A Numba loop over the group (or NumPy with ``out=`` buffers without Numba)."""
        return compile_cpu(kernel)
