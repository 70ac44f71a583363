"""Data parallel on this machine (issue 11): what an all-reduce costs, and what 2 processes buy.

1. ``all_reduce``: ``lg.distributed.all_reduce`` of float32 arrays from 4 bytes to 16 MiB
   between 2 processes (``mpiexec -n 2``), against mpi4py's blocking ``Allreduce`` of the
   same buffer (the MPI floor: the difference is labgrad's polling with a deadline). For each
   size: median time over repeats after a barrier, the algorithm bandwidth ``bytes / time``,
   and the bus bandwidth ``2 (N-1)/N * bytes / time``: what each process sends in a ring
   all-reduce, comparable across process counts (NCCL's convention).
2. ``mlp``: one SGD step of the digits MLP (64-128-10, ReLU, softmax cross-entropy, lr 0.1)
   at a global batch of 64: 1 process on the whole batch, and 2 processes on 32 each with
   ``DistributedDataParallel``. Median step time over the steps after a warm-up.

The script launches itself under ``mpiexec`` (from the same environment as this Python) and
collects rank 0's JSON. Run: ``python benchmarks/distributed.py``; writes
``benchmarks/results/distributed.json``. Needs the ``dist`` extra (mpi4py, mpich).
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import labgrad as lg
import labgrad.functional as LF

HERE = os.path.abspath(__file__)
GLOBAL_BATCH = 64
SIZES = [4 ** k for k in range(1, 13)]     # 4 bytes .. 16 MiB (float32 elements: 1 .. 4M)


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        lg.distributed.barrier()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def worker_allreduce():
    from mpi4py import MPI
    rank = lg.distributed.init(timeout=120)
    n = lg.distributed.world_size()
    comm = MPI.COMM_WORLD
    rows = []
    for nbytes in SIZES:
        elements = max(nbytes // 4, 1)
        x = lg.ones(elements)
        buf = np.ones(elements, dtype=np.float32)
        repeats = 5 if _timing.QUICK else (50 if nbytes <= 1 << 20 else 10)
        for _ in range(3):
            lg.distributed.all_reduce(x)
        t_lg = _median_time(lambda: lg.distributed.all_reduce(x), repeats)
        t_mpi = _median_time(lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM), repeats)
        rows.append({"bytes": elements * 4, "labgrad_s": t_lg, "mpi_s": t_mpi,
                     "algbw": elements * 4 / t_lg, "busbw": 2 * (n - 1) / n * elements * 4 / t_lg,
                     "mpi_busbw": 2 * (n - 1) / n * elements * 4 / t_mpi})
    if rank == 0:
        print(json.dumps({"world_size": n, "rows": rows}))


def worker_mlp():
    rank = lg.distributed.init(timeout=120)
    n = lg.distributed.world_size()
    train = lg.data.datasets.digits("train")
    lg.manual_seed(0)
    model = lg.nn.Sequential(lg.nn.Linear(64, 128), lg.nn.ReLU(), lg.nn.Linear(128, 10))
    if n > 1:
        model = lg.distributed.DistributedDataParallel(model)
    opt = lg.optim.SGD(model.parameters(), lr=0.1)
    per = GLOBAL_BATCH // n
    rng = np.random.default_rng(1)
    steps, warmup = (20, 5) if _timing.QUICK else (300, 30)
    batches = []
    for _ in range(steps):
        idx = rng.choice(len(train), GLOBAL_BATCH, replace=False)[rank * per:(rank + 1) * per]
        batches.append((lg.tensor(train.features[idx]), lg.tensor(train.labels[idx])))
    times = []
    lg.distributed.barrier()
    for i, (x, t) in enumerate(batches):
        start = time.perf_counter()
        loss = LF.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    if rank == 0:
        print(json.dumps({"world_size": n, "per_process_batch": per, "step_s": step,
                          "samples_per_s": GLOBAL_BATCH / step}))


def launch(kind, n):
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    if mpiexec is None:
        raise SystemExit("mpiexec is not in this Python's environment: pip install -e '.[dist]'")
    out = subprocess.run([mpiexec, "-n", str(n), sys.executable, HERE, "--worker", kind],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"mpiexec -n {n} {kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bw(x):
    return f"{x / 1e9:.2f} GB/s" if x >= 1e8 else f"{x / 1e6:.1f} MB/s"


def _size(b):
    return f"{b} B" if b < 1024 else (f"{b // 1024} KiB" if b < 1 << 20 else f"{b >> 20} MiB")


def main():
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpiexec = None
    if mpiexec is None:
        print("distributed benchmark skipped: needs mpi4py and mpiexec in this environment "
              "(pip install -e '.[dist]')")
        return 0
    print(f"distributed benchmark: labgrad {lg.__version__}, {os.cpu_count()} CPUs"
          f"{', QUICK mode' if _timing.QUICK else ''}")
    ar = launch("allreduce", 2)
    rows = [[_size(r["bytes"]), _timing.fmt_time(r["labgrad_s"]), _bw(r["busbw"]),
             _timing.fmt_time(r["mpi_s"]), _bw(r["mpi_busbw"])] for r in ar["rows"]]
    print("\nall_reduce (sum, float32) between 2 processes on this machine")
    _timing.print_table(["size", "labgrad time", "labgrad busbw", "mpi4py time", "mpi4py busbw"], rows)
    mlp = [launch("mlp", n) for n in (1, 2)]
    base = mlp[0]["step_s"]
    print(f"\ndigits MLP 64-128-10 SGD step, global batch {GLOBAL_BATCH}")
    _timing.print_table(["processes", "batch each", "step time", "samples/s", "speed-up"],
                        [[m["world_size"], m["per_process_batch"], _timing.fmt_time(m["step_s"]),
                          f"{m['samples_per_s']:.0f}", f"{base / m['step_s']:.2f}x"] for m in mlp])
    from mpi4py import MPI
    versions = {"labgrad": lg.__version__, "mpi": MPI.Get_library_version().splitlines()[0].strip()}
    path = _timing.write_results("distributed", {
        "benchmark": "distributed", "environment": _timing.environment(versions),
        "results": {"all_reduce": ar, "mlp": mlp}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        {"allreduce": worker_allreduce, "mlp": worker_mlp}[sys.argv[sys.argv.index("--worker") + 1]]()
    else:
        sys.exit(main())
