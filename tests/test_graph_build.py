"""Define-and-run: placeholders, constants, variables, assign, compile, and what errors say.

Values are checked against NumPy or hand-derived numbers; errors against what a student needs
to read: the op, the shapes, the line of *their* code, and what to do.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.graph import Graph, Node


def here():
    """The line number of the caller's line."""
    return sys._getframe(1).f_lineno


# ---------------------------------------------------------------- the classic examples

def test_add_then_add_one():
    a = lg.placeholder((), name="a")
    b = lg.placeholder((), name="b")
    c = a + b
    d = c + 1
    f = lg.compile(d)
    assert isinstance(d, lg.Symbol)
    assert f(a=np.array(2), b=np.array(3)).item() == 6
    assert f(2.0, 3.0).item() == 6                 # by position
    assert f.run({"a": 10, "b": -4}).item() == 7   # as a feed dict
    assert f.run({a: 1, b: 1}).item() == 3         # keyed by the placeholder symbols


def test_tf1_linear_regression_fits_the_line():
    """The TF1 getting-started example: fit y = 0.1 x + 0.3 by gradient descent, 10,000 runs."""
    rng = np.random.default_rng(0)
    x_data = rng.random(100).astype(np.float32)
    y_data = 0.1 * x_data + 0.3
    X = lg.placeholder((100,), name="X")
    label = lg.placeholder((100,), name="label")
    W = lg.Variable(lg.uniform(1, low=-1.0, high=1.0), name="W")
    b = lg.Variable(lg.zeros(1), name="b")
    Y = W * X + b
    loss = ((Y - label) ** 2).mean()
    gW, gb = lg.gradients(loss, [W, b])
    train = lg.compile(loss, updates=[lg.assign(W, W - 0.5 * gW), lg.assign(b, b - 0.5 * gb)])
    first = train(x_data, y_data).item()
    for _ in range(9_999):
        last = train(X=x_data, label=y_data).item()
    assert last < 1e-10 < first
    np.testing.assert_allclose(W.value.numpy(), [0.1], atol=1e-4)
    np.testing.assert_allclose(b.value.numpy(), [0.3], atol=1e-4)


def test_compiled_values_match_numpy(device):
    x = lg.placeholder((None, 3), "float64", name="x", device=device)
    w = lg.Variable(lg.tensor(np.arange(6.0).reshape(3, 2), dtype="float64", device=device), name="w")
    y = F.relu(x @ w - 4).sum(axis=1)
    f = lg.compile(y)
    xs = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    got = f(lg.tensor(xs, dtype="float64", device=device))
    assert got.device == device
    np.testing.assert_allclose(got.numpy(), np.maximum(xs @ np.arange(6.0).reshape(3, 2) - 4, 0).sum(axis=1))


def test_several_outputs_come_back_as_a_tuple_and_one_output_in_a_list_as_a_1_tuple():
    a = lg.placeholder((2,), name="a")
    both = lg.compile([a * 2, a.sum()])(np.array([1.0, 2.0]))
    assert isinstance(both, tuple) and len(both) == 2
    np.testing.assert_allclose(both[0].numpy(), [2.0, 4.0])
    assert both[1].item() == 3.0
    (only,) = lg.compile([a + 1])(np.array([0.0, 1.0]))
    np.testing.assert_allclose(only.numpy(), [1.0, 2.0])


def test_constants_are_baked_in():
    a = lg.placeholder((3,), name="a")
    k = lg.constant([1.0, 2.0, 3.0], name="k")
    assert k.dtype == np.float32 and k.shape == (3,)
    f = lg.compile(a * k)
    np.testing.assert_allclose(f(np.ones(3)).numpy(), [1.0, 2.0, 3.0])
    assert [n.kind for n in f.graph.constants] == ["constant"]


def test_eager_tensors_meeting_symbols_become_constants():
    a = lg.placeholder((2,), name="a")
    t = lg.tensor([10.0, 20.0])
    f = lg.compile(a + t)
    (const,) = f.graph.constants
    assert const.value is t.data
    np.testing.assert_allclose(f(np.array([1.0, 2.0])).numpy(), [11.0, 22.0])


# ---------------------------------------------------------------- variables and assign

def test_variables_alias_the_live_tensor_and_assign_writes_it():
    t = lg.zeros(3)
    w = lg.Variable(t, name="w")
    assert w.value is t
    step = lg.compile(lg.assign(w, w + 1))
    out = step()
    np.testing.assert_allclose(out.numpy(), [1.0, 1.0, 1.0])
    step()
    np.testing.assert_allclose(t.numpy(), [2.0, 2.0, 2.0])   # eager code sees every update
    t += 10                                                 # ... and the graph sees eager changes
    step()
    np.testing.assert_allclose(w.value.numpy(), [13.0, 13.0, 13.0])


