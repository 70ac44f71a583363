"""Forward values of every op against NumPy (or a loop written here), and dtype rules.

``FORWARD`` has at least one case per op in the registry; ``test_op_registry.py`` reuses its
inputs to check each op's ``infer`` and ``cost`` rules.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.ops import REGISTRY, get_op
from labgrad.ops.shape import INDEX_INPUT

_rng = np.random.default_rng(7)


def randn(*shape, dtype=np.float32):
    return np.asarray(_rng.standard_normal(shape), dtype=dtype)


def positive(*shape, dtype=np.float32):
    return np.asarray(_rng.uniform(0.5, 2.0, shape), dtype=dtype)


class FCase:
    """``fn(*tensors)`` must equal ``ref(*arrays)`` in value and dtype."""

    def __init__(self, op, fn, ref, *inputs, id=None, rtol=1e-6, atol=1e-6):
        self.op, self.fn, self.ref, self.inputs = op, fn, ref, inputs
        self.rtol, self.atol = rtol, atol
        self.id = f"{op}-{id}" if id else op


def op(name):
    return get_op(name)


def _index_array(like, values):
    """An index array on the same device as the tensor ``like`` (ops get backend arrays)."""
    return like._backend.asarray(np.array(values))


def _np_sigmoid(a):
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-a.astype(np.float64)))).astype(a.dtype)


def _np_gelu_tanh(a):
    a64 = a.astype(np.float64)
    return (0.5 * a64 * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (a64 + 0.044715 * a64 ** 3)))).astype(a.dtype)


def _np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_cross_entropy(z, t):
    logp = np.log(_np_softmax(z.astype(np.float64), 1))
    return np.asarray(-logp[np.arange(len(t)), t].mean(), dtype=z.dtype)


def _np_cross_entropy_grad(z, t, g):
    p = _np_softmax(z.astype(np.float64), 1)
    p[np.arange(len(t)), t] -= 1
    return (p * g / len(t)).astype(z.dtype)


def _np_setitem(x, v, index):
    out = x.copy()
    out[index] = v
    return out


def _np_getitem_grad(g, ref, index):
    out = np.zeros(ref.shape, g.dtype)
    np.add.at(out, index, g)
    return out


def loop_unfold(x, k, s, p, d):
    """im2col by brute force: column ``(c, i, j)``, window ``(y, x)``."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c * k[0] * k[1], oh * ow), x.dtype)
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                row = (ci * k[0] + i) * k[1] + j
                for y in range(oh):
                    for xx in range(ow):
                        out[:, row, y * ow + xx] = xp[:, ci, y * s[0] + i * d[0], xx * s[1] + j * d[1]]
    return out


def loop_fold(cols, size, k, s, p, d):
    """col2im by brute force: add every column entry back where it came from."""
    n, rows, length = cols.shape
    c = rows // (k[0] * k[1])
    h, w = size
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), cols.dtype)
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                row = (ci * k[0] + i) * k[1] + j
                for y in range(oh):
                    for xx in range(ow):
                        out[:, ci, y * s[0] + i * d[0], xx * s[1] + j * d[1]] += cols[:, row, y * ow + xx]
    return out[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


WIN = dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1), dilation=(1, 2))
a23, b3, b21 = randn(2, 3), randn(3), randn(2, 1)
TTF, TFF = np.array([True, True, False]), np.array([True, False, False])

