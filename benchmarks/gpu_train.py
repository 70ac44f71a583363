"""Training on the GPU against the CPU (issue 11): an MLP 64-256-256-10 at batch 1024.

One SGD step (lr 0.05) of a 64-256-256-10 ReLU MLP with softmax cross-entropy, on random
float32 data, eager and jitted, on the CPU (NumPy, one BLAS thread as in every benchmark
here) and, where CuPy sees a GPU, on ``cuda:0``. GPU steps are timed with CUDA events around
many steps (the clock starts and stops on the device, after the queued work). Both devices start
from the same weights; the script checks that their first losses agree before timing.

Target (where a GPU is lent): the GPU trains at least 5x faster than the CPU. Without a GPU
the script times the CPU and says so. Run: ``python benchmarks/gpu_train.py``.
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import sys

import numpy as np

import labgrad as lg
import labgrad.functional as F
from labgrad.backends import get_backend

BATCH, SIZES, LR, TARGET = 1024, (64, 256, 256, 10), 0.05, 5.0


def make_step(device, jit):
    lg.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES, SIZES[1:])):
        layers.append(lg.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(lg.nn.ReLU())
    model = lg.nn.Sequential(*layers).to(device)
    opt = lg.optim.SGD(model.parameters(), lr=LR)

    def step(x, t):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        return loss
    return lg.jit(step) if jit else step


def data(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    t = rng.integers(0, SIZES[-1], BATCH)
    return lg.tensor(x, device=device), lg.tensor(t, device=device)


def gpu_step_time(step, x, t, steps=50, repeats=5):
    cp = get_backend("cuda").xp
    for _ in range(5):
        step(x, t)
    samples = []
    for _ in range(repeats):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(steps):
            step(x, t)
        end.record()
        end.synchronize()
        samples.append(cp.cuda.get_elapsed_time(start, end) / 1e3 / steps)
    return sorted(samples)[len(samples) // 2]


def main():
    print(f"GPU training benchmark: MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, "
          f"numpy {np.__version__}, labgrad {lg.__version__}{', QUICK mode' if _timing.QUICK else ''}")
    x, t = data("cpu")
    cpu = {"eager": make_step("cpu", False), "jit": make_step("cpu", True)}
    first = {k: step(x, t).item() for k, step in cpu.items()}
    timed = _timing.compare({k: (lambda s=s: s(x, t)) for k, s in cpu.items()})
    results = {"cpu_s": {k: v["median_s"] for k, v in timed.items()}, "gpu": None}
    rows = [[f"CPU {k}", _timing.fmt_time(v["median_s"]), "1.00x" if k == "eager" else
             f"{timed['eager']['median_s'] / v['median_s']:.2f}x"] for k, v in timed.items()]
    if lg.cuda.is_available():
        gx, gt = data("cuda")
        gpu = {"eager": make_step("cuda", False), "jit": make_step("cuda", True)}
        for k, step in gpu.items():
            np.testing.assert_allclose(step(gx, gt).item(), first[k], rtol=1e-4, err_msg=k)
        g = {k: gpu_step_time(s, gx, gt) for k, s in gpu.items()}
        best_cpu = min(results["cpu_s"].values())
        speedup = best_cpu / min(g.values())
        cp = get_backend("cuda").xp
        results["gpu"] = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
                          "gpu_s": g, "speedup_best_vs_best": speedup, "target": f">= {TARGET}x",
                          "met": speedup >= TARGET}
        for k, v in g.items():
            rows.append([f"GPU {k} ({results['gpu']['device']})", _timing.fmt_time(v),
                         f"{timed['eager']['median_s'] / v:.2f}x"])
    _timing.print_table(["one SGD step", "time", "speed vs CPU eager"], rows)
    if results["gpu"] is None:
        print(f"\nGPU: n/a ({lg.cuda.unavailable_reason()}); target (GPU >= {TARGET}x CPU) not measured here")
    else:
        print(f"\ntarget: GPU >= {TARGET}x CPU (fastest of each): {results['gpu']['speedup_best_vs_best']:.1f}x, "
              f"{'met' if results['gpu']['met'] else 'MISSED'}")
    path = _timing.write_results("gpu_train", {"benchmark": "gpu_train", "environment": _timing.environment(
        {"labgrad": lg.__version__}), "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
