"""Schedules (labgrad/graph/passes/schedule.py): the table and the drawing, the memory-aware
order (a lower peak on a branchy graph, measured by the profiler's memory timeline on the
compiled code and on an eager replay, and by tracemalloc), the same results, and effects kept
in order."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, strategies as st

import labgrad as lg
import viz
from labgrad.graph.executable import Executable
from labgrad.graph.passes import schedule_memory, schedule_table
from labgrad.graph.passes.schedule import dependencies, live_memory, memory_order, peak_memory, replay

from test_passes import _build, programs

SIZE = 50_000          # float32: 200 kB per wide value


def branchy(n=4, size=SIZE):
    """n wide branches of x, each reduced to a scalar, summed, built in the worst order: every
    wide value first, then the reductions."""
    x = lg.placeholder((size,), name="x")
    wide = [(x * float(i + 1)).exp() for i in range(n)]
    wider = [w * w for w in wide]
    sums = [w.sum() for w in wider]
    total = sums[0]
    for s in sums[1:]:
        total = total + s
    return x, total


def feed(size=SIZE):
    return (np.random.default_rng(0).standard_normal(size) * 0.1).astype(np.float32)


def test_the_table_lists_each_step_with_its_bytes_and_the_peak():
    x, y = branchy(n=2)
    f = lg.compile(y, passes=())
    table = schedule_table(f)
    text = str(table)
    lines = text.splitlines()
    assert lines[0].split() == ["step", "node", "device", "allocated", "freed", "live", "after"]
    assert len(lines) == 1 + (len(f.graph.nodes) - 1) + 1       # the placeholder is left out
    assert "%1 mul" in lines[1] and "200.0 kB" in lines[1]
    # as built: both branches' exps (2 x 200 kB) are alive with the first square's result
    assert table.peak == 3 * SIZE * 4 and lines[-1].startswith("peak: 600.0 kB")
    assert sum(s.allocated for s in table.steps) - sum(s.freed for s in table.steps) == 4   # the result


def test_the_memory_aware_order_lowers_the_peak_of_a_branchy_graph():
    x, y = branchy(n=4)
    f = lg.compile(y, passes=())
    g, report = schedule_memory(f.graph)
    g.verify()
    wide = SIZE * 4
    assert peak_memory(f.graph) == 5 * wide       # four branches alive, and the first square
    assert peak_memory(g) == 2 * wide + 4         # one branch at a time (and a 4-byte partial sum)
    assert (report.peak_memory_before, report.peak_memory_after) == (5 * wide, 2 * wide + 4)
    assert "1.0 MB -> 400.0 kB" in report.notes[0]
    xv = feed()
    np.testing.assert_allclose(Executable(g, single=True)(xv).numpy(), f(xv).numpy(), rtol=1e-6)
    # measured: the profiler's memory timeline on an eager replay of each order
    peaks = []
    for graph in (f.graph, g):
        with lg.profiler.profile(profile_memory=True) as prof:
            (out,) = replay(graph, xv)
        np.testing.assert_allclose(out.numpy(), f(xv).numpy(), rtol=1e-6)
        peaks.append(prof.memory.peak_bytes)
    assert 5 * wide <= peaks[0] <= 5 * wide + 16 and 2 * wide <= peaks[1] <= 2 * wide + 16
    # the compiled code, profiled node by node: the memory timeline of each order
    compiled = []
    for graph in (f.graph, g):
        exe = Executable(graph, single=True)
        exe(xv)
        with lg.profiler.profile(profile_memory=True) as prof:
            exe(xv)
        compiled.append(prof.memory.peak_bytes)
    assert compiled == peaks
    # and with tracemalloc (NumPy reports its allocations to it)
    measured = []
    for graph in (f.graph, g):
        exe = Executable(graph, single=True)
        exe(xv)
        tracemalloc.start()
        exe(xv)
        measured.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert measured[1] < 0.5 * measured[0]


def test_schedule_then_memory_plan_from_compile():
    x, y = branchy(n=3)
    f = lg.compile(y, passes=["schedule", "memory"])
    plain = lg.compile(y, passes=["memory"])
    assert [r.name for r in f.reports] == ["schedule", "memory"]
    assert f.graph.memory_plan.peak_freed < plain.graph.memory_plan.peak_freed
    np.testing.assert_allclose(f(feed()).numpy(), plain(feed()).numpy(), rtol=1e-6)


def test_an_order_that_is_not_better_is_kept():
    x = lg.placeholder((100,), name="x")
    y = ((x * 2.0).exp() * 3.0).sum()             # a chain: one order only
    g0 = lg.compile(y, passes=()).graph
    g, report = schedule_memory(g0)
    assert [n.op_name for n in g.nodes] == [n.op_name for n in g0.nodes]
    assert "kept the given order" in report.notes[0]


def test_draw_schedule_gives_a_png_with_one_panel_per_schedule():
    x, y = branchy(n=2)
    f = lg.compile(y, passes=())
    g, _ = schedule_memory(f.graph)
    pic = viz.draw_schedule(f, g, titles=["as built", "memory-aware"])
    assert len(pic.figure.axes) == 2
    assert pic._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pic.figure.axes[0].get_title(loc="left").startswith("as built")
    labels = [t.get_text() for t in pic.figure.axes[1].get_xticklabels()]
    assert labels[:3] == ["%1 mul", "%2 exp", "%3 mul"]


def test_drawing_colours_each_device(fake_cuda):
    x = lg.placeholder((1000,), name="x")
    y = ((x * 2.0).to(fake_cuda).exp() * 3.0).to("cpu").sum()
    f = lg.compile(y, passes=())
    steps = live_memory(f.graph)
    assert {d for s in steps for d in s.live_by_device} == {"cpu", fake_cuda}
    pic = viz.draw_schedule(f)
    assert [t.get_text() for t in pic.figure.axes[0].get_legend().get_texts()] == ["cpu", fake_cuda]


# ---------------------------------------------------------------- state and effects

def test_reads_and_writes_of_a_variable_keep_their_order():
    w = lg.Variable(lg.ones(1000), name="w")
    x = lg.placeholder((1000,), name="x")
    wide = [(x * float(i)).exp() for i in range(3)]
    loss = sum(v.sum() for v in wide) + (w * x).sum()
    (gw,) = lg.gradients(loss, [w])
    update = lg.assign(w, w - 0.1 * gw)
    f = lg.compile(loss, updates=[update], passes=())
    g, _ = schedule_memory(f.graph)
    deps = dependencies(g)
    effects = [n for n in g.nodes if n.kind in ("variable", "assign")]
    assert [n.kind for n in effects] == [n.kind for n in f.graph.nodes if n.kind in ("variable", "assign")]
    for n in g.nodes:
        assert all(d < n.id for d in deps[n.id])
    sched = lg.compile(loss, updates=[update], passes=["schedule", "memory"])
    w.value.data[...] = 1.0
    xv = np.linspace(-1, 1, 1000).astype(np.float32)
    want = f(xv).numpy()
    want_w = w.value.numpy().copy()
    w.value.data[...] = 1.0
    np.testing.assert_allclose(sched(xv).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(w.value.numpy(), want_w, rtol=1e-6)


def test_effects_never_pass_each_other():
    w = lg.Variable(lg.zeros(3), name="w")
    v = lg.Variable(lg.zeros(3), name="v")
    x = lg.placeholder((3,), name="x")
    a = lg.assign(w, x * 2.0)
    b = lg.assign(v, (x * 3.0).exp())
    g0 = lg.compile(x.sum(), updates=[a, b], passes=()).graph
    order = memory_order(g0)
    kinds = [n.kind for n in order if n.kind == "assign"]
    assert kinds == ["assign", "assign"]
    assigns = [n.inputs[0].name for n in order if n.kind == "assign"]
    assert assigns == [n.inputs[0].name for n in g0.assigns]


@given(programs())
def test_scheduling_random_programs_changes_no_result_and_never_raises_the_peak(prog):
    outputs, updates, xs, w, w0, feeds = _build(prog, with_grads=True)
    base = lg.compile(outputs, inputs=xs, updates=updates, passes=())
    f = lg.compile(outputs, inputs=xs, updates=updates, passes=["schedule"])
    assert f.reports[0].peak_memory_after <= f.reports[0].peak_memory_before
    assert peak_memory(f.graph) <= peak_memory(base.graph)
    w.value.data[...] = w0
    want = [o.numpy().copy() for o in base(*feeds)]
    want_w = w.value.numpy().copy()
    w.value.data[...] = w0
    got = [o.numpy() for o in f(*feeds)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.value.numpy(), want_w, rtol=1e-12)


@given(st.integers(2, 5), st.integers(0, 2**16))
def test_random_branchy_graphs_never_get_a_higher_peak(n, seed):
    r = np.random.default_rng(seed)
    x = lg.placeholder((int(r.integers(10, 2000)),), name="x")
    values = [x]
    for _ in range(n * 3):
        a = values[int(r.integers(len(values)))]
        values.append(a.tanh() if r.random() < 0.5 else a * values[int(r.integers(len(values)))])
    total = sum(v.sum() for v in values[1:])
    g0 = lg.compile(total, passes=()).graph
    g, _ = schedule_memory(g0)
    assert peak_memory(g) <= peak_memory(g0)
    xv = r.standard_normal(x.shape).astype(np.float32) * 0.1
    np.testing.assert_allclose(Executable(g, single=True)(xv).numpy(), Executable(g0, single=True)(xv).numpy(),
                               rtol=1e-5)


def test_replay_refuses_what_it_cannot_run():
    x = lg.placeholder((3,), name="x")
    y = lg.cond(x.sum() > 0, lambda a: a * 2, lambda a: a - 1, x)
    g = lg.compile(y, passes=()).graph
    with pytest.raises(NotImplementedError, match="plain ops only"):
        replay(g, np.ones(3, np.float32))
