"""Training speed of the high-level loop (issue 10): ``Trainer.fit(jit=True)`` against eager
``fit`` and against a hand-written PyTorch eager loop, on the same models and batches.

Two models on the digits (fixed 80/20 split, batch 32, shuffled by one seeded generator, so
every column sees the same batches in the same order and starts from the same weights):

* ``mlp``: 64-128-10 ReLU MLP, SGD lr 0.1 (the course's MLP);
* ``cnn``: conv(1->16, 3x3) ReLU maxpool, conv(16->32, 3x3) ReLU maxpool, linear(128->10), Adam 3e-3.

Columns: labgrad eager ``fit``, labgrad ``fit(jit=True)`` (the step traced once by ``lg.jit``,
then run as compiled code), and PyTorch (CPU, 1 thread) running the loop a PyTorch user would
write, with the same per-batch bookkeeping as ``fit`` (``loss.item()``, accuracy). Epochs of
the three columns take turns (interleaved, so a machine that gets busy hits all alike). The
epoch time is the median over epochs 2..N; the first epoch, which includes jit's tracing, is
reported on its own. Test accuracy after the last epoch is printed too (targets: MLP >= 95%
in 20 epochs, CNN >= 97%). Run: ``python benchmarks/fit.py``.
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import statistics
import sys
import time

import numpy as np

import labgrad as lg
from labgrad import nn
from _frameworks import import_torch

BATCH = 32
SEED = 0
MODELS = ("mlp", "cnn")
COLUMNS = ("eager fit", "jit fit", "torch loop")


torch = import_torch()


def digits(split, images):
    d = lg.data.datasets.digits(split)
    if images:
        return lg.data.TensorDataset(d.features.reshape(-1, 1, 8, 8), d.labels, num_classes=10)
    return d


def build(name):
    lg.manual_seed(SEED)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        return model, lg.optim.SGD(model.parameters(), lr=0.1)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(128, 10))
    return model, lg.optim.Adam(model.parameters(), lr=3e-3)


def torch_twin(name, model):
    """The same architecture in PyTorch, with labgrad's initial weights copied in."""
    tn = torch.nn
    if name == "mlp":
        tm = tn.Sequential(tn.Linear(64, 128), tn.ReLU(), tn.Linear(128, 10))
    else:
        tm = tn.Sequential(tn.Conv2d(1, 16, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2),
                           tn.Conv2d(16, 32, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2),
                           tn.Flatten(), tn.Linear(128, 10))
    with torch.no_grad():
        for ours, theirs in zip(model, tm):
            if hasattr(theirs, "weight"):
                w = ours.weight.numpy()
                theirs.weight.copy_(torch.tensor(w.T if w.ndim == 2 else w))   # Linear: (in, out) -> (out, in)
                theirs.bias.copy_(torch.tensor(ours.bias.numpy()))
    opt = (torch.optim.SGD(tm.parameters(), lr=0.1) if name == "mlp"
           else torch.optim.Adam(tm.parameters(), lr=3e-3))
    return tm, opt


class TorchLoop:
    """The PyTorch user's loop over the very batches labgrad's loader gives."""

    def __init__(self, name, model, loader):
        self.model, self.opt = torch_twin(name, model)
        self.loader = loader
        self.losses = []

    def epoch(self):
        total, correct, count = 0.0, 0, 0
        for xb, yb in self.loader:
            x, y = torch.from_numpy(xb.numpy()), torch.from_numpy(yb.numpy())
            out = self.model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.item() * len(y)
            correct += int((out.detach().numpy().argmax(1) == yb.numpy()).sum())
            count += len(y)
        self.losses.append(total / count)

    def accuracy(self, test):
        with torch.no_grad():
            out = self.model(torch.from_numpy(test.features))
        return float((out.numpy().argmax(1) == test.labels).mean())


