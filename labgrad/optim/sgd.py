"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from .optimizer import Optimizer


class SGD(Optimizer):
    """``p -= lr * g``, optionally with a velocity that remembers past gradients.

    With ``momentum`` (PyTorch's formulation)::

        g = g + weight_decay * p          # L2 penalty, if weight_decay
        buf = momentum * buf + g          # buf starts at zero, so step 1 gives buf = g
        g = g + momentum * buf if nesterov else buf
        p -= lr * g
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _init_state(self, p):
        return {"momentum_buffer": zeros_like(p)}

    def step(self):
        with no_grad():
            state = self.state
            for group in self.param_groups:
                lr, momentum = group["lr"], group["momentum"]
                weight_decay, nesterov = group["weight_decay"], group["nesterov"]
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if weight_decay:
                        g = g + weight_decay * p
                    if momentum:
                        buf = state[p]["momentum_buffer"]
                        buf *= momentum
                        buf += g
                        g = g + momentum * buf if nesterov else buf
                    p -= lr * g
