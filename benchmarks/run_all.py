"""Run every benchmark script in this folder, one after another (``make bench``).

A benchmark is any ``benchmarks/*.py`` except this file and helper modules whose names start
with ``_`` (such as ``_timing.py``). Each runs in its own process, so one script's imports,
caches or thread settings cannot change another's numbers. Each prints its table and writes
``benchmarks/results/<name>.json``.

    python benchmarks/run_all.py            # everything
    python benchmarks/run_all.py eager      # only the named scripts
    python benchmarks/run_all.py --quick    # a fast smoke run (fewer, shorter rounds)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def discover():
    """The benchmark scripts, sorted by name."""
    me = os.path.basename(__file__)
    return sorted(f for f in os.listdir(HERE)
                  if f.endswith(".py") and f != me and not f.startswith("_"))


def main(argv):
    quick = "--quick" in argv
    wanted = [a.removesuffix(".py") for a in argv if not a.startswith("--")]
    scripts = discover()
    if wanted:
        unknown = sorted(set(wanted) - {s.removesuffix(".py") for s in scripts})
        if unknown:
            print(f"no benchmark named {', '.join(unknown)}; found: "
                  f"{', '.join(s.removesuffix('.py') for s in scripts)}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.removesuffix(".py") in wanted]
    env = dict(os.environ)
    if quick:
        env["LABGRAD_BENCH_QUICK"] = "1"
    failed = []
    for script in scripts:
        print(f"==> {script}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, os.path.join(HERE, script)], env=env,
                             cwd=os.path.dirname(HERE))
        print(f"==> {script}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in "
              f"{time.perf_counter() - start:.0f} s\n", flush=True)
        if rc != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(scripts)} benchmark(s) ran; results in {os.path.join(HERE, 'results')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