FORWARD = [
    # ---- elementwise arithmetic
    FCase("add", lambda a, b: a + b, np.add, a23, b3),
    FCase("add", lambda a: a + 2, lambda a: a + np.float32(2), a23, id="int-scalar"),
    FCase("sub", lambda a, b: a - b, np.subtract, a23, b21),
    FCase("sub", lambda a: 1.5 - a, lambda a: np.float32(1.5) - a, a23, id="rsub"),
    FCase("mul", lambda a, b: a * b, np.multiply, a23, b3),
    FCase("div", lambda a, b: a / b, np.divide, a23, positive(2, 1)),
    FCase("div", lambda a: 2 / a, lambda a: np.float32(2) / a, positive(3), id="rdiv"),
    FCase("neg", lambda a: -a, np.negative, a23),
    FCase("pow", lambda a, b: a ** b, np.power, positive(2, 3), b3, rtol=1e-5),
    FCase("pow", lambda a: a ** 2, np.square, a23, id="square"),
    FCase("exp", lambda a: a.exp(), np.exp, a23, rtol=1e-6),
    FCase("log", lambda a: a.log(), np.log, positive(2, 3)),
    FCase("sqrt", lambda a: a.sqrt(), np.sqrt, positive(2, 3)),
    FCase("abs", lambda a: abs(a), np.abs, a23),
    FCase("sign", lambda a: a.sign(), np.sign, np.array([-2.0, 0.0, 3.0], np.float32)),
    FCase("sin", lambda a: a.sin(), np.sin, a23),
    FCase("cos", lambda a: a.cos(), np.cos, a23),
    FCase("tanh", lambda a: a.tanh(), np.tanh, a23),
    FCase("sigmoid", lambda a: a.sigmoid(), _np_sigmoid, np.array([-100, -3, 0, 2, 100], np.float32)),
    FCase("relu", lambda a: a.relu(), lambda a: np.maximum(a, np.float32(0)), a23),
    FCase("fma", lambda a, b, c: op("fma")(a, b, c), lambda a, b, c: a * b + c, a23, b3, randn(2, 1)),
    FCase("fma", lambda a: op("fma")(a, 0.5, 1), lambda a: a * np.float32(0.5) + 1, a23, id="scalars"),
    FCase("linear", lambda x, w, b: op("linear")(x, w, b, relu=False), lambda x, w, b: x @ w + b,
          randn(4, 3), randn(3, 2), randn(2), rtol=1e-5),
    FCase("linear", lambda x, w, b: op("linear")(x, w, b, relu=True), lambda x, w, b: np.maximum(x @ w + b, 0),
          randn(4, 3), randn(3, 2), randn(2), id="relu", rtol=1e-5),
    FCase("leaky_relu", lambda a: F.leaky_relu(a, 0.1), lambda a: np.where(a > 0, a, np.float32(0.1) * a), a23),
    FCase("gelu", lambda a: F.gelu(a), _np_gelu_tanh, 2 * a23),
    FCase("maximum", lambda a, b: lg.maximum(a, b), np.maximum, a23, b3),
    FCase("tanh_grad", lambda g, y: op("tanh_grad")(g, y), lambda g, y: g * (1 - y * y), a23, b3),
    FCase("sigmoid_grad", lambda g, y: op("sigmoid_grad")(g, y), lambda g, y: g * y * (1 - y), a23, b3),
    FCase("relu_grad", lambda g, x: op("relu_grad")(g, x), lambda g, x: np.where(x > 0, g, np.float32(0)), a23, b3),
    FCase("minimum", lambda a, b: lg.minimum(a, b), np.minimum, a23, b21),
    FCase("where", lambda c, a, b: lg.where(c, a, b), np.where, np.array([True, False, True]), a23, b21),
    FCase("clip", lambda a: a.clip(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), a23),
    FCase("cast", lambda a: a.astype("float64"), lambda a: a.astype(np.float64), a23),
    FCase("cast", lambda a: a.astype("int32"), lambda a: a.astype(np.int32), 3 * a23, id="to-int"),
    # ---- comparisons and logic
    FCase("eq", lambda a, b: a == b, np.equal, np.array([1, 2, 3]), np.array([1, 0, 3])),
    FCase("ne", lambda a, b: a != b, np.not_equal, np.array([1, 2, 3]), np.array([1, 0, 3])),
    FCase("lt", lambda a, b: a < b, np.less, a23, b3),
    FCase("le", lambda a: a <= 0.0, lambda a: a <= 0.0, np.array([-1.0, 0.0, 1.0], np.float32)),
    FCase("gt", lambda a, b: a > b, np.greater, a23, b21),
    FCase("ge", lambda a: a >= 0.0, lambda a: a >= 0.0, np.array([-1.0, 0.0, 1.0], np.float32)),
    FCase("logical_and", lambda a, b: a & b, np.logical_and, TTF, TFF),
    FCase("logical_or", lambda a, b: a | b, np.logical_or, TTF, TFF),
    FCase("logical_not", lambda a: ~a, np.logical_not, np.array([True, False])),
    # ---- shape
    FCase("reshape", lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1), randn(2, 3, 2)),
    FCase("transpose", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), randn(2, 3, 4)),
    FCase("squeeze", lambda a: a.squeeze(), np.squeeze, randn(1, 3, 1)),
    FCase("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a[..., None], a23),
    FCase("broadcast_to", lambda a: a.broadcast_to(4, 2, 3), lambda a: np.broadcast_to(a, (4, 2, 3)), b21),
    FCase("broadcast_like", lambda a, r: op("broadcast_like")(a, r), lambda a, r: np.broadcast_to(a, r.shape),
          b3, randn(4, 2, 3)),
    FCase("sum_to", lambda a: op("sum_to")(a, shape=(2, 1)),
          lambda a: a.sum(axis=0).sum(axis=-1, keepdims=True), randn(4, 2, 3), rtol=1e-5),
    FCase("getitem", lambda a: a[1, ::-1], lambda a: a[1, ::-1], a23, id="basic"),
    FCase("getitem", lambda a: a[[2, 0, 2]], lambda a: a[[2, 0, 2]], randn(3, 2), id="ints"),
    FCase("getitem", lambda a, m: a[m], lambda a, m: a[m], a23, a23 > 0, id="mask"),
    FCase("getitem", lambda a: a[None, ..., 0], lambda a: a[None, ..., 0], randn(2, 3, 2), id="none-ellipsis"),
    FCase("getitem", lambda a, i: op("getitem")(a, i, index=(slice(None), INDEX_INPUT)),
          lambda a, i: a[:, i], randn(2, 4), np.array([[3, 0], [3, 1]]), id="index-input"),
    FCase("getitem_grad", lambda g, r: op("getitem_grad")(g, r, index=(_index_array(r, [0, 2, 0]),)),
          lambda g, r: _np_getitem_grad(g, r, (np.array([0, 2, 0]),)), randn(3, 2), randn(4, 2)),
    FCase("getitem_grad", lambda g, r, i: op("getitem_grad")(g, r, i, index=(INDEX_INPUT,)),
          lambda g, r, i: _np_getitem_grad(g, r, (i,)), randn(3, 2), randn(4, 2), np.array([0, 2, 0]),
          id="index-input"),
    FCase("setitem", lambda x, v, i: op("setitem")(x, v, i, index=(INDEX_INPUT,)),
          lambda x, v, i: _np_setitem(x, v, (i,)), randn(4, 2), randn(3, 2), np.array([0, 2, 0]),
          id="repeated-last-wins"),
    FCase("setitem", lambda x: op("setitem")(x, 7.0, index=(slice(1, None), 0)),
          lambda x: _np_setitem(x, 7.0, (slice(1, None), 0)), a23, id="basic"),
    FCase("setitem_winners", lambda x, i: op("setitem_winners")(x, i, index=(INDEX_INPUT,)),
          lambda x, i: np.array([[False, False], [True, True], [True, True]]), randn(4, 2), np.array([0, 2, 0])),
    FCase("concatenate", lambda a, b: lg.cat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1), a23, b21),
    FCase("stack", lambda a, b: lg.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1), a23, a23 * 2),
    FCase("pad", lambda a: lg.pad(a, ((1, 0), (0, 2)), value=-1.0),
          lambda a: np.pad(a, ((1, 0), (0, 2)), constant_values=-1.0), a23),
    FCase("full_like", lambda a: op("full_like")(a, value=7, dtype=None), lambda a: np.full_like(a, 7), a23),
    FCase("any", lambda a: (a > 0.5).any(axis=1), lambda a: (a > 0.5).any(axis=1), a23),
    FCase("all", lambda a: (a > -3).all(), lambda a: (a > -3).all(), a23),
    FCase("element_count", lambda a: op("element_count")(a, axis=(1,), dtype=np.dtype("float32")),
          lambda a: np.float32(a.shape[1]), a23),
    # ---- reductions
    FCase("sum", lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(axis=(0, 2)), randn(2, 3, 4), rtol=1e-5),
    FCase("sum", lambda a: a.sum(), lambda a: a.sum(), np.array([[1, 2], [3, 4]]), id="int"),
    FCase("mean", lambda a: a.mean(axis=-1, keepdims=True), lambda a: a.mean(-1, keepdims=True), randn(2, 3)),
    FCase("mean", lambda a: a.mean(), lambda a: a.mean(), np.array([1, 2, 4]), id="int-to-float64"),
    FCase("max", lambda a: a.max(axis=1), lambda a: a.max(1), randn(3, 4)),
    FCase("min", lambda a: a.min(dim=0, keepdims=True), lambda a: a.min(0, keepdims=True), randn(3, 4)),
    FCase("var", lambda a: a.var(axis=1, ddof=1), lambda a: a.var(1, ddof=1), randn(3, 5), rtol=1e-5),
    FCase("logsumexp", lambda a: a.logsumexp(axis=1),
          lambda a: np.log(np.exp(a.astype(np.float64)).sum(1)).astype(a.dtype), randn(3, 4)),
    FCase("logsumexp", lambda a: a.logsumexp(axis=0),
          lambda a: np.array([1000, -1000], a.dtype) + np.float32(math.log(2)),
          np.array([[1000.0, -1000.0], [1000.0, -1000.0]], np.float32), id="stable"),
    # ---- linear algebra and nn
    FCase("matmul", lambda a, b: a @ b, np.matmul, randn(2, 1, 2, 3), randn(4, 3, 2), rtol=1e-5),
    FCase("matmul", lambda a, b: a @ b, np.matmul, randn(3), randn(3, 2), id="vec-mat", rtol=1e-5),
    FCase("softmax", lambda a: a.softmax(axis=0), lambda a: _np_softmax(a, 0), randn(3, 4)),
    FCase("softmax", lambda a: a.softmax(), lambda a: _np_softmax(a, -1), np.array([[1000.0, 1000.0]], np.float32),
          id="large"),
    FCase("log_softmax", lambda a: a.log_softmax(axis=1), lambda a: np.log(_np_softmax(a, 1)), randn(3, 4),
          rtol=1e-5),
    FCase("one_hot", lambda t: F.one_hot(t, 4), lambda t: np.eye(4, dtype=np.float32)[t], np.array([3, 0, 1, 3])),
    FCase("cross_entropy", lambda z, t: F.cross_entropy(z, t), _np_cross_entropy,
          randn(5, 4), np.array([0, 3, 1, 1, 2]),
          rtol=1e-5),
    FCase("cross_entropy_grad", lambda z, t, g: op("cross_entropy_grad")(z, t, g), _np_cross_entropy_grad,
          randn(5, 4), np.array([0, 3, 1, 1, 2]), np.array(1.5, dtype=np.float32), rtol=1e-5),
    FCase("unfold", lambda x: op("unfold")(x, **WIN), lambda x: loop_unfold(x, (2, 3), (2, 1), (1, 1), (1, 2)),
          randn(2, 3, 5, 6)),
    FCase("fold", lambda c: op("fold")(c, output_size=(5, 6), **WIN),
          lambda c: loop_fold(c, (5, 6), (2, 3), (2, 1), (1, 1), (1, 2)), randn(2, 18, 12), rtol=1e-5),
    FCase("assign", lambda a: a.detach().clone().fill_(2.5), lambda a: np.full_like(a, 2.5), a23),
    FCase("to_device", lambda a: op("to_device")(a, device=str(a.device)), lambda a: a, a23),
]


