"""The other frameworks benchmarks compare against, when they are installed (else ``None``).

Each runs single-threaded, as labgrad does, so columns compare the frameworks, not the cores.
"""
from __future__ import annotations

import sys

import numpy as np


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def import_dezero():
    """DeZero 0.0.13 still uses ``np.int``, an alias NumPy removed in 1.24; restore it for the
    import (this benchmark process only), or report the column as n/a."""
    if "int" not in np.__dict__:
        np.int = int
    try:
        import dezero
        import dezero.functions
        import dezero.layers
        import dezero.models
        import dezero.optimizers
    except Exception as e:  # not installed, or broken by a NumPy change
        print(f"(dezero column is n/a: {type(e).__name__}: {e})", file=sys.stderr)
        return None
    return dezero