def test_every_read_sees_the_value_from_the_start_of_the_run():
    w = lg.Variable(lg.tensor([1.0]), name="w")
    new = lg.assign(w, w * 10)
    after = w + 0          # built after the assign, but reads w as it was when the run began
    f = lg.compile([new, after])
    got_new, got_after = f()
    assert got_new.item() == 10.0 and got_after.item() == 1.0
    assert w.value.item() == 10.0


def test_updates_are_performed_but_not_returned():
    w = lg.Variable(lg.zeros(2), name="w")
    x = lg.placeholder((2,), name="x")
    f = lg.compile((w * x).sum(), updates=[lg.assign(w, w + x)])
    assert f(np.array([1.0, 2.0])).item() == 0.0           # reads the value from the start of the run
    assert f(np.array([1.0, 2.0])).item() == 5.0
    np.testing.assert_allclose(w.value.numpy(), [2.0, 4.0])
    with pytest.raises(TypeError, match="update 0 is a mul node, not an lg.assign"):
        lg.compile(x.sum(), updates=[w * 2])


def test_swapping_two_variables_through_views():
    a = lg.Variable(lg.tensor([[1.0, 2.0]]), name="a")
    b = lg.Variable(lg.tensor([[3.0], [4.0]]), name="b")
    f = lg.compile([], updates=[lg.assign(a, b.reshape(1, 2)), lg.assign(b, a.T)])
    f()   # both values are views of the other variable's storage: copied before any write
    assert a.value.tolist() == [[3.0, 4.0]] and b.value.tolist() == [[1.0], [2.0]]
    assert ".copy()" in f.code


def test_assign_broadcasts_and_casts_with_explicit_nodes():
    w = lg.Variable(lg.zeros(2, 2), name="w")
    v = lg.placeholder((), "float64", name="v")
    f = lg.compile(lg.assign(w, v))
    f(3.0)
    np.testing.assert_allclose(w.value.numpy(), np.full((2, 2), 3.0))
    assert w.value.dtype == np.float32
    assert {n.op_name for n in f.graph.nodes} >= {"broadcast_to", "cast", "assign"}


def test_assign_refuses_what_cannot_be_stored():
    w = lg.Variable(lg.zeros(3), name="w")
    with pytest.raises(lg.ShapeError, match=r"cannot store a value of shape \(4,\) in variable w of shape \(3,\)"):
        lg.assign(w, lg.placeholder((4,)))
    wi = lg.Variable(lg.tensor([1, 2]), name="counts")
    with pytest.raises(lg.DTypeError, match="cannot store a float32 value in the int64 variable counts"):
        lg.assign(wi, lg.placeholder((2,)))
    with pytest.raises(TypeError, match="the target must be an lg.Variable"):
        lg.assign(lg.placeholder((3,)), 1.0)


def test_variable_from_plain_values():
    w = lg.Variable([[1.0, 2.0]], name="w")
    assert isinstance(w, lg.Symbol) and isinstance(w.value, lg.Tensor)
    assert w.dtype == np.float32 and w.shape == (1, 2) and w.name == "w"
    np.testing.assert_allclose(lg.compile(w * 2)().numpy(), [[2.0, 4.0]])


# ---------------------------------------------------------------- the IR a student can read

def test_graph_text_form_is_one_line_per_node_with_the_user_line():
    x = lg.placeholder((None, 4), name="x")
    w = lg.Variable(lg.ones(4, 2), name="w")
    line = here() + 1
    y = (x @ w).sum(axis=1)
    f = lg.compile(y)
    text = str(f.graph).splitlines()
    assert text[0] == "graph(%0:float32[?,4] x):"
    assert text[1].startswith("  %1:float32[4,2] = variable w")
    assert text[2].startswith("  %2:float32[?,2] = matmul %0, %1")
    assert text[2].endswith(f"# test_graph_build.py:{line}")
    assert text[3].startswith("  %3:float32[?] = sum %2 {axis=(1,), keepdims=False}")
    assert text[-1] == "  return %3"
    assert str(f.graph) == str(lg.compile(y).graph)   # stable: no ids or addresses


def test_nodes_expose_what_a_visualizer_needs():
    x = lg.placeholder((2,), name="x")
    w = lg.Variable(lg.ones(2), name="w")
    line = here() + 1
    y = x * w
    upd = lg.assign(w, y)
    g = lg.compile([y, upd]).graph
    assert isinstance(g, Graph) and all(isinstance(n, Node) for n in g.nodes)
    mul = next(n for n in g.nodes if n.op_name == "mul")
    assert mul.kind == "op" and mul.op is lg.ops.get_op("mul")
    assert [i.op_name for i in mul.inputs] == ["placeholder", "variable"]
    assert mul.aval.shape == (2,) and mul.aval.dtype == np.float32 and str(mul.device) == "cpu"
    assert mul.location[1] == line and mul.source_location == f"test_graph_build.py:{line}"
    (var,) = g.variables
    (assign,) = g.assigns
    assert var.is_variable and assign.is_assign and assign.target is var and var.tensor is w.value
    assert g.inputs == [g.node_of(x)] and g.outputs == [g.node_of(y), g.node_of(upd)]
    assert g.index(mul) == 2