def _tensors(arrays, device, requires_grad=False):
    return [lg.tensor(a, dtype=a.dtype, device=device, requires_grad=requires_grad and a.dtype.kind == "f")
            if isinstance(a, np.ndarray) else a for a in arrays]


@pytest.mark.parametrize("case", FORWARD, ids=lambda c: c.id)
def test_forward_matches_numpy(case, device):
    got = case.fn(*_tensors(case.inputs, device))
    expected = np.asarray(case.ref(*case.inputs))
    assert got.device == device
    assert got.dtype == expected.dtype, f"{case.id}: dtype {got.dtype}, NumPy gives {expected.dtype}"
    assert tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("case", FORWARD, ids=lambda c: c.id)
def test_forward_on_a_second_device(case, fake_cuda):
    """Results stay on the inputs' device (a fake GPU, so CPU-only machines check placement)."""
    got = case.fn(*_tensors(case.inputs, fake_cuda))
    assert got.device == fake_cuda
    np.testing.assert_allclose(got.numpy(), np.asarray(case.ref(*case.inputs)), rtol=case.rtol, atol=case.atol)


def test_every_op_has_a_forward_case():
    covered = {c.op for c in FORWARD}
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"ops without a forward test: {missing}; add an FCase to FORWARD in tests/test_ops_forward.py"


