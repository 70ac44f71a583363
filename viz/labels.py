"""Short ASCII text for what a drawing shows: values, shapes, op attributes.

Labels are ASCII on purpose: layout programs measure text with built-in font metrics, which
only cover ASCII, and a drawing must come out the same on every machine.
"""
from __future__ import annotations

import html

import numpy as np

from labgrad.ops.registry import fmt_shape

SMALL = 6              # tensors with at most this many elements show their values
DIGITS = 3             # significant digits of shown values
MAX_ATTR = 24          # longer attribute values are left out of op labels


def ascii_text(text) -> str:
    """``text`` with anything outside ASCII spelled as a ``\\u`` escape."""
    return str(text).encode("ascii", "backslashreplace").decode("ascii")


def escape(text) -> str:
    """``text`` made safe (and ASCII) for a Graphviz HTML-like label."""
    return html.escape(ascii_text(text), quote=True)


def as_array(value):
    """A tensor, array or number as a NumPy array (``None`` stays ``None``)."""
    if value is None:
        return None
    numpy = getattr(value, "numpy", None)
    return np.asarray(numpy() if callable(numpy) else value)


def fmt_number(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "True" if x else "False"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (complex, np.complexfloating)):
        return f"{x:.{DIGITS}g}"
    return f"{float(x):.{DIGITS}g}"


def fmt_values(value) -> str:
    """Values with 3 significant digits, NumPy-style brackets: ``[[1 2.5] [3 -4]]``."""
    a = as_array(value)
    if a.ndim == 0:
        return fmt_number(a.item())

    def nest(x):
        return "[" + " ".join(nest(v) for v in x) + "]" if isinstance(x, list) else fmt_number(x)

    return nest(a.tolist())


def is_small(value) -> bool:
    return value is not None and as_array(value).size <= SMALL


def fmt_type(value) -> str:
    """``(2, 3) float32`` for an array or tensor."""
    return f"{fmt_shape(value.shape)} {np.dtype(value.dtype).name}"


def fmt_attrs(attrs) -> str:
    """An op's attributes as ``axis=1, keepdims=True``; ``None``, ``False`` (the usual
    defaults) and long values are left out, to keep op labels short."""
    parts = []
    for key, value in (attrs or {}).items():
        if value is None or value is False or hasattr(value, "__array_interface__") \
                or hasattr(value, "__cuda_array_interface__"):
            continue
        text = ascii_text(_attr_text(value))
        if len(text) <= MAX_ATTR:
            parts.append(f"{key}={text}")
    return ", ".join(parts)


def _attr_text(value):
    if isinstance(value, float):
        return fmt_number(value)
    if isinstance(value, tuple):
        inner = ", ".join(_attr_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, slice):
        parts = ["" if p is None else str(p) for p in (value.start, value.stop, value.step)]
        return ":".join(parts[:2] if value.step is None else parts)
    if value is Ellipsis:
        return "..."
    if isinstance(value, (np.dtype, type)):
        return np.dtype(value).name
    return repr(value)


def fmt_table_value(value) -> str:
    """A value for a table cell: small arrays in full, larger ones NumPy-summarised."""
    if isinstance(value, str):
        return value
    a = as_array(value)
    if a.size <= SMALL:
        return fmt_values(a)
    with np.printoptions(precision=DIGITS, threshold=12, edgeitems=2, linewidth=60):
        return np.array2string(a, separator=" ")
