"""``lg.jit``: tracing eager-style code, the cache and its retraces, and whole training steps
whose results must equal eager execution."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
from labgrad.context import context
import labgrad.functional as F
from labgrad import nn


# ---------------------------------------------------------------- tracing and the cache

def test_traces_once_per_signature_and_says_why_it_retraced():
    calls = []

    @lg.jit
    def f(x, scale=2):
        calls.append(1)
        return (x * scale).sum(axis=1)

    a = lg.randn(32, 64)
    # (a fused sum accumulates float32 in float64: within float32 rounding of NumPy's pairwise sum)
    np.testing.assert_allclose(f(a).numpy(), (a.numpy() * 2).sum(axis=1), rtol=1e-5, atol=1e-5)
    f(lg.randn(32, 64))
    assert len(calls) == 1 and f.cache_info.hits == 1 and f.cache_info.misses == 1
    f(lg.randn(16, 64))
    f(lg.randn(16, 64).double())
    f(lg.randn(16, 64).double(), 3)
    assert len(calls) == 4
    assert f.cache_info.traces == ["first call", "arg 0 (x) shape (32, 64) -> (16, 64)",
                                   "arg 0 (x) dtype float32 -> float64",
                                   "the arguments changed: 2 positional, keywords () instead of 1 positional, keywords ()"]
    f(lg.randn(32, 64))     # the first signature is still cached
    assert len(calls) == 4 and f.cache_info.hits == 2


def test_static_python_arguments_are_part_of_the_key():
    @lg.jit
    def f(x, n):
        return x * n

    f(lg.ones(2), 3)
    out = f(lg.ones(2), 4)
    np.testing.assert_allclose(out.numpy(), [4.0, 4.0])
    assert f.cache_info.traces[-1] == "arg 1 (n) value 3 -> 4"


def test_graph_and_code_show_the_latest_trace():
    @lg.jit
    def f(x):
        return (x * x).sum()

    assert f.graph is None
    f(lg.ones(3))
    assert isinstance(f.graph, lg.Graph) and f.graph.inputs[0].name == "x"
    assert f.code.startswith("def f(x):")
    # (x * x).sum() is one fused kernel: a loop that multiplies and accumulates
    (name, source), = f.executable.kernels.items()
    assert f"= {name}(x)" in f.code and "ld0 = x0[i]" in source and "ld0 * ld0" in source


def test_python_control_flow_on_values_raises_a_trace_error_pointing_to_cond():
    @lg.jit
    def f(x):
        if x.sum() > 0:   # value-dependent branch
            return x
        return -x

    with pytest.raises(lg.TraceError) as err:
        f(lg.ones(3))
    msg = str(err.value)
    assert "lg.cond" in msg and "if x.sum() > 0:   # value-dependent branch" in msg


def test_cond_and_while_loop_inside_jit():
    @lg.jit
    def f(x):
        y = lg.cond(x.sum() > 0, lambda v: v * 2, lambda v: -v, x)
        return lg.while_loop(lambda v: v.sum() < 50, lambda v: v * 3, y)

    np.testing.assert_allclose(f(lg.tensor([1.0, 2.0])).numpy(), [18.0, 36.0])
    np.testing.assert_allclose(f(lg.tensor([-1.0, -2.0])).numpy(), [27.0, 54.0])
    assert f.cache_info.misses == 1


def test_a_failed_trace_leaves_gradients_and_tensors_untouched():
    w = lg.ones(2, requires_grad=True)
    w.grad = lg.tensor([5.0, 5.0])
    buf = lg.zeros(2)

    @lg.jit
    def f(x):
        loss = (x * w).sum()
        loss.backward()
        with lg.no_grad():
            buf.copy_(w.grad)
        raise RuntimeError("user bug after backward")

    with pytest.raises(RuntimeError, match="user bug"):
        f(lg.ones(2))
    assert isinstance(w.grad, lg.Tensor) and w.grad.tolist() == [5.0, 5.0]
    assert buf.tolist() == [0.0, 0.0]
    assert lg.Tensor.grad is not None and not isinstance(w.grad, lg.Symbol)
    assert context.tracer is None and not context.hooks


def test_reading_values_inside_a_trace_is_refused():
    @lg.jit
    def f(x):
        return x.sum().item()

    with pytest.raises(lg.TraceError, match="return it from the function"):
        f(lg.ones(2))


def test_outputs_keep_their_structure():
    w = lg.ones(2)

    @lg.jit
    def f(x):
        return {"double": x * 2, "pair": (x.sum(), None), "count": 3, "w": w}

    out = f(lg.tensor([1.0, 2.0]))
    np.testing.assert_allclose(out["double"].numpy(), [2.0, 4.0])
    assert out["pair"][0].item() == 3.0 and out["pair"][1] is None and out["count"] == 3
    assert out["w"] is w   # a captured tensor comes back as itself


def test_nested_jit_functions_are_traced_through():
    @lg.jit
    def inner(x):
        return x * 3

    @lg.jit
    def outer(x):
        return inner(x) + 1

    assert outer(lg.tensor(2.0)).item() == 7.0
    assert inner.cache_info.misses == 0


# ---------------------------------------------------------------- state: captured tensors and in-place updates

def test_captured_tensors_are_variables_that_alias_the_live_tensors():
    w = lg.tensor([1.0, 2.0])

    @lg.jit
    def f(x):
        return x * w

    np.testing.assert_allclose(f(lg.ones(2)).numpy(), [1.0, 2.0])
    w += 10                                   # changed by eager code ...
    np.testing.assert_allclose(f(lg.ones(2)).numpy(), [11.0, 12.0])   # ... seen by the compiled code
    (var,) = f.graph.variables
    assert var.tensor is w


def test_in_place_updates_become_assigns_in_order():
    counter = lg.zeros(())
    buf = lg.zeros(3)

    @lg.jit
    def f(x):
        nonlocal counter, buf
        counter += 1   # Tensor.__iadd__ changes the tensor in place and returns it
        buf *= 0.5
        buf += x
        buf[0] = counter * 100
        return buf * 1

    f(lg.ones(3))
    out = f(lg.ones(3))
    assert counter.item() == 2.0
    np.testing.assert_allclose(buf.numpy(), [200.0, 1.5, 1.5])
    np.testing.assert_allclose(out.numpy(), buf.numpy())
    assert f.cache_info.misses == 1
    assert {a.target.tensor is buf for a in f.graph.assigns} == {True, False}


def test_index_assignment_with_repeated_indices_agrees_with_eager():
    """``t[idx] = v`` is the setitem op in both worlds: where an index repeats, the last write
    wins, as NumPy does (the tracer used to add the values up here)."""
    buf, eager = lg.zeros(3), lg.zeros(3)

    @lg.jit
    def f():
        buf[[0, 0]] = lg.tensor([1.0, 2.0])
        return buf * 1

    eager[[0, 0]] = lg.tensor([1.0, 2.0])
    np.testing.assert_array_equal(f().numpy(), [2.0, 0.0, 0.0])
    np.testing.assert_array_equal(buf.numpy(), eager.numpy())
    assert [n.op_name for n in f.graph.nodes if n.kind == "op"][0] == "setitem"


def test_index_assignment_with_a_traced_index_and_value():
    table = lg.zeros(4, 2)

    @lg.jit
    def write(rows, values):
        table[rows] = values
        table[rows[0], 1] = -1.0

    write(lg.tensor([3, 1, 3]), lg.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    write(lg.tensor([0]), lg.tensor([[5.0, 5.0]]))
    want = np.zeros((4, 2), np.float32)
    want[[3, 1, 3]] = [[1, 1], [2, 2], [3, 3]]
    want[3, 1] = -1
    want[0] = 5
    want[0, 1] = -1
    np.testing.assert_array_equal(table.numpy(), want)
    assert write.cache_info.misses == 2   # two index lengths: two signatures


def test_index_assignment_into_a_jit_argument_is_refused():
    @lg.jit
    def f(x):
        x[0] = 1.0
        return x

    with pytest.raises(lg.TraceError, match="argument of a jitted function"):
        f(lg.zeros(2))


def test_fill_and_copy_inside_a_trace():
    a, b = lg.ones(2), lg.tensor([5.0, 6.0])

    @lg.jit
    def f(x):
        a.fill_(7.0)
        b.copy_(x * 2)
        return a + b

    np.testing.assert_allclose(f(lg.tensor([1.0, 2.0])).numpy(), [9.0, 11.0])
    np.testing.assert_allclose(a.numpy(), [7.0, 7.0])
    np.testing.assert_allclose(b.numpy(), [2.0, 4.0])


def test_tensors_made_inside_the_function_start_fresh_on_every_call():
    @lg.jit
    def f(x):
        acc = lg.zeros(2)
        acc += x
        acc += x
        return acc * 1

    for _ in range(3):
        np.testing.assert_allclose(f(lg.tensor([1.0, 2.0])).numpy(), [2.0, 4.0])
    assert f.cache_info.misses == 1


def test_state_created_by_the_first_call_is_picked_up_by_a_retrace():
    state = {}

    @lg.jit
    def f(x):
        if "total" not in state:           # Python state: runs only while tracing
            state["total"] = lg.zeros(2)
        state["total"] += x
        return state["total"] * 1

    f(lg.ones(2))
    f(lg.ones(2))
    out = f(lg.ones(2))
    np.testing.assert_allclose(out.numpy(), [3.0, 3.0])      # as eager: the total keeps growing
    assert f.cache_info.misses == 2
    assert "still alive" in f.cache_info.traces[1]


def test_momentum_buffers_made_lazily_inside_the_step_match_eager():
    """PyTorch's SGD makes its momentum buffer on the first step; a traced step must too."""
    def make():
        lg.manual_seed(4)
        return lg.randn(3, 2, requires_grad=True), {}

    def sgd_step(w, state, x):
        loss = ((x @ w).tanh() ** 2).sum()
        w.grad = None
        loss.backward()
        with lg.no_grad():
            if "buf" not in state:
                state["buf"] = lg.zeros_like(w)
            buf = state["buf"]
            buf *= 0.9
            buf += w.grad
            w -= 0.1 * buf
        return loss

    xs = [lg.randn(4, 3) for _ in range(6)]
    w_eager, s_eager = make()
    w_jit, s_jit = make()
    step = lg.jit(lambda x: sgd_step(w_jit, s_jit, x))
    for x in xs:
        sgd_step(w_eager, s_eager, x)
        step(x)
    np.testing.assert_allclose(w_jit.numpy(), w_eager.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s_jit["buf"].numpy(), s_eager["buf"].numpy(), rtol=1e-5, atol=1e-6)
    assert step.cache_info.misses == 2 and step.cache_info.hits == 4
    assert any(v.tensor is s_jit["buf"] for v in step.graph.variables)


