"""Datasets: things with a length that give one example per index."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor, get_default_dtype


class Dataset:
    """Subclass and define ``__len__`` and ``__getitem__(i)`` (returning a tuple of arrays or
    numbers). ``DataLoader`` stacks examples into batches."""

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError


def canonical_array(x):
    """NumPy array with the loader's dtypes: floats as float32 (the default), integers int64."""
    a = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.dtype.kind == "f":
        return a.astype(get_default_dtype(), copy=False)
    if a.dtype.kind in "iu":
        return a.astype(np.int64, copy=False)
    return a


class TensorDataset(Dataset):
    """Examples are rows of equally long arrays: ``TensorDataset(features, labels)``.

    The arrays are kept as NumPy arrays (floats as float32, integers as int64), so a
    ``DataLoader`` can cut a whole batch out of each with one indexing operation.
    ``features`` and ``labels`` name the first two arrays.
    """

    def __init__(self, *arrays, num_classes=None):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(canonical_array(a) for a in arrays)
        n = len(self.arrays[0])
        for i, a in enumerate(self.arrays):
            if a.ndim == 0 or len(a) != n:
                lengths = ", ".join(str(tuple(b.shape)) for b in self.arrays)
                raise ShapeError(f"TensorDataset: every array must have the same length along axis 0 "
                                 f"(one row per example); got shapes {lengths}")
        self.num_classes = num_classes

    @property
    def features(self):
        return self.arrays[0]

    @property
    def labels(self):
        if len(self.arrays) < 2:
            raise AttributeError("this TensorDataset holds a single array: it has no labels")
        return self.arrays[1]

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        """Example ``index`` (or a batch, for an array of indices) as a tuple of Tensors."""
        return tuple(Tensor._wrap(np.array(a[index])) for a in self.arrays)

    def __repr__(self):
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        extra = f", num_classes={self.num_classes}" if self.num_classes is not None else ""
        return f"TensorDataset({len(self)} examples: {shapes}{extra})"
