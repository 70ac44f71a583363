"""Fused elementwise kernels (issue 8): one generated loop against the memory-bandwidth floor.

The 8-op chain ``((a*b + c)*d - a)*0.5 + b*c - d`` on four float32 arrays of 10^7 elements,
single thread, in one run:

* ``floor``: the least time any kernel can take: 4 inputs read and 1 output written once
  (5 x 40 MB), at the bandwidth of a large ``np.copyto`` measured in this run
  (bandwidth = bytes read + bytes written by the copy, divided by its time);
* ``fused``: labgrad's generated Numba kernel (``FusedKernel`` -> ``compile_cpu``), writing
  into a preallocated output, as a compiled graph with memory planning would call it;
* ``fused (new output)``: the same, allocating its output on every call;
* ``hand numba``: the same loop written by hand with ``@numba.njit``, preallocated output;
* ``lg.compile``: the expression written with labgrad placeholders and compiled with the default
  pass pipeline (elementwise fusion makes it one ``fused`` node; its result is returned to the
  caller: a new array while the caller holds the last one, else that array is written again);
* ``numpy``: the expression as eager NumPy writes it (seven temporaries, 8 passes over memory).

Targets: fused at most 1.3x the floor, at most 1.25x hand-written Numba, at least 3x faster
than NumPy; the same for ``lg.compile``. Also measured: the compile time of the kernel in a fresh process, with an empty
kernel cache (Numba compiles) and with a warm one (Numba loads the machine code from disk).
Run: ``python benchmarks/fusion.py``.
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

N = 10**6 if _timing.QUICK else 10**7
TARGETS = {"floor": 1.3, "hand numba": 1.25, "numpy": 3.0}   # fused <= 1.3x floor, <= 1.25x hand, numpy >= 3x fused


def chain_kernel():
    from labgrad.backends.fusion import FusedKernel
    from labgrad.ops import elementwise as E

    steps = [("t0", E.mul, ("a", "b"), {}), ("t1", E.add, ("t0", "c"), {}),
             ("t2", E.mul, ("t1", "d"), {}), ("t3", E.sub, ("t2", "a"), {}),
             ("t4", E.mul, ("t3", 0.5), {}), ("t5", E.mul, ("b", "c"), {}),
             ("t6", E.add, ("t4", "t5"), {}), ("t7", E.sub, ("t6", "d"), {})]
    return FusedKernel([(n, "float32", (None,)) for n in "abcd"], steps, ["t7"])


def hand_numba():
    import numba

    @numba.njit(error_model="numpy")
    def chain(a, b, c, d, out):
        for i in range(a.shape[0]):
            out[i] = ((a[i] * b[i] + c[i]) * d[i] - a[i]) * np.float32(0.5) + b[i] * c[i] - d[i]
    return chain


def compiled_chain():
    """The chain as a labgrad program, compiled with the default passes."""
    import labgrad as lg

    a, b, c, d = (lg.placeholder((N,), "float32", name=n) for n in "abcd")
    return lg.compile(((a * b + c) * d - a) * 0.5 + b * c - d)


def numpy_chain(a, b, c, d):
    return ((a * b + c) * d - a) * 0.5 + b * c - d


COMPILE_SCRIPT = """
import time, sys
t0 = time.perf_counter()
import numpy as np
import numba  # noqa: F401  (import cost is reported apart from the compile)
sys.path.insert(0, {here!r})
from fusion import chain_kernel
from labgrad.backends.fusion_cpu import compile_cpu
import labgrad.ops.elementwise  # noqa: F401
t1 = time.perf_counter()
k = compile_cpu(chain_kernel())
x = np.ones(8, np.float32)
k(x, x, x, x)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def compile_times():
    """Seconds to build and first run the kernel in a fresh process: cold cache, then warm."""
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, LABGRAD_KERNEL_CACHE=cache,
                   PYTHONPATH=os.pathsep.join([os.path.dirname(here), os.environ.get("PYTHONPATH", "")]))
        out = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT.format(here=here)], env=env,
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            imports, compile_s = map(float, r.stdout.split())
            out.append({"imports_s": imports, "compile_and_first_call_s": compile_s})
    return {"cold": out[0], "warm": out[1]}


