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


# ---------------------------------------------------------------- toy problems, generated

def _split(name, split, seed, arrays, num_classes=None):
    """The ``split`` part of a generated set: a fixed 80/20 cut of a permutation drawn from ``seed``."""
    n = len(arrays[0])
    order = np.random.default_rng([seed, SPLIT_SEED]).permutation(n)
    n_train = int(n * TRAIN_FRACTION)
    if split == "all":
        idx = np.arange(n)
    elif split == "train":
        idx = order[:n_train]
    elif split == "test":
        idx = order[n_train:]
    else:
        raise ValueError(f"{name}: split must be 'train', 'test' or 'all', got {split!r}")
    return TensorDataset(*(a[idx] for a in arrays), num_classes=num_classes)


def _check_count(name, what, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: {what} must be an integer >= {minimum}, got {value!r}")


def spirals(split="train", n_per_class=100, classes=3, noise=0.2, seed=0):
    """``classes`` interleaved spiral arms in the plane: a classic that no linear model can
    separate (a hidden layer can), small enough to plot and to train in a second.

    Features are (x, y) points (float32), labels the arm (int64). The points come from ``seed``
    alone (not ``lg.manual_seed``), and ``split`` picks a fixed 80/20 cut of them, so train and
    test never overlap and are the same on every machine.

    >>> spirals("train").features.shape
    (240, 2)
    """
    _check_count("spirals", "n_per_class", n_per_class)
    _check_count("spirals", "classes", classes, 2)
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for k in range(classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        angle = np.linspace(0.0, 4.0, n_per_class) + k * 2 * np.pi / classes
        angle = angle + noise * rng.standard_normal(n_per_class)
        points.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
        labels.append(np.full(n_per_class, k))
    return _split("spirals", split, seed, (np.concatenate(points).astype(np.float32),
                                            np.concatenate(labels).astype(np.int64)), num_classes=classes)


def two_moons(split="train", n=400, noise=0.1, seed=0):
    """Two interleaving half circles (like scikit-learn's ``make_moons``), labels 0 and 1.

    Half the points lie on the upper moon ``(cos t, sin t)``, half on the lower one
    ``(1 - cos t, 0.5 - sin t)``, ``t`` in [0, pi], plus Gaussian ``noise``. Seeded and split
    like ``spirals``.
    """
    _check_count("two_moons", "n", n, 2)
    rng = np.random.default_rng(seed)
    upper, lower = n // 2, n - n // 2
    t_up, t_low = np.linspace(0, np.pi, upper), np.linspace(0, np.pi, lower)
    points = np.concatenate([np.stack([np.cos(t_up), np.sin(t_up)], axis=1),
                             np.stack([1 - np.cos(t_low), 0.5 - np.sin(t_low)], axis=1)])
    points = points + noise * rng.standard_normal(points.shape)
    labels = np.concatenate([np.zeros(upper), np.ones(lower)]).astype(np.int64)
    return _split("two_moons", split, seed, (points.astype(np.float32), labels), num_classes=2)


def sine(split="train", n=200, noise=0.1, seed=0):
    """Regression: ``y = sin(x) + noise`` for ``x`` uniform in [-pi, pi].

    Features and targets are float32 columns of shape (n, 1), ready for ``nn.Linear(1, ...)``
    and ``MSELoss``. Seeded and split like ``spirals``.
    """
    _check_count("sine", "n", n, 2)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, (n, 1))
    y = np.sin(x) + noise * rng.standard_normal((n, 1))
    return _split("sine", split, seed, (x.astype(np.float32), y.astype(np.float32)))