def test_symbols_print_their_aval():
    a = lg.placeholder((None, 3), name="a")
    s = (a * 2).sum(axis=1)
    assert repr(s).startswith("Symbol(float32[?] = sum, test_graph_build.py:")
    assert s.shape == (None,) and s.dtype == np.float32 and s.ndim == 1


def test_generated_code_calls_the_backend_one_statement_per_node():
    a = lg.placeholder((3,), name="a")
    b = lg.placeholder((3,), name="b")
    line = here() + 1
    c = (a + b).tanh()
    code = lg.compile(c * 2, passes=()).code    # as built: elementwise fusion would make one kernel
    assert "v2 = xp.add(a, b)" in code
    assert f"# test_graph_build.py:{line}" in code
    assert "v3 = xp.tanh(v2)" in code and "del v2" in code
    assert code.startswith("def graph(a, b):")
    compile(code, "<check>", "exec")   # it is plain Python


def test_ops_whose_forward_is_not_one_expression_are_called_by_name():
    a = lg.placeholder((2, 3), name="a")
    code = lg.compile(a.softmax(axis=1)).code
    assert "softmax_forward(xp, a, axis=1)" in code



def test_a_bias_gradient_is_written_as_a_product_with_ones():
    # the column sums of a float matrix: BLAS reads it once (see codegen._specialized)
    x = lg.placeholder((64, 8), name="x")
    b = lg.Variable(lg.zeros(8), name="b")
    loss = ((x + b) ** 2).sum()
    f = lg.compile(lg.gradients(loss, [b]), inputs=[x], passes=())
    assert "ones64 @ " in f.code
    xv = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    np.testing.assert_allclose(f(xv)[0].numpy(), (2 * xv).sum(axis=0), rtol=1e-5, atol=1e-5)
    ints = lg.placeholder((4, 3), "int64", name="i")
    assert "@" not in lg.compile(lg.ops.sum_to(ints, shape=(3,)), passes=()).code

# ---------------------------------------------------------------- errors while building

def test_shape_errors_are_raised_while_the_graph_is_built_with_the_user_line():
    x = lg.placeholder((None, 3), name="x")
    w = lg.placeholder((4, 2), name="w")
    with pytest.raises(lg.ShapeError) as err:
        x @ w   # the line the error must show
    msg = str(err.value)
    assert "matmul" in msg and "(?, 3)" in msg and "(4, 2)" in msg
    assert "test_graph_build.py" in msg and "x @ w   # the line the error must show" in msg


def test_broadcast_errors_name_both_shapes_and_the_line():
    a = lg.placeholder((2, 3))
    with pytest.raises(lg.ShapeError, match=r"add: cannot broadcast shapes \(2, 3\) and \(4,\)") as err:
        a + lg.placeholder((4,))
    assert "a + lg.placeholder((4,))" in str(err.value)


def test_python_if_on_a_symbol_points_to_cond():
    x = lg.placeholder((), name="x")
    with pytest.raises(lg.TraceError) as err:
        if x > 0:   # the offending line
            pass
    msg = str(err.value)
    assert "lg.cond" in msg and "lg.while_loop" in msg and "if x > 0:   # the offending line" in msg


@pytest.mark.parametrize("what", ["item", "numpy", "float", "int", "array"])
def test_values_of_symbols_do_not_exist_yet(what):
    x = lg.placeholder((), name="x")
    get = {"item": lambda: x.item(), "numpy": lambda: x.numpy(), "float": lambda: float(x),
           "int": lambda: int(x), "array": lambda: np.asarray(x)}[what]
    with pytest.raises(lg.TraceError, match="exists only when the graph runs"):
        get()


def test_devices_must_match_and_transfers_are_explicit_nodes(fake_cuda):
    x = lg.placeholder((2,), name="x")
    w = lg.Variable(lg.ones(2, device=fake_cuda), name="w")
    with pytest.raises(lg.DeviceError, match="on different devices") as err:
        x * w
    assert ".to(device)" in str(err.value) and "x * w" in str(err.value)
    moved = x.to(fake_cuda)
    assert moved.node.op_name == "to_device" and moved.device == fake_cuda
    f = lg.compile(moved * w)
    out = f(np.array([3.0, 4.0]))
    assert out.device == fake_cuda
    np.testing.assert_allclose(out.numpy(), [3.0, 4.0])
    assert "to_device" in f.code


