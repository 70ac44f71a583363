"""The errors labgrad raises.

Every error says what went wrong (with the shapes, dtypes and devices involved), where it
happened in *your* code, and what to do instead. They all derive from ``LabgradError`` so a
notebook can catch them in one ``except``; each also derives from the built-in exception a
Python programmer would expect (``ShapeError`` is a ``ValueError``, ...).
"""
from __future__ import annotations

import os
import sys
import linecache

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class LabgradError(Exception):
    """Base class of every labgrad error."""


class ShapeError(LabgradError, ValueError):
    """Shapes that do not fit the op (broadcasting, matmul, reshape, ...)."""


class DTypeError(LabgradError, TypeError):
    """A dtype the op cannot use (e.g. ``requires_grad`` on an integer tensor)."""


class DeviceError(LabgradError, RuntimeError):
    """Tensors on different devices in one op, or a device that is not available."""


class GradError(LabgradError, RuntimeError):
    """Autograd misuse: a freed graph, an in-place change of a saved tensor, ..."""


class TraceError(LabgradError, RuntimeError):
    """Python code that cannot be captured as a static graph."""


class CheckpointError(LabgradError, ValueError):
    """A checkpoint file that cannot be read safely."""


def user_frame():
    """The innermost stack frame outside the labgrad package: the user's line."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE_DIR):
        f = f.f_back
    return f


def user_location():
    """``(filename, lineno, source_line)`` of the user's line, or ``None``."""
    f = user_frame()
    if f is None:
        return None
    filename, lineno = f.f_code.co_filename, f.f_lineno
    return filename, lineno, linecache.getline(filename, lineno).strip()


def is_notebook_cell(filename: str) -> bool:
    """Jupyter runs each cell from a file named after a hash of its code; that name means
    nothing to a reader, so messages say "this cell" instead."""
    return "ipykernel_" in filename or filename.startswith("<ipython-input")


def short_location(loc) -> str:
    """``"model.py:12"`` for a ``(filename, lineno, line)`` location, ``"cell:3"`` in a notebook."""
    if loc is None:
        return ""
    filename, lineno, _ = loc
    if is_notebook_cell(filename):
        return f"cell:{lineno}"
    short = filename if filename.startswith("<") else os.path.basename(filename)
    return f"{short}:{lineno}"


def format_location(loc) -> str:
    if loc is None:
        return ""
    filename, lineno, line = loc
    if is_notebook_cell(filename):
        text = f"\n  at line {lineno} of this cell"
    else:
        short = os.path.basename(filename) if not filename.startswith("<") else filename
        text = f"\n  at {short}, line {lineno}"
    return text + (f":\n    {line}" if line else "")
