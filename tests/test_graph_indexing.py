"""Index arrays that are graph values: ``x[idx]`` with ``idx`` a placeholder (``lg.compile``) or
a traced tensor argument (``lg.jit``), forward and backward, as embedding lookups and batch
gathers need. The index becomes an input of the ``getitem`` node; its template marks where."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
from labgrad.ops.shape import INDEX_INPUT

W0 = np.arange(12.0).reshape(4, 3)


def _eager_lookup(idx):
    w = lg.tensor(W0, requires_grad=True)
    y = w[lg.tensor(idx)]
    (y * y).sum().backward()
    return y.numpy(), w.grad.numpy()


def test_placeholder_index_forward_and_backward():
    w = lg.Variable(lg.tensor(W0), name="w")
    idx = lg.placeholder((None,), "int64", name="idx")
    y = w[idx]
    assert y.shape == (None, 3)
    assert y.node.inputs[1] is idx.node and y.node.attrs["index"] == (INDEX_INPUT,)
    (gw,) = lg.gradients((y * y).sum(), [w])
    f = lg.compile([y, gw])
    for values in ([0, 2, 0], [3], [1, 1, 1, 2]):   # repeated indices: their gradients add up
        got_y, got_gw = f(idx=np.array(values))
        want_y, want_gw = _eager_lookup(values)
        np.testing.assert_array_equal(got_y.numpy(), want_y)
        np.testing.assert_array_equal(got_gw.numpy(), want_gw)


def test_batch_gather_with_two_placeholder_indices():
    logits = lg.placeholder((None, 5), name="logits")
    rows = lg.placeholder((None,), "int64", name="rows")
    labels = lg.placeholder((None,), "int64", name="labels")
    picked = logits[rows, labels]
    (g,) = lg.gradients(picked.sum(), [logits])
    f = lg.compile([picked, g])
    z = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    t = np.array([4, 0, 4])
    got, grad = f(logits=z, rows=np.arange(3), labels=t)
    np.testing.assert_array_equal(got.numpy(), z[np.arange(3), t])
    want = np.zeros_like(z)
    want[np.arange(3), t] = 1
    np.testing.assert_array_equal(grad.numpy(), want)


def test_index_placeholder_mixed_with_slices_and_a_mask():
    x = lg.placeholder((2, 6, 3), name="x")
    cols = lg.placeholder((2, 2), "int64", name="cols")
    mask = lg.placeholder((2,), "bool", name="mask")
    a, b = x[:, cols, 1:], x[mask]
    assert a.shape == (2, 2, 2, 2) and b.shape == (None, 6, 3)
    data = np.random.default_rng(1).standard_normal((2, 6, 3)).astype(np.float32)
    c, m = np.array([[5, 0], [1, 5]]), np.array([False, True])
    got_a, got_b = lg.compile([a, b])(data, c, m)
    np.testing.assert_array_equal(got_a.numpy(), data[:, c, 1:])
    np.testing.assert_array_equal(got_b.numpy(), data[m])


def test_float_index_placeholder_is_a_dtype_error():
    x = lg.placeholder((4,), name="x")
    with pytest.raises(lg.DTypeError, match="integers or bools"):
        x[lg.placeholder((2,), name="i")]


def test_jit_embedding_lookup_with_a_traced_index():
    w = lg.tensor(W0, requires_grad=True)

    @lg.jit
    def step(idx):
        y = w[idx]
        (y * y).sum().backward()
        return y

    for values in ([0, 2, 0], [3, 3, 1]):
        w.grad = None
        got = step(lg.tensor(values))
        want_y, want_gw = _eager_lookup(values)
        np.testing.assert_array_equal(got.numpy(), want_y)
        np.testing.assert_array_equal(w.grad.numpy(), want_gw)
    assert step.cache_info.misses == 1 and step.cache_info.hits == 1   # new values, same trace


def test_jit_gradient_reaches_a_traced_tensor_indexed_by_another():
    @lg.jit
    def f(x, idx):
        loss = (x[idx[0]] * x[idx]).sum()
        loss.backward()
        return loss

    x0 = np.random.default_rng(2).standard_normal((4, 3))
    x = lg.tensor(x0, requires_grad=True)
    f(x, lg.tensor([2, 0]))
    e = lg.tensor(x0, requires_grad=True)
    i = lg.tensor([2, 0])
    (e[i[0]] * e[i]).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), e.grad.numpy())


def test_out_of_range_index_at_run_time_names_the_node_and_line():
    w = lg.Variable(lg.tensor(W0), name="w")
    idx = lg.placeholder((None,), "int64", name="idx")
    y = w[idx]   # the line the error must point to
    f = lg.compile(y)
    with pytest.raises(lg.LabgradError) as info:
        f(idx=np.array([0, 9]))
    message = str(info.value)
    assert "getitem" in message and f"%{f.graph.index(y.node)}" in message
    assert "test_graph_indexing.py" in message and "y = w[idx]" in message
    assert "index 9 is out of bounds" in message and "[-n, n)" in message
    assert isinstance(info.value, lg.ShapeError)


def test_out_of_range_index_in_jit_names_the_users_line():
    w = lg.tensor(W0)

    @lg.jit
    def f(idx):
        return w[idx] * 2

    f(lg.tensor([1]))
    with pytest.raises(lg.LabgradError, match=r"(?s)getitem failed.*w\[idx\] \* 2.*out of bounds"):
        f(lg.tensor([7]))


def test_constant_index_out_of_range_is_caught_while_building():
    x = lg.placeholder((3, 2), name="x")
    with pytest.raises(lg.ShapeError, match="index 3 is out of bounds for axis 0 with size 3"):
        x[np.array([0, 3])]


# ---------------------------------------------------------------- s[idx] = v on symbols

def test_item_assignment_on_a_symbol_is_a_setitem_node_with_gradients():
    x = lg.placeholder((4, 2), "float64", name="x")
    v = lg.placeholder((3, 2), "float64", name="v")
    idx = lg.placeholder((3,), "int64", name="idx")
    y = x * 1
    y[idx] = v
    assert y.node.op_name == "setitem"
    gx, gv = lg.gradients((y * y).sum(), [x, v])
    f = lg.compile([y, gx, gv])
    rng = np.random.default_rng(3)
    x0, v0, i0 = rng.standard_normal((4, 2)), rng.standard_normal((3, 2)), np.array([0, 2, 0])
    got_y, got_gx, got_gv = f(x0, v0, i0)
    want_y = x0.copy()
    want_y[i0] = v0                       # row 0 ends as v0[2]: the last write wins
    want_gx = 2 * x0
    want_gx[[0, 2]] = 0                   # overwritten: no gradient to x there
    want_gv = 2 * v0
    want_gv[0] = 0                        # v0[0] was overwritten by v0[2]: no gradient
    np.testing.assert_allclose(got_y.numpy(), want_y)
    np.testing.assert_allclose(got_gx.numpy(), want_gx)
    np.testing.assert_allclose(got_gv.numpy(), want_gv)


def test_item_assignment_into_a_variable_points_to_assign():
    w = lg.Variable(lg.zeros(3), name="w")
    with pytest.raises(lg.TraceError, match="lg.assign"):
        w[0] = 1.0
