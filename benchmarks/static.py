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
simplification, CSE; it finds nothing to change in this step, so what is measured is the cost
of the code generator's plain one-statement-per-node output).
Every column trains the same model from the same weights on the same batches; the script checks
that their losses agree before timing. Run: ``python benchmarks/static.py``.
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import sys

import numpy as np

import labgrad as lg
import labgrad.functional as F
from eager import BATCH, LR, NumpyMLP, _cycle, digit_batches, initial_weights, labgrad_mlp

TARGET = 0.65   # compiled step: at least this fraction of hand-written NumPy's steps per second
COLUMNS = ("numpy", "eager", "compile", "jit")


def _jitted(case):
    step, convert, scalar = case
    return lg.jit(step), convert, scalar


def compiled_step(weights):
    """The TF1 way: declare inputs and state, build loss, gradients and updates, compile once."""
    x = lg.placeholder((BATCH, 64), "float32", name="x")
    t = lg.placeholder((BATCH,), "int64", name="t")
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
    rows = [["time per step"] + [_timing.fmt_time(timings[c]["median_s"]) for c in COLUMNS],
            ["steps / s"] + [f"{1 / timings[c]['median_s']:.0f}" for c in COLUMNS],
            ["speed vs numpy"] + [f"{speed[c]:.2f}x" for c in COLUMNS],
            ["speed vs eager"] + [f"{r['speed_vs_eager'][c]:.2f}x" for c in COLUMNS]]
    print()
    _timing.print_table(["MLP 64-128-10 SGD step, batch 32"] + list(COLUMNS), rows)
    print(f"\ntarget: compiled step >= {TARGET}x hand-written NumPy speed: "
          f"{'met' if r['met'] else 'MISSED'} ({speed['compile']:.2f}x); jit {speed['jit']:.2f}x")
    print(f"times are medians over interleaved rounds; compiled with the default passes "
          f"({', '.join(lg.graph.passes.DEFAULT_PIPELINE)})")
    path = _timing.write_results("static", {"benchmark": "static", "environment": _timing.environment(
        {"labgrad": lg.__version__}), "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