def run_model(name, epochs):
    images = name == "cnn"
    train, test = digits("train", images), digits("test", images)
    runners, times = {}, {c: [] for c in COLUMNS}
    for column, jit in (("eager fit", False), ("jit fit", True)):
        model, opt = build(name)
        trainer = nn.Trainer(model, opt, loss="cross_entropy", metrics=["accuracy"], jit=jit)
        loader = lg.data.DataLoader(train, batch_size=BATCH, shuffle=True, seed=SEED)
        runners[column] = (lambda t=trainer, ld=loader: t.fit(ld, epochs=1, progress=False)), trainer
    if torch is not None:
        model, _ = build(name)
        loop = TorchLoop(name, model, lg.data.DataLoader(train, batch_size=BATCH, shuffle=True, seed=SEED))
        runners["torch loop"] = loop.epoch, loop
    for _ in range(epochs):
        for column, (run, _) in runners.items():
            start = time.perf_counter()
            run()
            times[column].append(time.perf_counter() - start)
    eager_loss = runners["eager fit"][1].history["loss"]
    np.testing.assert_allclose(runners["jit fit"][1].history["loss"], eager_loss, rtol=1e-3,
                               err_msg=f"{name}: jit fit and eager fit must train identically")
    if torch is not None:
        np.testing.assert_allclose(runners["torch loop"][1].losses[:3], eager_loss[:3], rtol=1e-2,
                                   err_msg=f"{name}: the PyTorch loop must train the same model")
    result = {"epochs": epochs, "columns": {}}
    for column in COLUMNS:
        if column not in runners:
            result["columns"][column] = None
            continue
        obj = runners[column][1]
        accuracy = (obj.accuracy(test) if column == "torch loop" else obj.evaluate(test)["accuracy"])
        later = times[column][1:] or times[column]
        result["columns"][column] = {"first_epoch_s": times[column][0], "median_epoch_s": statistics.median(later),
                                     "min_epoch_s": min(later), "epoch_times_s": times[column],
                                     "test_accuracy": accuracy}
    eager = result["columns"]["eager fit"]["median_epoch_s"]
    jit = result["columns"]["jit fit"]["median_epoch_s"]
    result["jit_speedup_over_eager"] = eager / jit
    if torch is not None:
        result["jit_speed_relative_to_torch"] = result["columns"]["torch loop"]["median_epoch_s"] / jit
        result["eager_speed_relative_to_torch"] = result["columns"]["torch loop"]["median_epoch_s"] / eager
    return result


def main():
    epochs = 3 if _timing.QUICK else 20
    print(f"fit benchmark: labgrad {lg.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ + ' (1 thread)' if torch else 'n/a'}, {epochs} epochs"
          f"{', QUICK mode' if _timing.QUICK else ''}")
    results = {name: run_model(name, epochs if name == "mlp" else max(3, epochs * 3 // 4)) for name in MODELS}
    headers = ["model", "column", "epoch (median)", "first epoch", "test acc", "jit speedup"]
    rows = []
    for name, r in results.items():
        for column in COLUMNS:
            c = r["columns"][column]
            if c is None:
                rows.append([name, column, None, None, None, ""])
                continue
            speed = {"eager fit": "1.00x (ref)", "jit fit": f"{r['jit_speedup_over_eager']:.2f}x",
                     "torch loop": ""}[column]
            rows.append([name, column, _timing.fmt_time(c["median_epoch_s"]), _timing.fmt_time(c["first_epoch_s"]),
                         f"{c['test_accuracy'] * 100:.1f}%", speed])
    print()
    _timing.print_table(headers, rows)
    for name, r in results.items():
        if torch is not None:
            print(f"{name}: labgrad jit fit runs at {r['jit_speed_relative_to_torch']:.2f}x and eager fit at "
                  f"{r['eager_speed_relative_to_torch']:.2f}x the speed of the PyTorch eager loop "
                  f"(epochs/s, higher is better)")
    print("epoch times are medians over epochs 2..N; the first epoch includes jit's tracing")
    path = _timing.write_results("fit", {"benchmark": "fit", "environment": _timing.environment(
        {"torch": torch.__version__ if torch else None}), "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
