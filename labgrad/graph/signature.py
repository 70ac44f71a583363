"""A jitted call's arguments: flattened to leaves, and the signature that keys the cache.

``flatten`` turns nested tuples/lists/dicts of arguments into a structure and a list of leaves;
``leaf_signature`` describes one leaf (a tensor by shape, dtype, device and requires_grad; any
other value by itself). Two calls with equal structure and signatures reuse one trace. When a
new trace is needed, ``describe_change`` says why, in words: ``arg 0 (xb) shape (32, 64) ->
(16, 64)``.
"""
from __future__ import annotations

import numpy as np

from ..backends import CPU
from ..errors import TraceError
from ..tensor import Tensor
from .symbol import Symbol

__all__ = ["flatten", "unflatten", "paths", "leaf_signature", "closest", "describe_change"]

def flatten(obj, leaves):
    """Structure of ``obj`` (nested tuples/lists/dicts), collecting its leaves in order."""
    cls = obj.__class__
    if cls is tuple or cls is list:
        return (cls.__name__, tuple([flatten(v, leaves) for v in obj]))
    if cls is dict:
        keys = tuple(obj)
        return ("dict", keys, tuple([flatten(obj[k], leaves) for k in keys]))
    leaves.append(obj)
    return "*"


def paths(spec, path):
    """The path of each leaf of ``spec``, in ``flatten``'s order: ``args[0]``, ``kwargs['lr']``."""
    if spec == "*":
        yield path
    elif spec[0] == "dict":
        for k, sub in zip(spec[1], spec[2]):
            yield from paths(sub, f"{path}[{k!r}]")
    else:
        for i, sub in enumerate(spec[1]):
            yield from paths(sub, f"{path}[{i}]")


def unflatten(spec, it):
    if spec == "*":
        return next(it)
    if spec[0] == "dict":
        return {k: unflatten(s, it) for k, s in zip(spec[1], spec[2])}
    values = [unflatten(s, it) for s in spec[1]]
    return tuple(values) if spec[0] == "tuple" else values


def leaf_signature(value):
    if value.__class__ is Tensor:
        data = value.data
        return ("tensor", data.shape, data.dtype, value._backend.device, value._requires_grad)
    if isinstance(value, np.ndarray):
        return ("tensor", value.shape, value.dtype, CPU.device, False)
    if isinstance(value, Symbol):
        raise TraceError("lg.jit: a graph Symbol was passed to a jitted function outside a trace")
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"lg.jit: argument of type {type(value).__name__} is neither a tensor nor "
                        f"hashable, so it cannot be part of the trace's cache key; pass tensors, "
                        f"numbers, strings, or tuples/lists/dicts of them") from None
    return ("static", type(value).__name__, value)


def closest(keys, key):
    """The cached signature that differs from ``key`` in the fewest arguments: the change
    from it is the reason for a retrace (the latest trace may differ in more ways)."""
    def distance(old):
        if old[0] != key[0]:
            return float("inf")
        return sum(sum(x != y for x, y in zip(a, b)) + (len(a) != len(b)) for a, b in zip(old[1], key[1]))
    return min(reversed(list(keys)), key=distance)  # ties go to the most recent trace


def describe_change(old, new, paths):
    """Why a new signature differs from the last one traced: 'arg 0 shape (32, 64) -> (16, 64)'."""
    (old_spec, old_sigs), (new_spec, new_sigs) = old, new
    if old_spec != new_spec:
        def shape_of(spec):
            _, args, kwargs = spec
            return f"{len(args[1])} positional, keywords {kwargs[1]}"
        if shape_of(old_spec) != shape_of(new_spec):
            return f"the arguments changed: {shape_of(new_spec)} instead of {shape_of(old_spec)}"
        return "the nesting of the arguments (tuples, lists, dicts) changed"
    labels = ("kind", "shape", "dtype", "device", "requires_grad")
    for path, a, b in zip(paths, old_sigs, new_sigs):
        if a == b:
            continue
        if a[0] != b[0]:
            return f"{path} was a {'tensor' if a[0] == 'tensor' else a[1]}, now a {'tensor' if b[0] == 'tensor' else b[1]}"
        if a[0] == "static":
            return f"{path} value {a[2]!r} -> {b[2]!r}"
        for i in range(1, 5):
            if a[i] != b[i]:
                va, vb = a[i], b[i]
                if labels[i] == "dtype":
                    va, vb = va.name, vb.name
                return f"{path} {labels[i]} {va} -> {vb}"
    return "new signature"
