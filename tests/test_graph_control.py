"""``lg.cond`` and ``lg.while_loop``: eager (plain Python), in static graphs, and their gradients."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
from test_graph_autodiff import numeric_grad


# ---------------------------------------------------------------- cond

def test_cond_on_tensors_is_plain_python_and_records_the_tape():
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    y = lg.cond(x.sum() > 0, lambda v: v * v, lambda v: -v, x)
    assert isinstance(y, lg.Tensor) and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_static_cond_picks_its_branch_when_the_graph_runs(device):
    x = lg.placeholder((3,), "float64", name="x", device=device)
    y = lg.cond(x.sum() > 0, lambda v: v * 2, lambda v: v - 1, x)
    f = lg.compile(y)
    (node,) = [n for n in f.graph.nodes if n.op_name == "cond"]
    assert set(node.subgraphs) == {"true", "false"}
    assert [n.op_name for n in node.subgraphs["true"].nodes if n.kind == "op"] == ["mul"]
    pos = lg.tensor([1.0, 2.0, 3.0], dtype="float64", device=device)
    neg = lg.tensor([-1.0, -2.0, 0.0], dtype="float64", device=device)
    np.testing.assert_allclose(f(pos).numpy(), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(f(neg).numpy(), [-2.0, -3.0, -1.0])


def test_cond_branches_may_use_outer_values_and_return_several():
    x = lg.placeholder((), name="x")
    s = lg.placeholder((), name="s")
    bias = lg.tensor(100.0)

    def big(v):
        return v * s + bias, v + 1

    def small(v):
        return v - s, v - 1

    a, b = lg.cond(x > 1, big, small, x)
    f = lg.compile([a, b])
    cond_node = next(n for n in f.graph.nodes if n.op_name == "cond")
    assert len(cond_node.inputs) == 3   # pred, the operand, and s captured from outside
    assert [t.item() for t in f(2.0, 3.0)] == [106.0, 3.0]
    assert [t.item() for t in f(0.0, 3.0)] == [-3.0, -1.0]
    assert "cond" in str(f.graph) and "    true(" in str(f.graph) and "    false(" in str(f.graph)


def test_nested_cond():
    x = lg.placeholder((), name="x")
    y = lg.cond(x > 0, lambda v: lg.cond(v > 10, lambda u: u * 100, lambda u: u * 10, v), lambda v: -v, x)
    f = lg.compile(y)
    assert [f(v).item() for v in (20.0, 2.0, -3.0)] == [2000.0, 20.0, 3.0]


def test_cond_with_a_python_bool_just_calls_one_branch():
    x = lg.placeholder((), name="x")
    y = lg.cond(True, lambda v: v * 2, lambda v: v / 0, x)
    assert "cond" not in {n.op_name for n in lg.compile(y).graph.nodes}


def test_cond_branches_must_agree():
    x = lg.placeholder((3,), name="x")
    with pytest.raises(lg.TraceError, match=r"value 0 is float32\[3\] from the true branch but float32\[\] from the false branch"):
        lg.cond(x.sum() > 0, lambda v: v, lambda v: v.sum(), x)
    with pytest.raises(lg.TraceError, match="returns 2 value"):
        lg.cond(x.sum() > 0, lambda v: (v, v), lambda v: v, x)
    with pytest.raises(lg.TraceError, match="the predicate must be a single value"):
        lg.cond(x > 0, lambda v: v, lambda v: v, x)


def test_cond_gradients_flow_through_the_branch_taken():
    x = lg.placeholder((3,), "float64", name="x")
    s = lg.placeholder((), "float64", name="s")
    y = lg.cond(x.sum() > 0, lambda v: (v * v * s).sum(), lambda v: (v.sin()).sum(), x)
    gx, gs = lg.gradients(y, [x, s])
    grads = lg.compile([gx, gs])
    value = lg.compile(y)
    for xs in (np.array([1.0, 2.0, -0.5]), np.array([-1.0, 0.2, -0.5])):
        got_x, got_s = grads(xs, 1.5)
        np.testing.assert_allclose(got_x.numpy(), numeric_grad(lambda v: value(v, 1.5).item(), [xs], 0), rtol=1e-6, atol=1e-8)
        expected_s = (xs * xs).sum() if xs.sum() > 0 else 0.0
        assert got_s.item() == pytest.approx(expected_s)


def test_second_order_through_cond():
    x = lg.placeholder((), "float64", name="x")
    y = lg.cond(x > 0, lambda v: v ** 3, lambda v: v * 2, x)
    (g,) = lg.gradients(y, [x])
    (h,) = lg.gradients(g, [x])
    f = lg.compile([g, h])
    assert [t.item() for t in f(2.0)] == pytest.approx([12.0, 12.0])
    assert [t.item() for t in f(-2.0)] == pytest.approx([2.0, 0.0])


def test_state_updates_inside_a_branch_are_refused():
    w = lg.Variable(lg.zeros(()), name="w")
    x = lg.placeholder((), name="x")
    with pytest.raises(lg.TraceError, match="state cannot be updated inside a cond branch"):
        lg.cond(x > 0, lambda v: lg.assign(w, v), lambda v: v, x)


# ---------------------------------------------------------------- while_loop

def test_while_loop_on_tensors_is_plain_python():
    i, x = lg.while_loop(lambda i, x: x.sum() < 100, lambda i, x: (i + 1, x * 2), (0, lg.tensor([1.0, 2.0])))
    assert i == 6 and x.tolist() == [64.0, 128.0]
    single = lg.while_loop(lambda v: v < 10, lambda v: v + 3, lg.tensor(1.0))
    assert single.item() == 10.0
    capped = lg.while_loop(lambda v: v < 10, lambda v: v + 3, lg.tensor(1.0), max_iterations=2)
    assert capped.item() == 7.0


def test_static_while_loop(device):
    x = lg.placeholder((2,), name="x", device=device)
    i, y = lg.while_loop(lambda i, v: v.sum() < 100, lambda i, v: (i + 1, v * 2), (0, x))
    f = lg.compile([i, y])
    node = next(n for n in f.graph.nodes if n.op_name == "while")
    assert set(node.subgraphs) == {"cond", "body"}
    steps, out = f(lg.tensor([1.0, 2.0], device=device))
    assert steps.item() == 6 and out.tolist() == [64.0, 128.0]
    steps, out = f(lg.tensor([60.0, 50.0], device=device))
    assert steps.item() == 0 and out.tolist() == [60.0, 50.0]
    assert "while " in f.code


def test_while_loop_max_iterations_caps_the_count():
    x = lg.placeholder((), name="x")
    y = lg.while_loop(lambda v: v < 1000, lambda v: v * 2, x, max_iterations=3)
    f = lg.compile(y)
    assert f(1.0).item() == 8.0          # stopped by the cap: 8 < 1000 still holds
    assert f(300.0).item() == 1200.0     # stopped by the condition after two steps
    assert "for _ in range(3):" in f.code


def test_while_loop_body_must_keep_shapes_and_dtypes():
    x = lg.placeholder((2,), name="x")
    with pytest.raises(lg.TraceError, match=r"loop variable 0 is float32\[2\] before the loop but the body returns float32\[4\]"):
        lg.while_loop(lambda v: v.sum() < 10, lambda v: lg.concatenate([v, v]), x)
    with pytest.raises(lg.TraceError, match="cond_fn must return one boolean scalar"):
        lg.while_loop(lambda v: v < 10, lambda v: v + 1, x)


def test_while_loop_gradients_with_max_iterations():
    x = lg.placeholder((3,), "float64", name="x")
    w = lg.placeholder((), "float64", name="w")
    y = lg.while_loop(lambda v: (v * v).sum() < 50.0, lambda v: v * w + 0.5, x, max_iterations=10)
    loss = y.sin().sum()
    gx, gw = lg.gradients(loss, [x, w])
    grads, value = lg.compile([gx, gw]), lg.compile(loss)
    xs = np.array([0.3, -0.2, 0.5])
    got_x, got_w = grads(xs, 1.7)
    np.testing.assert_allclose(got_x.numpy(), numeric_grad(lambda v: value(v, 1.7).item(), [xs], 0), rtol=1e-5, atol=1e-7)
    expected_w = numeric_grad(lambda v: value(xs, v.item()).item(), [np.array(1.7)], 0)
    assert got_w.item() == pytest.approx(float(expected_w), rel=1e-5)


def test_while_loop_without_a_bound_refuses_gradients_and_says_what_to_do():
    x = lg.placeholder((), name="x")
    y = lg.while_loop(lambda v: v < 10, lambda v: v * 2, x)
    with pytest.raises(lg.GradError, match="max_iterations=N") as err:
        lg.gradients(y, [x])
    assert "Python for loop" in str(err.value)


def test_eager_while_switches_to_a_graph_when_the_condition_reads_a_symbol():
    limit = lg.placeholder((), name="limit")
    y = lg.while_loop(lambda v: v < limit, lambda v: v + 1.0, lg.tensor(0.0))
    assert isinstance(y, lg.Symbol)
    f = lg.compile(y)
    assert f(3.5).item() == 4.0


def test_cond_on_a_reduced_comparison_of_a_symbol():
    # lg.cond's own error message suggests (x > 0).all(): that must work on symbols
    x = lg.placeholder((3,), "float64", name="x")
    y = lg.cond((x > 0).all(), lambda v: v * 2, lambda v: -v, x)
    f = lg.compile(y)
    assert f(np.array([1.0, 2.0, 3.0])).tolist() == [2.0, 4.0, 6.0]
    assert f(np.array([1.0, -2.0, 3.0])).tolist() == [-1.0, 2.0, -3.0]
