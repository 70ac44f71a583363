"""Every differentiable op's backward rule, checked against finite differences in float64.

``gradcheck(..., order=2)`` checks the first derivative and then the derivative of the
gradient (double backward), which runs each backward rule *as ops* once more.

Adding an op? ``test_every_differentiable_op_has_a_gradcheck_case`` fails until ``CASES`` has
an entry for it.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
import hypothesis.extra.numpy as hnp

import labgrad as lg
import labgrad.functional as F
from labgrad.ops import REGISTRY, get_op
from labgrad.ops.shape import INDEX_INPUT
from labgrad.testing import gradcheck

_rng = np.random.default_rng(2024)


def randn(*shape):
    return np.asarray(_rng.standard_normal(shape))


def away(*shape):
    """Values in +-[0.3, 1.3]: well away from kinks at 0 (abs, relu, ...)."""
    return np.asarray(_rng.uniform(0.3, 1.3, shape) * _rng.choice([-1.0, 1.0], shape))


def positive(*shape):
    return np.asarray(_rng.uniform(0.5, 2.0, shape))


class Case:
    def __init__(self, op, fn, *inputs, id=None, **check):
        self.op, self.fn, self.inputs, self.check = op, fn, inputs, check
        self.id = f"{op}-{id}" if id else op


def _op(name):
    return get_op(name)


def _index_on(like, values):
    """An index array on the device of ``like`` (ops receive backend arrays, not lists)."""
    return like._backend.asarray(np.array(values))


CASES = [
    # ---- elementwise binary, with broadcasting
    Case("add", lambda a, b: a + b, randn(2, 3), randn(3), id="bcast-row"),
    Case("add", lambda a, b: a + b, randn(2, 1), randn(1, 3), id="bcast-outer"),
    Case("add", lambda a: a + 2.0, randn(3), id="scalar"),
    Case("sub", lambda a, b: a - b, randn(2, 3), randn(2, 1), id="bcast-col"),
    Case("sub", lambda a: 3.0 - a, randn(3), id="rsub"),
    Case("mul", lambda a, b: a * b, randn(2, 3), randn(3), id="bcast"),
    Case("mul", lambda a, b: a * b, randn(4, 1, 3), randn(2, 1), id="bcast-3d"),
    Case("div", lambda a, b: a / b, randn(2, 3), positive(3), id="bcast"),
    Case("div", lambda b: 1.5 / b, positive(2, 2), id="rdiv"),
    Case("neg", lambda a: -a, randn(2, 3)),
    Case("pow", lambda a, b: a ** b, positive(2, 3), away(3), id="both"),
    Case("pow", lambda a: a ** 3, randn(2, 3), id="int-exponent"),
    Case("pow", lambda b: 2.0 ** b, randn(3), id="rpow"),
    Case("maximum", lambda a, b: lg.maximum(a, b), randn(2, 3), randn(3), id="bcast"),
    Case("tanh_grad", lambda g, y: get_op("tanh_grad")(g, y), randn(2, 3), randn(3), id="bcast"),
    Case("sigmoid_grad", lambda g, y: get_op("sigmoid_grad")(g, y), randn(2, 3), randn(3), id="bcast"),
    Case("relu_grad", lambda g, x: get_op("relu_grad")(g, x.detach()), randn(2, 3), randn(3), id="bcast"),
    Case("minimum", lambda a, b: lg.minimum(a, b), randn(2, 3), randn(2, 1), id="bcast"),
    Case("where", lambda c, a, b: lg.where(c, a, b), np.array([[True], [False]]), randn(2, 3), randn(3),
         id="bcast"),
    # ---- elementwise unary
    Case("exp", lambda a: a.exp(), randn(2, 3)),
    Case("log", lambda a: a.log(), positive(2, 3)),
    Case("sqrt", lambda a: a.sqrt(), positive(2, 3)),
    Case("abs", lambda a: abs(a), away(2, 3)),
    Case("sin", lambda a: a.sin(), randn(2, 3)),
    Case("cos", lambda a: a.cos(), randn(2, 3)),
    Case("tanh", lambda a: a.tanh(), randn(2, 3)),
    Case("sigmoid", lambda a: a.sigmoid(), 3 * randn(2, 3)),
    Case("relu", lambda a: a.relu(), away(2, 3)),
    Case("fma", lambda a, b, c: _op("fma")(a, b, c), randn(2, 3), randn(3), randn(2, 1), id="bcast"),
    Case("fma", lambda a, c: _op("fma")(a, a, c), randn(3), randn(3), id="square"),
    Case("linear", lambda x, w, b: _op("linear")(x, w, b, relu=False), randn(4, 3), randn(3, 2), randn(2)),
    # pre-activations well away from relu's kink: column 0 > 0.2, column 1 < -0.2
    Case("linear", lambda x, w, b: _op("linear")(x, w, b, relu=True), np.abs(away(4, 3)),
         np.abs(away(3, 2)) * np.array([1.0, -1.0]), randn(4, 2) * 0.01, id="relu"),
    Case("leaky_relu", lambda a: F.leaky_relu(a, 0.1), away(2, 3)),
    Case("gelu", lambda a: F.gelu(a), 2 * randn(2, 3)),
    Case("clip", lambda a: a.clip(-0.5, 0.5), np.array([-1.2, -0.3, 0.1, 0.4, 0.9, 2.0])),
    Case("cast", lambda a: a.astype("float32").astype("float64") * a, randn(2, 3), id="float32-roundtrip",
         eps=1e-3, atol=1e-3, rtol=1e-3),
    Case("cast", lambda a: _op("cast")(a, dtype=np.dtype("float64")), randn(3), id="same-dtype"),
    # ---- shape
    Case("reshape", lambda a: a.reshape(3, 2) * a.reshape(3, 2), randn(2, 3)),
    Case("transpose", lambda a: a.transpose(2, 0, 1) ** 2, randn(2, 3, 4)),
    Case("squeeze", lambda a: a.squeeze(1) ** 2, randn(3, 1, 2)),
    Case("unsqueeze", lambda a: a.unsqueeze(0) * a, randn(2, 3)),
    Case("broadcast_to", lambda a: a.broadcast_to(2, 3, 4) ** 2, randn(3, 1)),
    Case("broadcast_like", lambda a, ref: _op("broadcast_like")(a, ref) ** 2, randn(3, 1), randn(2, 3, 4)),
    Case("sum_to", lambda a: _op("sum_to")(a, shape=(3, 1)) ** 2, randn(2, 3, 4)),
    Case("getitem", lambda a: a[1:, ::2] ** 2, randn(3, 4), id="basic"),
    Case("getitem", lambda a: a[[0, 2, 0, 0]] ** 2, randn(3, 2), id="repeated-ints"),
    Case("getitem", lambda a, m: a[m] ** 2, randn(3, 2), np.array([[True, False], [False, True], [True, True]]),
         id="bool-mask"),
    Case("getitem", lambda a: a[None, ..., 1] ** 2, randn(2, 3, 2), id="none-ellipsis"),
    Case("getitem_grad", lambda g, ref: _op("getitem_grad")(g, ref, index=(_index_on(ref, [0, 2, 0]),)) ** 2,
         randn(3, 2), randn(4, 2)),
    Case("getitem", lambda a, i: _op("getitem")(a, i, index=(INDEX_INPUT, slice(None, None, -1))) ** 2,
         randn(3, 2), np.array([[0, 2], [0, 0]]), id="index-input"),
    Case("getitem_grad", lambda g, ref, i: _op("getitem_grad")(g, ref, i, index=(INDEX_INPUT,)) ** 2,
         randn(3, 2), randn(4, 2), np.array([3, 0, 3]), id="index-input"),
    # x[i] = v with i repeated: the last write wins, and only the winning row of v gets gradient
    Case("setitem", lambda x, v, i: _op("setitem")(x, v, i, index=(INDEX_INPUT,)) ** 2,
         randn(4, 2), randn(3, 2), np.array([0, 2, 0]), id="repeated"),
    Case("setitem", lambda x, v: _op("setitem")(x, v, index=(slice(1, None), slice(None))) * x,
         randn(3, 2), randn(2), id="broadcast"),
    Case("concatenate", lambda a, b: lg.concatenate([a, b], axis=1) ** 2, randn(2, 3), randn(2, 1)),
    Case("stack", lambda a, b: lg.stack([a, b], axis=1) ** 2, randn(2, 3), randn(2, 3)),
    Case("pad", lambda a: lg.pad(a, ((1, 0), (2, 1)), value=0.5) ** 2, randn(2, 3)),
    # ---- reductions
    Case("sum", lambda a: a.sum(axis=1) ** 2, randn(2, 3, 2), id="axis"),
    Case("sum", lambda a: a.sum() ** 2, randn(2, 3), id="all"),
    Case("mean", lambda a: a.mean(axis=(0, 2), keepdims=True) ** 2, randn(2, 3, 2), id="keepdims"),
    Case("max", lambda a: a.max(axis=0), randn(3, 4), id="axis"),
    Case("max", lambda a: a.max() * a.sum(), randn(2, 3), id="all"),
    Case("min", lambda a: a.min(axis=-1, keepdims=True) * a, randn(3, 4)),
    Case("var", lambda a: a.var(axis=1), randn(2, 4), id="population"),
    Case("var", lambda a: a.var(ddof=1), randn(5), id="sample"),
    Case("logsumexp", lambda a: a.logsumexp(axis=1), randn(2, 4)),
    Case("logsumexp", lambda a: a.logsumexp(axis=None, keepdims=True), randn(2, 3), id="all"),
    # ---- linear algebra
    Case("matmul", lambda a, b: a @ b, randn(2, 3), randn(3, 4), id="2d"),
    Case("matmul", lambda a, b: a @ b, randn(2, 1, 2, 3), randn(3, 3, 2), id="batched-bcast"),
    Case("matmul", lambda a, b: a @ b, randn(3), randn(3), id="dot"),
    Case("matmul", lambda a, b: a @ b, randn(3), randn(2, 3, 4), id="vec-mat"),
    Case("matmul", lambda a, b: a @ b, randn(2, 2, 3), randn(3), id="mat-vec"),
    # ---- nn
    Case("softmax", lambda a: a.softmax(axis=-1), randn(2, 4)),
    Case("softmax", lambda a: a.softmax(axis=0), randn(3, 2), id="axis0"),
    Case("log_softmax", lambda a: a.log_softmax(axis=1), randn(2, 4)),
    Case("cross_entropy", lambda z, t: F.cross_entropy(z, t), randn(4, 3), np.array([0, 2, 1, 2])),
    Case("cross_entropy_grad", lambda z, t, g: get_op("cross_entropy_grad")(z, t, g), randn(4, 3),
         np.array([0, 2, 1, 2]), np.array(0.7)),
    Case("unfold", lambda a: _op("unfold")(a, kernel_size=(2, 3), stride=(2, 1), padding=(1, 0),
                                           dilation=(1, 2)), randn(2, 2, 5, 6)),
    Case("fold", lambda c: _op("fold")(c, output_size=(5, 4), kernel_size=(2, 2), stride=(2, 1),
                                       padding=(1, 1), dilation=(1, 1)), randn(1, 8, 15)),
    # ---- devices
    Case("to_device", lambda a: _op("to_device")(a, device=str(a.device)) * a, randn(2, 3)),
]

COMPOSITES = [  # functional.py compositions: checked the same way, not counted as ops
    Case("conv2d", lambda x, w, b: F.conv2d(x, w, b), randn(2, 2, 4, 4), randn(3, 2, 3, 2), randn(3)),
    Case("conv2d", lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2)),
         randn(1, 2, 5, 5), randn(2, 2, 2, 2), id="strided"),
    Case("max_pool2d", lambda x: F.max_pool2d(x, 2), randn(2, 2, 4, 4)),
    Case("max_pool2d", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), randn(1, 2, 5, 5), id="overlap-pad"),
    Case("avg_pool2d", lambda x: F.avg_pool2d(x, 2), randn(2, 2, 4, 4)),
    Case("avg_pool2d", lambda x: F.avg_pool2d(x, (3, 2), stride=1, padding=1), randn(1, 1, 4, 3),
         id="overlap-pad"),
    Case("dropout", lambda x: (lg.manual_seed(3), F.dropout(x, 0.4))[1], randn(3, 4)),
    Case("mse_loss", lambda a, b: F.mse_loss(a, b), randn(2, 3), randn(2, 3)),
    Case("linear", lambda x, w, b: F.linear(x, w, b), randn(2, 3), randn(3, 4), randn(4)),
]


def _on_device(inputs, device):
    out = []
    for x in inputs:
        if isinstance(x, np.ndarray):
            x = lg.tensor(x, device=device, dtype=x.dtype)
        out.append(x)
    return out


def ops_in_graph(y):
    """The names of every op on the tape behind ``y``."""
    names, stack, seen = set(), [y.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.op.name)
        stack.extend(node.next_functions)
    return names


@pytest.mark.parametrize("case", CASES + COMPOSITES, ids=lambda c: c.id)
def test_gradcheck_first_and_second_order(case, device):
    assert gradcheck(case.fn, _on_device(case.inputs, device), order=2, **case.check)


@pytest.mark.parametrize("case", CASES + COMPOSITES, ids=lambda c: c.id)
def test_gradcheck_on_a_second_device(case, fake_cuda):
    """Every backward rule keeps its gradients on the input's device (checked on a fake GPU, so
    CPU-only machines catch a rule that makes a CPU tensor, as ``log(2.0)`` in pow's did)."""
    assert gradcheck(case.fn, _on_device(case.inputs, fake_cuda), order=2, **case.check)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_really_uses_its_op(case):
    inputs = [lg.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x
              for x in case.inputs]
    y = case.fn(*inputs)
    assert case.op in ops_in_graph(y), f"case {case.id} never applies op {case.op}"


