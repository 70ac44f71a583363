"""What the profiler costs (issue 11): nothing when off, and how much when on.

1. ``off``: the eager per-op case of ``eager.py`` (``y = x + x``, float32 shape (4,),
   requires grad) with this labgrad, which imports ``labgrad.profiler`` but has no profile
   active, against the same case with labgrad as it was before the profiler existed (the
   parent of the commit that added ``labgrad/profiler``, extracted with ``git archive``).
   Each runs in its own process, alternating, several times; each process reports its
   fastest round (the least disturbed by other work on the machine) of labgrad's ``x + x``
   and of raw NumPy ``a + a``. Target: labgrad's time per op in the fastest process of each
   side (the least disturbed by other work: on a shared machine whole processes run up to 2x
   slower when a neighbour is busy) changes by less than 3%. The median ratio to NumPy over
   the processes is shown as a second view (NumPy's ~250 ns reference jitters by several
   percent on its own, more than what is measured here).
2. ``on``: the same op inside ``lg.profiler.profile()``, with and without the memory
   timeline, relative to the op with no profile (in this process).

Run: ``python benchmarks/profiler.py``; writes ``benchmarks/results/profiler.json``.
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

import labgrad as lg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 0.03

CHILD = r"""
import sys, json
sys.path.insert(0, {bench!r})
import _timing
import numpy as np
import labgrad as lg
a = np.arange(4, dtype=np.float32)
x = lg.tensor(a.copy(), requires_grad=True)
r = _timing.compare({{"numpy": lambda: a + a, "labgrad": lambda: x + x}}, rounds={rounds})
print(json.dumps({{"profiler_imported": "labgrad.profiler" in sys.modules, "file": lg.__file__,
                  "numpy_s": r["numpy"]["min_s"], "labgrad_s": r["labgrad"]["min_s"]}}))
"""


def baseline_tree(tmp):
    """labgrad from the commit before ``labgrad/profiler`` was added, or ``None``."""
    try:
        added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--",
                                "labgrad/profiler/__init__.py"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.split()
        if not added:
            return None, None
        rev = added[-1] + "^"
        archive = subprocess.run(["git", "archive", rev, "labgrad"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        return tmp, rev
    except (OSError, subprocess.CalledProcessError):
        return None, None


def child(tree, rounds):
    env = dict(os.environ, PYTHONPATH=tree)
    code = CHILD.format(bench=os.path.join(ROOT, "benchmarks"), rounds=rounds)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tempfile.gettempdir(),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_off():
    with tempfile.TemporaryDirectory() as tmp:
        base, rev = baseline_tree(tmp)
        if base is None:
            print("(no git history with the profiler's first commit here: 'off' case skipped)")
            return None
        repeats, rounds = (2, 3) if _timing.QUICK else (8, 9)
        runs = {"with_profiler": [], "before_profiler": []}
        for i in range(repeats):
            order = [("with_profiler", ROOT), ("before_profiler", base)]
            for name, tree in (order if i % 2 == 0 else order[::-1]):
                r = child(tree, rounds)
                assert r["profiler_imported"] == (name == "with_profiler"), r
                runs[name].append(r)
    ratio = {k: statistics.median(r["labgrad_s"] / r["numpy_s"] for r in v) for k, v in runs.items()}
    per_op = {k: min(r["labgrad_s"] for r in v) for k, v in runs.items()}
    change = per_op["with_profiler"] / per_op["before_profiler"] - 1
    return {"baseline_rev": rev, "per_op_s": per_op, "ratio_to_numpy": ratio, "change": change,
            "target": f"|change| < {TARGET:.0%}", "met": abs(change) < TARGET, "runs": runs}


def measure_on():
    a = np.arange(4, dtype=np.float32)
    x = lg.tensor(a.copy(), requires_grad=True)
    cases = {"numpy": lambda: a + a, "off": lambda: x + x}

    # Each ``on`` case keeps its own profile installed only while it runs, so the others stay unhooked.
    def on_case(memory):
        def run():
            with lg.profiler.profile(profile_memory=memory):
                for _ in range(100):
                    x + x
        return run
    r = _timing.compare({**cases, "on": on_case(False), "on_with_memory": on_case(True)})
    off = r["off"]["median_s"]
    return {"per_op_s": {"numpy": r["numpy"]["median_s"], "off": off,
                         "on": r["on"]["median_s"] / 100, "on_with_memory": r["on_with_memory"]["median_s"] / 100},
            "slowdown_when_on": r["on"]["median_s"] / 100 / off,
            "slowdown_when_on_with_memory": r["on_with_memory"]["median_s"] / 100 / off}


def main():
    print(f"profiler overhead: numpy {np.__version__}, labgrad {lg.__version__}"
          f"{', QUICK mode' if _timing.QUICK else ''}")
    off = measure_off()
    on = measure_on()
    rows = []
    if off is not None:
        for k in ("before_profiler", "with_profiler"):
            rows.append([f"off: labgrad {k.replace('_', ' ')} (fastest)", _timing.fmt_time(off["per_op_s"][k]),
                         f"{off['ratio_to_numpy'][k]:.2f}x numpy", ""])
        rows.append(["  change", f"{off['change']:+.1%}",
                     f"{off['ratio_to_numpy']['with_profiler'] / off['ratio_to_numpy']['before_profiler'] - 1:+.1%}",
                     f"|change| < 3%: {'yes' if off['met'] else 'NO'}"])
    rows.append(["on: no profile (this process)", _timing.fmt_time(on["per_op_s"]["off"]), "1.00x", ""])
    rows.append(["on: profile(profile_memory=False)", _timing.fmt_time(on["per_op_s"]["on"]),
                 f"{on['slowdown_when_on']:.2f}x", ""])
    rows.append(["on: profile() with memory", _timing.fmt_time(on["per_op_s"]["on_with_memory"]),
                 f"{on['slowdown_when_on_with_memory']:.2f}x", ""])
    print()
    _timing.print_table(["x + x, shape (4,), requires grad", "time/op", "relative", "target"], rows)
    path = _timing.write_results("profiler", {"benchmark": "profiler",
                                              "environment": _timing.environment({"labgrad": lg.__version__}),
                                              "results": {"off": off, "on": on}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
