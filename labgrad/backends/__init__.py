"""Backends and devices.

``get_backend("cpu")`` always works. ``get_backend("cuda:0")`` needs CuPy and a GPU, and
otherwise raises a ``DeviceError`` that says how to get them.
"""
from __future__ import annotations

from ..errors import DeviceError
from .base import Backend, Device, parse_device
from .numpy_backend import NumpyBackend

CPU = NumpyBackend()
_backends: dict[Device, Backend] = {CPU.device: CPU}
_cuda_unavailable: str | None = None


def get_backend(device=None) -> Backend:
    """The backend for ``device`` (a string or ``Device``; ``None`` means CPU)."""
    if device is None:
        return CPU
    if isinstance(device, Backend):
        return device
    dev = parse_device(device)
    b = _backends.get(dev)
    if b is not None:
        return b
    from .cupy_backend import CupyBackend, import_cupy

    cupy, why = import_cupy()
    if cupy is None:
        raise DeviceError(f"device '{dev}' is not available: {why}")
    count = cupy.cuda.runtime.getDeviceCount()
    if dev.index >= count:
        raise DeviceError(f"device '{dev}' does not exist: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
    b = _backends[dev] = CupyBackend(cupy, dev.index)
    return b


def cuda_is_available() -> bool:
    """True when CuPy is installed and can see at least one GPU."""
    from .cupy_backend import import_cupy

    return import_cupy()[0] is not None


def cuda_device_count() -> int:
    from .cupy_backend import import_cupy

    cupy, _ = import_cupy()
    return 0 if cupy is None else cupy.cuda.runtime.getDeviceCount()


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or ``None`` when it can."""
    from .cupy_backend import import_cupy

    return import_cupy()[1]


def available_devices() -> list[Device]:
    """Every device tensors can be placed on here: ``cpu`` first, then each GPU."""
    return [CPU.device] + [Device("cuda", i) for i in range(cuda_device_count())]


__all__ = ["Backend", "Device", "parse_device", "get_backend", "cuda_is_available",
           "cuda_device_count", "cuda_unavailable_reason", "available_devices", "CPU"]
