"""The generated toy datasets (spirals, two moons, sine) and DataLoader's options."""
import numpy as np
import pytest

import labgrad as lg
from labgrad.data import DataLoader, Dataset, TensorDataset, datasets, default_collate

GENERATED = {
    "spirals": (datasets.spirals, dict(n_per_class=50, classes=3), 150, (2,), 3),
    "two_moons": (datasets.two_moons, dict(n=100), 100, (2,), 2),
    "sine": (datasets.sine, dict(n=100), 100, (1,), None),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_sets_have_fixed_disjoint_80_20_splits(name):
    make, kw, n, feature_shape, classes = GENERATED[name]
    train, test, everything = make("train", **kw), make("test", **kw), make("all", **kw)
    assert (len(train), len(test), len(everything)) == (int(0.8 * n), n - int(0.8 * n), n)
    assert train.features.shape[1:] == feature_shape and train.features.dtype == np.float32
    assert train.num_classes == classes
    rows = lambda ds: {tuple(r) for r in ds.features.tolist()}    # noqa: E731
    assert rows(train) | rows(test) == rows(everything) and not rows(train) & rows(test)
    lg.manual_seed(123)                                            # the global seed plays no part
    again = make("train", **kw)
    np.testing.assert_array_equal(again.features, train.features)
    np.testing.assert_array_equal(again.arrays[1], train.arrays[1])
    other = make("train", **kw, seed=1)
    assert not np.array_equal(other.features, train.features)
    with pytest.raises(ValueError, match="split must be"):
        make("validation", **kw)


def test_generated_sets_look_like_their_names():
    moons = datasets.two_moons("all", n=200, noise=0.0)
    upper = moons.features[moons.labels == 0]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)   # on the unit circle
    spirals = datasets.spirals("all", n_per_class=40, classes=2, noise=0.0)
    assert np.bincount(spirals.labels).tolist() == [40, 40]
    assert np.abs(spirals.features).max() <= 1.0 + 1e-6
    sine = datasets.sine("all", n=500, noise=0.0)
    np.testing.assert_allclose(sine.arrays[1], np.sin(sine.features), atol=1e-6)
    assert sine.arrays[1].shape == (500, 1)
    with pytest.raises(ValueError, match="classes must be an integer >= 2"):
        datasets.spirals(classes=1)


def test_a_spiral_needs_a_hidden_layer():
    """The point of the spirals: a linear model fails, a small MLP succeeds."""
    def accuracy(model, epochs=150):
        lg.manual_seed(0)
        train = datasets.spirals("train")
        opt = lg.optim.Adam(model.parameters(), lr=0.02)
        x, y = lg.tensor(train.features), lg.tensor(train.labels)
        for _ in range(epochs):
            loss = lg.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with lg.no_grad():
            return float((model(x).numpy().argmax(1) == train.labels).mean())
    lg.manual_seed(0)
    linear = accuracy(lg.nn.Linear(2, 3))
    lg.manual_seed(0)
    mlp = accuracy(lg.nn.Sequential(lg.nn.Linear(2, 64), lg.nn.Tanh(), lg.nn.Linear(64, 3)))
    assert linear < 0.7 < 0.9 < mlp, (linear, mlp)


# ---------------------------------------------------------------- DataLoader options

def numbered(n=10):
    return TensorDataset(np.arange(n, dtype=np.float32).reshape(n, 1), np.arange(n))


def epoch(loader):
    return [yb.tolist() for _, yb in loader]


def test_seeded_loader_repeats_its_epochs_and_ignores_the_global_seed():
    a, b = DataLoader(numbered(20), 5, shuffle=True, seed=3), DataLoader(numbered(20), 5, shuffle=True, seed=3)
    lg.manual_seed(0)
    first_a = epoch(a)
    lg.manual_seed(99)
    assert epoch(b) == first_a
    assert epoch(a) != first_a                                   # the next epoch is a new order
    assert sorted(sum(epoch(a), [])) == list(range(20))
    gen = DataLoader(numbered(20), 5, shuffle=True, seed=np.random.default_rng(3))
    assert epoch(gen) == first_a                                 # a Generator works as a seed


def test_drop_last_gives_only_full_batches():
    loader = DataLoader(numbered(10), batch_size=4, drop_last=True, shuffle=True, seed=0)
    assert len(loader) == 2 and [len(b) for b in epoch(loader)] == [4, 4]
    assert [len(b) for b in epoch(DataLoader(numbered(10), batch_size=4))] == [4, 4, 2]


def test_collate_fn_builds_the_batch_and_is_moved_to_the_device():
    class Sentences(Dataset):
        data = [[1, 2, 3], [4], [5, 6]]

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            return self.data[i]

    def pad(examples):
        width = max(len(e) for e in examples)
        ids = np.zeros((len(examples), width), dtype=np.int64)
        for row, e in enumerate(examples):
            ids[row, :len(e)] = e
        return {"ids": ids, "lengths": np.array([len(e) for e in examples])}

    batches = list(DataLoader(Sentences(), batch_size=2, collate_fn=pad, device="cpu"))
    assert isinstance(batches[0]["ids"], lg.Tensor)
    assert batches[0]["ids"].tolist() == [[1, 2, 3], [4, 0, 0]] and batches[0]["lengths"].tolist() == [3, 1]
    assert batches[1]["ids"].tolist() == [[5, 6]]
    ds = numbered(4)
    seen = []
    loader = DataLoader(ds, batch_size=2, collate_fn=lambda ex: seen.append(len(ex)) or default_collate(ex))
    xb, yb = next(iter(loader))
    assert seen == [2] and isinstance(xb, lg.Tensor) and yb.tolist() == [0, 1]
    with pytest.raises(TypeError, match="collate_fn"):
        DataLoader(ds, collate_fn="stack")


def test_default_collate_stacks_fields_with_canonical_dtypes():
    xs, ys = default_collate([(np.array([1.0, 2.0]), 3), (np.array([4.0, 5.0]), 6)])
    assert xs.dtype == np.float32 and ys.dtype == np.int64 and xs.shape == (2, 2)


def test_loader_device_option(device):
    xb, yb = next(iter(DataLoader(numbered(4), batch_size=2, device=device)))
    assert xb.device == yb.device == lg.device(device)
    out = next(iter(DataLoader(numbered(4), batch_size=2, device=device,
                               collate_fn=lambda ex: default_collate(ex))))
    assert all(t.device == lg.device(device) for t in out)
