"""Data parallel on MPI (issue 11): 2 processes started with mpiexec, as a user would.

Each test runs ``mpiexec -n 2 python tests/dist_worker.py SCENARIO DIR`` with a timeout and
checks what the ranks wrote. Skipped, with the reason, where mpi4py or mpiexec is missing
(``pip install -e '.[dist]'``). The sampler needs no MPI and is tested in-process.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dist_worker
import labgrad as lg

HERE = Path(__file__).resolve().parent
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install -e '.[dist]' (mpi4py + the mpich wheel)")


def mpirun(scenario, out, n=2, timeout=90):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(HERE / "dist_worker.py"),
                           scenario, str(out)], capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.monotonic() - start


@needs_mpi
def test_a_script_run_without_a_launcher_is_a_job_of_one(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HERE / "dist_worker.py"), "ddp", str(tmp_path)],
                          capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode == 0, proc.stderr
    model, batches = dist_worker.model_and_data()
    dist_worker.train(model, batches)
    got = np.load(tmp_path / "params0.npz")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(got[k], v.numpy())


@needs_mpi
def test_collectives_agree_on_every_rank(tmp_path):
    proc, _ = mpirun("collectives", tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads((tmp_path / f"collectives{r}.json").read_text()) for r in (0, 1)]
    for r in results:
        assert r["world"] == 2
        assert r["sum"] == [3.0, 6.0, 9.0]         # [1,2,3] * 1 + [1,2,3] * 2
        assert r["mean"] == [0.5] and r["max"] == [1.0, 0.0] and r["bcast"] == [11.0]


@needs_mpi
def test_two_processes_on_half_batches_match_one_process_on_the_whole_batch(tmp_path):
    proc, _ = mpirun("ddp", tmp_path)
    assert proc.returncode == 0, proc.stderr
    model, batches = dist_worker.model_and_data()
    dist_worker.train(model, batches)               # one process, whole batches, no MPI
    expected = {k: v.numpy() for k, v in model.state_dict().items()}
    for r in (0, 1):
        got = np.load(tmp_path / f"params{r}.npz")
        assert set(got.files) == set(expected)     # the bare model's names: no "module." prefix
        for k in expected:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-12, atol=1e-12)


@needs_mpi
def test_the_profiler_shows_all_reduce_time_as_its_own_events(tmp_path):
    proc, _ = mpirun("ddp", tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = json.loads((tmp_path / "events0.json").read_text())
    comm = [e for e in run["events"] if e["category"] == "comm"]
    sends = [e for e in comm if e["name"].startswith("all_reduce (bucket")]
    assert run["buckets"] > 1 and len(sends) == run["buckets"]     # one message per bucket
    assert [e["name"] for e in comm][-1] == "all_reduce wait"
    # overlap: the last layer's bucket is sent while earlier layers' rules still run
    names = [e["name"] for e in run["events"]]
    last_backward = max(i for i, e in enumerate(run["events"]) if e["phase"] == "backward")
    assert names.index("all_reduce (bucket 0)") < last_backward
    assert all(e["bytes"] > 0 and e["dur"] >= 0 for e in comm)
    assert any(e["phase"] == "backward" for e in run["events"])
    merged = lg.profiler.merge_chrome_traces([tmp_path / "trace0.json", tmp_path / "trace1.json"],
                                            tmp_path / "both.json")
    events = json.loads(Path(merged).read_text())["traceEvents"]
    names = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names == {"labgrad rank 0", "labgrad rank 1"}          # one process per rank
    waits = [e for e in events if e["name"] == "all_reduce wait"]
    assert {e["pid"] for e in waits} == {0, 1}


@needs_mpi
def test_a_rank_that_never_joins_makes_the_others_fail_by_the_deadline(tmp_path):
    proc, seconds = mpirun("hang", tmp_path)
    assert proc.returncode != 0 and seconds < 60
    assert "DistributedError" in proc.stderr and "did not complete within 2 s" in proc.stderr
    assert "aborting every rank" in proc.stderr


@needs_mpi
def test_a_rank_that_raises_ends_the_job_with_its_error(tmp_path):
    proc, seconds = mpirun("crash", tmp_path)
    assert proc.returncode != 0 and seconds < 60    # not the 120 s deadline: the job aborts
    # mpiexec forwards the ranks' output, and an abort can cut it short on a loaded machine: the
    # error is there unless the forwarded text was cut off mid-traceback
    assert "Traceback" in proc.stderr
    if not proc.stderr.rstrip().endswith("(most recent call last):"):
        assert "worker 1 failed on purpose" in proc.stderr and "aborting every rank" in proc.stderr


@needs_mpi
def test_a_rank_that_is_killed_ends_the_job(tmp_path):
    proc, seconds = mpirun("killed", tmp_path)
    assert proc.returncode != 0 and seconds < 60


def test_sampler_shards_are_disjoint_cover_the_epoch_and_change_with_it():
    data = lg.data.TensorDataset(np.arange(10, dtype=np.float32)[:, None], np.arange(10))
    samplers = [lg.distributed.DistributedSampler(data, num_replicas=3, rank=r, seed=1) for r in range(3)]
    shards = [list(s) for s in samplers]
    assert [len(s) for s in shards] == [4, 4, 4]                # padded to equal steps
    assert set().union(*shards) == set(range(10))   # 2 of the 12 repeat (padding)
    even = [list(lg.distributed.DistributedSampler(data, 2, r, seed=1)) for r in range(2)]
    assert sorted(even[0] + even[1]) == list(range(10))     # divides evenly: disjoint
    samplers[0].set_epoch(1)
    assert list(samplers[0]) != shards[0]
    sub = samplers[1].subset()
    xb, yb = next(iter(lg.data.DataLoader(sub, batch_size=4)))
    assert yb.tolist() == shards[1] and xb.numpy()[:, 0].tolist() == shards[1]
    dropped = [list(lg.distributed.DistributedSampler(data, 3, r, shuffle=False, drop_last=True))
               for r in range(3)]
    assert dropped == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError, match="rank 3 is not in 0..2"):
        lg.distributed.DistributedSampler(data, num_replicas=3, rank=3)


def test_using_it_before_init_says_what_to_do():
    if lg.distributed.is_initialized():
        pytest.skip("this process already ran init()")
    with pytest.raises(lg.distributed.DistributedError, match=r"call lg.distributed.init\(\) first"):
        lg.distributed.rank()
    with pytest.raises(ValueError, match="choose one of sum, mean"):
        lg.distributed.all_reduce(lg.ones(2), op="average")
