"""Programs that test_distributed.py runs under ``mpiexec -n 2`` (one scenario per run).

    mpiexec -n 2 python tests/dist_worker.py SCENARIO OUT_DIR

Each rank writes what it saw into OUT_DIR; the test process checks it. Not collected by
pytest (the name does not start with ``test_``).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import labgrad as lg
import labgrad.functional as F
from labgrad import nn

STEPS, BATCH, LR = 3, 32, 0.5


def model_and_data(seed=0):
    """A small float64 MLP and a fixed batch stream, the same in every process."""
    lg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    rng = np.random.default_rng(seed)
    batches = [(rng.normal(size=(BATCH, 8)), rng.integers(0, 3, size=BATCH)) for _ in range(STEPS)]
    return model, batches


def train(model, batches, part=slice(None)):
    opt = lg.optim.SGD(model.parameters(), lr=LR)
    for x, t in batches:
        loss = F.cross_entropy(model(lg.tensor(x[part], dtype="float64")), lg.tensor(t[part]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def scenario_ddp(out):
    rank = lg.distributed.init(timeout=60)
    n = lg.distributed.world_size()
    model, batches = model_and_data()
    if rank != 0:   # different starting values: the broadcast from rank 0 must fix them
        for p in model.parameters():
            p.data = p.data + 1.0
    ddp = lg.distributed.DistributedDataParallel(model, bucket_bytes=600)   # several buckets
    per = BATCH // n
    train(ddp, batches, slice(rank * per, (rank + 1) * per))
    np.savez(os.path.join(out, f"params{rank}.npz"),
             **{k: v.numpy() for k, v in ddp.state_dict().items()})
    x, t = batches[0]
    with lg.profiler.profile() as prof:
        loss = F.cross_entropy(ddp(lg.tensor(x[:per], dtype="float64")), lg.tensor(t[:per]))
        loss.backward()
    prof.export_chrome_trace(os.path.join(out, f"trace{rank}.json"))
    events = [{"name": e.name, "category": e.category, "phase": e.phase, "dur": e.dur,
               "bytes": e.bytes} for e in prof.events]
    with open(os.path.join(out, f"events{rank}.json"), "w") as f:
        json.dump({"events": events, "buckets": len(ddp.buckets)}, f)


def scenario_collectives(out):
    rank = lg.distributed.init(timeout=60)
    n = lg.distributed.world_size()
    x = lg.tensor([1.0, 2.0, 3.0]) * (rank + 1)
    s = lg.distributed.all_reduce(x.detach(), op="sum")
    m = lg.distributed.all_reduce(lg.tensor([float(rank)]), op="mean")
    mx = lg.distributed.all_reduce(lg.tensor([float(rank), -float(rank)]), op="max")
    b = lg.distributed.broadcast(lg.tensor([float(rank + 10)]), root=1)
    lg.distributed.barrier()
    with open(os.path.join(out, f"collectives{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": n, "sum": s.tolist(), "mean": m.tolist(),
                   "max": mx.tolist(), "bcast": b.tolist()}, f)


def scenario_hang(out):
    """Rank 1 never joins the all-reduce: rank 0 must fail by its deadline, not hang."""
    rank = lg.distributed.init(timeout=2)
    if rank == 1:
        time.sleep(120)
    lg.distributed.all_reduce(lg.tensor([1.0]))


def scenario_crash(out):
    """Rank 1 raises before the all-reduce: the whole job must end with its error."""
    rank = lg.distributed.init(timeout=120)
    if rank == 1:
        raise RuntimeError("worker 1 failed on purpose")
    lg.distributed.all_reduce(lg.tensor([1.0]))


def scenario_killed(out):
    """Rank 1 is killed (as by the out-of-memory killer): no exception, no Python cleanup."""
    rank = lg.distributed.init(timeout=120)
    if rank == 1:
        os.kill(os.getpid(), 9)
    lg.distributed.all_reduce(lg.tensor([1.0]))


if __name__ == "__main__":
    scenario, out_dir = sys.argv[1], sys.argv[2]
    globals()[f"scenario_{scenario}"](out_dir)