NON_DIFFERENTIABLE = sorted(name for name, o in REGISTRY.items() if not o.differentiable)


@pytest.mark.parametrize("name", NON_DIFFERENTIABLE)
def test_non_differentiable_ops_record_no_grad_fn(name):
    case = next(c for c in FORWARD if c.op == name)
    inputs = [lg.tensor(a.astype(np.float32)) if a.dtype.kind == "f" else lg.tensor(a) for a in case.inputs]
    if any(x.dtype.kind == "f" for x in inputs):
        for x in inputs:
            if x.dtype.kind == "f":
                x.requires_grad = True
    out = case.fn(*inputs)
    assert out.grad_fn is None and not out.requires_grad


def test_the_non_differentiable_set_is_what_we_expect():
    assert set(NON_DIFFERENTIABLE) == {"sign", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
                                       "logical_or", "logical_not", "one_hot", "full_like", "assign",
                                       "element_count", "any", "all", "setitem_winners"}


def test_sigmoid_and_softmax_do_not_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lg.tensor([-1000.0, 1000.0]).sigmoid().tolist() == [0.0, 1.0]
        np.testing.assert_allclose(lg.tensor([[1000.0, 0.0]]).softmax().numpy(), [[1.0, 0.0]])
        assert math.isclose(F.cross_entropy(lg.tensor([[1000.0, 0.0]]), lg.tensor([1])).item(), 1000.0)


