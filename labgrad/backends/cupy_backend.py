"""The CUDA backend: CuPy arrays. The only module of labgrad that imports cupy."""
from __future__ import annotations

from .base import Backend, Device
from .fusion_cuda import compile_cuda

INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install -e '.[gpu-cuda12]' (CUDA 12) "
    "or pip install -e '.[gpu-cuda13]' (CUDA 13); check the CUDA version with nvidia-smi"
)


def import_cupy():
    """Import cupy, or say why CUDA cannot be used here (returns ``(cupy, None)`` or ``(None, why)``)."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed; " + INSTALL_HINT
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # driver missing, no GPU, CUDA mismatch
        return None, f"CuPy is installed but cannot reach a GPU ({type(e).__name__}: {e})"
    if n == 0:
        return None, "CuPy is installed but this machine has no CUDA GPU"
    return cupy, None


class CupyBackend(Backend):
    def __init__(self, cupy, index: int):
        self.xp = cupy
        self.index = index
        self.device = Device("cuda", index)
        self._cuda_device = cupy.cuda.Device(index)

    def asarray(self, data, dtype=None):
        with self._cuda_device:
            return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array):
        return self.xp.asnumpy(array)

    def synchronize(self):
        self._cuda_device.synchronize()

    def timer(self):
        return CudaEventTimer(self.xp)

    def random(self, seed):
        with self._cuda_device:
            return self.xp.random.default_rng(seed)

    def compile_fused(self, kernel):
        """A CuPy ``ElementwiseKernel`` (or ``ReductionKernel``) for the group."""
        return compile_cuda(kernel, self.xp)


class CudaEventTimer:
    """Elapsed GPU time between two CUDA events (wall-clock time would miss queued work)."""

    def __init__(self, cupy):
        self._cp = cupy

    def start(self):
        self._a = self._cp.cuda.Event()
        self._b = self._cp.cuda.Event()
        self._a.record()

    def stop(self) -> float:
        self._b.record()
        self._b.synchronize()
        return self._cp.cuda.get_elapsed_time(self._a, self._b) / 1000.0
