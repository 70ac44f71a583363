"""Eager, compiled (``lg.compile``) and traced (``lg.jit``) execution must agree.

1. Every op in the registry, on every device, with the sample inputs of the op tests
   (``FORWARD`` in test_ops_forward.py for values, ``CASES`` in test_ops_grad.py for
   gradients): the three interpreters give the same values and the same gradients, and the
   compiled gradients also match finite differences in float64. ``lg.compile`` and ``lg.jit``
   run their default optimization pipeline (``labgrad.graph.passes``), so this also checks that
   the passes preserve every op's results.
2. Random programs from Hypothesis (DAGs of elementwise, reduction and matmul ops over a few
   inputs): eager, compiled and jit agree on the value and on every input's gradient.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import labgrad as lg
import labgrad.functional as F
from labgrad.ops import REGISTRY
from test_ops_forward import FORWARD
from test_graph_autodiff import numeric_grad
from test_ops_grad import CASES


def _split(inputs, device):
    """Floating arrays become graph inputs; integer and boolean arrays (indices, masks,
    targets) stay constants, as they would be in a model, unless there is nothing else to feed."""
    fed, make = [], []
    any_float = any(isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in inputs)
    for x in inputs:
        if isinstance(x, np.ndarray) and (x.dtype.kind == "f" or not any_float):
            make.append(("fed", len(fed)))
            fed.append(x)
        else:
            make.append(("const", lg.tensor(x, dtype=x.dtype, device=device) if isinstance(x, np.ndarray) else x))
    return fed, make


def _assemble(make, fed_values):
    return [fed_values[v] if kind == "fed" else v for kind, v in make]


def _index(device, values):
    return lg.tensor(values, device=device).data


# Cases whose function reaches into a Tensor's private backend to make an index array; here is
# the same op call written so that it also works on graph symbols.
GRAPH_FRIENDLY = {
    "getitem_grad": lambda device: lambda g, r: lg.ops.get_op("getitem_grad")(
        g, r, index=(_index(device, [0, 2, 0]),)),
}


def _fn(case, device):
    make = GRAPH_FRIENDLY.get(case.id)
    if make is None:
        return case.fn
    inner = make(device)
    return (lambda g, r: inner(g, r) ** 2) if case in CASES else inner


def _graph_ops(graph):
    names, stack = set(), [graph]
    while stack:
        g = stack.pop()
        for n in g.nodes:
            names.add(n.op_name)
            stack.extend((n.subgraphs or {}).values())
    return names


# ---------------------------------------------------------------- 1. every op

def test_every_op_in_the_registry_has_equivalence_cases():
    for name, op in REGISTRY.items():
        assert any(c.op == name for c in FORWARD), f"op {name} has no value case (FORWARD in test_ops_forward.py)"
        if op.differentiable:
            assert any(c.op == name for c in CASES), f"op {name} has no gradient case (CASES in test_ops_grad.py)"


@pytest.mark.parametrize("case", FORWARD, ids=lambda c: c.id)
def test_values_agree_eager_compiled_jit(case, device):
    fed, make = _split(case.inputs, device)
    fn = _fn(case, device)
    tensors = [lg.tensor(x, dtype=x.dtype, device=device) for x in fed]
    eager = fn(*_assemble(make, tensors))

    syms = [lg.placeholder(x.shape, x.dtype, name=f"x{i}", device=device) for i, x in enumerate(fed)]
    out = fn(*_assemble(make, syms))
    f = lg.compile(out)
    if REGISTRY[case.op].writes_input is None:   # a write into a graph value rebinds the symbol
        # (the graph as built: the default pipeline, which f runs, may fold or fuse the op away)
        assert case.op in _graph_ops(f.built_graph), f"{case.id}: the compiled graph does not use {case.op}"
    compiled = f(*tensors)

    traced = lg.jit(lambda *xs: fn(*_assemble(make, xs)))(*tensors)
    for name, got in (("compiled", compiled), ("jit", traced)):
        assert got.device == eager.device, name
        assert got.dtype == eager.dtype and tuple(got.shape) == tuple(eager.shape), f"{case.id} {name}"
        np.testing.assert_allclose(got.numpy(), eager.numpy(), rtol=1e-6, atol=1e-7, err_msg=f"{case.id} {name}")


def _weights(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradients_agree_eager_compiled_jit(case, device):
    fed, make = _split([x.astype(np.float64) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x
                        for x in case.inputs], device)
    fn = _fn(case, device)
    tensors = [lg.tensor(x, dtype="float64", device=device, requires_grad=True) for x in fed]
    y = fn(*_assemble(make, tensors))
    w = lg.tensor(_weights(tuple(y.shape), 1), dtype=y.dtype, device=device)
    eager = lg.grad((y * w).sum(), tensors, allow_unused=True)

    syms = [lg.placeholder(x.shape, "float64", name=f"x{i}", device=device) for i, x in enumerate(fed)]
    loss = (fn(*_assemble(make, syms)) * w).sum()
    grads = lg.gradients(loss, syms, allow_unused=True)
    used = [i for i, g in enumerate(grads) if g is not None]
    assert [i for i, g in enumerate(eager) if g is not None] == used, case.id
    compiled = lg.compile([grads[i] for i in used])(*tensors)

    @lg.jit
    def traced(*xs):
        loss = (fn(*_assemble(make, xs)) * w).sum()
        loss.backward()
        return loss

    fresh = [lg.tensor(x, dtype="float64", device=device, requires_grad=True) for x in fed]
    traced(*fresh)
    value = lg.compile(loss)
    eps, rtol, atol = case.check.get("eps", 1e-6), case.check.get("rtol", 1e-4), case.check.get("atol", 1e-5)
    for k, i in enumerate(used):
        e = eager[i].numpy()
        np.testing.assert_allclose(compiled[k].numpy(), e, rtol=1e-9, atol=1e-12, err_msg=f"{case.id} compiled")
        np.testing.assert_allclose(fresh[i].grad.numpy(), e, rtol=1e-9, atol=1e-12, err_msg=f"{case.id} jit")
        numeric = numeric_grad(lambda *a: value(*[lg.tensor(v, dtype="float64", device=device) for v in a]).item(),
                             fed, i, eps)
        np.testing.assert_allclose(compiled[k].numpy(), numeric, rtol=rtol, atol=atol,
                                   err_msg=f"{case.id}: compiled gradient vs finite differences")


# ---------------------------------------------------------------- 2. random programs

UNARY = {
    "tanh": lambda a: a.tanh(), "sin": lambda a: a.sin(), "sigmoid": lambda a: a.sigmoid(),
    "relu": lambda a: F.relu(a), "square": lambda a: a * a, "neg": lambda a: -a,
    "exp_tanh": lambda a: a.tanh().exp(), "softplus_ish": lambda a: (1 + a * a).log(),
}
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "maximum": lambda a, b: lg.maximum(a, b), "safe_div": lambda a, b: a / (1 + b * b),
}
REDUCE = {
    "sum0": lambda a: a.sum(axis=0, keepdims=True), "mean1": lambda a: a.mean(axis=1, keepdims=True),
    "max1": lambda a: a.max(axis=1, keepdims=True), "logsumexp0": lambda a: a.logsumexp(axis=0, keepdims=True),
}
INPUT_SHAPES = [(3, 4), (3, 4), (1, 4), (4, 4)]   # the last one is the matmul weight
N_DATA = 3                                          # values an instruction may read start with these


@st.composite
def programs(draw):
    """A list of instructions; each reads earlier values (inputs first) and appends one."""
    n_values = N_DATA
    program = []
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "matmul"]))
        if kind == "unary":
            program.append((kind, draw(st.sampled_from(sorted(UNARY))), (draw(st.integers(0, n_values - 1)),)))
        elif kind == "binary":
            program.append((kind, draw(st.sampled_from(sorted(BINARY))),
                            (draw(st.integers(0, n_values - 1)), draw(st.integers(0, n_values - 1)))))
        elif kind == "reduce":
            program.append((kind, draw(st.sampled_from(sorted(REDUCE))), (draw(st.integers(0, n_values - 1)),)))
        else:
            program.append((kind, "matmul", (draw(st.integers(0, n_values - 1)),)))
        n_values += 1
    seed = draw(st.integers(0, 2**16))
    return program, seed


def run_program(program, inputs):
    """Interpret ``program`` on Tensors or Symbols alike; returns a scalar."""
    values = list(inputs[:N_DATA])
    weight = inputs[N_DATA]
    for kind, name, args in program:
        xs = [values[i] for i in args]
        if kind == "unary":
            values.append(UNARY[name](xs[0]))
        elif kind == "binary":
            values.append(BINARY[name](*xs))
        elif kind == "reduce":
            values.append(REDUCE[name](xs[0]))
        else:
            a = xs[0] if tuple(xs[0].shape)[1] == 4 else xs[0].broadcast_to(xs[0].shape[0], 4)
            values.append(a @ weight)
    out = values[-1].sum()
    for v in values[N_DATA:-1]:
        out = out + 0.1 * v.mean()
    return out


@given(programs())
def test_random_programs_agree_eager_compiled_jit(prog):
    program, seed = prog
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in INPUT_SHAPES]

    xs = [lg.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    eager_value = run_program(program, xs)
    eager_grads = lg.grad(eager_value, xs, allow_unused=True)

    syms = [lg.placeholder(a.shape, "float64", name=f"x{i}") for i, a in enumerate(arrays)]
    out = run_program(program, syms)
    grads = lg.gradients(out, syms, allow_unused=True)
    f = lg.compile([out] + [g for g in grads if g is not None], inputs=syms)
    static_value, *static_grads = f(*arrays)

    @lg.jit
    def step(*xs):
        loss = run_program(program, xs)
        loss.backward()
        return loss

    traced_inputs = [lg.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    jit_value = step(*traced_inputs)

    np.testing.assert_allclose(static_value.item(), eager_value.item(), rtol=1e-10)
    np.testing.assert_allclose(jit_value.item(), eager_value.item(), rtol=1e-10)
    static_iter = iter(static_grads)
    for i, (e, g, t) in enumerate(zip(eager_grads, grads, traced_inputs)):
        if e is None:
            assert g is None and t.grad is None, f"input {i}: unused in eager, used in a graph"
            continue
        np.testing.assert_allclose(next(static_iter).numpy(), e.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(t.grad.numpy(), e.numpy(), rtol=1e-9, atol=1e-12)
