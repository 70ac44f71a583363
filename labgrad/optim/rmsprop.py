"""RMSprop: divide each gradient by a running root-mean-square of its recent values."""
from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton, Neural Networks for Machine Learning, lecture 6e), as PyTorch writes it::

        g = g + weight_decay * p                  # L2 penalty, if weight_decay
        v = alpha * v + (1 - alpha) * g * g       # running mean of squared gradients
        if centered:                              # subtract the squared running mean of g
            m = alpha * m + (1 - alpha) * g       # (an estimate of the gradient's variance)
            v_hat = v - m * m
        step = g / (sqrt(v_hat) + eps)
        if momentum:
            buf = momentum * buf + step
            step = buf
        p -= lr * step

    Why: a parameter whose gradients are consistently large gets small steps and one with
    small gradients gets large ones, so one learning rate suits every layer. Unlike Adam there
    is no bias correction, so the first steps are large (``v`` starts at zero): the first
    update is ``lr / sqrt(1 - alpha)`` times the gradient's sign, 10x ``lr`` for ``alpha=0.99``.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        if lr < 0 or eps < 0 or weight_decay < 0 or momentum < 0 or not 0 <= alpha < 1:
            raise ValueError(f"RMSprop: need lr, eps, weight_decay, momentum >= 0 and alpha in [0, 1), "
                             f"got lr={lr}, alpha={alpha}, eps={eps}, weight_decay={weight_decay}, "
                             f"momentum={momentum}")
        super().__init__(params, dict(lr=lr, alpha=float(alpha), eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=bool(centered)))

    def _init_state(self, p):
        # every buffer is made up front (zeros cost little), so a traced step finds them all
        return {"square_avg": zeros_like(p), "grad_avg": zeros_like(p), "momentum_buffer": zeros_like(p)}

    def step(self):
        with no_grad():
            for group in self.param_groups:
                lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
                weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    st = self.state[p]
                    if weight_decay:
                        g = g + weight_decay * p
                    v = st["square_avg"]
                    v *= alpha
                    v += (1 - alpha) * (g * g)
                    if centered:
                        m = st["grad_avg"]
                        m *= alpha
                        m += (1 - alpha) * g
                        denom = (v - m * m).sqrt() + eps
                    else:
                        denom = v.sqrt() + eps
                    if momentum:
                        buf = st["momentum_buffer"]
                        buf *= momentum
                        buf += g / denom
                        p -= lr * buf
                    else:
                        p -= lr * (g / denom)
