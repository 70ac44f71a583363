"""Data-parallel training on MPI: the same script on N processes, gradients averaged.

    # train.py: run with  mpiexec -n 2 python train.py
    import labgrad as lg
    lg.distributed.init()
    model = lg.distributed.DistributedDataParallel(MLP())
    sampler = lg.distributed.DistributedSampler(train)     # this rank's shard
    ...

Start it from the environment that has labgrad and the ``dist`` extra (``pip install -e
'.[dist]'`` installs ``mpi4py`` and the ``mpich`` wheel with its ``mpiexec``), so that
``mpiexec`` and ``python`` are the venv's: ``.venv/bin/mpiexec -n 2 .venv/bin/python train.py``
(or activate the venv first). Run without a launcher, ``python train.py`` is a job of one
process (rank 0 of 1): the same script works unchanged.

On a cluster the same script runs under the site's launcher and MPI, which know its network:
install ``mpi4py`` *without* the ``mpich`` wheel (``pip install mpi4py``; its wheels load the
site's MPI library once the site's MPI module is loaded), or build it against the site's MPI
(``env MPICC=$(which mpicc) pip install --no-binary=mpi4py --no-cache-dir mpi4py``), then
launch as the site documents, for example ``srun -n 8 python train.py`` under Slurm or
``mpiexec -n 8 -f hosts python train.py``. Every rank must see the same script and data.

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
