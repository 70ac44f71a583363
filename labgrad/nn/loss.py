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
