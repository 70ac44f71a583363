"""Eager-mode overhead (issue 2): labgrad against hand-written NumPy, PyTorch and DeZero.

Three measurements, in one run, each as a ratio to hand-written NumPy (forward and backward
written out by hand: what the frameworks automate):

1. ``per_op``: ``y = x + x`` on a float32 tensor of shape (4,) that requires grad, against raw
   ``a + a``. Pure framework overhead: dispatch, wrapping, recording the tape.
2. ``chain``: ten ops on shape (4,) (mul, add, tanh, exp, sub, sigmoid, mul, div, mul, sum),
   forward and backward, against the same chain and its derivative written in NumPy.
3. ``mlp``: one SGD training step (lr 0.1, batch 32) of a 64-128-10 ReLU MLP with softmax
   cross-entropy on the digits data; reported as steps per second relative to NumPy. Plus a
   check that 20 epochs of labgrad reach >= 95% test accuracy on the fixed 80/20 split.

PyTorch runs on the CPU with ``torch.set_num_threads(1)``; NumPy's BLAS is pinned to one thread
too (see ``_timing``). DeZero is the ``dezero`` package from PyPI; columns of frameworks that are
not installed say n/a. Run: ``python benchmarks/eager.py`` (or ``make bench`` for every script).
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import sys
import time

import numpy as np

import labgrad as lg
import labgrad.functional as LF
from _frameworks import import_dezero, import_torch

TARGETS = {  # issue 2: ratio to NumPy; per_op and chain are "at most", mlp "at least"
    "per_op": ("<=", 5.0),
    "chain": ("<=", 4.0),
    "mlp": (">=", 0.45),
}
ISSUE_NUMBERS = {"per_op": {"torch": 5.6, "dezero": 15.0}, "chain": {"torch": 5.7, "dezero": 13.0},
                 "mlp": {"torch": 0.38, "dezero": 0.30}}
COLUMNS = ("numpy", "labgrad", "torch", "dezero")


# ---------------------------------------------------------------- optional frameworks

torch = import_torch()
dezero = import_dezero()


def versions():
    out = {"labgrad": lg.__version__}
    if torch is not None:
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    if dezero is not None:
        out["dezero"] = getattr(dezero, "__version__", "installed")
    return out


# ---------------------------------------------------------------- 1. one op

def per_op_cases():
    a = np.arange(4, dtype=np.float32)
    x = lg.tensor(a.copy(), requires_grad=True)
    cases = {"numpy": lambda: a + a, "labgrad": lambda: x + x}
    if torch is not None:
        tx = torch.tensor(a.copy(), requires_grad=True)
        cases["torch"] = lambda: tx + tx
    if dezero is not None:
        dx = dezero.Variable(a.copy())
        cases["dezero"] = lambda: dx + dx
    return cases


# ---------------------------------------------------------------- 2. a ten-op chain

def chain_numpy(x, w):
    """Forward and hand-derived backward of the chain; returns (loss, dL/dx, dL/dw)."""
    a = x * w
    b = a + x
    c = np.tanh(b)
    d = np.exp(c)
    e = d - w
    f = 1.0 / (1.0 + np.exp(-e))
    g = f * c
    h = g / d
    i = h * h
    loss = i.sum()
    gh = 2.0 * h
    gg = gh / d
    gd = -gh * h / d
    ge = gg * c * f * (1.0 - f)
    gd = gd + ge
    gc = gg * f + gd * d
    gb = gc * (1.0 - c * c)
    gx = gb * w + gb
    gw = gb * x - ge
    return loss, gx, gw


def chain_framework(x, w, tanh, exp, sigmoid, total):
    """The same chain written once for every framework's tensors (10 ops)."""
    a = x * w
    b = a + x
    c = tanh(b)
    d = exp(c)
    e = d - w
    f = sigmoid(e)
    g = f * c
    h = g / d
    i = h * h
    return total(i)


def chain_cases():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, 4).astype(np.float32)
    w0 = rng.uniform(-1, 1, 4).astype(np.float32)
    cases = {"numpy": lambda: chain_numpy(x0, w0)}
    grads = {"numpy": chain_numpy(x0, w0)[1:]}

    x, w = lg.tensor(x0.copy(), requires_grad=True), lg.tensor(w0.copy(), requires_grad=True)

    def run_labgrad():
        x.grad = w.grad = None
        chain_framework(x, w, LF.tanh, LF.exp, LF.sigmoid, lambda t: t.sum()).backward()
    cases["labgrad"] = run_labgrad
    run_labgrad()
    grads["labgrad"] = (x.grad.numpy(), w.grad.numpy())

    if torch is not None:
        tx, tw = torch.tensor(x0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)

        def run_torch():
            tx.grad = tw.grad = None
            chain_framework(tx, tw, torch.tanh, torch.exp, torch.sigmoid, torch.sum).backward()
        cases["torch"] = run_torch
        run_torch()
        grads["torch"] = (tx.grad.numpy(), tw.grad.numpy())

    if dezero is not None:
        DF = dezero.functions
        dx, dw = dezero.Variable(x0.copy()), dezero.Variable(w0.copy())

        def run_dezero():
            dx.cleargrad()
            dw.cleargrad()
            chain_framework(dx, dw, DF.tanh, DF.exp, DF.sigmoid, DF.sum).backward()
        cases["dezero"] = run_dezero
        run_dezero()
        grads["dezero"] = (dx.grad.data, dw.grad.data)

    for name, (gx, gw) in grads.items():   # every column computes the same derivatives
        np.testing.assert_allclose(gx, grads["numpy"][0], rtol=1e-4, atol=1e-6, err_msg=f"chain dL/dx: {name}")
        np.testing.assert_allclose(gw, grads["numpy"][1], rtol=1e-4, atol=1e-6, err_msg=f"chain dL/dw: {name}")
    return cases


