"""Fused kernels (labgrad/backends/fusion*.py): every op's ``expr`` in a generated kernel computes
what eager NumPy computes, with the same dtypes; reductions; caches; the NumPy fallback; CUDA
source that NVRTC compiles.

The reference is always the op's own NumPy ``forward`` (or ``np.sum``/``np.mean``/``np.max``)
on the same arrays, never the code under test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from labgrad.backends import get_backend
from labgrad.backends.fusion import FusedKernel, FusionError
from labgrad.backends.fusion_cpu import cache_info, compile_cpu, have_numba
from labgrad.backends.fusion_cuda import CudaSource, check_source, nvrtc_available, nvrtc_compile
from labgrad.ops import elementwise as E
from labgrad.ops.registry import REGISTRY, Aval

ENGINES = [pytest.param("numba", marks=pytest.mark.skipif(not have_numba(), reason="Numba is not installed")),
           "numpy"]

FUSIBLE = sorted(name for name, op in REGISTRY.items() if op.expr is not None)
ATTRS = {"leaky_relu": {"alpha": 0.1}, "clip": {"lo": -0.5, "hi": 0.5}}
POSITIVE = {"log", "sqrt", "pow"}           # ops whose reference needs positive inputs
TRANSCENDENTAL = {"exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "gelu", "pow"}


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path_factory, monkeypatch):
    """Generated modules go to a per-session temporary cache directory."""
    monkeypatch.setenv("LABGRAD_KERNEL_CACHE", str(tmp_path_factory.getbasetemp() / "kernels"))


def arity(op):
    return max(int(c) for c in "0123" if "{" + c + "}" in op.expr) + 1


def sample(rng, dtype, shape, positive=False):
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = 1 if positive or dtype.kind == "u" else -4
        return rng.integers(lo, 5, size=shape).astype(dtype)
    lo = 0.25 if positive else -2.0
    return rng.uniform(lo, 2.0, size=shape).astype(dtype)


def one_step(op, dtypes, shapes, attrs):
    names = [f"x{k}" for k in range(len(dtypes))]
    inputs = [(n, d, s) for n, d, s in zip(names, dtypes, shapes) if not isinstance(d, float)]
    refs = [d if isinstance(d, float) else n for n, d in zip(names, dtypes)]
    return FusedKernel(inputs, [("y", op, refs, attrs)], ["y"])


def check_same(got, want, opname, exact):
    assert got.dtype == want.dtype, f"{opname}: dtype {got.dtype}, eager NumPy gives {want.dtype}"
    assert got.shape == want.shape
    if exact or got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=opname)
    else:
        rtol = 2e-6 if got.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=opname)


# the dtype combinations each op is tried with (combinations eager NumPy rejects are skipped)
COMBOS = [("float32",), ("float64",), ("int32",), ("bool",), ("int8",), ("uint8",),
          ("float32", 0.5), ("int32", 0.5), ("float32", "float64"), ("int32", "float32"),
          ("int8", "int8"), ("bool", "bool"), ("bool", "float32", "float32"),
          ("float32", "float32", "float32"), ("int16", "uint8")]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("opname", FUSIBLE)
def test_every_op_expr_matches_eager_numpy(opname, engine):
    op = REGISTRY[opname]
    n = arity(op)
    attrs = ATTRS.get(opname, {"dtype": np.dtype("int16")} if opname == "cast" else {})
    rng = np.random.default_rng(abs(hash(opname)) % 2**32)
    tried = 0
    for combo in COMBOS:
        if len(combo) != n:
            continue
        shapes = [(3, 4), (4,), (3, 1)][:n]
        arrays = [d if isinstance(d, float) else sample(rng, d, s, opname in POSITIVE)
                  for d, s in zip(combo, shapes)]
        try:
            with np.errstate(all="ignore"):
                want = np.asarray(op.forward(np, *arrays, **attrs))
        except TypeError:                   # eager NumPy rejects these dtypes: so must fusion
            with pytest.raises(FusionError):
                compile_cpu(one_step(op, combo, shapes, attrs), engine)(
                    *[a for a in arrays if not isinstance(a, float)])
            continue
        if want.dtype == np.float16:        # NumPy's exp(int8) is float16: not fusible, and says so
            with pytest.raises(FusionError, match="float16"):
                one_step(op, combo, shapes, attrs)
            continue
        kernel = one_step(op, combo, shapes, attrs)
        avals = [d if isinstance(d, float) else Aval(s, d) for d, s in zip(combo, shapes)]
        assert kernel.outputs[0].dtype == op.infer(*avals, **attrs).dtype   # infer agrees
        with np.errstate(all="ignore"):
            got = compile_cpu(kernel, engine)(*[a for a in arrays if not isinstance(a, float)])
        check_same(got, want, f"{opname}{combo}", exact=opname not in TRANSCENDENTAL)
        tried += 1
    assert tried >= 2, f"{opname}: fewer than two dtype combinations were exercised"


@pytest.mark.parametrize("engine", ENGINES)
def test_float32_stays_float32_with_python_float_attributes(engine):
    k = FusedKernel([("x", "float32", None)],
                    [("a", E.leaky_relu, ("x",), {"alpha": 0.01}), ("b", E.mul, ("a", 0.5), {}),
                     ("c", E.add, ("b", 1), {}), ("d", E.clip, ("c",), {"lo": 0.0, "hi": 1.5}),
                     ("e", E.gelu, ("d",), {})], ["e"])
    assert [s.dtype for s in k.steps] == [np.dtype("float32")] * 5
    ck = compile_cpu(k, engine)
    assert "float64" not in "\n".join(ln for ln in ck.source.splitlines() if "=" in ln and "import" not in ln)
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    a = np.where(x > 0, x, x * 0.01)
    want = E.gelu.forward(np, np.clip(a * 0.5 + 1, 0.0, 1.5))
    check_same(ck(x), want, "float32 chain", exact=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_integer_wraparound_casts_and_bools(engine):
    k = FusedKernel([("a", "int8", None), ("b", "int8", None), ("m", "bool", None)],
                    [("s", E.add, ("a", "b"), {}), ("p", E.mul, ("s", "s"), {}),
                     ("f", E.cast, ("p",), {"dtype": np.dtype("float32")}),
                     ("h", E.div, ("f", 3), {}), ("w", E.where, ("m", "h", "s"), {}),
                     ("g", E.gt, ("w", 0), {}), ("k", E.logical_and, ("g", "m"), {}),
                     ("i", E.cast, ("h",), {"dtype": np.dtype("int32")}),
                     ("q", E.div, ("a", "b"), {})], ["p", "w", "k", "i", "q"])
    a = np.array([100, -100, 7, 127, -128, 3], np.int8)
    b = np.array([100, -100, -9, 1, -1, 0], np.int8)
    m = np.array([True, False, True, False, True, True])
    with np.errstate(all="ignore"):
        s = a + b
        p = s * s
        h = p.astype(np.float32) / 3
        w = np.where(m, h, s)
        want = [p, w, np.logical_and(w > 0, m), h.astype(np.int32), a / b]
        got = compile_cpu(k, engine)(a, b, m)
    for g, w_ in zip(got, want):
        check_same(g, w_, "int8 chain", exact=True)


CHAIN = [("t0", E.mul, ("a", "b"), {}), ("t1", E.add, ("t0", "c"), {}), ("t2", E.mul, ("t1", "d"), {}),
         ("t3", E.sub, ("t2", "a"), {}), ("t4", E.mul, ("t3", 0.5), {}), ("t5", E.mul, ("b", "c"), {}),
         ("t6", E.add, ("t4", "t5"), {}), ("t7", E.sub, ("t6", "d"), {})]


def chain_numpy(a, b, c, d):
    return ((a * b + c) * d - a) * 0.5 + b * c - d


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shapes", [
    [(1000,)] * 4,
    [(3, 1, 5), (4, 5), (5,), ()],
    [(2, 3, 4), (2, 1, 4), (1, 3, 1), (4,)],
    [(6, 1), (1, 7), (6, 7), (1, 1)],
    [(0, 3), (3,), (1, 3), ()],
])
def test_chain_with_broadcasting_and_several_outputs(engine, shapes):
    k = FusedKernel([(n, "float32", None) for n in "abcd"], CHAIN, ["t7", "t5", "t0"])
    rng = np.random.default_rng(1)
    a, b, c, d = [sample(rng, "float32", s) for s in shapes]
    t7, t5, t0 = compile_cpu(k, engine)(a, b, c, d)
    check_same(t7, chain_numpy(a, b, c, d), "chain", exact=True)
    check_same(t5, b * c, "b*c", exact=True)
    check_same(t0, a * b, "a*b", exact=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_non_contiguous_and_scalar_inputs(engine):
    k = FusedKernel([(n, "float32", None) for n in "abcd"], CHAIN, ["t7"])
    rng = np.random.default_rng(2)
    base = sample(rng, "float32", (6, 8))
    a, b, c, d = base.T, base[::2, ::-1].T[:, :1], base[:, 0], np.float32(3.0)
    check_same(compile_cpu(k, engine)(a, b, c, d), chain_numpy(a, b, c, d), "strided", exact=True)


def test_expressions_inline_every_step():
    k = FusedKernel([(n, "float32", None) for n in "abcd"], CHAIN, ["t7", "t5"])
    exprs = k.expressions()
    assert exprs["t5"] == "b * c"
    rng = np.random.default_rng(3)
    env = {n: sample(rng, "float32", (50,)) for n in "abcd"}
    value = eval(exprs["t7"], {"np": np, "float32": np.float32}, dict(env))
    check_same(value, chain_numpy(**env), "inlined", exact=True)


# ---------------------------------------------------------------- reductions

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["sum", "mean", "max"])
@pytest.mark.parametrize("axes,keepdims", [((1,), True), ((0,), False), (None, False), ((0, 2), True),
                                           ((2,), False), ((-1,), True)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_reduction_fusion_matches_numpy(engine, kind, axes, keepdims, dtype):
    if dtype == "bool":
        steps, expr = [("y", E.logical_and, ("x", "m"), {})], lambda x, m: np.logical_and(x, m)
    else:
        steps = [("e", E.sub, ("x", "m"), {}), ("y", E.mul, ("e", "e"), {})]
        expr = lambda x, m: (x - m) * (x - m)  # noqa: E731
    k = FusedKernel([("x", dtype, None), ("m", dtype, None)], steps, ["y"], reduce=(kind, axes, keepdims))
    rng = np.random.default_rng(4)
    x, m = sample(rng, dtype, (5, 6, 7)), sample(rng, dtype, (5, 1, 7))
    value = expr(x, m)
    want = getattr(np, kind)(value, axis=axes, keepdims=keepdims)
    got = compile_cpu(k, engine)(x, m)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_softmax_pieces_fuse_into_reductions(engine):
    rng = np.random.default_rng(5)
    x = sample(rng, "float32", (32, 10))
    mx = compile_cpu(FusedKernel([("x", "float32", None)], [], ["x"], reduce=("max", (1,), True)), engine)(x)
    k = FusedKernel([("x", "float32", None), ("m", "float32", None)],
                    [("z", E.sub, ("x", "m"), {}), ("e", E.exp, ("z",), {})], ["e"], reduce=("sum", (1,), True))
    s = compile_cpu(k, engine)(x, mx)
    np.testing.assert_array_equal(mx, x.max(axis=1, keepdims=True))
    check_same(s, np.exp(x - mx).sum(axis=1, keepdims=True), "softmax denominator", exact=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_reduction_edge_cases(engine):
    k = FusedKernel([("x", "float64", None)], [("y", REGISTRY["abs"], ("x",), {})], ["y"], reduce=("max", (0,), False))
    x = np.array([[1.0, -5.0], [np.nan, 2.0]])
    np.testing.assert_array_equal(compile_cpu(k, engine)(x), np.max(np.abs(x), axis=0))  # NaN wins
    rows = FusedKernel([("x", "float32", None)], [("y", E.neg, ("x",), {})], ["y"], reduce=("max", (1,), False))
    x32 = np.array([[1, np.nan, 3], [4, 5, -6], [np.nan, 0, 0]], np.float32)
    np.testing.assert_array_equal(compile_cpu(rows, engine)(x32), np.max(-x32, axis=1))   # row-wise
    with pytest.raises(ValueError, match="zero-size"):
        compile_cpu(k, engine)(np.zeros((0, 3)))
    s = FusedKernel([("x", "float32", None)], [("y", E.mul, ("x", 2), {})], ["y"], reduce=("sum", None, True))
    assert compile_cpu(s, engine)(np.ones((0, 3), np.float32)).shape == (1, 1)
    big = np.full(10**6, 0.1, np.float32)      # float32 sum accumulates in float64: accurate
    assert abs(float(compile_cpu(s, engine)(big)[0]) - 2e5) < 2e5 * 1e-6


# ---------------------------------------------------------------- caching

@pytest.mark.skipif(not have_numba(), reason="Numba is not installed")
def test_memory_cache_hits_by_expression_dtypes_and_pattern():
    def kernel(dtype):
        return FusedKernel([(n, dtype, None) for n in "abcd"], CHAIN, ["t7"])

    x = np.ones(10, np.float32)
    compile_cpu(kernel("float32"))(x, x, x, x)
    before = cache_info()
    compile_cpu(kernel("float32"))(x, x, x, x)          # same expression, dtypes and pattern
    after = cache_info()
    assert after["hits"] == before["hits"] + 1 and after["compiles"] == before["compiles"]
    compile_cpu(kernel("float32"))(x[:, None], x, x, x)  # a new broadcast pattern: a new loop
    assert cache_info()["compiles"] == after["compiles"] + 1
    y = np.ones(10)
    compile_cpu(kernel("float64"))(y, y, y, y)           # new dtypes: a new kernel
    assert cache_info()["compiles"] == after["compiles"] + 2
    assert kernel("float32").key == kernel("float32").key != kernel("float64").key


@pytest.mark.skipif(not have_numba(), reason="Numba is not installed")
def test_numba_disk_cache_serves_a_new_process(tmp_path):
    script = textwrap.dedent("""
        import numpy as np
        from labgrad.backends.fusion import FusedKernel
        from labgrad.backends.fusion_cpu import compile_cpu
        from labgrad.ops import elementwise as E
        k = FusedKernel([("a", "float32", None), ("b", "float32", None)],
                        [("y", E.mul, ("a", "b"), {}), ("z", E.tanh, ("y",), {})], ["z"])
        ck = compile_cpu(k)
        ck(np.ones(4, np.float32), np.ones(4, np.float32))
        (fn,) = ck._fns.values()
        print(sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values()))
    """)
    env = dict(os.environ, LABGRAD_KERNEL_CACHE=str(tmp_path), PYTHONPATH=os.getcwd())
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout.split() == ["0", "1"]     # compiled, and saved next to the module
    assert runs[1].stdout.split() == ["1", "0"]     # loaded from disk: no compile
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))


# ---------------------------------------------------------------- the NumPy fallback

def test_without_numba_the_numpy_fallback_runs(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)     # `import numba` now raises ImportError
    assert not have_numba()
    k = FusedKernel([(n, "float32", None) for n in "abcd"], CHAIN, ["t7"])
    ck = get_backend("cpu").compile_fused(k)
    assert ck.engine == "numpy" and "numba" not in ck.source
    assert "out=" in ck.source                          # ufuncs write into reused buffers
    rng = np.random.default_rng(6)
    a, b, c, d = [sample(rng, "float32", (3, 4)) for _ in range(4)]
    check_same(ck(a, b, c, d), chain_numpy(a, b, c, d), "fallback", exact=True)
    r = FusedKernel([("x", "float32", None)], [("e", E.exp, ("x",), {})], ["e"], reduce=("mean", (0,), False))
    check_same(compile_cpu(r)(a), np.exp(a).mean(axis=0), "fallback mean", exact=False)


# ---------------------------------------------------------------- source, errors, backend

def test_source_is_readable():
    k = FusedKernel([(n, "float32", (None,)) for n in "abcd"], CHAIN, ["t7"])
    src = get_backend("cpu").compile_fused(k).source
    for name in "abcd":
        assert f"{name}[" in src or f"{name}," in src
    lines = [ln for ln in src.splitlines() if ln.strip().startswith("t")]
    assert len(lines) == len(CHAIN) and all("# " in ln for ln in lines)
    assert "t4 = t3 * float32(0.5)  # mul" in src
    cuda = CudaSource(k).text
    assert "float t4 = t3 * 0.5f;  // mul" in cuda and "ElementwiseKernel" in cuda


def test_what_cannot_be_fused_says_why():
    with pytest.raises(FusionError, match="float16"):
        FusedKernel([("x", "float16", None)], [("y", E.exp, ("x",), {})], ["y"])
    with pytest.raises(FusionError, match="no expr"):
        FusedKernel([("x", "float32", None)], [("y", REGISTRY["sum"], ("x",), {})], ["y"])
    with pytest.raises(FusionError, match="neither an input nor an earlier step"):
        FusedKernel([("x", "float32", None)], [("y", E.exp, ("z",), {})], ["y"])
    with pytest.raises(FusionError, match="not a number"):
        FusedKernel([("x", "float32", None)], [("y", E.leaky_relu, ("x",), {"alpha": "big"})], ["y"])
    with pytest.raises(FusionError, match="cannot broadcast"):
        compile_cpu(FusedKernel([("x", "float32", None), ("z", "float32", None)],
                                [("y", E.add, ("x", "z"), {})], ["y"]))(np.ones(3, np.float32),
                                                                        np.ones(4, np.float32))


def test_odd_names_are_renamed_in_code_only():
    k = FusedKernel([("x.0", "float32", None), ("i", "float32", None), ("float32", "float32", None)],
                    [("out0", E.add, ("x.0", "i"), {}), ("%3", E.mul, ("out0", "float32"), {})], ["%3"])
    x = np.arange(4, dtype=np.float32)
    check_same(compile_cpu(k)(x, x, x), (x + x) * x, "renamed", exact=True)


# ---------------------------------------------------------------- CUDA source through NVRTC

NVRTC_OK, NVRTC_WHY = nvrtc_available()
needs_nvrtc = pytest.mark.skipif(not NVRTC_OK, reason=f"NVRTC is not available: {NVRTC_WHY}")


@needs_nvrtc
@pytest.mark.parametrize("opname", FUSIBLE)
def test_cuda_source_of_every_op_compiles_with_nvrtc(opname):
    op = REGISTRY[opname]
    n = arity(op)
    attrs = ATTRS.get(opname, {"dtype": np.dtype("int16")} if opname == "cast" else {})
    sources = []
    for combo in COMBOS:
        if len(combo) != n:
            continue
        try:
            kernel = one_step(op, combo, [None] * n, attrs)
        except FusionError:
            continue
        sources.append(check_source(kernel))
    assert sources
    nvrtc_compile("\n".join(_unique_kernels(sources)), f"{opname}.cu")


def _unique_kernels(sources):
    """Several translation units as one (the shared preamble once)."""
    from labgrad.backends.fusion_cuda import PREAMBLE
    return [PREAMBLE] + [s.replace(PREAMBLE, "") for s in dict.fromkeys(sources)]


@needs_nvrtc
@pytest.mark.parametrize("kind", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "bool"])
def test_cuda_reduction_source_compiles_with_nvrtc(kind, dtype):
    if dtype == "bool":
        steps = [("y", E.logical_not, ("x",), {})]
    elif dtype.startswith("float"):
        steps = [("e", E.sub, ("x", "m"), {}), ("y", E.exp, ("e",), {})]
    else:
        steps = [("e", E.sub, ("x", "m"), {}), ("y", E.mul, ("e", "e"), {})]
    k = FusedKernel([("x", dtype, None), ("m", dtype, None)], steps, ["y", "e"] if dtype != "bool" else ["y"],
                    reduce=(kind, (1,), True))
    ptx = nvrtc_compile(check_source(k), f"{kind}_{dtype}.cu")
    assert ".entry" in ptx


@needs_nvrtc
def test_cuda_chain_compiles_and_a_broken_source_is_reported():
    k = FusedKernel([(n, "float32", None) for n in "abcd"], CHAIN, ["t7"])
    ptx = nvrtc_compile(check_source(k), "chain.cu", arch="compute_90")
    assert f".entry {k.name}" in ptx and ".f64" not in ptx      # float32 all the way
    with pytest.raises(RuntimeError, match="undefined"):
        nvrtc_compile(check_source(k).replace("t3 * 0.5f", "t3 * undefined_thing"), "broken.cu")


# ---------------------------------------------------------------- random programs

RANDOM_OPS = ["add", "sub", "mul", "maximum", "minimum", "where", "relu", "leaky_relu", "tanh",
              "sigmoid", "neg", "abs", "clip", "cast", "gt", "le", "logical_and", "logical_not",
              "relu_grad", "tanh_grad", "sign", "sin"]


def random_program(seed):
    """A random group of 8 steps over inputs of mixed dtypes and broadcastable shapes, with the
    reference values computed step by step by each op's eager ``forward``."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 5), (5,), (4, 1), ()]
    inputs, values = [], {}
    for k in range(4):
        dtype = rng.choice(["float32", "float32", "float64", "int32", "bool"])
        name = f"x{k}"
        inputs.append((name, dtype, None))
        values[name] = sample(rng, dtype, shapes[k])
    steps = []
    while len(steps) < 8:
        op = REGISTRY[str(rng.choice(RANDOM_OPS))]
        names = list(values)
        refs = [str(rng.choice(names[-4:] if rng.random() < 0.7 else names)) for _ in range(arity(op))]
        if rng.random() < 0.2 and len(refs) == 2:
            refs[1] = float(rng.choice([0.5, 2.0, -1.5])) if rng.random() < 0.5 else int(rng.integers(1, 3))
        attrs = ATTRS.get(op.name, {"dtype": np.dtype(str(rng.choice(["float32", "int32", "bool"])))}
                          if op.name == "cast" else {})
        try:
            with np.errstate(all="ignore"):
                value = np.asarray(op.forward(np, *[values[r] if isinstance(r, str) else r for r in refs], **attrs))
        except TypeError:
            continue
        if value.dtype == np.float16:
            continue
        name = f"s{len(steps)}x"
        steps.append((name, op, tuple(refs), attrs))
        values[name] = value
    outputs = [steps[-1][0], steps[len(steps) // 2][0]]
    return inputs, steps, outputs, values


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", range(40))
def test_random_programs_match_eager_step_by_step(seed, engine):
    inputs, steps, outputs, values = random_program(seed)
    kernel = FusedKernel(inputs, steps, outputs)
    with np.errstate(all="ignore"):
        got = compile_cpu(kernel, engine)(*[values[name] for name, _, _ in inputs])
    for g, name in zip(got, outputs):
        want = values[name]
        assert (g.dtype, g.shape) == (want.dtype, want.shape), name
        if want.dtype.kind == "f":
            tol = 1e-5 if want.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, want, rtol=tol, atol=tol, equal_nan=True, err_msg=kernel.expressions()[name])
        else:
            np.testing.assert_array_equal(g, want, err_msg=kernel.expressions()[name])


def test_step_dtypes_given_by_the_graph_are_used():
    avals = [Aval((3,), "float32"), 0.5]
    dtype = E.mul.infer(*avals).dtype
    k = FusedKernel([("x", "float32", (3,))], [("y", E.mul, ("x", 0.5), {}, dtype)], ["y"])
    assert k.outputs[0].dtype == np.float32
    forced = FusedKernel([("x", "float32", (3,))], [("y", E.mul, ("x", 0.5), {}, "float64")], ["y"])
    assert compile_cpu(forced)(np.ones(3, np.float32)).dtype == np.float64


def test_cupy_kernel_objects_are_built_from_the_source():
    """Constructing CuPy's kernels needs no GPU (they compile on first launch)."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    from labgrad.backends.fusion_cuda import compile_cuda

    k = FusedKernel([("x", "float32", None), ("m", "float32", None)],
                    [("z", E.sub, ("x", "m"), {}), ("e", E.exp, ("z",), {})], ["e", "z"])
    built = compile_cuda(k, cupy)._build()
    assert type(built).__name__ == "ElementwiseKernel" and (built.nin, built.nout) == (2, 2)
    r = FusedKernel([("x", "float32", None)], [("e", E.exp, ("x",), {})], ["e"], reduce=("mean", (1,), True))
    assert [type(b).__name__ for b in compile_cuda(r, cupy)._build()] == ["ReductionKernel"]
