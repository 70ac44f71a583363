"""Compiled execution (issue 4): a training step as a static graph, against NumPy and eager.

One SGD training step (lr 0.1, batch 32) of the 64-128-10 ReLU MLP with softmax cross-entropy
on the digits data, the same step as ``eager.py`` times, in four columns:

* ``numpy``: the step written out by hand (``eager.NumpyMLP``): the reference;
* ``eager``: labgrad's eager ``nn`` + ``optim`` code (tape recorded every step);
* ``compile``: define-and-run: placeholders, ``lg.Variable``s, ``lg.gradients`` and
  ``lg.assign``, compiled once with ``lg.compile``;
* ``jit``: the eager step (``zero_grad``, ``backward``, ``opt.step``) under ``@lg.jit``.

Both compiled columns run the code generated after the default pass pipeline
(``labgrad.graph.passes.DEFAULT_PIPELINE``: dead code, constant folding, algebraic
simplification, CSE, pattern fusion (``linear`` with its relu), elementwise fusion (the SGD
updates and the relu gradient become fused kernels), memory planning (buffers reused across
calls, updates written in place)).
Every column trains the same model from the same weights on the same batches; the script checks
that their losses agree before timing. Run: ``python benchmarks/static.py``.

A second table times the same step for the 64-256-10 MLP at batch 256 (numpy, compile, jit).
Also measured: the planned peak memory of the MLP's forward+backward graph against the same
graph with nothing planned (every result a fresh array kept to the end of the run), and the
time the jitted step takes to trace, run the passes, generate code and load its kernels in a
fresh process whose kernel cache is warm.

Targets (issue 8): compiled and jitted step >= 1.0x hand-written NumPy at batch 32, >= 1.1x at
64-256-10 batch 256; planned peak memory <= 0.7x unplanned; warm compile of the step < 0.5 s.
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import sys

import numpy as np

import labgrad as lg
import labgrad.functional as F
from eager import BATCH, LR, NumpyMLP, _cycle, digit_batches, initial_weights, labgrad_mlp

TARGET = 1.0    # compiled and jitted step: at least this fraction of hand-written NumPy's steps per second
TARGET_BIG = 1.1   # the same for 64-256-10 at batch 256
MEMORY_TARGET = 0.7   # planned peak memory / unplanned, MLP forward+backward
COMPILE_TARGET = 0.5  # seconds: trace + passes + codegen + kernel load, warm kernel cache
COLUMNS = ("numpy", "eager", "compile", "jit")


def _jitted(case):
    step, convert, scalar = case
    return lg.jit(step), convert, scalar


def compiled_step(weights, batch=BATCH):
    """The TF1 way: declare inputs and state, build loss, gradients and updates, compile once."""
    x = lg.placeholder((batch, 64), "float32", name="x")
    t = lg.placeholder((batch,), "int64", name="t")
    w1, b1, w2, b2 = (lg.Variable(lg.tensor(w), name=n) for w, n in zip(weights, ("w1", "b1", "w2", "b2")))
    loss = F.cross_entropy(F.relu(x @ w1 + b1) @ w2 + b2, t)
    grads = lg.gradients(loss, [w1, b1, w2, b2])
    updates = [lg.assign(v, v - LR * g) for v, g in zip((w1, b1, w2, b2), grads)]
    return lg.compile(loss, inputs=[x, t], updates=updates)


def cases():
    weights = initial_weights()
    batches = digit_batches()
    columns = {
        "numpy": (NumpyMLP(weights).step, lambda x, t: (x.copy(), t.copy()), float),
        "eager": labgrad_mlp(weights),
        "compile": (compiled_step(weights), lambda x, t: (x.copy(), t.copy()), lambda l: l.item()),
        "jit": _jitted(labgrad_mlp(weights)),   # the same eager step, traced
    }
    losses, timed = {}, {}
    for name, (step, convert, scalar) in columns.items():
        data = [convert(x, t) for x, t in batches]
        losses[name] = [scalar(step(*args)) for args in data[:5]]
        timed[name] = _cycle(step, data)
    for name, seq in losses.items():
        np.testing.assert_allclose(seq, losses["numpy"], rtol=2e-4, err_msg=f"MLP losses: {name}")
    return timed


def big_weights(hidden=256, seed=0):
    rng = np.random.default_rng(seed)
    k1, k2 = 1 / np.sqrt(64), 1 / np.sqrt(hidden)
    return [rng.uniform(-k1, k1, (64, hidden)).astype(np.float32), rng.uniform(-k1, k1, hidden).astype(np.float32),
            rng.uniform(-k2, k2, (hidden, 10)).astype(np.float32), rng.uniform(-k2, k2, 10).astype(np.float32)]


def jit_mlp(weights):
    """The eager nn + optim step (any hidden size) under ``lg.jit``."""
    hidden = weights[0].shape[1]
    model = lg.nn.Sequential(lg.nn.Linear(64, hidden), lg.nn.ReLU(), lg.nn.Linear(hidden, 10))
    model.load_state_dict({"0.weight": weights[0], "0.bias": weights[1], "2.weight": weights[2], "2.bias": weights[3]})
    opt = lg.optim.SGD(model.parameters(), lr=LR)

    @lg.jit
    def step(x, t):
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def big_cases(batch=256, hidden=256):
    weights = big_weights(hidden)
    train = lg.data.datasets.digits("train")
    order = np.random.default_rng(1).permutation(len(train))
    n = len(train) // batch * batch
    batches = [(train.features[order[i:i + batch]], train.labels[order[i:i + batch]]) for i in range(0, n, batch)]
    columns = {
        "numpy": (NumpyMLP(weights).step, lambda x, t: (x.copy(), t.copy()), float),
        "compile": (compiled_step(weights, batch), lambda x, t: (x.copy(), t.copy()), lambda l: l.item()),
        "jit": (jit_mlp(weights), lambda x, t: (lg.tensor(x), lg.tensor(t)), lambda l: l.item()),
    }
    losses, timed = {}, {}
    for name, (step, convert, scalar) in columns.items():
        data = [convert(x, t) for x, t in batches]
        losses[name] = [scalar(step(*args)) for args in data[:3]]
        timed[name] = _cycle(step, data)
    for name, seq in losses.items():
        np.testing.assert_allclose(seq, losses["numpy"], rtol=2e-4, err_msg=f"MLP {hidden} losses: {name}")
    return timed


def memory_plan(batch=BATCH, hidden=128):
    """Planned vs unplanned peak memory of the MLP's forward+backward graph (loss and grads)."""
    weights = big_weights(hidden) if hidden != 128 else initial_weights()
    x = lg.placeholder((batch, 64), "float32", name="x")
    t = lg.placeholder((batch,), "int64", name="t")
    vs = [lg.Variable(lg.tensor(w), name=n) for w, n in zip(weights, ("w1", "b1", "w2", "b2"))]
    loss = F.cross_entropy(F.relu(x @ vs[0] + vs[1]) @ vs[2] + vs[3], t)
    f = lg.compile([loss, *lg.gradients(loss, vs)], inputs=[x, t])
    plan = f.graph.memory_plan
    return {"batch": batch, "hidden": hidden, "unplanned_bytes": plan.peak_naive,
            "freed_after_last_use_bytes": plan.peak_freed, "planned_bytes": plan.peak_planned,
            "ratio": plan.peak_planned / plan.peak_naive,
            "intermediates_ratio": plan.peak_planned_intermediates / plan.peak_naive_intermediates}


