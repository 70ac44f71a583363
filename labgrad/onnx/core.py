"""What the exporter and the mapping table share: the error, the values, the node builder."""
from __future__ import annotations

import numpy as np

from ..errors import LabgradError

__all__ = ["BATCH_DIM", "Builder", "OnnxExportError", "V", "require"]

BATCH_DIM = "N"


class OnnxExportError(LabgradError, ValueError):
    """The graph cannot be written as ONNX (an op with no mapping, state updates, ...)."""


def require(package="onnx"):
    """Import ``onnx`` (or ``onnxruntime``), or raise ``ImportError`` saying how to install it."""
    try:
        return __import__(package)
    except ImportError as e:
        raise ImportError(f"lg.onnx needs the {package!r} package: pip install 'labgrad[onnx]' "
                          f"(or pip install onnx onnxruntime)") from e


# ---------------------------------------------------------------- values while exporting

class V:
    """An exported value: its ONNX name, static shape (``None`` unknown), dtype, and the set
    of axes whose size is only known at run time (``dyn``, the batch axis)."""

    __slots__ = ("dtype", "dyn", "name", "shape")

    def __init__(self, name, shape, dtype, dyn=frozenset()):
        self.name, self.shape, self.dtype, self.dyn = name, tuple(shape), np.dtype(dtype), frozenset(dyn)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"V({self.name}, {self.shape}, {self.dtype}, dyn={sorted(self.dyn)})"


class Builder:
    """Collects ONNX nodes and initializers; ``add`` writes one node and returns its output
    name(s); ``const`` stores an array as an initializer (equal small arrays are shared)."""

    def __init__(self, opset):
        self.onnx = require("onnx")
        self.opset = opset
        self.nodes, self.initializers = [], []
        self._names = set()
        self._consts = {}
        self.current = None      # the labgrad node being written (names and doc strings)

    def fresh(self, hint):
        hint = "".join(c if c.isalnum() or c in "._" else "_" for c in str(hint)) or "v"
        name, k = hint, 1
        while name in self._names:
            k += 1
            name = f"{hint}_{k}"
        self._names.add(name)
        return name

    def add(self, op_type, inputs, n_out=1, out=None, **attrs):
        node = self.current
        base = f"n{node.id}_{node.op_name}" if node is not None else op_type.lower()
        outs = [out] if out is not None else [self.fresh(base) for _ in range(n_out)]
        doc = ""
        if node is not None:
            where = node.source_location
            doc = f"labgrad %{node.id} {node.op_name}" + (f" at {where}" if where else "")
            if getattr(node, "scope", None):
                doc += f" in {node.scope}"
        onnx_node = self.onnx.helper.make_node(op_type, list(inputs), outs,
                                               name=self.fresh(f"{base}_{op_type}"), doc_string=doc,
                                               **{k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(onnx_node)
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=None, name=None):
        arr = np.asarray(value, dtype=dtype)
        small = arr.size <= 16 and name is None
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if small else None
        if small and key in self._consts:
            return self._consts[key]
        cname = self.fresh(name or "const")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), cname))
        if small:
            self._consts[key] = cname
        return cname

    def ints(self, values):
        return self.const(np.asarray(list(values), dtype=np.int64))

    def value(self, x, dtype):
        """The ONNX name for an input: an exported value, or a Python number as a scalar."""
        if isinstance(x, V):
            return x.name
        return self.const(np.asarray(x, dtype=dtype))
