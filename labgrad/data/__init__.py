"""Datasets and batching: ``lg.data.DataLoader(lg.data.datasets.digits("train"), batch_size=32)``."""
from .dataset import Dataset, TensorDataset  # noqa: F401
from .loader import DataLoader, default_collate  # noqa: F401
from . import datasets  # noqa: F401
