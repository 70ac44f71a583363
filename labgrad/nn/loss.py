"""Loss modules: ``loss_fn = nn.CrossEntropyLoss(); loss = loss_fn(logits, targets)``."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Mean cross-entropy of integer class ``targets`` (N,) under ``softmax(logits)`` (N, C).

    Takes raw logits, not probabilities: softmax and log are fused into one stable op.
    """

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets)


class MSELoss(Module):
    """Mean squared error ``mean((pred - target) ** 2)``."""

    def forward(self, pred, target):
        return F.mse_loss(pred, target)


class L1Loss(Module):
    """Mean absolute error ``mean(|pred - target|)``; its gradient is ``sign(pred - target) / n``,
    the same size for every wrong prediction, so outliers pull less than with MSE."""

    def forward(self, pred, target):
        return F.l1_loss(pred, target)


class NLLLoss(Module):
    """Mean negative log-likelihood of integer ``targets`` (N,) given log-probabilities (N, C).

    Pair it with ``LogSoftmax``-style outputs: ``NLLLoss()(F.log_softmax(z), t)`` equals
    ``CrossEntropyLoss()(z, t)``.
    """

    def forward(self, log_probs, targets):
        return F.nll_loss(log_probs, targets)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on raw logits (sigmoid inside), stable for any logit size.

    Targets are floats in [0, 1] with the same shape as the logits.
    """

    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target)
