"""The elementwise-fusion pass (graph/passes/fuse.py): which groups it makes, what it reports,
the ``fused`` op, and the code and kernels of the executable. The reference is always the graph
compiled with no passes (or eager NumPy), never the code under test."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.graph import passes as P
from labgrad.ops.fused_kernel import fused

FUSE = ["dce", "cse", "fuse", "dce"]


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABGRAD_KERNEL_CACHE", str(tmp_path_factory.getbasetemp() / "kernels"))


def fused_nodes(graph):
    return [n for n in graph.nodes if n.kind == "fused"]


def same(f, g, *feeds, rtol=1e-6):
    want = g(*feeds)
    got = f(*feeds)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol, atol=1e-6)


def feeds(*shapes, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def test_the_8_op_chain_is_one_kernel():
    a, b, c, d = (lg.placeholder((100,), name=n) for n in "abcd")
    y = ((a * b + c) * d - a) * 0.5 + b * c - d
    f = lg.compile(y, passes=FUSE)
    (node,) = fused_nodes(f.graph)
    report = f.reports[2]
    assert report.kernels_before == 8 and report.kernels_after == 1
    ((group, after),) = report.fused
    assert len(group) == 8 and after == node.id
    assert len(f.graph.nodes) == 5          # 4 inputs and the kernel
    same(f, lg.compile(y, passes=()), *feeds(*[(100,)] * 4))
    # the code calls the kernel once; its source is on the executable
    name = node.attrs["kernel"].name
    assert f"v4 = {name}(a, b, c, d)" in f.code
    assert "@njit" in f.kernels[name] or "np." in f.kernels[name]
    assert "fused %0, %1, %2, %3" in str(f.graph) and name in str(f.graph)


def test_a_value_used_outside_the_group_is_a_second_output():
    a, b = lg.placeholder((3, 4), name="a"), lg.placeholder((4,), name="b")
    h = a * b + 1.0           # broadcasting inside the group
    y = h.exp() - a
    f = lg.compile([y, h @ lg.constant(np.ones((4, 2), np.float32))], passes=FUSE)
    (node,) = fused_nodes(f.graph)
    assert isinstance(node.aval, tuple) and len(node.aval) == 2
    assert [n.kind for n in f.graph.nodes].count("get") == 2
    same(f, lg.compile([y, h @ lg.constant(np.ones((4, 2), np.float32))], passes=()), *feeds((3, 4), (4,)))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_an_elementwise_producer_and_its_reduction_are_one_kernel(reduce, axis):
    a, b = lg.placeholder((5, 6), name="a"), lg.placeholder((6,), name="b")
    y = getattr((a * b).tanh() + 0.5, reduce)(axis=axis)
    f = lg.compile(y, passes=FUSE)
    (node,) = fused_nodes(f.graph)
    assert node.attrs["kernel"].kernel.reduce.kind == reduce
    assert P.kernel_count(f.graph) == 1
    same(f, lg.compile(y, passes=()), *feeds((5, 6), (6,)), rtol=1e-5)


def test_a_bias_gradient_sum_to_is_fused_with_its_producer():
    x = lg.placeholder((8, 3), "float64", name="x")
    b = lg.placeholder((3,), "float64", name="b")
    (gb,) = lg.gradients(((x + b).tanh() * x).sum(), [b])
    f = lg.compile(gb, inputs=[x, b])
    assert any(n.kind == "fused" and n.attrs["kernel"].kernel.reduce is not None for n in f.graph.nodes)
    same(f, lg.compile(gb, inputs=[x, b], passes=()), *feeds((8, 3), (3,), dtype=np.float64), rtol=1e-10)


def test_a_reduction_whose_input_is_needed_elsewhere_is_not_fused_and_says_why():
    a = lg.placeholder((4, 4), name="a")
    h = a * 2 + 1
    f = lg.compile([h.sum(), h], passes=FUSE)
    why = dict(f.reports[2].not_fused)
    assert any("used elsewhere too" in w for w in why.values())
    same(f, lg.compile([h.sum(), h], passes=()), *feeds((4, 4)))


def test_float16_is_not_fused_and_the_report_says_why():
    a = lg.placeholder((4,), "float16", name="a")
    y = (a * 2 + 1) * a
    f = lg.compile(y, passes=FUSE)
    assert not fused_nodes(f.graph)
    assert any("float16" in why for _, why in f.reports[2].not_fused)
    same(f, lg.compile(y, passes=()), *feeds((4,), dtype=np.float16))


def test_a_group_never_swallows_a_path_that_leaves_and_comes_back():
    a = lg.placeholder((3, 3), name="a")
    p = a * 2
    y = (p @ lg.constant(np.eye(3, dtype=np.float32))) + p    # the add cannot join p's group
    z = y * y + 1
    f = lg.compile(z, passes=FUSE)
    f.graph.verify()
    same(f, lg.compile(z, passes=()), *feeds((3, 3)))


def test_two_groups_never_need_each_other():
    # w1 would join ge's group and read p's group through p.T; w2 would join p's group and
    # read ge's group through ge.T: the two kernels would each have to run first
    x, y = lg.placeholder((3, 3), name="x"), lg.placeholder((3, 3), name="y")
    p, ge = x + 1.0, y > 0
    outs = [lg.where(ge, p.T, 0.0), lg.where(ge.T, 0.0, p)]
    f = lg.compile(outs, passes=FUSE)
    f.graph.verify()
    fuse = next(r for r in f.reports if r.name == "fuse")
    assert any("would make a cycle" in why for _, why in fuse.not_fused)
    same(f, lg.compile(outs, passes=()), *feeds((3, 3), (3, 3)))


def test_a_lone_ufunc_is_left_alone_but_a_lone_multi_pass_op_is_a_kernel():
    a = lg.placeholder((4,), name="a")
    f = lg.compile(a + 1.0, passes=FUSE)
    assert not fused_nodes(f.graph)
    assert "alone" in f.reports[2].not_fused[0][1]
    g = lg.compile(F.sigmoid(a) if hasattr(F, "sigmoid") else a.sigmoid(), passes=FUSE)
    assert len(fused_nodes(g.graph)) == 1


def test_fusion_runs_inside_cond_and_while_bodies():
    x = lg.placeholder((3,), name="x")
    y = lg.cond(x.sum() > 0, lambda v: (v * 2 + 1).exp(), lambda v: v - 1, x)
    f = lg.compile(y)
    node = next(n for n in f.graph.nodes if n.kind == "cond")
    assert fused_nodes(node.subgraphs["true"])
    same(f, lg.compile(y, passes=()), np.array([1.0, 2.0, 3.0], np.float32))
    same(f, lg.compile(y, passes=()), np.array([-1.0, -2.0, -3.0], np.float32))


def test_the_fused_op_is_not_differentiable_and_says_why():
    with pytest.raises(lg.LabgradError, match="after its gradients were built"):
        fused.backward(None, None)


def test_the_mlp_step_fuses_its_updates_and_relu_gradient():
    rng = np.random.default_rng(0)
    x = lg.placeholder((16, 8), name="x")
    t = lg.placeholder((16,), "int64", name="t")
    vs = [lg.Variable(lg.tensor(rng.standard_normal(s).astype(np.float32) * 0.3), name=n)
          for s, n in (((8, 12), "w1"), ((12,), "b1"), ((12, 3), "w2"), ((3,), "b2"))]
    loss = F.cross_entropy(F.relu(x @ vs[0] + vs[1]) @ vs[2] + vs[3], t)
    grads = lg.gradients(loss, vs)
    f = lg.compile(loss, inputs=[x, t], updates=[lg.assign(v, v - 0.1 * g) for v, g in zip(vs, grads)])
    names = [n.attrs["kernel"].kernel.ops for n in fused_nodes(f.graph)]
    assert names.count(["mul", "sub"]) == 4 and ["relu_grad"] in names
    assert sum(n.op_name == "linear" and n.attrs["relu"] for n in f.graph.nodes) == 1   # relu folded in
    # every kernel the code calls has its source on the executable (and the linear layer's
    # bias + relu epilogue is one too, on the CPU with Numba)
    assert {n.attrs["kernel"].name for n in fused_nodes(f.graph)} <= set(f.kernels)
    assert all(name in f.code for name in f.kernels)


def test_every_kernel_the_pass_makes_for_a_training_step_compiles_as_cuda_source():
    """What a GPU would run: the CUDA source of each fused kernel of the MLP step compiles with
    NVRTC (no GPU needed; skipped without the nvrtc wheel)."""
    from labgrad.backends.fusion_cuda import check_source, nvrtc_available, nvrtc_compile

    ok, why = nvrtc_available()
    if not ok:
        pytest.skip(why)
    rng = np.random.default_rng(0)
    x = lg.placeholder((16, 8), name="x")
    t = lg.placeholder((16,), "int64", name="t")
    vs = [lg.Variable(lg.tensor(rng.standard_normal(s).astype(np.float32)), name=n)
          for s, n in (((8, 12), "w1"), ((12,), "b1"), ((12, 3), "w2"), ((3,), "b2"))]
    h = F.relu(x @ vs[0] + vs[1])
    loss = F.cross_entropy(h @ vs[2] + vs[3], t) + (h * h).mean() * 1e-3
    grads = lg.gradients(loss, vs)
    f = lg.compile(loss, inputs=[x, t], updates=[lg.assign(v, v - 0.1 * g) for v, g in zip(vs, grads)])
    kernels = [n.attrs["kernel"].kernel for n in fused_nodes(f.graph)]
    assert kernels
    for k in kernels:
        assert nvrtc_compile(check_source(k), f"{k.name}.cu")