def test_every_differentiable_op_has_a_gradcheck_case():
    covered = {c.op for c in CASES}
    missing = sorted(name for name, op in REGISTRY.items() if op.differentiable and name not in covered)
    assert not missing, (f"differentiable ops without a gradcheck case: {missing}; add a Case to "
                         f"CASES in tests/test_ops_grad.py")


def test_gradcheck_catches_a_wrong_backward_rule():
    """The checker itself must fail on a broken rule (here: d/dx sin x taken as sin x)."""
    sin = get_op("sin")
    original = sin.backward
    sin.backward = lambda ctx, g: (g * sin(ctx.inputs[0]),)
    try:
        with pytest.raises(lg.testing.GradcheckError, match="does not match finite differences"):
            gradcheck(lambda a: a.sin(), [randn(3)])
    finally:
        sin.backward = original


def test_gradcheck_catches_a_wrong_second_derivative():
    """A backward that is right at first order but not differentiable as written (it detaches)."""
    tanh = get_op("tanh")
    original = tanh.backward
    tanh.backward = lambda ctx, g: (g * (1 - ctx.output.detach() ** 2),)
    tanh.array_backward = False   # a rule with a tensor method runs on tensors only
    try:
        assert gradcheck(lambda a: a.tanh(), [randn(3)], order=1)
        with pytest.raises(lg.testing.GradcheckError, match="second-order"):
            gradcheck(lambda a: a.tanh(), [randn(3)], order=2)
    finally:
        tanh.backward = original
        tanh.array_backward = True


