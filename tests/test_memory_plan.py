"""Memory planning (graph/passes/memory.py): liveness, buffer reuse, in place, and above all
that nothing anyone holds is overwritten: outputs of earlier calls, gradients, feeds and
variables."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.graph import passes as P
from labgrad.graph.passes.memory import liveness


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABGRAD_KERNEL_CACHE", str(tmp_path_factory.getbasetemp() / "kernels"))


def mlp(batch=32, hidden=128, updates=False, passes=None):
    rng = np.random.default_rng(0)
    x = lg.placeholder((batch, 64), "float32", name="x")
    t = lg.placeholder((batch,), "int64", name="t")
    vs = [lg.Variable(lg.tensor(rng.standard_normal(s).astype(np.float32) * 0.1), name=n)
          for s, n in (((64, hidden), "w1"), ((hidden,), "b1"), ((hidden, 10), "w2"), ((10,), "b2"))]
    loss = F.cross_entropy(F.relu(x @ vs[0] + vs[1]) @ vs[2] + vs[3], t)
    grads = lg.gradients(loss, vs)
    if updates:
        return lg.compile(loss, inputs=[x, t], updates=[lg.assign(v, v - 0.1 * g) for v, g in zip(vs, grads)],
                          passes=passes), vs
    return lg.compile([loss, *grads], inputs=[x, t], passes=passes), vs


def batch(seed, n=32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 64)).astype(np.float32), rng.integers(0, 10, n)


def test_the_plan_reuses_buffers_and_reports_peaks():
    f, _ = mlp()
    plan = f.graph.memory_plan
    report = f.reports[-1]
    assert report.name == "memory" and report.peak_memory_after == plan.peak_planned
    assert report.peak_memory_before == plan.peak_naive and report.kernels_after is not None
    assert len(plan.buffers) < len(plan.out)           # buffers are shared
    assert plan.inplace                                 # relu_grad writes over the matmul it reads
    assert "out=buf" in f.code
    assert plan.peak_planned < plan.peak_naive


@pytest.mark.parametrize("batch_size,hidden", [(32, 128), (128, 128), (256, 256)])
def test_planned_peak_of_an_mlp_forward_backward_is_at_most_0_7_of_unplanned(batch_size, hidden):
    f, _ = mlp(batch_size, hidden)
    plan = f.graph.memory_plan
    assert plan.peak_planned <= 0.7 * plan.peak_naive
    assert plan.peak_planned <= plan.peak_freed       # never worse than freeing alone


@pytest.mark.parametrize("batch_size,hidden", [(32, 128), (256, 256)])
def test_the_planned_peak_is_what_running_the_code_measures(batch_size, hidden):
    """The plan's arithmetic, checked against the profiler's memory timeline of one run: the
    fresh arrays alive at the worst moment, plus the buffers allocated once."""
    f, _ = mlp(batch_size, hidden)
    plan = f.graph.memory_plan
    pool = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype, _ in plan.buffers)
    with lg.profiler.profile() as prof:
        f(*batch(0, batch_size))
    assert prof.memory.peak_bytes + pool == plan.peak_planned


def test_a_buffer_dead_at_the_peak_is_given_back():
    # batch 32: the first layer's activation (16 kB) dies before the weight gradients appear
    # at the end of backward; as a buffer it would sit there for nothing, so it is fresh
    f, _ = mlp()
    plan = f.graph.memory_plan
    first = next(n for n in f.graph.nodes if n.op_name == "linear")
    assert first.id not in plan.out and f"v{first.id} = xp.matmul(x, " in f.code
    assert len(plan.buffers) == 1


def test_del_lines_follow_the_plans_liveness():
    f, _ = mlp()
    last = f.graph.memory_plan.last_use
    current = None      # the node whose statement precedes each line
    for line in f.code.splitlines()[1:]:
        text = line.strip()
        if text.startswith("v") and " = " in text:
            current = int(text.split(" = ")[0][1:])
        elif text.startswith("del "):
            for name in text[4:].split(", "):
                n = int(name[1:])
                assert last.get(n, n) == current, (name, current, f.code)


def test_fma_writes_into_its_buffer_and_adds_in_place():
    a, b, c = (lg.placeholder((1000,), name=k) for k in "abc")
    f = lg.compile((a * b + c) * 2 + 1, passes=["patterns", "dce", "memory"])
    assert "v3 = xp.multiply(a, b, out=buf0)" in f.code and "xp.add(v3, c, out=v3)" in f.code
    rng = np.random.default_rng(0)
    A, B, C = (rng.standard_normal(1000).astype(np.float32) for _ in range(3))
    np.testing.assert_array_equal(f(A, B, C).numpy(), (A * B + C) * np.float32(2) + np.float32(1))


def test_outputs_of_an_earlier_call_are_never_overwritten():
    f, _ = mlp()
    first = f(*batch(1))
    kept = [o.numpy().copy() for o in first]
    f(*batch(2))
    f(*batch(3))
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a.numpy(), b)


def test_results_match_the_unplanned_graph_on_every_call():
    f, _ = mlp()
    g, _ = mlp(passes=())
    for seed in range(3):
        for a, b in zip(f(*batch(seed)), g(*batch(seed))):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_planned_and_unplanned_training_agree_and_leave_feeds_alone():
    losses = []
    for passes in ((), None):
        f, vs = mlp(updates=True, passes=passes)
        run = []
        for seed in range(4):
            xb, tb = batch(seed)
            xc = xb.copy()
            run.append(f(xb, tb).item())
            np.testing.assert_array_equal(xb, xc)           # a feed is never written
        losses.append((run, [v.value.numpy().copy() for v in vs]))
    np.testing.assert_allclose(losses[0][0], losses[1][0], rtol=1e-5)
    for a, b in zip(losses[0][1], losses[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradients_stored_by_a_jitted_step_are_not_overwritten_by_the_next_step():
    model = lg.nn.Sequential(lg.nn.Linear(64, 32), lg.nn.ReLU(), lg.nn.Linear(32, 10))
    opt = lg.optim.SGD(model.parameters(), lr=0.1)

    @lg.jit
    def step(x, t):
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    x, t = batch(0)
    step(lg.tensor(x), lg.tensor(t))
    grads = [p.grad for p in model.parameters()]
    copies = [g.numpy().copy() for g in grads]
    x, t = batch(1)
    step(lg.tensor(x), lg.tensor(t))
    for g, c in zip(grads, copies):
        np.testing.assert_array_equal(g.numpy(), c)


def test_a_view_of_a_planned_value_that_is_returned_keeps_it_out_of_the_buffers():
    a = lg.placeholder((4, 6), name="a")
    h = (a @ lg.constant(np.ones((6, 6), np.float32))) * 2.0    # matmul and mul: plannable
    y = h.transpose(1, 0)                                        # a view of h is returned
    f = lg.compile([y, (h + 1).sum()])
    x = np.ones((4, 6), np.float32)
    first = f(x)[0].numpy().copy()
    r1 = f(x)[0]
    f(x * 3)
    np.testing.assert_array_equal(r1.numpy(), first)


def test_liveness_says_where_each_value_is_read_last():
    a = lg.placeholder((3,), name="a")
    b = a * 2
    c = b + 1
    g = lg.compile([c * c], passes=()).graph
    last = liveness(g)
    assert last[g.node_of(b).id] == g.node_of(c).id
    assert last[g.nodes[-1].id] == len(g.nodes)     # the output lives to the end


def test_in_place_never_writes_a_feed_or_a_variable():
    w = lg.Variable(lg.tensor(np.ones(5, np.float32)), name="w")
    a = lg.placeholder((5,), name="a")
    y = ((a * 2).exp() + w) * 3
    f = lg.compile([y.sum()])
    x = np.arange(5, dtype=np.float32)
    f(x)
    np.testing.assert_array_equal(x, np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(w.value.numpy(), np.ones(5, np.float32))


def test_memory_is_the_last_pass_of_the_default_pipeline():
    assert P.DEFAULT_PIPELINE[-1] == "memory"
    assert P.DEFAULT_PIPELINE.index("fuse") > P.DEFAULT_PIPELINE.index("cse")


def test_an_output_recycles_the_last_result_only_when_nobody_holds_it():
    a = lg.placeholder((1000,), name="a")
    f = lg.compile((a * 2 + 1) * a)
    assert f.graph.memory_plan.recycle and "out=reuse(" in f.code
    x = np.arange(1000, dtype=np.float32)
    first = f(x)
    address = first.numpy().__array_interface__["data"][0]
    del first
    second = f(x + 1)                     # first was dropped: its array is written again
    assert second.numpy().__array_interface__["data"][0] == address
    third = f(x + 2)                      # second is held: a new array
    assert third.numpy().__array_interface__["data"][0] != address
    np.testing.assert_array_equal(second.numpy(), ((x + 1) * 2 + 1) * (x + 1))
    np.testing.assert_array_equal(third.numpy(), ((x + 2) * 2 + 1) * (x + 2))
    view = third.numpy()[::2]             # a view keeps it alive too
    del third
    fourth = f(x)
    np.testing.assert_array_equal(view, (((x + 2) * 2 + 1) * (x + 2))[::2])
    np.testing.assert_array_equal(fourth.numpy(), (x * 2 + 1) * x)
