"""Processes that talk: MPI through mpi4py, with deadlines so that a dead peer is an error.

MPI (the Message Passing Interface) is what Horovod and ``torch.distributed``'s first
backends were built on: N copies of one program (ranks ``0 .. N-1``), started together by a
launcher (``mpiexec -n N python train.py``), exchange messages and run *collectives*, such as
an all-reduce that leaves every rank holding the sum of everyone's array.

A collective waits for every rank. If one rank died or never calls it, the others would wait
forever; so every wait here polls a non-blocking request against a deadline (``timeout``
seconds, 120 by default, or ``LABGRAD_DIST_TIMEOUT``) and raises ``DistributedError`` when it
passes. ``init`` also makes an uncaught exception on any rank abort the whole job
(``MPI.COMM_WORLD.Abort``), so one failing rank ends every rank instead of leaving them waiting.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..errors import LabgradError
from ..profiler.profile import begin, end

__all__ = ["DistributedError", "init", "is_initialized", "rank", "world_size", "all_reduce",
           "broadcast", "barrier", "wait", "current_rank", "comm_world"]

INSTALL_HINT = ("install the MPI extra into this environment: pip install -e '.[dist]' "
                "(mpi4py and the mpich wheel, which ships mpiexec; no system MPI needed)")
_REDUCE_OPS = ("sum", "mean", "max", "min", "prod")
SPIN_S = 0.005


class DistributedError(LabgradError, RuntimeError):
    """A collective that could not complete (a peer died or never joined), or misuse."""


class _World:
    """The process's view of the job once ``init`` ran (one per process)."""

    MPI = None
    comm = None
    timeout = 120.0


_world = _World()


def is_initialized():
    return _world.comm is not None


def init(timeout=None, abort_on_exception=True):
    """Join the job the launcher started (``mpiexec -n N python script.py``); returns ``rank()``.

    Run alone (``python script.py``) it is a job of one process: rank 0 of world size 1, and
    the same script still works. ``timeout``: seconds a collective may wait for its peers
    before ``DistributedError`` (default 120, or ``LABGRAD_DIST_TIMEOUT``).
    ``abort_on_exception``: an uncaught exception on this rank aborts every rank.
    """
    if _world.comm is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise DistributedError(f"lg.distributed needs mpi4py ({e}); {INSTALL_HINT}") from None
        _world.MPI = MPI
        _world.comm = MPI.COMM_WORLD
        if abort_on_exception:
            _install_abort_hook(MPI)
    if timeout is None:
        timeout = float(os.environ.get("LABGRAD_DIST_TIMEOUT", _world.timeout))
    _world.timeout = float(timeout)
    return _world.comm.Get_rank()


def _install_abort_hook(MPI):
    previous = sys.excepthook

    def abort(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        if MPI.COMM_WORLD.Get_size() > 1:
            sys.stderr.write(f"[labgrad rank {MPI.COMM_WORLD.Get_rank()}] uncaught "
                             f"{kind.__name__}: aborting every rank of the job\n")
            sys.stderr.flush()
            time.sleep(0.5)   # let mpiexec forward what was written: Abort cuts the job's output
            MPI.COMM_WORLD.Abort(1)

    sys.excepthook = abort


def comm_world():
    """The mpi4py communicator of all ranks (after ``init``), for what this module lacks."""
    return _require().comm


def _require():
    if _world.comm is None:
        raise DistributedError("lg.distributed is not initialized: call lg.distributed.init() "
                               "first, at the top of the script (run it with mpiexec -n N python ...)")
    return _world


def rank():
    """This process's number, ``0 .. world_size() - 1``."""
    return _require().comm.Get_rank()


def world_size():
    """How many processes the job has."""
    return _require().comm.Get_size()


def current_rank():
    """The rank, or ``None`` when ``init`` was not called (never imports mpi4py)."""
    return _world.comm.Get_rank() if _world.comm is not None else None


def wait(request, what, timeout=None):
    """Wait for a non-blocking MPI request, but at most ``timeout`` seconds.

    Polls ``request.Test()``: busily for the first ``SPIN_S`` seconds (a sleep costs 50 us or
    more, longer than a small all-reduce), then with sleeps growing to 1 ms so a rank waiting
    for a slow peer leaves the core to others; raises ``DistributedError`` naming ``what``
    when the deadline passes.
    """
    world = _require()
    timeout = world.timeout if timeout is None else timeout
    now = time.monotonic()
    deadline, spin_until = now + timeout, now + SPIN_S
    pause = 1e-5
    while not request.Test():
        now = time.monotonic()
        if now < spin_until:        # most collectives finish within microseconds: poll
            continue
        if now > deadline:
            raise DistributedError(
                f"rank {world.comm.Get_rank()} of {world.comm.Get_size()}: {what} did not complete "
                f"within {timeout:g} s: another rank has died, hangs, or did not call it (every "
                f"rank must run the same collectives in the same order).\n  Look at the other "
                f"ranks' output for the first error; raise the limit with "
                f"lg.distributed.init(timeout=...) if a rank is legitimately slow.")
        time.sleep(pause)           # a slow peer: stop spinning a core, check ever less often
        pause = min(pause * 2, 1e-3)


def _host_array(tensor, what):
    data = getattr(tensor, "data", None)
    if data is None or not hasattr(tensor, "_backend"):
        raise TypeError(f"{what} takes a labgrad Tensor; got {type(tensor).__name__}")
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            raise DistributedError(f"{what}: the tensor's memory is not contiguous (a view such as "
                                   f"a transpose); reduce a contiguous copy instead")
        return data, False
    return tensor._backend.to_numpy(data), True     # GPU: through host memory


def all_reduce(tensor, op="sum"):
    """Combine ``tensor`` across all ranks, in place, and return it.

    ``op``: ``"sum"`` (every rank ends with the sum of all ranks' values), ``"mean"``,
    ``"max"``, ``"min"``, ``"prod"``. Every rank must call it with the same shape and dtype.
    The tensor's values change without autograd recording it (like an optimizer step).
    GPU tensors travel through host memory (no CUDA-aware MPI is assumed).
    """
    if op not in _REDUCE_OPS:
        raise ValueError(f"all_reduce op={op!r}: choose one of {', '.join(_REDUCE_OPS)}")
    world = _require()
    MPI = world.MPI
    array, copied = _host_array(tensor, "all_reduce")
    span = begin("all_reduce", category="comm", bytes=int(array.nbytes), op=op)
    try:
        mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN,
                  "prod": MPI.PROD}[op]
        wait(world.comm.Iallreduce(MPI.IN_PLACE, array, op=mpi_op),
             f"all_reduce({op}) of {array.dtype}{list(array.shape)}")
        if op == "mean":
            array /= world.comm.Get_size()
    finally:
        end(span)
    if copied:
        tensor.data[...] = tensor._backend.asarray(array)
    return tensor


def broadcast(tensor, root=0):
    """Overwrite ``tensor`` on every rank with ``root``'s values, in place; returns it."""
    world = _require()
    array, copied = _host_array(tensor, "broadcast")
    span = begin("broadcast", category="comm", bytes=int(array.nbytes), root=root)
    try:
        wait(world.comm.Ibcast(array, root=root),
             f"broadcast from rank {root} of {array.dtype}{list(array.shape)}")
    finally:
        end(span)
    if copied:
        tensor.data[...] = tensor._backend.asarray(array)
    return tensor


def barrier():
    """Wait until every rank reaches this line (with the deadline of ``init``)."""
    world = _require()
    span = begin("barrier", category="comm")
    try:
        wait(world.comm.Ibarrier(), "barrier")
    finally:
        end(span)
