"""Hand-written Numba kernels for ops that are not elementwise but are worth one loop on the CPU.

Softmax cross-entropy (``cross_entropy`` and ``cross_entropy_grad``) is a dozen NumPy calls per
batch (max, subtract, exp, sum, log, a gather, ...), each a pass over the logits with its own
temporary: at the batch sizes of a small MLP the calls cost more than the arithmetic. Here
each is one loop over the rows: the row's max, the sum of exponentials, then the loss (or
the gradient row). Sums accumulate in float64, so the results agree with NumPy's to the
rounding of the dtype. Targets are checked like NumPy indexing checks them (negative ones
count from the end; out of range raises ``IndexError``).

The compiled graph's code calls them (``codegen``) when Numba is installed and the op runs on
the CPU; ``cache=True`` keeps the machine code on disk, so a new process loads it.
"""
from __future__ import annotations

import math

import numpy as np

_KERNELS = {}


def _build():
    from numba import njit

    @njit(cache=True, error_model="numpy")
    def row_target_and_max(z, t, i):
        """Row ``i``'s target class (checked as NumPy indexing checks it) and its largest logit."""
        c = z.shape[1]
        k = t[i]
        if k < 0:
            k += c
        if k < 0 or k >= c:
            raise IndexError("cross_entropy: a target is out of range for the number of classes")
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        return k, m

    @njit(cache=True, error_model="numpy")
    def xent_rows(z, t):
        n, c = z.shape
        total = 0.0
        for i in range(n):
            k, m = row_target_and_max(z, t, i)
            s = 0.0
            for j in range(c):
                s += math.exp(z[i, j] - m)
            total += math.log(s) - (z[i, k] - m)
        return total

    @njit(cache=True, error_model="numpy")
    def xent_grad_rows(z, t, scale, out):
        n, c = z.shape
        for i in range(n):
            k, m = row_target_and_max(z, t, i)
            s = 0.0
            for j in range(c):
                e = math.exp(z[i, j] - m)
                out[i, j] = e
                s += e
            for j in range(c):
                out[i, j] = out[i, j] / s * scale
            out[i, k] -= scale

    return xent_rows, xent_grad_rows


def _kernels():
    if not _KERNELS:
        _KERNELS["rows"], _KERNELS["grad"] = _build()
    return _KERNELS["rows"], _KERNELS["grad"]


def available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def cross_entropy(logits, targets):
    """``cross_entropy``'s forward in one loop: the mean of ``logsumexp(z) - z[target]``."""
    rows, _ = _kernels()
    n = logits.shape[0]
    return np.asarray(rows(logits, targets) / n, dtype=logits.dtype)


def cross_entropy_grad(logits, targets, g, out=None):
    """``(softmax(z) - one_hot(t)) * g / N`` in one loop (into ``out`` if given)."""
    _, grad = _kernels()
    n = logits.shape[0]
    scale = float(g) / n
    if out is None:
        out = np.empty(logits.shape, logits.dtype)
    grad(logits, targets, scale, out)
    return out


SUPPORTED = {"cross_entropy": cross_entropy, "cross_entropy_grad": cross_entropy_grad}


def fits(node_inputs):
    """Can these avals (logits, targets[, g]) use the kernels? 2-D float logits, integer
    targets, a 0-d ``g``."""
    z, t = node_inputs[0], node_inputs[1]
    ok = (getattr(z, "ndim", 0) == 2 and z.dtype in (np.float32, np.float64)
          and getattr(t, "ndim", 0) == 1 and t.dtype.kind in "iu")
    if len(node_inputs) > 2:
        g = node_inputs[2]
        ok = ok and getattr(g, "ndim", 1) == 0
    return ok and math.isfinite(1.0)
