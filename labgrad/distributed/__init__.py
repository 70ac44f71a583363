"""Data-parallel training on MPI: the same script on N processes, gradients averaged.

    # train.py: run with  mpiexec -n 2 python train.py
    import labgrad as lg
    lg.distributed.init()
    model = lg.distributed.DistributedDataParallel(MLP())
    sampler = lg.distributed.DistributedSampler(train)     # this rank's shard
    ...

Start it from the environment that has labgrad and the ``dist`` extra (``pip install -e
'.[dist]'`` installs ``mpi4py`` and the ``mpich`` wheel with its ``mpiexec``), so that
``mpiexec`` and ``python`` are the venv's: ``.venv/bin/mpiexec -n 2 .venv/bin/python train.py``.
On a cluster the same script runs under the site's launcher (``srun``, ``mpirun`` of the
site's MPI): then build mpi4py against that MPI instead of the wheel
(``pip install --no-binary mpi4py mpi4py`` with the site's ``mpicc`` on ``PATH``), and
launch as the site documents, e.g. ``srun -n 8 python train.py``.

Modules: ``comm`` (init, rank, collectives with deadlines), ``ddp``
(``DistributedDataParallel``), ``sampler`` (``DistributedSampler``). mpi4py is imported by
``init()``, not by ``import labgrad``.
"""
from .comm import (DistributedError, all_reduce, barrier, broadcast, init,  # noqa: F401
                   is_initialized, rank, world_size)
from .ddp import DistributedDataParallel  # noqa: F401
from .sampler import DistributedSampler  # noqa: F401

__all__ = ["init", "is_initialized", "rank", "world_size", "all_reduce", "broadcast", "barrier",
           "DistributedDataParallel", "DistributedSampler", "DistributedError"]
