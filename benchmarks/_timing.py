"""Shared timing helpers: every benchmark script measures, prints and saves the same way.

Import this module *first* in a benchmark script: it pins BLAS and OpenMP to one thread
before NumPy (or PyTorch) is loaded, so every column runs single-threaded on the same footing.

How a comparison is timed (``compare``):

1. warm-up: each case runs for a while untimed (caches, lazy imports, allocator pools);
2. calibration: each case gets a loop count ``number`` so one timed run lasts ~``run_s``
   (30 ms: short runs, many rounds, so a busy moment of the machine spoils few of them);
3. rounds: the cases take turns, round after round (interleaved, so slow drift of the machine
   hits every column alike), with the garbage collector off during each timed loop;
4. the per-call time of a case is the median over rounds (the minimum is kept too).

Set ``LABGRAD_BENCH_QUICK=1`` (``run_all.py --quick``) for a fast smoke run with fewer rounds.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

QUICK = os.environ.get("LABGRAD_BENCH_QUICK", "") not in ("", "0")
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _loop(fn, number):
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return time.perf_counter() - start
    finally:
        if gc_was_on:
            gc.enable()


def calibrate(fn, run_s):
    """A loop count for which ``number`` calls of ``fn`` take at least ``run_s`` seconds."""
    number = 1
    while True:
        elapsed = _loop(fn, number)
        if elapsed >= run_s:
            return number
        number = max(number * 2, int(number * run_s / max(elapsed, 1e-9) * 1.1))


def compare(cases, rounds=None, run_s=None, warmup_s=None):
    """Time each ``fn`` of ``cases`` ({column: fn}) as described in the module docstring.

    Returns ``{column: {"median_s", "min_s", "number", "rounds"}}`` with seconds per call.
    """
    rounds = rounds or (3 if QUICK else 15)
    run_s = run_s or (0.01 if QUICK else 0.03)
    warmup_s = warmup_s if warmup_s is not None else (0.02 if QUICK else 0.2)
    numbers = {}
    for name, fn in cases.items():
        end = time.perf_counter() + warmup_s
        while time.perf_counter() < end:
            fn()
        numbers[name] = calibrate(fn, run_s)
    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]   # rotate who goes first
        for name in order:
            samples[name].append(_loop(cases[name], numbers[name]) / numbers[name])
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "number": numbers[name],
                   "rounds": s} for name, s in samples.items()}


def environment(extra=None):
    """What the numbers depend on: versions, CPU, threads."""
    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "quick": QUICK,
    }
    env.update(extra or {})
    return env


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_results(name, payload):
    """Save ``payload`` as ``benchmarks/results/<name>.json`` and return the path."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False, default=_jsonable)
        f.write("\n")
    return path


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def fmt_time(seconds):
    """A per-call time with a unit a person can read: ns, µs or ms."""
    if seconds is None:
        return "n/a"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def print_table(headers, rows, file=None):
    """A plain-text table with columns padded to their widest cell."""
    file = file or sys.stdout
    cells = [[str(c) for c in headers]] + [[("n/a" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    for i, r in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))), file=file)
        if i == 0:
            print(line, file=file)
