"""Placement (labgrad/graph/passes/place.py): pins, the fewest bytes or transfers between devices
(checked against a brute force over every placement), explicit transfer nodes, and the same
results as the unplaced graph. Runs without a GPU: ``fake_cuda`` is a second NumPy device."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import labgrad as lg
import labgrad.backends as backends_module
from labgrad.graph.codegen import _may_alias
from labgrad.graph.executable import Executable
from labgrad.graph.passes import describe_placement, place, transfers
from labgrad.graph.passes.place import choose_devices, pinned_devices, transfer_cost

from conftest import FakeDeviceBackend
from test_passes import _build, programs

FAKE = "cuda:7"


def run(graph, *feeds):
    out = Executable(graph, single=False)(*feeds)
    return [o.numpy() for o in out]


def mlp(fake):
    """x (cpu) @ w1 (fake) -> relu -> @ w2 (cpu) -> sum, with the .to's the builder needs."""
    x = lg.placeholder((8, 4), name="x")
    w1 = lg.Variable(lg.full((4, 16), 0.1, device=fake), name="w1")
    w2 = lg.Variable(lg.full((16, 3), 0.2), name="w2")
    h = (x.to(fake) @ w1).relu()
    return x, (h.to("cpu") @ w2).sum()


def test_pinned_matmuls_pull_their_neighbours_and_transfers_are_explicit_nodes(fake_cuda):
    x, y = mlp(fake_cuda)
    f = lg.compile(y, passes=())
    g, report = place(f.graph, pins={"matmul": fake_cuda})
    g.verify()
    devices = {n.op_name: str(n.device) for n in g.nodes if n.kind == "op" and n.op_name != "to_device"}
    # relu sits between two matmuls on the fake device; the sum's input is big, its result 4 bytes
    assert devices == {"matmul": fake_cuda, "relu": fake_cuda, "sum": fake_cuda}
    moved = [(t.inputs[0].op_name, str(t.device), b) for t, b in transfers(g)]
    assert sorted(moved) == sorted([("placeholder", fake_cuda, 8 * 4 * 4), ("variable", fake_cuda, 16 * 3 * 4),
                                    ("sum", "cpu", 4)])
    assert "to_device" in str(g) and "3 transfers, 324 B per run" in describe_placement(g)
    assert any("transfers: 2 (640 B per run) -> 3 (324 B per run)" in n for n in report.notes)
    assert any("min-cut" in n for n in report.notes)
    xv = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_allclose(run(g, xv)[0], f(xv).numpy(), rtol=1e-6)
    assert Executable(g, single=True)(xv).device == lg.device("cpu")    # the output comes back


def test_without_pins_the_policy_moves_the_smaller_value(fake_cuda):
    # w1 (256 B) lives on the fake device, x (128 B) on the cpu: moving w1 once beats moving x
    # there and the 512-byte hidden layer back
    x, y = mlp(fake_cuda)
    f = lg.compile(y, passes=())
    g, _ = place(f.graph)
    assert [(t.inputs[0].name, str(t.device)) for t, _ in transfers(g)] == [("w1", "cpu")]
    xv = np.ones((8, 4), np.float32)
    np.testing.assert_allclose(run(g, xv)[0], f(xv).numpy(), rtol=1e-6)


def test_compile_takes_a_placement_and_the_pipeline_runs_after_it(fake_cuda):
    x, y = mlp(fake_cuda)
    plain = lg.compile(y)
    f = lg.compile(y, placement={"matmul": fake_cuda})
    assert f.reports[0].name == "place" and len(f.reports) == len(plain.reports) + 1
    assert sum(1 for n in f.graph.nodes if n.op_name == "to_device") == 3
    xv = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_allclose(f(xv).numpy(), plain(xv).numpy(), rtol=1e-6)


def test_pins_by_symbol_and_by_function_and_sources_cannot_be_moved(fake_cuda):
    x = lg.placeholder((3,), name="x")
    a = x * 2.0
    b = a.exp()
    y = (b + a).sum()
    g0 = lg.compile(y, passes=()).graph
    g, _ = place(g0, pins={b: fake_cuda})
    assert str(g.node_of(b).device) == fake_cuda and len(transfers(g)) == 2   # a there, b's sum back
    g2, _ = place(g0, pins={lambda n: fake_cuda if n.op_name == "exp" else None: None})
    assert [str(n.device) for n in g2.nodes if n.op_name == "exp"] == [fake_cuda]
    with pytest.raises(lg.DeviceError, match="cannot be pinned"):
        place(g0, pins={x: fake_cuda})


