"""``DataLoader``: batches of a dataset, optionally shuffled, as Tensors."""
from __future__ import annotations

import math

import numpy as np

from ..backends import CPU, get_backend
from ..random import generator
from ..tensor import Tensor
from .dataset import canonical_array


class DataLoader:
    """Iterate over ``dataset`` in batches::

        loader = DataLoader(digits("train"), batch_size=32, shuffle=True)
        for xb, yb in loader:        # float32 (32, 64) and int64 (32,) Tensors
            ...

    ``shuffle`` draws a new order each epoch from labgrad's seeded generator, so
    ``lg.manual_seed`` makes runs reproducible; ``seed=`` gives the loader a generator of its
    own instead. Array-backed datasets (``TensorDataset``) are cut with one NumPy indexing
    operation per batch; others are gathered example by example and stacked.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, device=None):
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._backend = get_backend(device)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self._rng if self._rng is not None else generator(CPU)
        return rng.permutation(n)

    def __iter__(self):
        order = self._order()
        arrays = getattr(self.dataset, "arrays", None)
        backend = self._backend
        wrap = Tensor._wrap if backend is CPU else (lambda a, b: Tensor._wrap(b.asarray(a), b))
        bs = self.batch_size
        stop = len(self) * bs
        for start in range(0, stop, bs):
            idx = order[start:start + bs]
            if arrays is not None:
                yield tuple(wrap(a[idx], backend) for a in arrays)
            else:
                yield tuple(wrap(b, backend) for b in _collate([self.dataset[int(i)] for i in idx]))

    def __repr__(self):
        return (f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, {len(self)} batches)")


def _collate(examples):
    """Stack a list of examples (tuples of arrays, Tensors or numbers) field by field."""
    first = examples[0]
    if not isinstance(first, (tuple, list)):
        examples = [(e,) for e in examples]
    fields = zip(*examples)
    return [canonical_array(np.stack([canonical_array(x) for x in field])) for field in fields]
