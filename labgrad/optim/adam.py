"""Adam and AdamW: per-parameter step sizes from running moments of the gradient."""
from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015)::

        m = beta1 * m + (1 - beta1) * g           # running mean of gradients
        v = beta2 * v + (1 - beta2) * g * g       # running mean of squared gradients
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The ``1 - beta**t`` factors undo the bias of ``m`` and ``v`` starting at zero.
    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2); for decoupled decay use
    ``AdamW``.
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = betas
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"{type(self).__name__}: need lr, eps, weight_decay >= 0 and betas in "
                             f"[0, 1), got lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=(float(beta1), float(beta2)), eps=eps,
                                      weight_decay=weight_decay))

    def _init_state(self, p):
        # the step count is a 0-d tensor updated in place (as PyTorch keeps it): a traced step
        # (lg.jit) then sees the count change, instead of freezing the bias correction at step 1
        return {"step": zeros_like(p.sum()), "exp_avg": zeros_like(p), "exp_avg_sq": zeros_like(p)}

    def step(self):
        with no_grad():
            for group in self.param_groups:
                lr, (beta1, beta2) = group["lr"], group["betas"]
                eps, weight_decay = group["eps"], group["weight_decay"]
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    st = self.state[p]
                    if weight_decay:
                        if self.decoupled:
                            p *= 1 - lr * weight_decay
                        else:
                            g = g + weight_decay * p
                    t = st["step"]
                    t += 1
                    m, v = st["exp_avg"], st["exp_avg_sq"]
                    m *= beta1
                    m += (1 - beta1) * g
                    v *= beta2
                    v += (1 - beta2) * (g * g)
                    denom = v.sqrt() / (1 - beta2 ** t).sqrt() + eps
                    p -= (lr / (1 - beta1 ** t)) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr * wd``
    before the Adam step, so decay does not get rescaled by ``v`` the way an L2 term would."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
