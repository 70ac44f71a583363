"""The readable text form of a graph: what ``print(graph)`` shows.

::

    graph(%0:float32[?,64] a):
      %1:float32[64,10] = variable w
      %2:float32[?,10] = matmul %0, %1      # model.py:5
      return %2

``fmt_aval`` writes an abstract value (``float32[?,64]``: ``?`` is a size known only at run
time); ``format_graph`` writes a whole graph, subgraphs of cond/while nodes indented under them.
This module reads nodes but does not import them, so every other graph module can use it.
"""
from __future__ import annotations

import numpy as np

def fmt_aval(aval):
    if isinstance(aval, tuple):
        return "(" + ", ".join(fmt_aval(a) for a in aval) + ")"
    if aval is None:
        return "?"
    return f"{aval.dtype.name}[{','.join('?' if d is None else str(d) for d in aval.shape)}]"


def fmt_attr(value):
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, tuple):
        inner = ", ".join(fmt_attr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, slice):
        parts = ["" if v is None else str(v) for v in (value.start, value.stop, value.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if value.step is not None else "")
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = value.get() if hasattr(value, "get") else np.asarray(value)
        return np.array2string(arr, separator=",") if arr.size <= 6 else f"<{arr.dtype.name}{list(arr.shape)}>"
    return repr(value)


def fmt_value(array):
    arr = array.get() if hasattr(array, "get") else np.asarray(array)
    if arr.size <= 4:
        return np.array2string(arr, separator=", ", precision=4).replace("\n", "")
    return f"<{arr.dtype.name}{list(arr.shape)}>"


def format_graph(graph, indent="", header=None):
    """The lines of a graph's text form (see the module docstring)."""
    numbers = graph._numbers()

    def ref(x):   # an input is a node or a literal Python number
        return repr(x) if isinstance(x, (bool, int, float)) else f"%{numbers[x.id]}"

    head = ", ".join(f"%{numbers[n.id]}:{fmt_aval(n.aval)}" + (f" {n.name}" if n.name else "")
                     for n in graph.inputs)
    lines = [(f"{indent}{header or graph.name}({head}):", "")]
    for node in graph.nodes:
        if node.kind in ("placeholder", "arg") and node.id in numbers and node in graph.inputs:
            continue
        lhs = f"{indent}  %{numbers[node.id]}:{fmt_aval(node.aval)} = "
        kind = node.op_name
        if node.kind == "constant":
            rhs = f"constant {node.name + ' ' if node.name else ''}{fmt_value(node.value)}"
        elif node.kind == "variable":
            slot = ".grad" if node.attrs.get("slot") == "grad" else ""
            rhs = f"variable {node.name or ''}{slot}".rstrip()
        elif node.kind == "placeholder":
            rhs = f"placeholder {node.name or ''}".rstrip()
        elif node.kind == "get":
            rhs = f"get {ref(node.inputs[0])}[{node.attrs['index']}]"
        else:
            rhs = f"{kind} " + ", ".join(ref(x) for x in node.inputs)
            shown = {k: v for k, v in node.attrs.items() if k not in ("weak",)}
            if shown and node.kind not in ("cond", "while"):
                rhs += " {" + ", ".join(f"{k}={fmt_attr(v)}" for k, v in shown.items()) + "}"
            elif node.kind == "while" and shown.get("max_iterations") is not None:
                rhs += f" {{max_iterations={shown['max_iterations']}}}"
        lines.append((lhs + rhs, node.source_location))
        for label, sub in (node.subgraphs or {}).items():
            lines.extend((text, "") for text in format_graph(sub, indent + "    ", header=label))
    outs = ", ".join(ref(o) for o in graph.outputs)
    lines.append((f"{indent}  return {outs}".rstrip(), ""))
    width = min(max(len(text) for text, where in lines if where) if any(w for _, w in lines) else 0, 60)
    return [f"{text.ljust(width)}   # {where}" if where else text for text, where in lines]