COMPILE_SCRIPT = """
import sys, time
sys.path.insert(0, {here!r})
import numpy as np
import labgrad as lg
from static import jit_mlp
from eager import initial_weights
x = lg.tensor(np.zeros((32, 64), np.float32)); t = lg.tensor(np.zeros(32, np.int64))
times = []
for _ in range(2):     # two models: the second compiles in a process where Numba is set up
    step = jit_mlp(initial_weights())
    t0 = time.perf_counter()
    step(x, t)
    times.append(time.perf_counter() - t0)
print(*times)
"""


def compile_time():
    """Seconds the first call of the jitted step takes (trace, passes, codegen, kernels) in a
    fresh process: once to fill the kernel cache, then warm. ``first_s`` includes Numba's
    one-time set-up in a process (its first cached function loads its registries, which
    import SciPy); ``second_s`` is a second model's step compiled in the same process."""
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(here), os.environ.get("PYTHONPATH", "")]))
    out = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT.format(here=here)], env=env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        first, second = map(float, r.stdout.split()[-2:])
        out.append({"first_s": first, "second_s": second})
    return {"fill": out[0], "warm": out[1]}


def main():
    print(f"static-graph benchmark: numpy {np.__version__}, labgrad {lg.__version__}"
          f"{', QUICK mode' if _timing.QUICK else ''}")
    timings = _timing.compare(cases())
    base = timings["numpy"]["median_s"]
    speed = {c: base / timings[c]["median_s"] for c in COLUMNS}
    results = {
        "mlp_step": {
            "columns": {c: {"median_us": timings[c]["median_s"] * 1e6, "min_us": timings[c]["min_s"] * 1e6,
                            "steps_per_s": 1 / timings[c]["median_s"], "loops_per_round": timings[c]["number"]}
                        for c in COLUMNS},
            "speed_vs_numpy": speed,
            "speed_vs_eager": {c: timings["eager"]["median_s"] / timings[c]["median_s"] for c in COLUMNS},
            "target": f"compile >= {TARGET}x numpy speed",
            "met": speed["compile"] >= TARGET,
        }
    }
    r = results["mlp_step"]
    r["met"] = speed["compile"] >= TARGET and speed["jit"] >= TARGET
    r["target"] = f"compile and jit >= {TARGET}x numpy speed"
    rows = [["time per step"] + [_timing.fmt_time(timings[c]["median_s"]) for c in COLUMNS],
            ["steps / s"] + [f"{1 / timings[c]['median_s']:.0f}" for c in COLUMNS],
            ["speed vs numpy"] + [f"{speed[c]:.2f}x" for c in COLUMNS],
            ["speed vs eager"] + [f"{r['speed_vs_eager'][c]:.2f}x" for c in COLUMNS]]
    print()
    _timing.print_table(["MLP 64-128-10 SGD step, batch 32"] + list(COLUMNS), rows)
    print(f"\ntarget: compiled and jitted step >= {TARGET}x hand-written NumPy speed: "
          f"{'met' if r['met'] else 'MISSED'} (compile {speed['compile']:.2f}x, jit {speed['jit']:.2f}x)")

    big = _timing.compare(big_cases())
    bcols = ("numpy", "compile", "jit")
    bspeed = {c: big["numpy"]["median_s"] / big[c]["median_s"] for c in bcols}
    results["mlp_256_step"] = {
        "columns": {c: {"median_us": big[c]["median_s"] * 1e6, "steps_per_s": 1 / big[c]["median_s"]} for c in bcols},
        "speed_vs_numpy": bspeed, "target": f"compile and jit >= {TARGET_BIG}x numpy speed",
        "met": bspeed["compile"] >= TARGET_BIG and bspeed["jit"] >= TARGET_BIG}
    print()
    _timing.print_table(["MLP 64-256-10 SGD step, batch 256"] + list(bcols),
                        [["time per step"] + [_timing.fmt_time(big[c]["median_s"]) for c in bcols],
                         ["speed vs numpy"] + [f"{bspeed[c]:.2f}x" for c in bcols]])
    print(f"\ntarget: >= {TARGET_BIG}x hand-written NumPy: "
          f"{'met' if results['mlp_256_step']['met'] else 'MISSED'}")

    mems = [memory_plan(32, 128), memory_plan(256, 256)]
    results["memory"] = {"runs": mems, "target": f"planned <= {MEMORY_TARGET}x unplanned",
                         "met": {f"{m['batch']}x{m['hidden']}": m["ratio"] <= MEMORY_TARGET for m in mems}}
    print()
    for m in mems:
        print(f"peak memory, MLP 64-{m['hidden']}-10 forward+backward, batch {m['batch']}: "
              f"unplanned {m['unplanned_bytes'] / 1e3:.1f} kB, freed after last use only "
              f"{m['freed_after_last_use_bytes'] / 1e3:.1f} kB, planned {m['planned_bytes'] / 1e3:.1f} kB "
              f"= {m['ratio']:.2f}x unplanned (target <= {MEMORY_TARGET}: {'met' if m['ratio'] <= MEMORY_TARGET else 'MISSED'}); "
              f"intermediates only (the returned loss and gradients left out): {m['intermediates_ratio']:.2f}x")
    try:
        ct = compile_time()
    except Exception as e:   # noqa: BLE001
        ct = {"error": f"{type(e).__name__}: {e}"}
    results["compile_time"] = ct
    if "error" not in ct:
        w = ct["warm"]
        print(f"jitted step, first call with a warm kernel cache (trace + passes + codegen + kernel "
              f"load): {w['second_s']:.3f} s (target < {COMPILE_TARGET}: "
              f"{'met' if w['second_s'] < COMPILE_TARGET else 'MISSED'}); the first step of a new "
              f"process takes {w['first_s']:.3f} s (Numba's one-time set-up included); filling the "
              f"cache took {ct['fill']['first_s']:.3f} s")
    else:
        print(f"compile time: failed: {ct['error']}")
    print(f"times are medians over interleaved rounds; compiled with the default passes "
          f"({', '.join(lg.graph.passes.DEFAULT_PIPELINE)})")
    path = _timing.write_results("static", {"benchmark": "static", "environment": _timing.environment(
        {"labgrad": lg.__version__}), "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