def test_gelu_is_close_to_the_exact_erf_form():
    x = np.linspace(-4, 4, 41)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(F.gelu(lg.tensor(x)).numpy(), exact, atol=1e-3)


# ---------------------------------------------------------------- dtype rules

def test_python_scalars_do_not_promote_float32():
    x = lg.tensor([1.0, 2.0])
    for y in (x + 1, x * 2.5, 3 - x, x / 2, x ** 2, 2.0 ** x, x * np.float64(2.0)):
        assert y.dtype == np.float32


def test_tensor_dtypes_promote_like_numpy():
    assert (lg.tensor([1.0]) + lg.tensor([1.0], dtype="float64")).dtype == np.float64
    assert (lg.tensor([1, 2]) + 1.5).dtype == np.float64
    assert (lg.tensor([1, 2]) + 1).dtype == np.int64
    assert (lg.tensor([1, 2], dtype="int32") * lg.tensor([2.0])).dtype == np.float64


def test_comparisons_give_bool():
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for y in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2, (x > 1) & (x < 3), ~(x > 1)):
        assert y.dtype == np.bool_ and y.grad_fn is None


def test_integer_reductions():
    ints = lg.tensor([[1, 2], [3, 4]])
    assert ints.sum().dtype == np.int64 and ints.sum().item() == 10
    assert ints.mean().dtype == np.float64 and ints.mean().item() == 2.5
    assert (ints > 1).sum().item() == 3


