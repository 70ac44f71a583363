"""Sliding windows: ``unfold`` (im2col) and its adjoint ``fold`` (col2im).

Convolution and pooling are built from these two ops (see ``functional.conv2d``): ``unfold``
copies every ``kh x kw`` window of an image into a column, after which a convolution is one
matrix product and a pooling is one reduction. The two ops are each other's adjoint, so each
one's backward is the other one, and second derivatives need nothing more.

Layouts follow PyTorch's ``F.unfold``/``F.fold``::

    unfold: (N, C, H, W)           -> (N, C*kh*kw, L)     L = OH*OW windows
    fold:   (N, C*kh*kw, L)        -> (N, C, H, W)        overlapping windows add up

Attributes (canonical pairs of ints): ``kernel_size``, ``stride``, ``padding`` (zeros, added on
both sides), ``dilation`` (the spacing of a window's taps); ``fold`` also needs ``output_size``.
"""
from __future__ import annotations

from ..errors import ShapeError
from .registry import Aval, defop, fmt_shape, nbytes, numel


def conv_output_size(size, kernel, stride, padding, dilation):
    """How many windows fit along one axis (``None`` stays unknown)."""
    if size is None:
        return None
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _window_counts(opname, hw, kernel_size, stride, padding, dilation):
    out = []
    for axis, size, k, s, p, d in zip(("height", "width"), hw, kernel_size, stride, padding, dilation):
        n = conv_output_size(size, k, s, p, d)
        if n is not None and n < 1:
            span = f"{d * (k - 1) + 1} pixels with dilation {d}" if d > 1 else f"{k} pixels"
            raise ShapeError(
                f"{opname}: the kernel is bigger than the padded input along the {axis}: it spans "
                f"{span}, the input has {size} + 2*{p} (padding) = {size + 2 * p}.\n  Use a "
                f"smaller kernel, more padding, or a larger input.")
        out.append(n)
    return tuple(out)


@defop("nn", array_backward=True)
class unfold:
    """Every sliding window of an NCHW image as a column: ``(N, C, H, W) -> (N, C*kh*kw, L)``."""

    def forward(xp, a, *, kernel_size, stride, padding, dilation):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        n, c, h, w = a.shape
        oh = conv_output_size(h, kh, sh, ph, dh)
        ow = conv_output_size(w, kw, sw, pw, dw)
        if oh < 1 or ow < 1:
            raise ValueError("kernel larger than the padded input")  # infer explains it
        if ph or pw:
            a = xp.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        s_n, s_c, s_h, s_w = a.strides
        windows = xp.lib.stride_tricks.as_strided(
            a, shape=(n, c, kh, kw, oh, ow),
            strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw))
        return windows.reshape(n, c * kh * kw, oh * ow)   # reshape copies: windows overlap

    def infer(a, *, kernel_size, stride, padding, dilation):
        if a.ndim != 4:
            raise ShapeError(f"unfold: expects an NCHW image batch (4 dimensions), got shape "
                             f"{fmt_shape(a.shape)}")
        n, c, h, w = a.shape
        oh, ow = _window_counts("unfold", (h, w), kernel_size, stride, padding, dilation)
        kh, kw = kernel_size
        cols = None if c is None else c * kh * kw
        windows = None if oh is None or ow is None else oh * ow
        return Aval((n, cols, windows), a.dtype)

    def backward(ctx, g):
        (a,) = ctx.inputs
        return (fold(g, output_size=tuple(a.shape[-2:]), **ctx.attrs),)


@defop("nn", array_backward=True)
class fold:
    """Add columns back into an image: ``(N, C*kh*kw, L) -> (N, C, H, W)``, the adjoint of
    ``unfold``. Where windows overlap, their values add up; padding is cut off."""

    def forward(xp, cols, *, output_size, kernel_size, stride, padding, dilation):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        h, w = output_size
        oh = conv_output_size(h, kh, sh, ph, dh)
        ow = conv_output_size(w, kw, sw, pw, dw)
        if oh < 1 or ow < 1:
            raise ValueError("kernel larger than the padded output")  # infer explains it
        n = cols.shape[0]
        c = cols.shape[1] // (kh * kw)
        cols = cols.reshape(n, c, kh, kw, oh, ow)
        out = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
        for i in range(kh):            # one vectorized add per kernel position
            top = i * dh
            for j in range(kw):
                left = j * dw
                out[:, :, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw] += cols[:, :, i, j]
        return out[:, :, ph:ph + h, pw:pw + w]

    def infer(cols, *, output_size, kernel_size, stride, padding, dilation):
        kh, kw = kernel_size
        oh, ow = _window_counts("fold", output_size, kernel_size, stride, padding, dilation)
        n, k, length = cols.shape if cols.ndim == 3 else (None, None, None)
        if cols.ndim != 3 or (k is not None and k % (kh * kw)) or (length is not None and length != oh * ow):
            raise ShapeError(
                f"fold: expects columns of shape (N, C*{kh}*{kw}, {oh * ow}) for kernel "
                f"{kh}x{kw} and output size {tuple(output_size)}, got {fmt_shape(cols.shape)}")
        return Aval((n, None if k is None else k // (kh * kw)) + tuple(output_size), cols.dtype)

    def backward(ctx, g):
        attrs = dict(ctx.attrs)
        del attrs["output_size"]
        return (unfold(g, **attrs),)

    def cost(cols, **attrs):
        out = fold.infer(cols, **attrs)
        return {"flops": numel(cols.shape), "bytes": nbytes(cols) + nbytes(out)}