def gpu_times():
    """Where CuPy sees a GPU: the fused CuPy kernel against unfused CuPy and the device's copy
    floor (issue 8: >= 3x faster than unfused, within 1.5x of the floor), timed with CUDA events
    over many calls. ``None`` without a GPU."""
    import labgrad as lg

    if not lg.cuda.is_available():
        return None
    from labgrad.backends import get_backend

    backend = get_backend("cuda")
    cp = backend.xp
    kernel = backend.compile_fused(chain_kernel())
    rng = cp.random.default_rng(0)
    a, b, c, d = (rng.standard_normal(N, dtype=cp.float32) for _ in range(4))
    src, dst = rng.standard_normal(N, dtype=cp.float32), cp.empty(N, cp.float32)
    cp.testing.assert_allclose(kernel(a, b, c, d), numpy_chain(a, b, c, d), rtol=1e-6, atol=1e-6)

    def per_call(fn, calls=50, repeats=7):
        for _ in range(5):
            fn()
        samples = []
        for _ in range(repeats):
            start, end = cp.cuda.Event(), cp.cuda.Event()
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            samples.append(cp.cuda.get_elapsed_time(start, end) / 1e3 / calls)
        return sorted(samples)[len(samples) // 2]

    out = cp.empty(N, cp.float32)
    t = {"copy": per_call(lambda: cp.copyto(dst, src)),
         "fused": per_call(lambda: kernel(a, b, c, d, out=out)),
         "cupy": per_call(lambda: numpy_chain(a, b, c, d))}
    floor = 5 * N * 4 / (2 * N * 4 / t["copy"])
    return {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "times_s": t,
            "floor_s": floor, "fused_over_floor": t["fused"] / floor,
            "cupy_over_fused": t["cupy"] / t["fused"],
            "met": {"fused_over_floor <= 1.5": t["fused"] / floor <= 1.5,
                    "cupy_over_fused >= 3": t["cupy"] / t["fused"] >= 3}}


def main():
    from labgrad.backends.fusion_cpu import compile_cpu

    rng = np.random.default_rng(0)
    a, b, c, d = (rng.standard_normal(N).astype(np.float32) for _ in range(4))
    out = np.empty(N, np.float32)
    kernel = compile_cpu(chain_kernel())
    hand = hand_numba()
    want = numpy_chain(a, b, c, d)
    compiled = compiled_chain()
    assert [n.kind for n in compiled.graph.nodes].count("fused") == 1
    for got in (kernel(a, b, c, d), (hand(a, b, c, d, out), out)[1], compiled(a, b, c, d).numpy()):
        np.testing.assert_array_equal(got, want)                          # same answer first

    src, dst = rng.standard_normal(N).astype(np.float32), np.empty(N, np.float32)
    cases = {
        "copyto": lambda: np.copyto(dst, src),
        "fused": lambda: kernel(a, b, c, d, out=out),
        "fused (new output)": lambda: kernel(a, b, c, d),
        "hand numba": lambda: hand(a, b, c, d, out),
        "numpy": lambda: numpy_chain(a, b, c, d),
        "lg.compile": lambda: compiled(a, b, c, d),
    }
    t = _timing.compare(cases, rounds=5 if _timing.QUICK else 11, run_s=0.2, warmup_s=0.5)
    nbytes = N * 4
    bandwidth = 2 * nbytes / t["copyto"]["median_s"]
    floor = 5 * nbytes / bandwidth
    fused = t["fused"]["median_s"]
    ratios = {"floor": fused / floor, "hand numba": fused / t["hand numba"]["median_s"],
              "numpy": t["numpy"]["median_s"] / fused}
    met = {"floor": ratios["floor"] <= TARGETS["floor"],
           "hand numba": ratios["hand numba"] <= TARGETS["hand numba"],
           "numpy": ratios["numpy"] >= TARGETS["numpy"]}
    lgc = t["lg.compile"]["median_s"]
    compiled_ratios = {"floor": lgc / floor, "hand numba": lgc / t["hand numba"]["median_s"],
                       "numpy": t["numpy"]["median_s"] / lgc}
    compiled_met = {"floor": compiled_ratios["floor"] <= TARGETS["floor"],
                    "hand numba": compiled_ratios["hand numba"] <= TARGETS["hand numba"],
                    "numpy": compiled_ratios["numpy"] >= TARGETS["numpy"]}
    compiles = compile_times()

    print(f"fusion benchmark: 8-op chain, float32, {N:.0e} elements, 1 thread; "
          f"copy bandwidth {bandwidth / 1e9:.1f} GB/s{', QUICK mode' if _timing.QUICK else ''}")
    rows = [[f"bandwidth floor (5 x {nbytes / 1e6:.0f} MB at copy speed)", _timing.fmt_time(floor), "1.00", "", ""]]
    for name, label in (("fused", "labgrad fused kernel (out=)"),
                        ("fused (new output)", "labgrad fused kernel (new output)"),
                        ("hand numba", "hand-written Numba loop"),
                        ("numpy", "unfused NumPy")):
        s = t[name]["median_s"]
        target = {"fused": f"fused <= {TARGETS['floor']}x floor",
                  "hand numba": f"fused <= {TARGETS['hand numba']}x this",
                  "numpy": f"this >= {TARGETS['numpy']}x fused"}.get(name, "")
        ok = {"fused": met["floor"], "hand numba": met["hand numba"], "numpy": met["numpy"]}.get(name)
        rel = f"fused {ratios[name]:.2f}x" if name == "hand numba" else (
            f"{ratios['numpy']:.2f}x fused" if name == "numpy" else "")
        rows.append([label, _timing.fmt_time(s), f"{s / floor:.2f}", f"{target} {rel}".strip(),
                     "" if ok is None else ("yes" if ok else "NO")])
    rows.append(["lg.compile, default passes (output recycled)", _timing.fmt_time(lgc), f"{lgc / floor:.2f}",
                 f"{compiled_ratios['hand numba']:.2f}x hand, numpy {compiled_ratios['numpy']:.2f}x this",
                 "yes" if all(compiled_met.values()) else
                 "NO: " + ", ".join(k for k, v in compiled_met.items() if not v)])
    print()
    _timing.print_table(["case", "time", "x floor", "target", "met"], rows)
    print(f"\ncompile + first call in a new process: {compiles['cold']['compile_and_first_call_s']:.3f} s "
          f"with an empty kernel cache, {compiles['warm']['compile_and_first_call_s']:.3f} s warm "
          f"(imports {compiles['warm']['imports_s']:.2f} s apart)")
    try:
        gpu = gpu_times()
    except Exception as e:     # a GPU that is there but fails: say so, keep the CPU results
        gpu = {"error": f"{type(e).__name__}: {e}"}
    if gpu is None:
        print("GPU: n/a (no CUDA device)")
    elif "error" in gpu:
        print(f"GPU: failed: {gpu['error']}")
    else:
        tt = gpu["times_s"]
        print(f"\nGPU ({gpu['device']}): copy floor {_timing.fmt_time(gpu['floor_s'])}, fused "
              f"{_timing.fmt_time(tt['fused'])} ({gpu['fused_over_floor']:.2f}x floor, target <= 1.5), "
              f"unfused CuPy {_timing.fmt_time(tt['cupy'])} ({gpu['cupy_over_fused']:.2f}x fused, target >= 3)")
    path = _timing.write_results("fusion", {
        "gpu": gpu,
        "environment": _timing.environment({"numba": __import__("numba").__version__, "elements": N}),
        "copy_bandwidth_GBps": bandwidth / 1e9,
        "floor_s": floor,
        "timings": {k: {"median_s": v["median_s"], "min_s": v["min_s"], "number": v["number"]}
                    for k, v in t.items()},
        "ratios": {"fused_over_floor": ratios["floor"], "fused_over_hand_numba": ratios["hand numba"],
                   "numpy_over_fused": ratios["numpy"]},
        "targets": {"fused_over_floor": "<= 1.3", "fused_over_hand_numba": "<= 1.25",
                    "numpy_over_fused": ">= 3"},
        "met": met,
        "lg_compile": {"median_s": lgc, "ratios": compiled_ratios, "met": compiled_met,
                       "code": compiled.code},
        "compile": compiles,  # seconds: imports apart, then compile_cpu + the first call
        "kernel_source": kernel.source,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
