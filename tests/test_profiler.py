"""The eager profiler (issue 11): events for forward and backward ops with their device time,
shapes and costs; self vs total time; the Chrome trace format; the memory timeline; peaks and
the roofline. Costs are checked against hand-derived counts, not against the cost rules."""
from __future__ import annotations

import json
import threading

import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad import nn
from labgrad.context import context


def _step():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = lg.randn(4, 6)
    t = lg.tensor([0, 1, 2, 1])
    with lg.profiler.profile() as prof:
        with lg.profiler.record("step"):
            loss = F.cross_entropy(model(x), t)
            loss.backward()
    return prof


def test_eager_ops_are_events_marked_forward_or_backward():
    prof = _step()
    ops = [(e.name, e.phase) for e in prof.events if e.category == "op"]
    assert ("matmul", "forward") in ops and ("matmul", "backward") in ops
    assert ("cross_entropy", "forward") in ops and ("cross_entropy", "backward") in ops
    first_backward = ops.index(("cross_entropy", "backward"))
    assert all(phase == "forward" for _, phase in ops[:first_backward])
    assert all(e.dur > 0 and e.device == "cpu" for e in prof.events)
    assert context.hooks == ()       # nothing stays installed


def test_shapes_dtypes_and_matmul_cost_are_recorded():
    a, b = lg.randn(4, 6), lg.randn(6, 5)
    with lg.profiler.profile() as prof:
        a @ b
    (e,) = prof.events
    assert e.shapes == [(4, 6), (6, 5)] and e.dtypes == ["float32", "float32"]
    assert e.flops == 2 * 4 * 6 * 5                    # a multiply and an add per term
    assert e.bytes == 4 * (4 * 6 + 6 * 5 + 4 * 5)      # read both, write the result
    with lg.profiler.profile(record_shapes=False, with_cost=False) as prof:
        a @ b
    assert prof.events[0].shapes is None and prof.events[0].flops is None


def test_ranges_nest_ops_and_self_time_excludes_children():
    prof = _step()
    step = next(i for i, e in enumerate(prof.events) if e.name == "step")
    children = [e for e in prof.events if e.parent == step]
    assert len(children) == len(prof.events) - 1 and all(e.depth == 1 for e in children)
    s = prof.events[step]
    assert s.self_time == pytest.approx(s.dur - sum(e.dur for e in children))
    for e in children:
        assert s.start <= e.start and e.end <= s.end + 1e-9
        assert e.self_time == e.dur                      # an op contains nothing
    table = prof.table(sort_by="total")
    assert table.rows[0]["name"] == "step"
    assert table.self_total_s == pytest.approx(s.dur)   # self times add up to the whole, once
    text = str(prof.table(group_by="name"))
    assert "matmul" in text and "self ms" in text and "(backward)" not in text
    assert "matmul (backward)" in str(prof.table())
    assert [r["name"] for r in prof.table(phase="backward").rows if r["name"].startswith("matmul")] \
        == ["matmul (backward)"]
    scopes = {r["name"] for r in prof.table(group_by="scope").rows}
    assert "Sequential/0:Linear" in scopes


def test_table_errors_name_the_choices():
    prof = _step()
    with pytest.raises(ValueError, match="choose one of self, total"):
        prof.table(sort_by="time")
    with pytest.raises(ValueError, match="group_by='module'"):
        prof.table(group_by="module")