def test_constants_are_copied_once_not_transferred_every_run(fake_cuda):
    x = lg.placeholder((4,), name="x")
    c = lg.constant(np.arange(4.0, dtype=np.float32))
    y = ((x.to(fake_cuda) * c.to(fake_cuda)).exp().to("cpu") + c).sum()
    f = lg.compile(y, passes=())
    g, _ = place(f.graph, pins={"exp": fake_cuda})
    assert sorted(str(n.device) for n in g.constants) == ["cpu", fake_cuda]
    assert all(t.inputs[0].kind != "constant" for t, _ in transfers(g))
    xv = np.linspace(-1, 1, 4).astype(np.float32)
    np.testing.assert_allclose(run(g, xv)[0], f(xv).numpy(), rtol=1e-6)


def test_state_updates_run_on_their_variables_device(fake_cuda):
    x = lg.placeholder((3,), name="x")
    w = lg.Variable(lg.ones(3, device=fake_cuda), name="w")
    loss = (x.to(fake_cuda) * w).sum()
    (gw,) = lg.gradients(loss, [w])
    f = lg.compile(loss.to("cpu"), updates=[lg.assign(w, w - 0.5 * gw)], placement={"mul": "cpu"})
    f.graph.verify()
    assert all(str(a.device) == fake_cuda for a in f.graph.assigns)
    f(np.array([1.0, 2.0, 3.0], np.float32))
    np.testing.assert_allclose(w.value.numpy(), [0.5, 0.0, -0.5])


# ---------------------------------------------------------------- optimality (brute force)

def _random_graph(seed, fake):
    """A random DAG of unary and binary ops on (2, 3) float32 values: two placeholders on the
    cpu, a variable on the fake device; some ops pinned to either device."""
    r = np.random.default_rng(seed)
    xs = [lg.placeholder((2, 3), name=f"x{i}") for i in range(2)]
    w = lg.Variable(lg.ones(2, 3, device=fake), name="w")
    values = [xs[0], xs[1], w]
    wide = lambda v: v.broadcast_to((4, 2, 3)) * 1.5 if r.random() < 0.3 else v   # noqa: E731
    for _ in range(int(r.integers(3, 8))):
        a = values[int(r.integers(len(values)))]
        if r.random() < 0.5:
            b = values[int(r.integers(len(values)))]
            if a.device != b.device:
                b = b.to(a.device)
            if a.shape != b.shape:
                a, b = a.sum(axis=0) if a.ndim == 3 else a, b.sum(axis=0) if b.ndim == 3 else b
            v = a * b + 1.0
        else:
            v = wide(a.tanh())
        values.append(v)
    outs = [values[-1].sum(), values[int(r.integers(3, len(values)))].mean()]
    f = lg.compile([o if o.device == lg.device("cpu") else o.to("cpu") for o in outs], inputs=xs, passes=("dce",))
    graph = f.graph
    free = [n for n in graph.nodes if n.kind == "op" and n.op_name != "to_device"]
    pins = {n: (fake if r.random() < 0.5 else "cpu") for n in free if r.random() < 0.3}
    return graph, pins


def _brute_force(graph, pins, cost):
    pinned = pinned_devices(graph, pins)
    free = [n.id for n in graph.nodes if n.id not in pinned and n.kind not in ("constant",)
            and n.op_name != "to_device"]
    devices = [lg.device("cpu"), lg.device(FAKE)]
    best = None
    for choice in itertools.product(devices, repeat=len(free)):
        c = transfer_cost(graph, {**pinned, **dict(zip(free, choice))}, cost)
        best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("cost", ["count", "bytes"])
