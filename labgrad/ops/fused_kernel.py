"""The ``fused`` graph op: one node that runs a whole group of elementwise ops as one kernel.

The elementwise-fusion pass (``graph/passes/fuse.py``) puts a ``fused`` node in place of each
group it fuses. Its attribute ``kernel`` is a ``KernelAttr`` holding the group's
``backends.fusion.FusedKernel`` (inputs, steps, outputs and an optional reduction). Running
the node calls the kernel the node's backend compiles from it (``Backend.compile_fused``: a
Numba loop on the CPU, a CuPy kernel on a GPU); the code generator writes that call directly,
``v7 = fused_3f2a1c(v1, v2)``.

A ``fused`` node with one output has that output's aval; with several it has a tuple of avals
and ``get`` nodes read them, like ``cond`` and ``while``. Fusion runs at lowering, after
automatic differentiation, so nothing ever differentiates a ``fused`` node: its backward rule
says so.
"""
from __future__ import annotations

import threading

from ..backends import CPU, get_backend
from ..errors import LabgradError
from .registry import GRAPH_OPS, Aval, Op, get_op, nbytes

__all__ = ["fused", "KernelAttr", "compiled_kernel"]

_lock = threading.Lock()
_compiled = {}   # (backend key, kernel key) -> compiled kernel


class KernelAttr:
    """A fused node's ``kernel`` attribute: the ``FusedKernel`` and the avals it produces.

    Compares and hashes by the kernel's content (its ``key``), so two equal groups are one
    kernel, and prints as ``fused_3f2a1c[mul, add]`` in the text form of a graph.
    """

    __slots__ = ("kernel", "avals", "locations")

    def __init__(self, kernel, avals, locations=()):
        self.kernel = kernel
        self.avals = tuple(avals)
        self.locations = tuple(locations)   # per step: the user's line that made its node

    @property
    def name(self):
        return self.kernel.name

    def __eq__(self, other):
        return isinstance(other, KernelAttr) and other.kernel.key == self.kernel.key \
            and repr(other.kernel.reduce) == repr(self.kernel.reduce) and other.avals == self.avals

    def __hash__(self):
        return hash(self.kernel.key)

    def __repr__(self):
        red = self.kernel.reduce
        tail = "" if red is None else f" -> {red.kind}"
        return f"{self.kernel.name}[{', '.join(self.kernel.ops)}{tail}]"

    def failing_step(self, input_avals):
        """``(step index, error)`` of the first step whose ``infer`` rejects the avals the
        kernel got at run time (a shape that does not broadcast...), or None."""
        env = {i.name: a for i, a in zip(self.kernel.inputs, input_avals)}
        for k, step in enumerate(self.kernel.steps):
            args = [env.get(r, r) if isinstance(r, str) else r for r in step.refs]
            try:
                env[step.name] = get_op(step.op).infer(*args, **step.attrs)
            except Exception as e:   # noqa: BLE001
                return k, e
        return None


def compiled_kernel(backend, kernel):
    """``backend.compile_fused(kernel)``, compiled once per backend and kernel content."""
    key = (str(backend.device), kernel.key, kernel.name, repr(kernel.reduce))
    hit = _compiled.get(key)
    if hit is None:
        hit = backend.compile_fused(kernel)
        with _lock:
            _compiled[key] = hit
    return hit


def _forward(xp, *arrays, kernel):
    backend = CPU
    if xp.__name__ != "numpy":     # a CuPy array: the GPU it lives on
        dev = next((a.device for a in arrays if hasattr(a, "device")), None)
        backend = get_backend(f"cuda:{getattr(dev, 'id', 0)}")
    return compiled_kernel(backend, kernel.kernel)(*arrays)


def _infer(*avals, kernel):
    return kernel.avals[0] if len(kernel.avals) == 1 else kernel.avals


def _backward(ctx, g):
    raise LabgradError(
        "a fused node cannot be differentiated: elementwise fusion runs when a graph is lowered "
        "for execution, after its gradients were built. Differentiate the graph as built "
        "(lg.gradients before lg.compile), or compile it with passes that leave out 'fuse'.")


def _cost(*avals, kernel):
    return {"flops": len(kernel.kernel.steps) * max((nbytes(a) // max(a.dtype.itemsize, 1)
                                                      for a in avals if isinstance(a, Aval)),
                                                     default=1),
            "bytes": sum(nbytes(a) for a in avals if isinstance(a, Aval))
            + sum(nbytes(a) for a in kernel.avals)}


fused = Op("fused", "fused", forward=_forward, infer=_infer, backward=_backward, cost=_cost,
           doc="A group of elementwise ops (and maybe a reduction) run as one generated kernel.",
           array_backward=True)
fused.kind = "fused"
GRAPH_OPS["fused"] = fused
