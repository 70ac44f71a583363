"""Symbolic gradients (``lg.gradients``), checked against finite differences in float64 and
against derivatives worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.ops import get_op

_rng = np.random.default_rng(11)


def numeric_grad(f, arrays, index, eps=1e-6):
    """Central differences of the scalar ``f(*arrays)`` with respect to ``arrays[index]``."""
    arrays = [a.copy() for a in arrays]
    x = arrays[index]
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + eps
        plus = f(*arrays)
        x[i] = orig - eps
        minus = f(*arrays)
        x[i] = orig
        g[i] = (plus - minus) / (2 * eps)
    return g


def test_gradients_of_a_small_network_match_finite_differences():
    x = lg.placeholder((4, 3), "float64", name="x")
    w = lg.placeholder((3, 2), "float64", name="w")
    b = lg.placeholder((2,), "float64", name="b")
    h = (x @ w + b).tanh()
    loss = (h * h.sum(axis=1, keepdims=True)).mean() + F.softmax(h, axis=1).max()
    grads = lg.gradients(loss, [x, w, b])
    value = lg.compile(loss)
    f = lg.compile(grads)
    arrays = [_rng.standard_normal((4, 3)), _rng.standard_normal((3, 2)), _rng.standard_normal(2)]
    got = f(*arrays)
    for i, g in enumerate(got):
        expected = numeric_grad(lambda *a: value(*a).item(), arrays, i)
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_broadcast_gradients_are_summed_back_to_the_input_shape():
    a = lg.placeholder((2, 3), "float64", name="a")
    b = lg.placeholder((3,), "float64", name="b")
    ga, gb = lg.gradients((a * b).sum(), [a, b])
    assert ga.shape == (2, 3) and gb.shape == (3,)
    assert "sum_to" in {n.op_name for n in lg.compile(gb).built_graph.nodes}
    av, bv = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 0.5])
    got_a, got_b = lg.compile([ga, gb])(av, bv)
    np.testing.assert_allclose(got_a.numpy(), np.broadcast_to(bv, (2, 3)))   # d/da = b
    np.testing.assert_allclose(got_b.numpy(), av.sum(axis=0))                 # d/db = sum over rows of a


def test_second_order_gradients_of_gradients():
    x = lg.placeholder((3,), "float64", name="x")
    y = (x ** 3).sum()
    (g,) = lg.gradients(y, [x])
    (h,) = lg.gradients(g.sum(), [x])
    (t,) = lg.gradients(h.sum(), [x])
    xs = np.array([1.0, -2.0, 0.5])
    got_g, got_h, got_t = lg.compile([g, h, t])(xs)
    np.testing.assert_allclose(got_g.numpy(), 3 * xs ** 2)   # hand-derived
    np.testing.assert_allclose(got_h.numpy(), 6 * xs)
    np.testing.assert_allclose(got_t.numpy(), [6.0, 6.0, 6.0])


def test_hessian_vector_product_matches_differences_of_the_gradient():
    x = lg.placeholder((4,), "float64", name="x")
    v = lg.placeholder((4,), "float64", name="v")
    y = (x.sin() * x.exp()).sum() + (x @ x) ** 2
    (g,) = lg.gradients(y, [x])
    (hv,) = lg.gradients((g * v).sum(), [x])
    grad_fn, hvp = lg.compile(g), lg.compile(hv)
    xs, vs = _rng.standard_normal(4), _rng.standard_normal(4)
    eps = 1e-6
    expected = (grad_fn(xs + eps * vs).numpy() - grad_fn(xs - eps * vs).numpy()) / (2 * eps)
    np.testing.assert_allclose(hvp(xs, vs).numpy(), expected, rtol=1e-6, atol=1e-7)


def test_grad_ys_weight_the_outputs_and_several_ys_add_up():
    x = lg.placeholder((2,), "float64", name="x")
    y1, y2 = x * 3, x * x
    (g,) = lg.gradients([y1, y2], [x], grad_ys=[lg.constant(np.array([1.0, 0.0])), None])
    xs = np.array([2.0, 5.0])
    np.testing.assert_allclose(lg.compile(g)(xs).numpy(), [3.0 + 4.0, 0.0 + 10.0])


def test_gradient_with_respect_to_an_intermediate_and_its_inputs():
    x = lg.placeholder((), "float64", name="x")
    h = x * x
    y = h * x            # y = x^3 = h x
    gh, gx = lg.gradients(y, [h, x])
    got_h, got_x = lg.compile([gh, gx])(2.0)
    assert got_h.item() == 2.0           # dy/dh = x
    assert got_x.item() == 12.0          # total derivative 3 x^2, through h as well


def test_unused_inputs_raise_unless_allowed():
    x = lg.placeholder((), name="x")
    z = lg.placeholder((), name="z")
    with pytest.raises(lg.GradError, match="allow_unused=True"):
        lg.gradients(x * 2, [x, z])
    gx, gz = lg.gradients(x * 2, [x, z], allow_unused=True)
    assert gz is None and lg.compile(gx)(1.0).item() == 2.0


def test_detach_and_integer_paths_stop_gradients():
    x = lg.placeholder((), "float64", name="x")
    y = x * x.detach() + (x * 3).astype("int64").astype("float64")
    (g,) = lg.gradients(y, [x])
    assert lg.compile(g)(5.0).item() == 5.0   # only the first factor of x * x carries gradient


def test_nodes_built_under_no_grad_carry_no_gradient():
    x = lg.placeholder((), "float64", name="x")
    with lg.no_grad():
        frozen = x * 10
    (g,) = lg.gradients(x * frozen + x, [x])
    assert lg.compile(g)(2.0).item() == 21.0   # d/dx (x * c + x) with c = 10 x held fixed


def test_symbolic_gradients_use_the_ops_own_backward_rule():
    """There is one gradient definition per op: change it, and graph gradients change too."""
    sin = get_op("sin")
    original = sin.backward
    sin.backward = lambda ctx, g: (g * 2.0,)
    try:
        x = lg.placeholder((), "float64", name="x")
        (g,) = lg.gradients(x.sin(), [x])
        assert lg.compile(g)(0.3).item() == 2.0
    finally:
        sin.backward = original
    (g,) = lg.gradients(x.sin(), [x])
    assert lg.compile(g)(0.3).item() == pytest.approx(np.cos(0.3))


def test_gradient_nodes_are_ordinary_graph_nodes():
    x = lg.placeholder((2, 2), name="x")
    w = lg.Variable(lg.ones(2, 2), name="w")
    (gw,) = lg.gradients((x @ w).relu().sum(), [w])
    g = lg.compile(gw).built_graph     # (before elementwise fusion makes relu_grad a kernel)
    assert {"transpose", "matmul", "relu_grad"} <= {n.op_name for n in g.nodes}
    assert all(n.kind != "op" or n.op.name in lg.ops.REGISTRY for n in g.nodes)


def test_gradients_through_mean_var_and_cross_entropy_with_an_unknown_batch_size():
    # the batch size of a (None, 3) placeholder is known only at run time; the backward rules
    # of mean, var and cross_entropy divide by it, so they must count at run time too
    x = lg.placeholder((None, 3), "float64", name="x")
    w = lg.placeholder((3, 4), "float64", name="w")
    t = lg.placeholder((None,), "int64", name="t")
    logits = x @ w
    loss = F.cross_entropy(logits, t) + logits.mean() + logits.var(axis=0).sum()
    value = lg.compile(loss)
    f = lg.compile(lg.gradients(loss, [w]))
    targets = np.array([0, 3, 1, 2, 2])
    for n in (5, 2):  # one graph, two batch sizes
        xs, ws = _rng.standard_normal((n, 3)), _rng.standard_normal((3, 4))
        (gw,) = f(x=xs, w=ws, t=targets[:n])
        expected = numeric_grad(lambda xa, wa: value(x=xa, w=wa, t=targets[:n]).item(), [xs, ws], 1)
        np.testing.assert_allclose(gw.numpy(), expected, rtol=1e-6, atol=1e-8)