# ---------------------------------------------------------------- 3. MLP training step

LR = 0.1
BATCH = 32


def initial_weights(seed=0):
    """Shared starting point, PyTorch-style init, in labgrad's (in, out) layout."""
    rng = np.random.default_rng(seed)
    k1, k2 = 1 / np.sqrt(64), 1 / np.sqrt(128)
    return [rng.uniform(-k1, k1, (64, 128)).astype(np.float32), rng.uniform(-k1, k1, 128).astype(np.float32),
            rng.uniform(-k2, k2, (128, 10)).astype(np.float32), rng.uniform(-k2, k2, 10).astype(np.float32)]


def digit_batches():
    train = lg.data.datasets.digits("train")
    order = np.random.default_rng(1).permutation(len(train))
    n = len(train) // BATCH * BATCH
    return [(train.features[order[i:i + BATCH]], train.labels[order[i:i + BATCH]]) for i in range(0, n, BATCH)]


class NumpyMLP:
    """The training step written by hand: forward, softmax cross-entropy, backward, SGD."""

    def __init__(self, weights):
        self.w1, self.b1, self.w2, self.b2 = (w.copy() for w in weights)

    def step(self, x, t):
        n = x.shape[0]
        h = x @ self.w1 + self.b1
        r = np.maximum(h, 0)
        z = r @ self.w2 + self.b2
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = -np.log(p[rows, t]).mean()
        gz = p
        gz[rows, t] -= 1
        gz /= n
        gw2 = r.T @ gz
        gb2 = gz.sum(axis=0)
        gh = (gz @ self.w2.T) * (h > 0)
        gw1 = x.T @ gh
        gb1 = gh.sum(axis=0)
        self.w1 -= LR * gw1
        self.b1 -= LR * gb1
        self.w2 -= LR * gw2
        self.b2 -= LR * gb2
        return float(loss)


def labgrad_mlp(weights):
    model = lg.nn.Sequential(lg.nn.Linear(64, 128), lg.nn.ReLU(), lg.nn.Linear(128, 10))
    model.load_state_dict({"0.weight": weights[0], "0.bias": weights[1], "2.weight": weights[2], "2.bias": weights[3]})
    opt = lg.optim.SGD(model.parameters(), lr=LR)

    def step(x, t):
        loss = LF.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step, lambda x, t: (lg.tensor(x), lg.tensor(t)), lambda loss: loss.item()


def torch_mlp(weights):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    with torch.no_grad():
        for layer, w, b in ((model[0], weights[0], weights[1]), (model[2], weights[2], weights[3])):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step(x, t):
        loss = nn.functional.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step, lambda x, t: (torch.from_numpy(x.copy()), torch.from_numpy(t.copy())), lambda loss: loss.item()


def dezero_mlp(weights):
    DF, DL = dezero.functions, dezero.layers

    class MLP(dezero.Model):
        def __init__(self):
            super().__init__()
            self.l1 = DL.Linear(128, in_size=64)
            self.l2 = DL.Linear(10, in_size=128)

        def forward(self, x):
            return self.l2(DF.relu(self.l1(x)))

    model = MLP()
    for layer, w, b in ((model.l1, weights[0], weights[1]), (model.l2, weights[2], weights[3])):
        layer.W.data = w.copy()
        layer.b.data = b.copy()
    opt = dezero.optimizers.SGD(LR).setup(model)

    def step(x, t):
        loss = DF.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()
        return loss
    return step, lambda x, t: (x.copy(), t.copy()), lambda loss: float(loss.data)


def mlp_cases():
    weights = initial_weights()
    batches = digit_batches()
    builders = {"numpy": lambda w: (NumpyMLP(w).step, lambda x, t: (x.copy(), t.copy()), float),
                "labgrad": labgrad_mlp}
    if torch is not None:
        builders["torch"] = torch_mlp
    if dezero is not None:
        builders["dezero"] = dezero_mlp

    losses = {}
    cases = {}
    for name, build in builders.items():
        step, convert, scalar = build(weights)
        data = [convert(x, t) for x, t in batches]
        losses[name] = [scalar(step(x, t)) for x, t in data[:5]]   # same start, same batches
        cases[name] = _cycle(step, data)
    for name, seq in losses.items():   # every column trains the same model the same way
        np.testing.assert_allclose(seq, losses["numpy"], rtol=2e-4, err_msg=f"MLP losses: {name}")
    return cases