def test_chrome_trace_has_the_fields_and_nests_per_thread(tmp_path):
    lg.manual_seed(0)
    x = lg.randn(8, 8, requires_grad=True)

    def work():
        with lg.no_grad():
            (x * 2).exp()

    with lg.profiler.profile() as prof:
        with lg.profiler.record("outer"):
            (x @ x).tanh().sum().backward()
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    path = prof.export_chrome_trace(tmp_path / "trace.json")
    trace = json.loads(path.read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    for e in events:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert e["dur"] >= 0 and e["args"]["device"] == "cpu"
    cats = {e["name"]: e["cat"] for e in events}
    assert cats["matmul"] == "forward" and cats["matmul (backward)"] == "backward"
    assert cats["outer"] == "range"
    assert {e["tid"] for e in events} == {0, 1}
    assert [e["name"] for e in events if e["tid"] == 1] == ["mul", "exp"]
    for tid in (0, 1):
        _assert_nested([e for e in events if e["tid"] == tid])
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert names == {"process_name", "thread_name"}
    counters = [e for e in trace["traceEvents"] if e["ph"] == "C"]
    assert counters and all("bytes" in e["args"] for e in counters)


def _assert_nested(events):
    """Complete events of one thread nest: a stack check over start order."""
    stack = []
    for e in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
        while stack and stack[-1] <= e["ts"]:
            stack.pop()
        assert not stack or e["ts"] + e["dur"] <= stack[-1] + 1e-3, e
        stack.append(e["ts"] + e["dur"])


def test_module_scopes_enclose_their_ops_in_the_trace():
    prof = _step()
    events = [e for e in lg.profiler.chrome_trace(prof)["traceEvents"] if e["ph"] == "X"]
    scopes = [e for e in events if e["cat"] == "scope"]
    assert sorted(e["args"]["scope"] for e in scopes) == [
        "Sequential", "Sequential/0:Linear", "Sequential/1:ReLU", "Sequential/2:Linear"]
    _assert_nested(events)
    linear = next(e for e in scopes if e["args"]["scope"] == "Sequential/0:Linear")
    inside = [e["name"] for e in events if e["cat"] == "forward"
              and linear["ts"] <= e["ts"] and e["ts"] + e["dur"] <= linear["ts"] + linear["dur"] + 1e-3]
    assert inside == ["matmul", "add"]


def test_memory_timeline_counts_op_outputs_until_they_are_freed():
    x = lg.ones(1000)                                   # made before the profile: not counted
    with lg.profiler.profile() as prof:
        y = x * 2.0                                     # 4000 bytes
        z = y + 1.0                                     # 4000 bytes
        v = z.reshape(10, 100)                          # a view: no new memory
        del y                                           # freed
        w = z * z                                       # 4000 bytes
    mem = prof.memory
    assert [a.op for a in mem.allocations] == ["mul", "add", "mul"]
    assert [p[1] for p in mem.points] == [0, 4000, 8000, 4000, 8000]
    assert mem.peak_bytes == 8000
    assert [a.op for a in mem.alive_at_peak()] == ["mul", "add"]       # the first peak
    assert sum(a.nbytes for a in mem.alive_at_peak()) == mem.peak_bytes
    assert mem.allocations[0].free is not None and mem.allocations[1].free is None
    text = mem.summary()
    assert text.splitlines()[0].startswith("peak: 7.8 KiB live") and "mul -> float32[1000]" in text
    del v, w, z                                         # after the profile: nothing changes
    assert [p[1] for p in mem.points][-1] == 8000


def test_memory_over_a_training_step_sees_gradients():
    prof = _step()
    phases = {a.phase for a in prof.memory.alive_at_peak()}
    assert prof.memory.peak_bytes > 0 and phases <= {"forward", "backward"}
    assert any(a.phase == "backward" for a in prof.memory.allocations)
    assert lg.profiler.profile(profile_memory=False).memory is None


def test_a_profile_runs_once_and_uninstalls_on_error():
    prof = lg.profiler.profile()
    with pytest.raises(ZeroDivisionError):
        with prof:
            lg.ones(2) * 2
            1 / 0
    assert context.hooks == () and len(prof.events) == 1
    with pytest.raises(RuntimeError, match="records one run"):
        with prof:
            with prof:
                pass


def test_spans_for_compiled_code_cost_nothing_without_a_profile():
    assert lg.profiler.begin("kernel") is None
    lg.profiler.end(None)
    with lg.profiler.profile() as prof:
        span = lg.profiler.begin("fused_add_relu", category="kernel", flops=100, bytes=800, n=100)
        lg.ones(3) + 1
        lg.profiler.end(span)
    k, op = prof.events
    assert (k.name, k.category, k.flops, k.bytes, k.args) == ("fused_add_relu", "kernel", 100, 800, {"n": 100})
    assert op.parent == 0


def test_peaks_and_roofline():
    peaks = lg.profiler.measure_peaks("cpu", copy_mib=4, matmul_n=128, repeats=2)
    assert peaks.bandwidth > 0 and peaks.flops > 0
    assert peaks.ridge == pytest.approx(peaks.flops / peaks.bandwidth)
    fake = lg.profiler.Peaks("cpu", bandwidth=1e9, flops=1e10)       # ridge at 10 flop/byte
    n = 256
    a, b = lg.ones(n, n), lg.ones(n, n)
    with lg.profiler.profile() as prof:
        a + b
        a @ b
    rows = {r["name"]: r for r in prof.roofline(fake)}
    add, mm = rows["add"], rows["matmul"]
    assert add["intensity"] == pytest.approx(n * n / (3 * 4 * n * n))   # 1 flop per 12 bytes
    assert add["bound"] == "memory" and add["roof"] == pytest.approx(add["intensity"] * 1e9)
    assert mm["intensity"] == pytest.approx(2 * n ** 3 / (3 * 4 * n * n))
    assert mm["bound"] == "compute" and mm["roof"] == 1e10
    assert mm["attained"] == pytest.approx(2 * n ** 3 / mm["seconds"])


def test_ops_traced_by_jit_are_not_counted_as_ops_that_ran():
    @lg.jit
    def f(x):
        return (x * 2).exp().sum()

    x = lg.ones(3)
    with lg.profiler.profile() as prof:
        f(x)        # the first call traces, then runs the compiled graph
    traced = [e for e in prof.events if e.category == "trace"]
    assert [e.name for e in traced] == ["mul", "exp", "sum"]
    assert all(e.flops is None for e in traced)
    # what ran is the compiled graph: one fused kernel inside the graph's span
    ran = [e for e in prof.events if e.category != "trace"]
    assert [(e.category, e.name.partition("[")[2]) for e in ran] == [("graph", ""), ("kernel", "mul, exp -> sum]")]
    assert ran[0].name == "f" and ran[1].name.startswith("fused_") and ran[1].parent == prof.events.index(ran[0])
    assert [r["name"] for r in prof.roofline(lg.profiler.Peaks("cpu", 1e9, 1e9))] == [ran[1].name]


def test_the_profiler_composes_with_other_hooks():
    from labgrad.context import Hook

    seen = []

    class Count(Hook):
        def on_op(self, op, inputs, attrs, run, phase):
            seen.append((op.name, phase))
            return run()

    x = lg.tensor([1.0, 2.0], requires_grad=True)
    with context.installed(Count()):
        with lg.profiler.profile() as prof:
            (x * 3).sum().backward()
    assert [(e.name, e.phase) for e in prof.events] == seen
    assert x.grad.tolist() == [3.0, 3.0]


def test_events_carry_their_device_and_its_time(device):
    x = lg.ones(64, 64, device=device, requires_grad=True)
    with lg.profiler.profile() as prof:
        (x @ x).tanh().sum().backward()
    assert {e.device for e in prof.events} == {str(lg.device(device))}
    assert all(e.dur > 0 for e in prof.events)
    assert prof.memory.peak_bytes >= 64 * 64 * 4       # the matmul's output, at least
    rows = prof.roofline(lg.profiler.Peaks(str(lg.device(device)), 1e9, 1e9))
    assert {r["name"] for r in rows} >= {"matmul", "tanh"}
    peaks = lg.profiler.measure_peaks(device, copy_mib=4, matmul_n=64, repeats=2)
    assert peaks.device == str(lg.device(device)) and peaks.flops > 0