# ---------------------------------------------------------------- Hypothesis: random shapes

BINARY = {
    "add": (lambda a, b: a + b, randn, randn),
    "sub": (lambda a, b: a - b, randn, randn),
    "mul": (lambda a, b: a * b, randn, randn),
    "div": (lambda a, b: a / b, randn, positive),
    "pow": (lambda a, b: a ** b, positive, randn),
    "maximum": (lambda a, b: lg.maximum(a, b), randn, randn),
    "minimum": (lambda a, b: lg.minimum(a, b), randn, randn),
}


def _values(make, shape, seed):
    global _rng
    saved, _rng = _rng, np.random.default_rng(seed)
    try:
        return make(*shape)
    finally:
        _rng = saved


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**32 - 1))
def test_binary_ops_on_broadcast_compatible_shapes(name, shapes, seed):
    fn, make_a, make_b = BINARY[name]
    a = _values(make_a, shapes.input_shapes[0], seed)
    b = _values(make_b, shapes.input_shapes[1], seed + 1)
    assert gradcheck(fn, [np.asarray(a, dtype=float), np.asarray(b, dtype=float)], order=2)


@st.composite
def reduction_args(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    ndim = len(shape)
    if ndim == 0 or draw(st.booleans()):
        axis = None
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        axis = tuple(a - ndim if draw(st.booleans()) else a for a in axes)  # some negative
        if len(axis) == 1 and draw(st.booleans()):
            axis = axis[0]
    return shape, axis, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


REDUCTIONS = {
    "sum": lambda a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
    "mean": lambda a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
    "max": lambda a, axis, keepdims: a.max(axis=axis, keepdims=keepdims),
    "min": lambda a, axis, keepdims: a.min(axis=axis, keepdims=keepdims),
    "var": lambda a, axis, keepdims: a.var(axis=axis, keepdims=keepdims),
    "logsumexp": lambda a, axis, keepdims: a.logsumexp(axis=axis, keepdims=keepdims),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(args=reduction_args())
def test_reductions_over_random_axes(name, args):
    shape, axis, keepdims, seed = args
    a = _values(randn, shape, seed)
    fn = REDUCTIONS[name]
    out = fn(lg.tensor(a), axis, keepdims)
    np_name = {"sum": "sum", "mean": "mean", "max": "max", "min": "min", "var": "var"}.get(name)
    if np_name:
        expected = getattr(np, np_name)(a, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x: fn(x, axis, keepdims) ** 2, [a], order=2)