def test_feeds_must_be_on_the_placeholders_device(fake_cuda):
    x = lg.placeholder((2,), name="x", device=fake_cuda)
    f = lg.compile(x * 2)
    with pytest.raises(lg.DeviceError, match="is a host \\(NumPy\\) array, but its placeholder is on cuda:7"):
        f(np.ones(2))
    with pytest.raises(lg.DeviceError, match="input 'x' is on cpu, but its placeholder is on cuda:7"):
        f(lg.ones(2))
    np.testing.assert_allclose(f(lg.ones(2, device=fake_cuda)).numpy(), [2.0, 2.0])


# ---------------------------------------------------------------- feeding

def _adder():
    a = lg.placeholder((None, 2), name="a")
    b = lg.placeholder((2,), "float32", name="b")
    return lg.compile(a + b)


def test_missing_feeds_are_named():
    with pytest.raises(TypeError, match=r"missing input\(s\): b \(float32\[2\]\)"):
        _adder()(np.ones((3, 2)))


def test_extra_and_unknown_feeds_are_refused():
    f = _adder()
    with pytest.raises(TypeError, match="takes 2 input"):
        f(np.ones((1, 2)), np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="no placeholder named 'c'; the inputs are: a: float32\\[\\?,2\\], b: float32\\[2\\]"):
        f(np.ones((1, 2)), np.ones(2), c=1)
    with pytest.raises(TypeError, match="given twice"):
        f(np.ones((1, 2)), np.ones(2), a=np.ones((1, 2)))


def test_misshaped_feeds_are_refused_before_running():
    with pytest.raises(lg.ShapeError, match=r"input 'b' has shape \(3,\), but its placeholder expects \(2,\)"):
        _adder()(np.ones((1, 2)), np.ones(3))
    with pytest.raises(lg.ShapeError, match=r"input 'a' has shape \(2,\), but its placeholder expects \(\?, 2\)"):
        _adder()(np.ones(2), np.ones(2))


def test_mistyped_feeds_are_refused_but_safe_conversions_happen():
    n = lg.placeholder((2,), "int64", name="n")
    f = lg.compile(n * 2)
    with pytest.raises(lg.DTypeError, match="input 'n' has dtype float64, but its placeholder has dtype int64"):
        f(np.array([1.5, 2.0]))
    assert f([1, 2]).dtype == np.int64
    g = _adder()
    out = g(np.ones((1, 2), dtype=np.float64), [1, 2])   # float64 -> float32 is the same kind
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), [[2.0, 3.0]])


def test_inputs_fix_the_positional_order_and_must_cover_every_placeholder():
    a = lg.placeholder((), name="a")
    b = lg.placeholder((), name="b")
    f = lg.compile(a - b, inputs=[b, a])
    assert f(1.0, 5.0).item() == 4.0
    with pytest.raises(lg.TraceError, match="not listed in inputs: b"):
        lg.compile(a - b, inputs=[a])


# ---------------------------------------------------------------- errors while running

def test_runtime_errors_name_the_node_and_the_line_that_defined_it():
    a = lg.placeholder((None,), name="a")
    b = lg.placeholder((None,), name="b")
    c = a * 2
    line = here() + 1
    d = c + b   # sizes known only when the graph runs
    fused = lg.compile(d.sum())     # the default pipeline makes a*2+b and its sum one kernel
    with pytest.raises(lg.ShapeError) as err:
        fused(np.ones(3), np.ones(4))
    msg = str(err.value)
    assert "(fused into fused_" in msg and "failed while running the compiled graph" in msg
    assert f"line {line}" in msg and "cannot broadcast shapes (3,) and (4,)" in msg
    f = lg.compile(d.sum(), passes=["dce", "fold", "simplify", "cse"])
    assert f(np.ones(3), np.ones(3)).item() == 9.0
    with pytest.raises(lg.ShapeError) as err:
        f(np.ones(3), np.ones(4))
    msg = str(err.value)
    assert "add failed while running the compiled graph, at node %3" in msg
    assert f"line {line}" in msg and "d = c + b   # sizes known only when the graph runs" in msg
    assert "float32[3], float32[4]" in msg
    assert "cannot broadcast shapes (3,) and (4,)" in msg


def test_compile_refuses_values_from_inside_a_branch():
    x = lg.placeholder((), name="x")
    leaked = []

    def branch(v):
        leaked.append(v * 2)
        return v

    lg.cond(x > 0, branch, lambda v: v, x)
    with pytest.raises(lg.TraceError, match="used outside it"):
        leaked[0] + 1


def test_backward_on_a_static_symbol_points_to_gradients():
    x = lg.placeholder((), name="x")
    with pytest.raises(lg.TraceError, match=r"lg.gradients\(loss, \[w, b\]\)"):
        (x * x).backward()