@pytest.mark.parametrize("make", [lambda: lg.tensor([1, 2]), lambda: lg.arange(3),
                                  lambda: lg.tensor([True, False]), lambda: lg.zeros(2, dtype="int32")])
def test_int_and_bool_tensors_cannot_require_grad(make):
    x = make()
    with pytest.raises(lg.DTypeError, match="floating-point"):
        x.requires_grad = True
    with pytest.raises(lg.DTypeError):
        lg.tensor(x.numpy(), requires_grad=True)


# ---------------------------------------------------------------- convolution and pooling

def loop_conv2d(x, w, b, stride, padding, dilation):
    """Direct convolution: the definition, one output value at a time."""
    n, c, h, wd = x.shape
    co, ci, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, co, oh, ow))
    for i in range(n):
        for o in range(co):
            for y in range(oh):
                for xx in range(ow):
                    patch = xp[i, :, y * sh:y * sh + dh * (kh - 1) + 1:dh, xx * sw:xx * sw + dw * (kw - 1) + 1:dw]
                    out[i, o, y, xx] = (patch * w[o]).sum() + (0 if b is None else b[o])
    return out


def loop_pool(x, k, s, p, reduce, pad_value):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=pad_value)
    oh, ow = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for xx in range(ow):
            out[:, :, y, xx] = reduce(xp[:, :, y * s[0]:y * s[0] + k[0], xx * s[1]:xx * s[1] + k[1]], axis=(2, 3))
    return out


CONV_SETTINGS = [((1, 1), (0, 0), (1, 1)), ((2, 2), (1, 1), (1, 1)), ((2, 1), (0, 2), (2, 1)), ((3, 2), (2, 1), (1, 3))]


@pytest.mark.parametrize("stride,padding,dilation", CONV_SETTINGS)
def test_conv2d_matches_a_direct_loop(stride, padding, dilation, device):
    x, w, b = randn(2, 3, 7, 8, dtype=np.float64), randn(4, 3, 3, 2, dtype=np.float64), randn(4, dtype=np.float64)
    got = F.conv2d(lg.tensor(x, device=device), lg.tensor(w, device=device), lg.tensor(b, device=device),
                   stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(got.numpy(), loop_conv2d(x, w, b, stride, padding, dilation), rtol=1e-12, atol=1e-12)
    assert got.dtype == np.float64


def test_conv2d_float32_and_no_bias(device):
    x, w = randn(1, 2, 5, 5), randn(3, 2, 3, 3)
    got = F.conv2d(lg.tensor(x, device=device), lg.tensor(w, device=device), padding=1)
    assert got.dtype == np.float32 and got.shape == (1, 3, 5, 5)
    np.testing.assert_allclose(got.numpy(), loop_conv2d(x, w, None, (1, 1), (1, 1), (1, 1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 2), (1, 2), (1, 0))])
def test_pools_match_a_direct_loop(k, s, p, device):
    x = randn(2, 3, 7, 6, dtype=np.float64)
    t = lg.tensor(x, device=device)
    np.testing.assert_allclose(F.max_pool2d(t, k, s, p).numpy(), loop_pool(x, k, s, p, np.max, -np.inf))
    np.testing.assert_allclose(F.avg_pool2d(t, k, s, p).numpy(), loop_pool(x, k, s, p, np.mean, 0.0), rtol=1e-12)


def test_pool_stride_defaults_to_kernel_size():
    x = lg.arange(16, dtype="float32").reshape(1, 1, 4, 4)
    assert F.max_pool2d(x, 2).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    assert F.avg_pool2d(x, 2).tolist() == [[[[2.5, 4.5], [10.5, 12.5]]]]