def test_two_devices_the_minimum_cut_is_the_optimum_of_a_brute_force(fake_cuda, seed, cost):
    graph, pins = _random_graph(seed, fake_cuda)
    placement, method = choose_devices(graph, pins, cost=cost)
    assert method == "min-cut"
    pins = {graph.node_of(k): d for k, d in pins.items()}
    assert transfer_cost(graph, placement, cost) == _brute_force(graph, pins, cost)
    g, _ = place(graph, pins=pins, cost=cost)
    g.verify()
    # what the placed graph really moves is what the model counted
    want = transfer_cost(graph, placement, "count")
    assert len(transfers(g)) == want
    feeds = [np.random.default_rng(seed).standard_normal((2, 3)).astype(np.float32) for _ in range(2)]
    for a, b in zip(run(g, *feeds), run(graph, *feeds)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_exercise_mlp_gets_the_brute_force_minimum(fake_cuda):
    # exercise 08, part 3: x, t on the cpu, weights on the gpu, the loss logged on the cpu: 2
    x = lg.placeholder((16, 8), name="x")
    t = lg.placeholder((16,), "int64", name="t")
    w1 = lg.Variable(lg.full((8, 32), 0.1, device=fake_cuda), name="w1")
    b1 = lg.Variable(lg.zeros(32, device=fake_cuda), name="b1")
    w2 = lg.Variable(lg.full((32, 4), 0.1, device=fake_cuda), name="w2")
    z = ((x.to(fake_cuda) @ w1 + b1).relu() @ w2).to("cpu")
    loss = lg.functional.cross_entropy(z, t)
    graph = lg.compile(loss, passes=()).graph
    placement, _ = choose_devices(graph, cost="count")
    assert transfer_cost(graph, placement, "count") == _brute_force(graph, {}, "count") == 2


def test_three_devices_use_a_local_search_and_still_compute_the_same(fake_cuda, monkeypatch):
    other = lg.device("cuda:6")
    table = dict(backends_module._backends)
    table[other] = FakeDeviceBackend(other)
    monkeypatch.setattr(backends_module, "_backends", table)
    x = lg.placeholder((5,), name="x")
    a = (x * 3.0).exp()
    b = a.to(fake_cuda).tanh() + 1.0
    c = (a * 2.0).to("cuda:6").sin()
    y = (b.to("cpu") + c.to("cpu")).sum()
    f = lg.compile(y, passes=())
    g, report = place(f.graph, pins={"tanh": fake_cuda, "sin": "cuda:6"})
    g.verify()
    assert any("local search" in n for n in report.notes)
    assert {str(n.device) for n in g.nodes} == {"cpu", fake_cuda, "cuda:6"}
    xv = np.linspace(-1, 1, 5).astype(np.float32)
    np.testing.assert_allclose(run(g, xv)[0], f(xv).numpy(), rtol=1e-6)


# ---------------------------------------------------------------- random programs

@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(programs())
def test_placing_random_programs_changes_no_result(fake_cuda, prog):
    outputs, updates, xs, w, w0, feeds = _build(prog, with_grads=True)
    base = lg.compile(outputs, inputs=xs, updates=updates, passes=())
    state = {v.id for v in base.graph.variables}
    # an output that is the variable (or a view of it) is its live array: the update changes it
    live = [_may_alias(o, state) for o in base.graph.outputs]
    w.value.data[...] = w0
    want = [o.numpy() for o in base(*feeds)]
    want_w = w.value.numpy().copy()
    for pins in ({"mul": fake_cuda}, {lambda n: fake_cuda if n.op_name != "add" else None: None}):
        f = lg.compile(outputs, inputs=xs, updates=updates, placement=pins)
        w.value.data[...] = w0
        got = [o.numpy() for o in f(*feeds)]
        for a, b, aliased in zip(got, want, live):
            if not aliased:
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=str(pins))
        np.testing.assert_allclose(w.value.numpy(), want_w, rtol=1e-12, err_msg=str(pins))


@pytest.mark.skipif(not lg.cuda.is_available(), reason="no CUDA device: the fake device covers the logic")
def test_placement_on_a_real_gpu():
    x, y = mlp("cuda")
    plain = lg.compile(y)
    f = lg.compile(y, placement={"matmul": "cuda"})
    xv = np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_allclose(f(xv).numpy(), plain(xv).numpy(), rtol=1e-5)


def test_jit_takes_a_placement_too(fake_cuda):
    w = lg.Variable(lg.full((4, 3), 0.5), name="w")

    def f(x):
        return (x @ w).relu().sum()

    placed = lg.jit(f, placement={"matmul": fake_cuda})
    plain = lg.jit(f)
    xv = lg.tensor(np.arange(8.0, dtype=np.float32).reshape(2, 4))
    np.testing.assert_allclose(placed(xv).numpy(), plain(xv).numpy(), rtol=1e-6)
    assert placed.executable.reports[0].name == "place"
    assert {str(n.device) for n in placed.graph.nodes if n.op_name == "matmul"} == {fake_cuda}


def test_a_drawing_of_a_placed_graph_marks_each_nodes_device(fake_cuda):
    import viz
    from viz import style

    x, y = mlp(fake_cuda)
    f = lg.compile(y, placement={"matmul": fake_cuda})
    dot = viz.draw(f).dot
    devices = ["cpu", fake_cuda]
    assert f">{fake_cuda}</font>" in dot and ">cpu</font>" in dot
    assert style.device_color(fake_cuda, devices) in dot and style.device_color("cpu", devices) in dot
    z = lg.placeholder((3,), name="z")
    assert ">cpu</font>" not in viz.draw(lg.compile((z * 2).sum())).dot    # one device: unmarked
