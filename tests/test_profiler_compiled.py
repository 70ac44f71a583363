"""Profiling compiled code (issue 11): one event per compiled node and fused kernel, inside
one event for the run, with cost, shapes and the memory timeline; and no cost when the
profiler is off, because the profiled version of the program is a separate, generated one."""
from __future__ import annotations

import json

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.context import Hook, context


def _mlp_step(batch=8):
    rng = np.random.default_rng(0)
    x = lg.placeholder((batch, 6), "float32", name="x")
    t = lg.placeholder((batch,), "int64", name="t")
    w1 = lg.Variable(lg.tensor(rng.normal(size=(6, 16)).astype("float32")), name="w1")
    b1 = lg.Variable(lg.zeros(16), name="b1")
    w2 = lg.Variable(lg.tensor(rng.normal(size=(16, 3)).astype("float32")), name="w2")
    loss = F.cross_entropy(F.relu(x @ w1 + b1) @ w2, t)
    grads = lg.gradients(loss, [w1, b1, w2])
    updates = [lg.assign(v, v - 0.1 * g) for v, g in zip((w1, b1, w2), grads)]
    f = lg.compile(loss, inputs=[x, t], updates=updates)
    feeds = (rng.normal(size=(batch, 6)).astype("float32"), rng.integers(0, 3, size=batch))
    return f, feeds


def test_every_compiled_node_is_an_event_inside_the_run():
    f, feeds = _mlp_step()
    with lg.profiler.profile() as prof:
        f(*feeds)
    run = prof.events[0]
    assert (run.category, run.name, run.parent) == ("graph", f.graph.name, None)
    kernels = prof.events[1:]
    assert kernels and all(e.category == "kernel" and e.parent == 0 and e.depth == 1 for e in kernels)
    timed = [n for n in f.graph.nodes if n.kind in ("op", "fused", "cond", "while")]
    assert [e.args["node"] for e in kernels] == [f"%{n.id}" for n in timed]
    names = [e.name for e in kernels]
    assert "linear" in names and any(n.startswith("fused_") and "[" in n for n in names)
    linear = kernels[names.index("linear")]
    assert linear.shapes == [(8, 6), (6, 16), (16,)] and linear.dtypes == ["float32"] * 3
    assert linear.flops == 2 * 8 * 6 * 16 and linear.bytes > 0 and linear.args["line"]
    assert sum(e.dur for e in kernels) <= run.dur and run.self_time >= 0
    assert "linear" in str(prof.table()) and "kernel" in str(prof.table(group_by="category"))


def test_the_profiled_version_is_generated_only_when_a_profile_runs():
    f, feeds = _mlp_step()
    plain = f(*feeds)
    assert f._profiled is None and "_prof." not in f.code
    with context.installed(_PassThrough()):   # another hook: still the plain version
        f(*feeds)
    assert f._profiled is None
    with lg.profiler.profile():
        f(*feeds)
    assert f._profiled is not None and "_prof.node_begin" in f.profiled_code
    assert f.code.count("\n") < f.profiled_code.count("\n")
    assert "_prof." not in f.code and np.isfinite(plain.item())


def test_profiled_and_plain_runs_compute_the_same():
    f1, feeds = _mlp_step()
    f2, _ = _mlp_step()
    losses_plain = [f1(*feeds).item() for _ in range(3)]
    with lg.profiler.profile():
        losses_profiled = [f2(*feeds).item() for _ in range(3)]
    assert losses_plain == losses_profiled


def test_memory_timeline_counts_fresh_results_not_the_planned_buffers():
    x = lg.placeholder((10, 100), "float32", name="x")
    y = lg.placeholder((10, 100), "float32", name="y")
    out = (x @ lg.ones((100, 100)) + 1) * y
    f = lg.compile(out, inputs=[x, y], passes=["dce", "memory"])
    assert {f.graph.nodes[i].op_name for i in f.graph.memory_plan.out} == {"matmul", "add"}
    with lg.profiler.profile() as prof:
        f(np.ones((10, 100), "float32"), np.ones((10, 100), "float32"))
    # the result is a fresh array; the matmul and add write views of the plan's buffers (0 bytes)
    assert [(a.op, a.nbytes) for a in prof.memory.allocations] == [("mul", 4000)]
    assert prof.memory.peak_bytes == 4000


def test_an_error_inside_a_profiled_run_closes_its_events_and_names_the_node():
    x = lg.placeholder((None,), "int64", name="i")
    table = lg.placeholder((3,), "float32", name="table")
    f = lg.compile(table[x] * 2, inputs=[x, table])
    with lg.profiler.profile() as prof:
        with pytest.raises(lg.LabgradError, match="index"):
            f(np.array([5]), np.ones(3, "float32"))
        f(np.array([1]), np.ones(3, "float32"))    # the profile is still usable
    assert all(e.dur >= 0 for e in prof.events)
    runs = [e for e in prof.events if e.category == "graph"]
    assert len(runs) == 2 and runs[1].parent is None and runs[1].depth == 0


def test_chrome_trace_of_a_compiled_run_nests_kernels_in_the_run(tmp_path):
    f, feeds = _mlp_step()
    with lg.profiler.profile() as prof:
        with lg.profiler.record("step"):
            f(*feeds)
    events = json.loads(prof.export_chrome_trace(tmp_path / "t.json").read_text())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    step, run = spans[0], spans[1]
    assert step["name"] == "step" and run["cat"] == "graph"
    for e in spans[2:]:
        assert e["cat"] == "kernel" and run["ts"] <= e["ts"] and e["ts"] + e["dur"] <= run["ts"] + run["dur"] + 1e-3


def test_jit_runs_are_profiled_per_kernel_after_the_first_call(jitted_step):
    step, x, t = jitted_step
    with lg.profiler.profile() as prof:
        step(x, t)
    assert {e.category for e in prof.events} == {"graph", "kernel"}
    assert any(e.name == "linear" for e in prof.events)


class _PassThrough(Hook):
    def on_op(self, op, inputs, attrs, run, phase):
        return run()