def test_max_pool_padding_is_never_the_maximum():
    x = lg.full((1, 1, 2, 2), -5.0)
    assert F.max_pool2d(x, 2, stride=1, padding=1).numpy().max() == -5.0


try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # torch is optional: the loops above are the main reference
    torch = None


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("stride,padding,dilation", CONV_SETTINGS)
def test_conv_pool_unfold_fold_match_pytorch(stride, padding, dilation):
    x, w, b = randn(2, 3, 8, 7, dtype=np.float64), randn(5, 3, 2, 3, dtype=np.float64), randn(5, dtype=np.float64)
    tx, tw, tb = map(torch.from_numpy, (x, w, b))
    ours = F.conv2d(lg.tensor(x), lg.tensor(w), lg.tensor(b), stride=stride, padding=padding, dilation=dilation)
    theirs = TF.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)
    attrs = dict(kernel_size=(2, 3), stride=stride, padding=padding, dilation=dilation)
    cols = get_op("unfold")(lg.tensor(x), **attrs)
    np.testing.assert_allclose(cols.numpy(), TF.unfold(tx, **attrs).numpy())
    back = get_op("fold")(cols, output_size=(8, 7), **attrs)
    np.testing.assert_allclose(back.numpy(), TF.fold(TF.unfold(tx, **attrs), (8, 7), **attrs).numpy(), rtol=1e-12)
    k = (3, 2)
    pad = tuple(min(pi, ki // 2) for pi, ki in zip(padding, k))
    np.testing.assert_allclose(F.max_pool2d(lg.tensor(x), k, stride, pad).numpy(),
                               TF.max_pool2d(tx, k, stride, pad).numpy())
    np.testing.assert_allclose(F.avg_pool2d(lg.tensor(x), k, stride, pad).numpy(),
                               TF.avg_pool2d(tx, k, stride, pad).numpy(), rtol=1e-12)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_conv2d_gradients_match_pytorch():
    x, w, b = randn(2, 3, 6, 5, dtype=np.float64), randn(4, 3, 3, 3, dtype=np.float64), randn(4, dtype=np.float64)
    g = randn(2, 4, 3, 3, dtype=np.float64)
    lx, lw, lb = (lg.tensor(a, requires_grad=True) for a in (x, w, b))
    F.conv2d(lx, lw, lb, stride=2, padding=1).backward(lg.tensor(g))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    TF.conv2d(tx, tw, tb, stride=2, padding=1).backward(torch.from_numpy(g))
    for ours, theirs in ((lx, tx), (lw, tw), (lb, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_unfold_and_fold_are_adjoint():
    """<unfold(x), c> == <x, fold(c)> for all x, c: the property that makes each the other's backward."""
    x, c = randn(2, 3, 5, 6, dtype=np.float64), randn(2, 18, 12, dtype=np.float64)
    lhs = (get_op("unfold")(lg.tensor(x), **WIN).numpy() * c).sum()
    rhs = (x * get_op("fold")(lg.tensor(c), output_size=(5, 6), **WIN).numpy()).sum()
    assert math.isclose(lhs, rhs, rel_tol=1e-12)


# ---------------------------------------------------------------- dropout

def test_dropout_zeroes_about_p_and_rescales(device):
    x = lg.ones(20000, device=device)
    y = F.dropout(x, p=0.25).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert y.dtype == np.float32


def test_dropout_gradient_uses_the_same_mask():
    x = lg.randn(50, requires_grad=True)
    y = F.dropout(x, p=0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(y.numpy() != 0, 2.0, 0.0))


def test_dropout_is_reproducible_with_manual_seed():
    lg.manual_seed(5)
    a = F.dropout(lg.ones(100), 0.5).numpy()
    lg.manual_seed(5)
    b = F.dropout(lg.ones(100), 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_identity_when_not_training_or_p_zero():
    x = lg.randn(4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.5", True])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        F.dropout(lg.ones(3), p)
