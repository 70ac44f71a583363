"""Small datasets that ship with the course's dependencies (no network needed)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .dataset import TensorDataset

SPLIT_SEED = 20240601   # fixes the train/test split for everyone, independent of lg.manual_seed
TRAIN_FRACTION = 0.8


@lru_cache(maxsize=1)
def _digits_arrays():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("labgrad.data.datasets.digits() needs scikit-learn, which bundles the "
                          "digits images. Install the course extras: pip install -e '.[course]' "
                          "(or just: pip install scikit-learn)") from None
    bunch = load_digits()
    features = (bunch.data / 16.0).astype(np.float32)   # pixels are 0..16
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    for a in (features, labels):
        a.flags.writeable = False
    return features, labels, order


def digits(split="train"):
    """The 8x8 handwritten digits of scikit-learn: 1797 images, 10 classes.

    Each example is 64 pixels scaled to ``[0, 1]`` (float32) and a label 0-9 (int64). The
    ``"train"`` and ``"test"`` splits are a fixed 80/20 cut of one seeded permutation (1437 and
    360 examples), the same on every machine; ``"all"`` is the whole set in its original order.

    >>> train = digits("train")
    >>> train.features.shape, train.labels.shape, train.num_classes
    ((1437, 64), (1437,), 10)
    """
    features, labels, order = _digits_arrays()
    n_train = int(len(labels) * TRAIN_FRACTION)
    if split == "all":
        idx = np.arange(len(labels))
    elif split == "train":
        idx = order[:n_train]
    elif split == "test":
        idx = order[n_train:]
    else:
        raise ValueError(f"digits: split must be 'train', 'test' or 'all', got {split!r}")
    return TensorDataset(features[idx], labels[idx], num_classes=10)
