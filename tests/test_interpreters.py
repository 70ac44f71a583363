"""The interpreters of one op definition, and the context they share (issue 7).

* Array mode is declared, never discovered: every built-in rule gives the same gradients run
  on raw arrays and run on tensors; a rule you write runs on tensors, once per node, unless
  it opts in; nothing is retried after an exception.
* Hooks compose: each installed hook sees every op, forward and backward, nested in install
  order.
* The context's fields are restored by ``setting`` even when the body raises.
"""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
from labgrad.context import Hook, context
from labgrad.ops import REGISTRY, defop
from labgrad.ops.registry import Ctx

from test_ops_grad import CASES


def _grads(case):
    inputs = [lg.tensor(x, dtype=x.dtype, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray)
              else x for x in case.inputs]
    leaves = [x for x in inputs if isinstance(x, lg.Tensor) and x.requires_grad]
    y = case.fn(*inputs)
    y = y if y.size == 1 else (y * lg.tensor(np.linspace(0.5, 1.5, y.size).reshape(y.shape), dtype=y.dtype)).sum()
    y.backward()
    return [None if x.grad is None else x.grad.numpy() for x in leaves]


@pytest.mark.parametrize("case", [c for c in CASES if REGISTRY[c.op].array_backward], ids=lambda c: c.id)
def test_every_builtin_rule_gives_the_same_gradients_on_arrays_and_on_tensors(case):
    on_arrays = _grads(case)
    ops = [op for op in REGISTRY.values() if op.array_backward]
    try:
        for op in ops:
            op.array_backward = False   # every rule now runs on tensors
        on_tensors = _grads(case)
    finally:
        for op in ops:
            op.array_backward = True
    assert len(on_arrays) == len(on_tensors)
    for a, t in zip(on_arrays, on_tensors):
        assert (a is None) == (t is None)
        if a is not None:
            assert a.dtype == t.dtype
            np.testing.assert_array_equal(a, t)


def _user_op(name, calls, array_backward=False):
    @defop("elementwise", expr="({0} * {0})", array_backward=array_backward, name=name)
    class square:
        def forward(xp, a):
            return a * a

        def backward(ctx, g):
            (a,) = ctx.inputs
            calls.append((type(ctx).__name__, type(g).__name__, type(a).__name__))
            return (g * 2 * a,)

    return square


@pytest.fixture
def fresh_op_name(request):
    name = f"test_square_{request.node.name}".replace("[", "_").replace("]", "_").replace("-", "_")
    yield name
    REGISTRY.pop(name, None)


def test_a_user_rule_runs_on_tensors_exactly_once_per_node(fresh_op_name):
    calls = []
    square = _user_op(fresh_op_name, calls)
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (square(x).sum() + square(x * 2).sum()).backward()
    assert calls == [("TapeNode", "Tensor", "Tensor")] * 2     # two nodes, one call each
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 8 * x.numpy())


def test_a_user_rule_that_opts_in_gets_arrays(fresh_op_name):
    calls = []
    square = _user_op(fresh_op_name, calls, array_backward=True)
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    square(x).sum().backward()
    assert calls == [("ArrayCtx", "ndarray", "ndarray")]
    calls.clear()
    (g,) = lg.grad(square(x).sum(), [x], create_graph=True)   # recording: tensors again
    assert calls == [("TapeNode", "Tensor", "Tensor")] and g.requires_grad


def test_a_rule_is_never_retried_after_an_exception(fresh_op_name):
    calls = []

    @defop("elementwise", expr="exp({0})", array_backward=True, name=fresh_op_name)
    class wrong_claim:
        def forward(xp, a):
            return xp.exp(a)

        def backward(ctx, g):   # claims array mode, but uses a tensor method
            calls.append(1)
            return (g * ctx.inputs[0].exp(),)

    x = lg.tensor([0.5], requires_grad=True)
    with pytest.raises(AttributeError, match="exp"):
        wrong_claim(x).sum().backward()
    assert calls == [1] and REGISTRY[fresh_op_name].array_backward is True


def test_every_ctx_follows_the_one_protocol():
    from labgrad.autograd import ArrayCtx
    from labgrad.tape import TapeNode
    from labgrad.graph.autodiff import SymbolicContext
    for cls in (TapeNode, ArrayCtx, SymbolicContext):
        assert issubclass(cls, Ctx)
        for field in ("inputs", "attrs", "output", "needs_input_grad"):
            assert getattr(cls, field) is not getattr(Ctx, field), f"{cls.__name__}.{field}"


class Recorder(Hook):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_op(self, op, inputs, attrs, run, phase):
        self.log.append(f"{self.name}>{op.name}:{phase}")
        out = run()
        self.log.append(f"{self.name}<{op.name}")
        return out


def test_hooks_compose_in_install_order_and_see_forward_and_backward_ops():
    log = []
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    with context.installed(Recorder("outer", log)), context.installed(Recorder("inner", log)):
        y = (x * 3).sum()
        y.backward()
    assert log[:4] == ["outer>mul:forward", "inner>mul:forward", "inner<mul", "outer<mul"]
    assert "outer>sum:backward" in log and "inner>mul:backward" in log
    assert log.index("outer>sum:backward") < log.index("outer>mul:backward")   # outputs first
    assert context.hooks == () and x.grad.tolist() == [3.0, 3.0]


def test_a_hook_sees_the_rules_of_a_recorded_backward_as_backward_ops():
    log = []
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    with context.installed(Recorder("h", log)):
        (g,) = lg.grad(y, [x], create_graph=True)
    assert [e for e in log if e.endswith(":backward")] == ["h>sum:backward", "h>mul:backward"]
    assert "h>add:forward" in log   # x's two paths summed: an op of the recorded graph
    assert g.tolist() == [2.0, 4.0]


def test_setting_restores_the_context_even_when_the_body_raises():
    with pytest.raises(RuntimeError):
        with context.setting(grad_enabled=False, scope="s"):
            assert not lg.is_grad_enabled() and context.scope == "s"
            raise RuntimeError
    assert lg.is_grad_enabled() and context.scope is None
    with pytest.raises(AttributeError, match="no field 'grad_mode'"):
        context.setting(grad_mode=False)


def test_jit_traces_through_the_context_and_leaves_nothing_behind():
    @lg.jit
    def f(x):
        assert context.tracer is not None and len(context.hooks) == 1
        return (x * 2).sum()

    assert f(lg.ones(3)).item() == 6.0
    assert context.tracer is None and context.hooks == ()
