"""Graph passes: each rule's positive and negative cases, the reports, and preservation of what
a graph computes on random programs (forward, gradient, cond and while) before and after every
pass and the whole pipeline."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from labgrad.graph.codegen import _may_alias

import labgrad as lg
import labgrad.functional as F
from labgrad.graph import passes as P
from labgrad.graph.ir import Graph, Node
from labgrad.graph.passes import PassReport, lower


def ops_of(graph):
    """The ops a graph runs, those inside fused kernels included (elementwise fusion is in the
    default pipeline: ``a * 2 + 1`` becomes one ``fused`` node running mul and add)."""
    out = []
    for n in graph.nodes:
        if n.kind == "fused":
            kernel = n.attrs["kernel"].kernel
            out += kernel.ops + ([kernel.reduce.kind] if kernel.reduce is not None else [])
        else:
            out.append(n.op_name)
    return out


def compiled(outputs, passes, **kw):
    f = lg.compile(outputs, passes=passes, **kw)
    for r in f.reports:
        r.after.verify()
    return f


# ---------------------------------------------------------------- the pipeline and reports

def test_default_pipeline_and_no_passes():
    a = lg.placeholder((3,), name="a")
    y = a * 2 + a * 2
    plain = lg.compile(y, passes=())
    assert plain.reports == [] and plain.built_graph is plain.graph
    f = lg.compile(y)
    assert [r.name for r in f.reports] == P.DEFAULT_PIPELINE
    assert ops_of(f.graph).count("mul") == 1 and ops_of(f.built_graph).count("mul") == 2
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(f(x).numpy(), plain(x).numpy())


def test_passes_can_be_named_or_given_as_functions_and_unknown_names_fail():
    a = lg.placeholder((3,), name="a")
    y = a * 2 + a * 2
    f = lg.compile(y, passes=["cse", P.dead_code_elimination])
    assert [r.name for r in f.reports] == ["cse", "dce"]
    with pytest.raises(ValueError, match="unknown pass 'cse2'"):
        lg.compile(y, passes=["cse2"])

    def broken(graph):
        return graph
    with pytest.raises(TypeError, match="must return"):
        lg.compile(y, passes=[broken])


def test_jit_takes_passes_too():
    @lg.jit(passes=())
    def plain(x):
        return x * 2 + x * 2

    @lg.jit
    def optimized(x):
        return x * 2 + x * 2

    x = lg.tensor([1.0, 2.0])
    assert plain(x).tolist() == optimized(x).tolist() == [4.0, 8.0]
    assert plain.executable.reports == []
    assert [r.name for r in optimized.executable.reports] == P.DEFAULT_PIPELINE
    assert ops_of(optimized.graph).count("mul") == 1


def test_a_report_says_what_changed_by_id_with_counts_and_bytes():
    a = lg.placeholder((100,), name="a")
    y = a * 2 + a * 2
    f = lg.compile(y, passes=["cse", "dce"])
    cse, dce = f.reports
    assert isinstance(cse, PassReport)
    assert cse.merged == ((2, 1),)          # %2 (the second a * 2) merged into %1
    assert (cse.nodes_before, cse.nodes_after) == (4, 3) and cse.bytes_after < cse.bytes_before
    assert cse.kept == {0: 0, 1: 1, 3: 2} and cse.removed == () and cse.added == ()
    assert cse.kernels_after is None and cse.peak_memory_after is None and cse.not_fused == ()
    assert str(cse).splitlines() == ["cse: 4 -> 3 nodes, 2.8 kB -> 2.0 kB moved", "  merged %2 into %1"]
    assert not dce.changed and str(dce).splitlines()[1] == "  no change"
    assert repr(dce) == "<PassReport dce: 3 -> 3 nodes, 2.0 kB -> 2.0 kB moved>"


def test_lower_runs_a_pipeline_on_any_graph():
    a = lg.placeholder((3,), name="a")
    g = lg.compile((a + 1) * (a + 1), passes=()).graph
    new, reports = lower(g, ["cse", "dce"])
    assert [r.name for r in reports] == ["cse", "dce"] and reports[0].before is g and reports[-1].after is new
    assert lower(g, ())[0] is g and lower(g, ())[1] == []


def test_a_pass_never_changes_its_input():
    a = lg.placeholder((3,), name="a")
    c = lg.constant([1.0, 2.0, 3.0])
    y = a * (c + 1) + a * (c + 1) + (a * 5).exp() * 0
    g = lg.compile(y, passes=()).graph
    text, nodes = str(g), list(g.nodes)
    for name in P.PASSES:
        P.PASSES[name](g)
        assert str(g) == text and g.nodes == nodes


# ---------------------------------------------------------------- dead-code elimination

def test_dce_removes_what_nothing_needs_and_keeps_effects_and_inputs():
    a = lg.placeholder((3,), name="a")
    unused_feed = lg.placeholder((3,), name="unused")
    w = lg.Variable(lg.zeros(3), name="w")
    y = a + 1
    upd = lg.assign(w, w + a)
    g = lg.compile(y, updates=[upd], inputs=[a, unused_feed], passes=()).graph
    # a dead computation, spliced in by hand: exp(a), used by nothing
    dead = Node(lg.ops.get_op("exp"), (g.inputs[0],), aval=g.inputs[0].aval)
    g = Graph(list(g.nodes) + [dead], g.inputs, g.outputs)
    new, report = P.dead_code_elimination(g)
    assert "exp" not in ops_of(new) and report.removed == (len(g.nodes) - 1,)
    assert "assign" in ops_of(new) and [n.name for n in new.inputs] == ["a", "unused"]
    f = lg.compile(y, updates=[upd], inputs=[a, unused_feed])
    f(np.ones(3, np.float32), np.zeros(3, np.float32))
    np.testing.assert_array_equal(w.value.numpy(), [1, 1, 1])   # the update still happens


# ---------------------------------------------------------------- constant folding

def test_folding_computes_constant_subgraphs_with_the_ops_forward():
    a = lg.placeholder((3,), name="a")
    c = lg.constant(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    y = a * (c * 0.5 + 1).exp()
    f = compiled(y, ["fold", "dce"])
    assert ops_of(f.graph) == ["placeholder", "constant", "mul"]
    (const,) = f.graph.constants
    assert const.value.dtype == np.float32   # a Python 0.5 does not promote to float64
    np.testing.assert_allclose(const.value, np.exp(np.array([1, 2, 3], np.float32) * 0.5 + 1), rtol=1e-6)
    assert f.reports[0].folded == ((2, 2), (3, 3), (4, 4))   # (number before, number after)


def test_folding_never_touches_variables_or_fed_values():
    w = lg.Variable(lg.tensor([1.0, 2.0]), name="w")
    a = lg.placeholder((2,), name="a")
    y = (w * 2) + (a * 3)
    f = compiled(y, ["fold"])
    assert f.reports[0].folded == () and ops_of(f.graph).count("mul") == 2
    w.value.data[...] = [10.0, 20.0]    # read live: the compiled graph sees the new value
    np.testing.assert_allclose(f(np.zeros(2, np.float32)).numpy(), [20, 40])


def test_folding_never_touches_effects():
    w = lg.Variable(lg.tensor([1.0, 2.0]), name="w")
    upd = lg.assign(w, lg.constant([5.0, 6.0]))
    f = compiled(upd, ["fold"])
    assert "assign" in ops_of(f.graph)


def test_folding_leaves_big_results_alone():
    c = lg.constant(np.float32(2.0))
    a = lg.placeholder((), name="a")
    big = c.broadcast_to((300, 300))   # 90000 > MAX_ELEMENTS elements, from one scalar
    assert 300 * 300 > P.fold.MAX_ELEMENTS
    f = compiled(big + a, ["fold"])
    assert "broadcast_to" in ops_of(f.graph)
    small = compiled(c.broadcast_to((3,)) + a, ["fold"])
    assert "broadcast_to" not in ops_of(small.graph)


# ---------------------------------------------------------------- common subexpressions

def test_cse_merges_the_same_op_on_the_same_inputs():
    a = lg.placeholder((3,), name="a")
    b = lg.placeholder((3,), name="b")
    y = (a * b) + (b * a) + (a - b) + (b - a) + a.sum(axis=0) + a.sum(axis=0)
    f = compiled(y, ["cse", "dce"])
    ops = ops_of(f.graph)
    assert ops.count("mul") == 1            # commutative: a * b == b * a
    assert ops.count("sub") == 2            # not commutative: a - b != b - a
    assert ops.count("sum") == 1
    x1, x2 = np.array([1, 2, 3], np.float32), np.array([3, 1, 2], np.float32)
    np.testing.assert_allclose(f(x1, x2).numpy(), lg.compile(y, passes=())(x1, x2).numpy())


def test_cse_keeps_apart_what_differs():
    a = lg.placeholder((3, 2), name="a")
    p = lg.placeholder((3, 2), name="p")
    q = lg.placeholder((3, 2), name="q")   # two placeholders of the same aval: never one
    y = (a + 1).sum() + (a + 1.0).sum() + a.sum(axis=0).sum() + a.sum(axis=1).sum() + (p + q).sum()
    f = compiled(y, ["cse"])
    assert f.reports[0].merged == ()
    assert ops_of(f.graph).count("placeholder") == 3


def test_cse_merges_equal_index_arrays_and_equal_constants():
    x = lg.placeholder((4, 3), name="x")
    y = x[np.array([0, 2])] + x[np.array([0, 2])] + x[np.array([1, 2])]
    f = compiled(y, ["cse", "dce"])
    assert ops_of(f.graph).count("getitem") == 2
    c1, c2 = lg.constant([1.0, 2.0]), lg.constant([1.0, 2.0])
    g = compiled(c1 * x[0, :2] + c2, ["cse", "dce"])
    assert len(g.graph.constants) == 1


def test_cse_never_merges_state_updates():
    w = lg.Variable(lg.zeros(2), name="w")
    v = lg.Variable(lg.zeros(2), name="v")
    u1, u2 = lg.assign(w, w + 1), lg.assign(v, v + 1)
    f = compiled([u1, u2], ["cse"])
    assert ops_of(f.graph).count("assign") == 2
    f()
    assert w.value.tolist() == v.value.tolist() == [1.0, 1.0]


def test_passes_run_inside_cond_and_while_bodies():
    x = lg.placeholder((3,), name="x")
    i, y = lg.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 0.5 + v * 0.5),
                         (lg.tensor(0), x))
    f = compiled(y, None)
    body = next(n for n in f.graph.nodes if n.kind == "while").subgraphs["body"]
    assert ops_of(body).count("mul") == 1
    np.testing.assert_allclose(f(np.ones(3, np.float32)).numpy(), [1, 1, 1])


# ---------------------------------------------------------------- random programs

UNARY = {"neg": lambda v: -v, "exp": lambda v: (v * 0.1).exp(), "tanh": lambda v: v.tanh(),
         "relu": lambda v: v.relu(), "times_one": lambda v: v * 1, "minus_zero": lambda v: v - 0,
         "transpose_twice": lambda v: v.transpose(1, 0).transpose(1, 0) * 0.5,
         "reshape_twice": lambda v: v.reshape(3, 2).reshape(6).reshape(2, 3),
         "dense": lambda v: v @ lg.constant(np.eye(3) * 0.5 + 0.1) + lg.constant(np.arange(3.0)),
         "dense_relu": lambda v: (v @ lg.constant(np.eye(3) - 0.2) + lg.constant(np.ones(3))).relu()}
BINARY = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b,
          "max": F.maximum}
SHAPE = (2, 3)


@st.composite
def programs(draw):
    """A straight-line program over values 0..: two fed inputs, a variable, a constant; some
    steps repeat an earlier one (CSE), some use only the constant (folding), some results are
    never used (DCE), and some are a cond or a while loop."""
    n = 4
    steps = []
    for _ in range(draw(st.integers(1, 9))):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "repeat", "reduce", "cond", "while"]))
        if kind == "repeat" and steps:
            steps.append(steps[draw(st.integers(0, len(steps) - 1))])
        elif kind == "unary" or (kind == "repeat" and not steps):
            steps.append(("unary", draw(st.sampled_from(sorted(UNARY))), (draw(st.integers(0, n - 1)),)))
        elif kind == "binary":
            steps.append(("binary", draw(st.sampled_from(sorted(BINARY))),
                          (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)))))
        elif kind == "reduce":
            steps.append(("reduce", draw(st.sampled_from([0, 1, None])), (draw(st.integers(0, n - 1)),)))
        else:
            steps.append((kind, None, (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)))))
        n += 1
    used = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    update = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return steps, used, update, seed


def run_steps(steps, values):
    values = list(values)
    for kind, name, args in steps:
        xs = [values[i] for i in args]
        if kind == "unary":
            v = UNARY[name](xs[0])
        elif kind == "binary":
            v = BINARY[name](*xs)
        elif kind == "reduce":
            v = (xs[0].sum(axis=name, keepdims=True) * 0.5).broadcast_to(SHAPE)
        elif kind == "cond":
            v = lg.cond(xs[0].sum() > 0, lambda a, b: a * b + a * b, lambda a, b: a - b, xs[0], xs[1])
        else:
            _, v = lg.while_loop(lambda i, a: i < 2, lambda i, a: (i + 1, a * 0.5 + xs[1] * 0.25),
                                 (lg.tensor(0), xs[0]), max_iterations=2)
        values.append(v)
    return values


def _build(prog, with_grads):
    steps, used, update, seed = prog
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(SHAPE)
    xs = [lg.placeholder(SHAPE, "float64", name=f"x{i}") for i in range(2)]
    w = lg.Variable(lg.tensor(w0, dtype="float64"), name="w")
    c = lg.constant(rng.standard_normal(SHAPE))
    values = run_steps(steps, [xs[0], xs[1], w, c])
    outs = [values[i] for i in used]
    loss = sum((o * o).sum() for o in outs)
    outputs = list(outs)
    if with_grads:
        grads = lg.gradients(loss, [xs[0], xs[1], w], allow_unused=True)
        outputs += [g for g in grads if g is not None]
    updates = [lg.assign(w, w - 0.1 * outs[0])] if update else []
    feeds = [rng.standard_normal(SHAPE) for _ in xs]
    return outputs, updates, xs, w, w0, feeds


def _run(f, w, w0, feeds):
    w.value.data[...] = w0
    out = f(*feeds)
    return [o.numpy() for o in out], w.value.numpy().copy()


def _check_preserved(prog, with_grads):
    outputs, updates, xs, w, w0, feeds = _build(prog, with_grads)
    base = lg.compile(outputs, inputs=xs, updates=updates, passes=())
    want, want_w = _run(base, w, w0, feeds)
    pipelines = [[name] for name in P.PASSES if name != "simplify_unsafe"] + [None]
    pipelines.append(["patterns", "fuse", "memory"])    # fusion and planning without the cleanups
    others = [rng_feed * 3 for rng_feed in feeds]
    for passes in pipelines:
        f = lg.compile(outputs, inputs=xs, updates=updates, passes=passes)
        for r in f.reports:
            r.after.verify()
        w.value.data[...] = w0
        held = f(*feeds)                       # results of one call, held by the caller...
        got = [o.numpy().copy() for o in held]
        got_w = w.value.numpy().copy()
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"passes={passes}")
        np.testing.assert_allclose(got_w, want_w, rtol=1e-12, err_msg=f"passes={passes}: the update")
        f(*others)                             # ...are not overwritten by the next call
        state = {v.id for v in f.graph.variables}   # (an output that is the variable, or a view
        for a, b, o in zip(held, got, f.graph.outputs):   # of it, is its live array: it changes)
            if not _may_alias(o, state):
                np.testing.assert_array_equal(a.numpy(), b, err_msg=f"passes={passes}: clobbered")
        # no pass adds work: a fused node stands for 2+ ops, and its `get`s only name its outputs
        work = [n for n in f.graph.nodes if n.op_name != "get"]
        assert len(work) <= len(base.graph.nodes) + len(f.graph.constants)


@given(programs())
def test_every_pass_preserves_what_a_forward_graph_computes(prog):
    _check_preserved(prog, with_grads=False)


@given(programs())
def test_every_pass_preserves_what_a_gradient_graph_computes(prog):
    _check_preserved(prog, with_grads=True)


def test_the_mlp_training_step_is_unchanged_by_the_pipeline():
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((4, 8)) * 0.3, np.zeros(8), rng.standard_normal((8, 3)) * 0.3, np.zeros(3)]
    xb, tb = rng.standard_normal((5, 4)).astype(np.float32), np.array([0, 1, 2, 1, 0])
    results = []
    for passes in ((), None):
        x = lg.placeholder((5, 4), "float32", name="x")
        t = lg.placeholder((5,), "int64", name="t")
        vs = [lg.Variable(lg.tensor(w, dtype="float32"), name=f"w{i}") for i, w in enumerate(ws)]
        loss = F.cross_entropy(F.relu(x @ vs[0] + vs[1]) @ vs[2] + vs[3], t)
        grads = lg.gradients(loss, vs)
        f = lg.compile(loss, inputs=[x, t], updates=[lg.assign(v, v - 0.1 * g) for v, g in zip(vs, grads)],
                       passes=passes)
        losses = [f(xb, tb).item() for _ in range(3)]
        results.append((losses, [v.value.numpy().copy() for v in vs]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# ---------------------------------------------------------------- algebraic simplification

def _simplified(y, passes=("simplify", "dce"), **kw):
    f = compiled(y, list(passes), **kw)
    return f, ops_of(f.graph)


def test_mul_one_and_sub_zero_hold_for_every_float_including_nan_and_signed_zero():
    a = lg.placeholder((5,), name="a")
    one = lg.constant(np.float32(1.0))
    f, ops = _simplified(((a * 1) * one - 0).exp())
    assert ops == ["placeholder", "exp"]
    assert [r[0] for r in f.reports[0].rewritten] == ["mul_one", "mul_one", "sub_zero"]
    x = np.array([np.nan, -0.0, np.inf, -np.inf, 2.0], np.float32)
    np.testing.assert_array_equal(f(x).numpy(), np.exp(x))


def test_identity_rules_do_not_apply_when_shape_or_dtype_would_change():
    a = lg.placeholder((3,), name="a")
    i = lg.placeholder((3,), "int64", name="i")
    _, ops = _simplified((a * lg.constant(np.ones((2, 3), np.float32))).sum())   # broadcasts
    assert "mul" in ops
    _, ops = _simplified((i * 1.0).sum())                                      # int * 1.0 is float
    assert "mul" in ops


def test_add_zero_only_for_integers_because_minus_zero_plus_zero_is_plus_zero():
    a = lg.placeholder((2,), name="a")
    i = lg.placeholder((2,), "int64", name="i")
    f, ops = _simplified((a + 0) * 1.5)
    assert "add" in ops
    x = np.array([-0.0, 1.0], np.float32)
    assert np.signbit(f(x).numpy()[0]) == np.signbit(((x + 0) * 1.5)[0]) == False   # noqa: E712
    g, ops = _simplified((i + 0) * 3)
    assert "add" not in ops and g.reports[0].rewritten[0][0] == "add_zero"


def test_mul_zero_only_for_integers_because_nan_times_zero_is_nan():
    a = lg.placeholder((2,), name="a")
    i = lg.placeholder((2,), "int64", name="i")
    f, ops = _simplified((a * 0) + 1)
    assert "mul" in ops
    assert np.isnan(f(np.array([np.nan, 1.0], np.float32)).numpy()[0])
    g, ops = _simplified((i * 0) + 1)
    assert "mul" not in ops and "full_like" in ops
    assert g(np.array([5, -7])).tolist() == [1, 1]


def test_double_negation_transpose_and_reshape():
    a = lg.placeholder((2, 3, 4), name="a")
    f, ops = _simplified((-(-a)).transpose(2, 0, 1).transpose(1, 2, 0).reshape(6, 4).reshape(2, 12) * 2)
    assert ops == ["placeholder", "reshape", "mul"]
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(f(x).numpy(), x.reshape(2, 12) * 2)
    g, ops = _simplified(a.transpose(1, 0, 2).transpose(0, 2, 1) * 2)   # composes to one transpose
    assert ops.count("transpose") == 1
    np.testing.assert_array_equal(g(x).numpy(), x.transpose(1, 0, 2).transpose(0, 2, 1) * 2)
    h, ops = _simplified(a.reshape(6, 4).reshape(2, 3, 4) + 1)
    assert "reshape" not in ops


def test_exp_log_is_unsafe_and_never_runs_by_default():
    a = lg.placeholder((2,), "float64", name="a")
    y = a.log().exp() * 2
    assert "log" in ops_of(lg.compile(y).graph)
    f = compiled(y, ["simplify_unsafe", "dce"])
    assert "log" not in ops_of(f.graph)
    x = np.array([3.0, -1.0])
    with np.errstate(invalid="ignore"):
        safe = lg.compile(y, passes=())(x).numpy()
    assert safe[0] != 6.0 and np.isnan(safe[1])            # rounding, and NaN for x < 0 ...
    assert f(x).numpy().tolist() == [6.0, -2.0]           # ... which the unsafe rule loses


def test_an_output_never_aliases_an_input_or_a_variable():
    a = lg.placeholder((3,), name="a")
    w = lg.Variable(lg.ones(3), name="w")
    f = compiled([a * 1, w * 1, (a * 2) * 1], ["simplify", "dce"])
    assert ops_of(f.graph).count("mul") == 3            # a * 1 and w * 1 stay; (a * 2) * 1 goes
    x = np.zeros(3, np.float32)
    out = f(x)
    out[0].data[...] = 5
    out[1].data[...] = 5
    assert x.tolist() == [0, 0, 0] and w.value.tolist() == [1, 1, 1]


# ---------------------------------------------------------------- pattern fusion

def test_fma_replaces_a_product_plus_a_value():
    a = lg.placeholder((3,), name="a")
    b = lg.placeholder((3,), name="b")
    f = compiled((a * b + 1) * 2 + (3 + a * 0.5), ["patterns", "dce"])
    # a*b + 1, a*0.5 + 3, and then (a*b + 1) * 2 + (a*0.5 + 3): three fmas
    assert ops_of(f.graph) == ["placeholder", "placeholder", "fma", "fma", "fma"]
    assert [parts for parts, _ in f.reports[0].fused] == [(2, 3), (5, 6), (4, 7)]
    x, y = np.array([1, 2, 3], np.float32), np.array([0.5, -1, 2], np.float32)
    got = f(x, y).numpy()
    assert got.dtype == np.float32   # the Python 0.5 and 1 keep it float32
    np.testing.assert_array_equal(got, lg.compile((a * b + 1) * 2 + (3 + a * 0.5), passes=())(x, y).numpy())


def test_fma_is_not_fused_when_the_product_is_needed_anyway():
    a = lg.placeholder((3,), name="a")
    p = a * a
    f = compiled([p + 1, p.exp()], ["patterns"])
    assert "fma" not in ops_of(f.graph)
    assert f.reports[0].not_fused == ((2, "fma: %1 has 2 users, so it is computed anyway"),)
    g = compiled([p + 1, p], ["patterns"])
    assert "fma" not in ops_of(g.graph) and "is an output" in g.reports[0].not_fused[0][1]


def test_fma_leaves_a_product_added_to_itself_alone():
    """add(p, p) reads the product twice: fma(a, b, p) would compute it twice."""
    a = lg.placeholder((3,), name="a")
    b = lg.placeholder((3,), name="b")
    p = a * b
    f = compiled(p + p, ["patterns", "dce"])
    assert ops_of(f.graph) == ["placeholder", "placeholder", "mul", "add"]
    assert f.reports[0].not_fused == ((3, "fma: both inputs are %2"),) and not f.reports[0].fused
    x, y = np.array([1, 2, 3], np.float32), np.array([0.5, -1, 2], np.float32)
    np.testing.assert_array_equal(f(x, y).numpy(), 2 * x * y)


def test_matmul_plus_bias_plus_relu_becomes_linear():
    x = lg.placeholder((None, 4), name="x")
    w = lg.Variable(lg.randn(4, 3), name="w")
    b = lg.Variable(lg.randn(3), name="b")
    f = compiled((x @ w + b).relu(), ["dce", "fold", "simplify", "cse", "patterns", "dce"])
    assert ops_of(f.graph) == ["placeholder", "variable", "variable", "linear"]
    assert f.graph.nodes[-1].attrs["relu"] is True
    assert [parts for parts, _ in f.reports[-2].fused] == [(3, 4, 5)]   # matmul, add, relu
    xb = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(f(xb).numpy(), np.maximum(xb @ w.value.numpy() + b.value.numpy(), 0), rtol=1e-6)


def test_linear_keeps_the_relu_apart_when_the_sum_is_used_elsewhere():
    x = lg.placeholder((2, 4), name="x")
    w = lg.constant(np.ones((4, 3), np.float32))
    b = lg.placeholder((3,), name="b")
    h = x @ w + b
    f = compiled([h.relu(), h.sum()], ["patterns", "dce"])
    ops = ops_of(f.graph)
    assert "linear" in ops and "relu" in ops
    assert any("linear+relu" in why for _, why in f.reports[0].not_fused)


def test_linear_only_where_the_bias_fits_the_product():
    x = lg.placeholder((2, 4), name="x")
    w = lg.placeholder((4, 3), name="w")
    wide = lg.placeholder((5, 1, 3), name="wide")            # would widen the result
    b64 = lg.placeholder((3,), "float64", name="b64")        # would promote it to float64
    batch = lg.placeholder((6, 2, 4), name="batch")          # a batched matmul
    f = compiled([x @ w + wide, x @ w + b64, batch @ w + wide[0, 0]], ["patterns"])
    assert "linear" not in ops_of(f.graph)


def test_jit_mlp_forward_becomes_linear_layers():
    model = lg.nn.Sequential(lg.nn.Linear(4, 8), lg.nn.ReLU(), lg.nn.Linear(8, 2))
    step = lg.jit(lambda x: model(x), passes=["patterns", "dce"])
    x = lg.randn(3, 4)
    with lg.no_grad():
        want = model(x).numpy()
        got = step(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert ops_of(step.graph).count("linear") == 2


def test_enable_fusion_puts_the_fusion_passes_after_cse(monkeypatch):
    monkeypatch.setattr(P, "DEFAULT_PIPELINE", ["dce", "fold", "simplify", "cse", "dce"])
    assert P.enable_fusion() == ["dce", "fold", "simplify", "cse", "patterns", "fuse", "dce"]
    assert P.enable_fusion(["patterns", "fuse"]) == ["dce", "fold", "simplify", "cse", "patterns", "fuse", "dce"]
