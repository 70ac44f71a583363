"""Making tensors: ``tensor``, ``zeros``, ``ones``, ``arange``, ``randn`` and friends.

Every function takes ``dtype=``, ``device=`` and ``requires_grad=``. Floats default to float32.
"""
from __future__ import annotations

import numpy as np

from .backends import get_backend
from .random import generator
from .tensor import Tensor, _shape_arg, get_default_dtype


def _make(array, backend, requires_grad, name=None):
    t = Tensor._wrap(array, backend)
    if name is not None:
        t.name = name
    if requires_grad:
        t.requires_grad = True
    return t


def _float(dtype):
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad=False, name=None):
    """A tensor holding a copy of ``data`` (a number, nested lists, or an array)."""
    if isinstance(data, Tensor):
        data = data.numpy() if device is not None and get_backend(device) is not data._backend else data.data.copy()
    t = Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad, name=name)
    if t.data is data:  # an array already of the right dtype and device: asarray did not copy it
        t.data = t.data.copy()
    return t


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but without copying when ``data`` is already a suitable array."""
    if isinstance(data, Tensor) and device is None and dtype is None:
        return data
    return Tensor(data, dtype=dtype, device=device)


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    return _make(b.xp.zeros(_shape_arg(shape), dtype=_float(dtype)), b, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    return _make(b.xp.ones(_shape_arg(shape), dtype=_float(dtype)), b, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    if dtype is None:
        dtype = _float(None) if isinstance(fill_value, float) else np.asarray(fill_value).dtype
    return _make(b.xp.full(_shape_arg((shape,)), fill_value, dtype=dtype), b, requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    return _make(b.xp.empty(_shape_arg(shape), dtype=_float(dtype)), b, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like ``numpy.arange``; integers give int64, floats give float32."""
    b = get_backend(device)
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, (int, np.integer)) for v in (start, stop, step)) else _float(None)
    return _make(b.xp.arange(start, stop, step, dtype=dtype), b, requires_grad)


def linspace(start, stop, num=50, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    return _make(b.xp.linspace(start, stop, num, dtype=_float(dtype)), b, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    return _make(b.xp.eye(n, m, dtype=_float(dtype)), b, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    """Uniform in [0, 1), from the seeded generator of the device (see ``manual_seed``)."""
    b = get_backend(device)
    a = generator(b).random(_shape_arg(shape), dtype=np.float64).astype(_float(dtype))
    return _make(a, b, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    """Standard normal, from the seeded generator of the device (see ``manual_seed``)."""
    b = get_backend(device)
    a = generator(b).standard_normal(_shape_arg(shape), dtype=np.float64).astype(_float(dtype))
    return _make(a, b, requires_grad)


def uniform(*shape, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False):
    b = get_backend(device)
    a = generator(b).uniform(low, high, _shape_arg(shape)).astype(_float(dtype))
    return _make(a, b, requires_grad)


def randint(low, high, shape, dtype=np.int64, device=None):
    b = get_backend(device)
    return _make(generator(b).integers(low, high, _shape_arg((shape,))).astype(dtype), b, False)


def _like(fn, x, dtype, device, requires_grad, **kw):
    return fn(tuple(x.shape), dtype=dtype or x.dtype, device=device or x.device,
              requires_grad=requires_grad, **kw)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _like(zeros, x, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _like(ones, x, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return full(tuple(x.shape), fill_value, dtype=dtype or x.dtype, device=device or x.device,
                requires_grad=requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad=False):
    return _like(rand, x, dtype, device, requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False):
    return _like(randn, x, dtype, device, requires_grad)
