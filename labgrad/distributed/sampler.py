"""``DistributedSampler``: which examples each rank trains on.

Every rank draws the same permutation of the dataset (a seed shared by all, changed with
``set_epoch``) and takes every ``world_size``-th index starting at its rank. So the ranks'
shards are disjoint, together they cover the epoch, and no communication is needed to agree.
When the dataset does not divide evenly, the first indices are repeated to pad it (or, with
``drop_last=True``, the tail is dropped), so every rank runs the same number of steps, which
the all-reduce in each step requires.
"""
from __future__ import annotations

import math

import numpy as np

from ..data.dataset import Dataset
from .comm import rank as _rank
from .comm import world_size as _world_size

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """``for i in DistributedSampler(dataset):`` this rank's indices of the epoch.

    ``subset()`` gives this rank's shard as a dataset for ``DataLoader``::

        sampler = DistributedSampler(train, shuffle=True, seed=0)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            for xb, yb in DataLoader(sampler.subset(), batch_size=32):
                ...

    ``num_replicas`` and ``rank`` default to ``lg.distributed``'s world size and rank.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        self.dataset = dataset
        self.num_replicas = _world_size() if num_replicas is None else int(num_replicas)
        self.rank = _rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank {self.rank} is not in 0..{self.num_replicas - 1}")
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        n = len(dataset)
        self.num_samples = (n // self.num_replicas if drop_last
                            else math.ceil(n / self.num_replicas))

    def set_epoch(self, epoch):
        """A new shared order for epoch ``epoch`` (call it on every rank, with the same number)."""
        self.epoch = int(epoch)

    def indices(self):
        n = len(self.dataset)
        order = (np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle
                 else np.arange(n))
        total = self.num_samples * self.num_replicas
        if total > n:
            order = np.concatenate([order, order[:total - n]])
        return order[:total][self.rank::self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def subset(self):
        """This rank's shard of the current epoch as a dataset (cut once, fast to batch)."""
        return _Shard(self.dataset, self.indices())

    def __repr__(self):
        return (f"DistributedSampler(rank {self.rank} of {self.num_replicas}, {self.num_samples} "
                f"of {len(self.dataset)} examples, shuffle={self.shuffle}, epoch={self.epoch})")


class _Shard(Dataset):
    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices
        arrays = getattr(dataset, "arrays", None)
        if arrays is not None:
            self.arrays = tuple(a[indices] for a in arrays)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]
