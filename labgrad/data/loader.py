"""``DataLoader``: batches of a dataset, optionally shuffled, as Tensors on a device."""
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

    Options, and why you would want them:

    ``shuffle``
        Visit the examples in a new random order each epoch, so batches differ between epochs
        (stochastic gradient descent assumes it). The order comes from labgrad's seeded
        generator, so ``lg.manual_seed`` makes runs reproducible.
    ``seed``
        An int (or a ``numpy.random.Generator``): the loader draws its orders from a generator
        of its own, so its shuffling does not depend on, or disturb, other random draws
        (initialization, dropout). Two loaders with the same seed give the same epochs.
    ``drop_last``
        Leave out the last batch when it is smaller than ``batch_size``: useful when a step
        needs a fixed batch shape (a compiled step would otherwise trace a second time, and
        batch norm on a batch of one has no variance).
    ``collate_fn``
        ``collate_fn(examples) -> batch``: how a list of examples (whatever
        ``dataset[i]`` returns) becomes one batch. The default, ``default_collate``, stacks
        each field into one array. Write your own to pad sequences, build dicts, or add fields.
    ``device``
        Where the batches go (``"cpu"``, ``"cuda"``): every Tensor or array in a batch,
        including inside the tuples, lists and dicts a ``collate_fn`` returns, is moved there.

    Array-backed datasets (``TensorDataset``) without a ``collate_fn`` are cut with one NumPy
    indexing operation per batch; others are gathered example by example and collated.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, device=None,
                 collate_fn=None):
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be a function taking a list of examples, "
                            f"got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.collate_fn = collate_fn
        self._rng = (seed if isinstance(seed, np.random.Generator)
                     else None if seed is None else np.random.default_rng(seed))
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
        arrays = getattr(self.dataset, "arrays", None) if self.collate_fn is None else None
        backend = self._backend
        wrap = Tensor._wrap if backend is CPU else (lambda a, b: Tensor._wrap(b.asarray(a), b))
        bs = self.batch_size
        stop = len(self) * bs
        for start in range(0, stop, bs):
            idx = order[start:start + bs]
            if arrays is not None:
                yield tuple(wrap(a[idx], backend) for a in arrays)
            elif self.collate_fn is None:
                yield tuple(wrap(b, backend) for b in default_collate([self.dataset[int(i)] for i in idx]))
            else:
                yield _to_backend(self.collate_fn([self.dataset[int(i)] for i in idx]), backend)

    def __repr__(self):
        return (f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, {len(self)} batches)")


def default_collate(examples):
    """Stack a list of examples field by field: ``[(x0, y0), (x1, y1)] -> [stack(xs), stack(ys)]``.

    Fields may be arrays, Tensors or numbers; floats become float32 and integers int64 (the
    dtypes models and losses expect). An example that is not a tuple is one field.
    """
    first = examples[0]
    if not isinstance(first, (tuple, list)):
        examples = [(e,) for e in examples]
    fields = zip(*examples)
    return [canonical_array(np.stack([canonical_array(x) for x in field])) for field in fields]


def _to_backend(batch, backend):
    """Every Tensor or array in ``batch`` (nested in tuples, lists, dicts) as a Tensor on ``backend``."""
    if isinstance(batch, Tensor):
        return batch if batch._backend is backend else batch.to(backend.device)
    if isinstance(batch, np.ndarray):
        return Tensor._wrap(backend.asarray(canonical_array(batch)), backend)
    if isinstance(batch, dict):
        return {k: _to_backend(v, backend) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_backend(v, backend) for v in batch)
    return batch
