"""Gradient checking: compare autograd against finite differences, in float64.

``gradcheck(fn, inputs)`` checks first derivatives; ``order=2`` also checks the derivative of
the gradient (double backward), which exercises every backward rule written with ops.

Non-scalar outputs are reduced with a fixed random weighting, ``sum(fn(*x) * w)``, so one
backward pass checks the whole vector-Jacobian product.
"""
from __future__ import annotations

import numpy as np

from .autograd import grad
from .errors import LabgradError
from .tensor import Tensor


class GradcheckError(LabgradError, AssertionError):
    """Analytic and numerical gradients disagree."""


def _as_inputs(inputs):
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            if x.dtype.kind == "f":
                x = Tensor(x.numpy().astype(np.float64), device=x.device, requires_grad=True)
        elif isinstance(x, (np.ndarray, list, float)):
            x = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
        out.append(x)
    return out


def _diff_inputs(inputs):
    return [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]


def _scalarize(y, seed):
    """``sum(y * w)`` for a fixed random ``w`` (the identity for scalar outputs)."""
    if y.size == 1:
        return y.sum()
    w = np.random.default_rng(seed).standard_normal(y.shape)
    return (y * Tensor(w.astype(y.dtype), device=y.device)).sum()


def _numeric_grads(f, inputs, eps):
    """Central differences of the scalar function ``f`` w.r.t. each differentiable input."""
    result = []
    for x in _diff_inputs(inputs):
        host = x.numpy().copy()
        g = np.zeros_like(host)
        flat, gflat = host.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            x.data = x._backend.asarray(host.copy())
            plus = f()
            flat[i] = orig - eps
            x.data = x._backend.asarray(host.copy())
            minus = f()
            flat[i] = orig
            gflat[i] = (plus - minus) / (2 * eps)
        x.data = x._backend.asarray(host)
        result.append(g)
    return result


def _compare(analytic, numeric, names, what, atol, rtol):
    for a, n, name in zip(analytic, numeric, names):
        a = np.zeros_like(n) if a is None else a.numpy()
        if a.shape != n.shape:
            raise GradcheckError(f"{what} of {name}: analytic gradient has shape {a.shape}, "
                                 f"but the input has shape {n.shape}")
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            err = np.abs(a - n)
            i = np.unravel_index(np.argmax(err), err.shape)
            raise GradcheckError(
                f"{what} of {name} does not match finite differences: largest error "
                f"{err[i]:.3g} at index {tuple(int(j) for j in i)} (analytic {a[i]:.6g}, "
                f"numeric {n[i]:.6g})\nanalytic:\n{a}\nnumeric:\n{n}")


def gradcheck(fn, inputs, order=1, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check the gradients of ``fn(*inputs)`` against finite differences; ``True`` or raise.

    Floating inputs are converted to float64 tensors that require grad; other inputs (integer
    targets, Python numbers) are passed through unchanged.
    """
    if order not in (1, 2):
        raise ValueError("order must be 1 or 2")
    inputs = _as_inputs(inputs)
    xs = _diff_inputs(inputs)
    ids = {id(x) for x in xs}
    names = [f"input {i}" for i, x in enumerate(inputs) if id(x) in ids]

    def loss():
        return _scalarize(fn(*inputs), seed)

    analytic = grad(loss(), xs, allow_unused=True, create_graph=order == 2)
    with_no_grad = lambda: float(loss().item())  # noqa: E731
    _compare([a.detach() if a is not None else None for a in analytic],
             _numeric_grads(with_no_grad, inputs, eps), names, "gradient", atol, rtol)
    if order == 2:
        if all(g is None for g in analytic):
            return True

        def grad_loss():
            # every gradient counts, also one that autograd thinks is constant: if its values
            # do change with the inputs, finite differences will say so
            gs = grad(loss(), xs, allow_unused=True, create_graph=True)
            terms = [_scalarize(g, seed + 1 + k) for k, g in enumerate(gs) if g is not None]
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            return total

        total = grad_loss()
        second = grad(total, xs, allow_unused=True) if total.requires_grad else [None] * len(xs)
        _compare([s.detach() if s is not None else None for s in second],
                 _numeric_grads(lambda: float(grad_loss().item()), inputs, eps),
                 names, "second-order gradient", atol * 10, rtol * 10)
    return True


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    """``np.testing.assert_allclose`` for tensors, arrays and numbers."""
    to_np = lambda v: v.numpy() if isinstance(v, Tensor) else np.asarray(v)  # noqa: E731
    np.testing.assert_allclose(to_np(actual), to_np(expected), rtol=rtol, atol=atol)
