"""Normalization layers: ``BatchNorm1d``/``BatchNorm2d`` (statistics over the batch, which differ
between training and evaluation) and ``LayerNorm`` (statistics over each example's features)."""
from __future__ import annotations

from .. import functional as F
from ..creation import ones, zeros
from ..errors import ShapeError
from .module import Module, Parameter


class _BatchNorm(Module):
    """Shared by ``BatchNorm1d`` and ``BatchNorm2d``; they differ only in the input ranks they accept."""

    ranks = ()
    layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=None, device=None):
        super().__init__()
        if int(num_features) < 1:
            raise ValueError(f"{type(self).__name__}: num_features is the number of channels and must "
                             f"be at least 1, got {num_features}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum is the weight of each new batch in the "
                             f"running statistics and must be in [0, 1], got {momentum}")
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if affine:
            self.weight = Parameter(ones(self.num_features, dtype=dtype, device=device))
            self.bias = Parameter(zeros(self.num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(self.num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(self.num_features, dtype=dtype, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, x):
        if x.ndim not in self.ranks or (x.shape[1] is not None and x.shape[1] != self.num_features):
            raise ShapeError(f"{type(self).__name__}({self.num_features}) expects input of shape "
                             f"{self.layout} with C = {self.num_features}, got shape {tuple(x.shape)}. "
                             f"Check num_features against the previous layer's output channels/features.")
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Normalize each feature over the batch: input (N, C) or (N, C, L).

    Training uses the batch's mean and variance and updates ``running_mean``/``running_var``
    (buffers: saved in ``state_dict``, never optimized) with ``momentum``; ``eval()`` uses the
    running estimates, so predictions do not depend on what else is in the batch.

    >>> bn = nn.BatchNorm1d(3)
    >>> bn(lg.randn(8, 3)).shape
    (8, 3)
    """

    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Normalize each channel of a batch of images (N, C, H, W) over N, H and W (see BatchNorm1d)."""

    ranks = (4,)
    layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalize each example over its last axes (``normalized_shape``), then scale and shift.

    Unlike batch norm it has no running state and behaves the same in training and evaluation,
    which is why transformers use it.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=None, device=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if elementwise_affine:
            self.weight = Parameter(ones(*self.normalized_shape, dtype=dtype, device=device))
            self.bias = Parameter(zeros(*self.normalized_shape, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