# ---------------------------------------------------------------- training steps: jit == eager

def _mlp_and_data(momentum):
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = lg.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 4, 8)) for _ in range(10)]
    return model, opt, batches


def _train(step, batches):
    return [step(lg.tensor(x), lg.tensor(t)) for x, t in batches]


def _training_step(model, opt):
    """The eager training step a student writes; the same function is jitted below."""
    def step(x, t):
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["sgd", "sgd-momentum"])
def test_ten_jitted_training_steps_equal_ten_eager_steps(momentum):
    eager_model, eager_opt, batches = _mlp_and_data(momentum)
    jit_model, jit_opt, _ = _mlp_and_data(momentum)
    eager_step = _training_step(eager_model, eager_opt)
    jit_step = lg.jit(_training_step(jit_model, jit_opt))

    params = list(jit_model.parameters())
    eager_losses = [l.item() for l in _train(eager_step, batches)]
    jit_losses = [l.item() for l in _train(jit_step, batches)]
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-5)
    assert all(a is b for a, b in zip(jit_model.parameters(), params))   # the same tensors, updated
    for (name, e), j in zip(eager_model.named_parameters(), jit_model.parameters()):
        np.testing.assert_allclose(j.numpy(), e.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(j.grad.numpy(), e.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=f"{name}.grad")
        if momentum:
            np.testing.assert_allclose(jit_opt.state[j]["momentum_buffer"].numpy(),
                                       eager_opt.state[e]["momentum_buffer"].numpy(), rtol=1e-5, atol=1e-6)
    assert jit_step.cache_info.misses == 1 and jit_step.cache_info.hits == 9
    assert len(jit_step.graph.assigns) >= 4


def test_a_jitted_step_updates_the_model_eager_code_sees():
    model, opt, batches = _mlp_and_data(0.9)
    x, t = lg.tensor(batches[0][0]), lg.tensor(batches[0][1])
    step = lg.jit(_training_step(model, opt))
    before = F.cross_entropy(model(x), t).item()
    for _ in range(20):
        step(x, t)
    after = F.cross_entropy(model(x), t).item()   # eager forward on the same model
    assert after < before * 0.5


def test_gradients_accumulate_like_eager_when_not_zeroed():
    def build():
        lg.manual_seed(1)
        return nn.Linear(3, 2)

    eager_layer, jit_layer = build(), build()
    x = lg.randn(4, 3)

    @lg.jit
    def accumulate(x):
        loss = (jit_layer(x) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        (eager_layer(x) ** 2).mean().backward()
        accumulate(x)
    np.testing.assert_allclose(jit_layer.weight.grad.numpy(), eager_layer.weight.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(jit_layer.bias.grad.numpy(), eager_layer.bias.grad.numpy(), rtol=1e-5)
    # call 1 found .grad None (store g); call 2 found a gradient (add g to it): a guard
    assert jit_step_reasons(accumulate) == ["first call", "jit_layer.weight.grad was None when traced, now a tensor"]
    assert accumulate.cache_info.hits == 1


def jit_step_reasons(fn):
    return fn.cache_info.traces


def test_each_parameter_gets_its_own_writable_gradient():
    a, b = lg.ones(3, requires_grad=True), lg.ones(3, requires_grad=True)

    @lg.jit
    def f():
        loss = (a + b).sum()   # both gradients are the same broadcast of ones
        loss.backward()
        return loss

    f()
    assert a.grad.tolist() == b.grad.tolist() == [1.0, 1.0, 1.0]
    a.grad.zero_()             # in place, as optimizers and gradient clipping do
    assert a.grad.tolist() == [0.0, 0.0, 0.0] and b.grad.tolist() == [1.0, 1.0, 1.0]


def test_zero_grad_without_set_to_none_inside_jit():
    model, opt, batches = _mlp_and_data(0.0)
    ref_model, ref_opt, _ = _mlp_and_data(0.0)

    @lg.jit
    def step(x, t):
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss

    for x, t in batches[:4]:
        loss = F.cross_entropy(ref_model(lg.tensor(x)), lg.tensor(t))
        ref_opt.zero_grad(set_to_none=False)
        loss.backward()
        ref_opt.step()
        step(lg.tensor(x), lg.tensor(t))
    for a, b in zip(model.parameters(), ref_model.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_gradients_for_arguments_that_require_grad():
    @lg.jit
    def f(x):
        y = (x * x * x).sum()
        y.backward()
        return y

    x = lg.tensor([1.0, 2.0], requires_grad=True)
    f(x)
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
    f(x)   # eager semantics: gradients add up in .grad
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_jitted_step_runs_on_each_device(device):
    lg.manual_seed(0)
    w = lg.randn(3, 2, device=device, requires_grad=True)

    @lg.jit
    def step(x):
        nonlocal w
        loss = ((x @ w).tanh() ** 2).sum()
        w.grad = None
        loss.backward()
        with lg.no_grad():
            w -= 0.1 * w.grad
        return loss

    x = lg.randn(5, 3, device=device)
    w_ref = lg.tensor(w.numpy(), device=device, requires_grad=True)
    loss = ((x @ w_ref).tanh() ** 2).sum()
    loss.backward()
    expected = w_ref.numpy() - 0.1 * w_ref.grad.numpy()
    out = step(x)
    assert out.device == device and w.device == device
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_retrace_reason_names_the_change_from_the_closest_cached_trace():
    @lg.jit
    def f(x, s):
        return x * s

    f(lg.ones(3), 2.0)
    f(lg.ones(3, dtype="float64"), 2.0)
    f(lg.ones(3), 3.0)     # closest to the first trace, not to the latest one
    assert f.cache_info.traces[-1] == "arg 1 (s) value 2.0 -> 3.0"


def test_ten_jitted_adam_steps_equal_ten_eager_steps():
    # Adam's bias correction depends on the step count: it must keep counting inside the graph
    def setup():
        lg.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
        return model, lg.optim.Adam(model.parameters(), lr=0.01)

    (eager_model, eager_opt), (jit_model, jit_opt) = setup(), setup()
    _, _, batches = _mlp_and_data(0.0)
    jit_step = lg.jit(_training_step(jit_model, jit_opt))
    eager_losses = [l.item() for l in _train(_training_step(eager_model, eager_opt), batches)]
    jit_losses = [l.item() for l in _train(jit_step, batches)]
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-5)
    for (name, e), j in zip(eager_model.named_parameters(), jit_model.parameters()):
        np.testing.assert_allclose(j.numpy(), e.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
        assert jit_opt.state[j]["step"].item() == eager_opt.state[e]["step"].item() == len(batches)
