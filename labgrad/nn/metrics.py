"""Metrics for ``Trainer``: functions ``metric(outputs, targets) -> float`` on NumPy arrays.

They run on the host after each batch, outside autograd: a metric is something we report,
not something we differentiate (that is the loss's job).
"""
from __future__ import annotations

import numpy as np


def accuracy(outputs, targets):
    """The fraction of examples whose predicted class equals the target.

    ``outputs`` of shape (N, C) are scores (logits or probabilities): the prediction is the
    argmax. A single column (N,) or (N, 1) is a binary logit: the prediction is ``logit > 0``.
    """
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        predicted = outputs.argmax(axis=-1)
    else:
        predicted = (outputs.reshape(targets.shape) > 0).astype(targets.dtype)
    if predicted.shape != targets.shape:
        raise ValueError(f"accuracy: predictions of shape {predicted.shape} (from outputs of shape "
                         f"{outputs.shape}) do not match targets of shape {targets.shape}; accuracy "
                         f"needs class scores (N, C) and integer labels (N,)")
    return float((predicted == targets).mean())


def mean_absolute_error(outputs, targets):
    """Mean ``|outputs - targets|``, for regression."""
    return float(np.abs(np.asarray(outputs) - np.asarray(targets)).mean())


METRICS = {"accuracy": accuracy, "acc": accuracy, "mae": mean_absolute_error,
           "mean_absolute_error": mean_absolute_error}


def resolve(metric):
    """``"accuracy"`` or a function -> ``(name, function)``."""
    if isinstance(metric, str):
        try:
            fn = METRICS[metric]
        except KeyError:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}, or pass "
                             f"a function f(outputs, targets) -> float (NumPy arrays)") from None
        return ("accuracy" if fn is accuracy else metric), fn
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    raise TypeError(f"a metric is a name such as 'accuracy' or a function f(outputs, targets) -> float, "
                    f"got {type(metric).__name__}")
