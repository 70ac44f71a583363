"""labgrad.data: datasets, batching, shuffling, and the digits split."""
import sys

import numpy as np
import pytest

import labgrad as lg
from labgrad.data import DataLoader, Dataset, TensorDataset, datasets
from labgrad.errors import ShapeError


def numbered(n=10):
    """Example i has features [i, 10 i] and label i, so batches show which examples they hold."""
    x = np.stack([np.arange(n), 10 * np.arange(n)], axis=1).astype(np.float64)
    return TensorDataset(x, np.arange(n, dtype=np.int32))


def test_tensor_dataset_canonical_dtypes_and_items():
    ds = numbered()
    assert ds.features.dtype == np.float32 and ds.labels.dtype == np.int64
    assert len(ds) == 10
    x, y = ds[3]
    assert isinstance(x, lg.Tensor) and x.tolist() == [3.0, 30.0] and y.item() == 3
    xb, yb = ds[np.array([1, 4])]
    assert xb.shape == (2, 2) and yb.tolist() == [1, 4]


def test_tensor_dataset_items_are_copies():
    ds = numbered()
    x, _ = ds[2]
    x.data[...] = -1
    assert ds.features[2].tolist() == [2.0, 20.0]


def test_tensor_dataset_rejects_unequal_lengths():
    with pytest.raises(ShapeError, match=r"same length.*\(3, 2\), \(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))


def test_loader_batches_in_order_with_a_short_last_batch():
    loader = DataLoader(numbered(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    xb, yb = batches[0]
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.numpy()[:, 1], 10 * yb.numpy())   # rows stay together
    assert not xb.requires_grad


def test_drop_last():
    loader = DataLoader(numbered(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[1].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_visits_every_example_once_per_epoch_in_a_new_order():
    loader = DataLoader(numbered(50), batch_size=8, shuffle=True)
    lg.manual_seed(0)
    epochs = [np.concatenate([yb.numpy() for _, yb in loader]) for _ in range(2)]
    for labels in epochs:
        assert sorted(labels.tolist()) == list(range(50))
    assert epochs[0].tolist() != epochs[1].tolist()
    assert epochs[0].tolist() != list(range(50))


def test_shuffle_is_deterministic_under_manual_seed():
    loader = DataLoader(numbered(30), batch_size=7, shuffle=True)

    def one_epoch():
        return [yb.tolist() for _, yb in loader]
    lg.manual_seed(3)
    a = one_epoch()
    lg.manual_seed(3)
    assert one_epoch() == a
    lg.manual_seed(4)
    assert one_epoch() != a


def test_loader_seed_gives_its_own_generator():
    def first_epoch(seed, global_seed):
        lg.manual_seed(global_seed)
        return [yb.tolist() for _, yb in DataLoader(numbered(30), batch_size=30, shuffle=True, seed=seed)]
    assert first_epoch(5, 0) == first_epoch(5, 1)
    assert first_epoch(5, 0) != first_epoch(6, 0)


def test_a_map_style_dataset_is_collated():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 2

    xb, yb = next(iter(DataLoader(Squares(), batch_size=3)))
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    assert xb.tolist() == [[0, 0], [1, 1], [2, 4]] and yb.tolist() == [0, 1, 0]


def test_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(numbered(), batch_size=0)


# ---------------------------------------------------------------- digits

def test_digits_split_sizes_scaling_and_labels():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    ref = sklearn_datasets.load_digits()
    train, test, full = datasets.digits("train"), datasets.digits("test"), datasets.digits("all")
    assert (len(train), len(test), len(full)) == (1437, 360, 1797)
    assert train.num_classes == test.num_classes == 10
    assert train.features.dtype == np.float32 and train.labels.dtype == np.int64
    assert train.features.min() == 0.0 and train.features.max() == 1.0
    np.testing.assert_allclose(full.features, ref.data / 16, rtol=1e-7)
    np.testing.assert_array_equal(full.labels, ref.target)
    assert set(np.unique(test.labels)) == set(range(10))


def test_digits_train_and_test_partition_the_data():
    pytest.importorskip("sklearn")
    full = datasets.digits("all")
    rows = {}
    for i, row in enumerate(full.features):
        rows.setdefault(row.tobytes(), []).append(i)
    # identify each split example with its original index (duplicate images may share rows)
    used = []
    for split in ("train", "test"):
        for row in datasets.digits(split).features:
            used.append(rows[row.tobytes()].pop())
    assert sorted(used) == list(range(1797))


def test_digits_split_is_fixed_regardless_of_manual_seed():
    pytest.importorskip("sklearn")
    lg.manual_seed(0)
    a = datasets.digits("test").labels.copy()
    lg.manual_seed(123)
    np.testing.assert_array_equal(datasets.digits("test").labels, a)


def test_digits_bad_split():
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="'train', 'test' or 'all'"):
        datasets.digits("validation")


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    datasets._digits_arrays.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(ImportError, match=r"pip install -e '\.\[course\]'"):
            datasets.digits("train")
    finally:
        datasets._digits_arrays.cache_clear()


def test_loader_puts_batches_on_a_device(device):
    xb, yb = next(iter(DataLoader(numbered(6), batch_size=4, device=device)))
    assert xb.device == yb.device == lg.device(device)
    assert yb.tolist() == [0, 1, 2, 3] and xb.dtype == np.float32