def _cycle(step, data):
    state = {"i": 0}
    n = len(data)

    def run():
        i = state["i"]
        step(*data[i])
        state["i"] = i + 1 if i + 1 < n else 0
    return run


def digits_accuracy(epochs=20, seed=0):
    """Train labgrad's MLP as a student would (DataLoader, shuffling) and test it."""
    lg.manual_seed(seed)
    train, test = lg.data.datasets.digits("train"), lg.data.datasets.digits("test")
    model = lg.nn.Sequential(lg.nn.Linear(64, 128), lg.nn.ReLU(), lg.nn.Linear(128, 10))
    opt = lg.optim.SGD(model.parameters(), lr=LR)
    loader = lg.data.DataLoader(train, batch_size=BATCH, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = LF.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with lg.no_grad():
        predicted = model(lg.tensor(test.features)).numpy().argmax(axis=1)
    return float((predicted == test.labels).mean()), seconds


# ---------------------------------------------------------------- report

def summarize(name, timings):
    base = timings["numpy"]["median_s"]
    base_min = timings["numpy"]["min_s"]
    row = {"columns": {}, "ratio_to_numpy": {}, "ratio_to_numpy_of_minimums": {}}
    for col in COLUMNS:
        t = timings.get(col)
        row["columns"][col] = None if t is None else {
            "median_ns": t["median_s"] * 1e9, "min_ns": t["min_s"] * 1e9, "loops_per_round": t["number"]}
        if t is not None:
            ratio, ratio_min = t["median_s"] / base, t["min_s"] / base_min
            row["ratio_to_numpy"][col] = 1 / ratio if name == "mlp" else ratio
            row["ratio_to_numpy_of_minimums"][col] = 1 / ratio_min if name == "mlp" else ratio_min
    op, target = TARGETS[name]
    got = row["ratio_to_numpy"]["labgrad"]
    row["target"] = f"labgrad {op} {target}x numpy"
    row["met"] = got <= target if op == "<=" else got >= target
    row["issue_reference"] = ISSUE_NUMBERS[name]
    return row


def main():
    print(f"eager benchmark: numpy {np.__version__}, labgrad {lg.__version__}, "
          f"torch {torch.__version__ + ' (1 thread)' if torch else 'n/a'}, "
          f"dezero {'installed' if dezero else 'n/a'}{', QUICK mode' if _timing.QUICK else ''}")
    results = {}
    for name, make in (("per_op", per_op_cases), ("chain", chain_cases), ("mlp", mlp_cases)):
        results[name] = summarize(name, _timing.compare(make()))
    accuracy, seconds = digits_accuracy(epochs=2 if _timing.QUICK else 20)
    epochs = 2 if _timing.QUICK else 20
    results["digits_accuracy"] = {"epochs": epochs, "test_accuracy": accuracy, "train_seconds": seconds,
                                  "target": ">= 0.95 after 20 epochs",
                                  "met": None if _timing.QUICK else accuracy >= 0.95}

    headers = ["benchmark"] + [f"{c}" for c in COLUMNS] + ["labgrad ratio (of mins)", "target", "met"]
    rows = []
    labels = {"per_op": "x + x, shape (4,) [time/op]", "chain": "10-op chain fwd+bwd [time]",
              "mlp": "MLP SGD step [time/step]"}
    for name in ("per_op", "chain", "mlp"):
        r = results[name]
        times = [_timing.fmt_time(None if r["columns"][c] is None else r["columns"][c]["median_ns"] / 1e9)
                 for c in COLUMNS]
        rows.append([labels[name]] + times + ["", "", ""])
        unit = "x numpy speed" if name == "mlp" else "x numpy time"
        ratios = [("1.00" if c == "numpy" else (f"{r['ratio_to_numpy'][c]:.2f}" if c in r["ratio_to_numpy"] else None))
                  for c in COLUMNS]
        rows.append(["  ratio (" + unit + ")"] + ratios + [f"{r['ratio_to_numpy']['labgrad']:.2f} "
                                                          f"({r['ratio_to_numpy_of_minimums']['labgrad']:.2f})",
                                                          r["target"].replace("labgrad ", ""),
                                                          "yes" if r["met"] else "NO"])
    print()
    _timing.print_table(headers, rows)
    acc = results["digits_accuracy"]
    print(f"\nlabgrad digits MLP: {acc['test_accuracy'] * 100:.1f}% test accuracy after {epochs} epochs "
          f"({acc['train_seconds']:.1f} s){'' if acc['met'] is None else ('  [target >= 95%: ' + ('met' if acc['met'] else 'MISSED') + ']')}")
    print("times are medians over interleaved rounds (in parentheses: the ratio of the fastest rounds); "
          "ratios for the MLP are steps/s relative to NumPy (higher is better), the others time "
          "relative to NumPy (lower is better)")
    path = _timing.write_results("eager", {"benchmark": "eager", "environment": _timing.environment(versions()),
                                           "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
