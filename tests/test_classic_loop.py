"""The classic PyTorch training loop runs unchanged on labgrad.

The loop below is written once, against a namespace with ``nn`` and ``optim`` (and a
``tensor`` factory): the PyTorch idiom of the source texts, which switches losses between
steps (L1 on even steps, MSE on odd ones) to show that the graph is rebuilt on every step.
It runs on labgrad and on PyTorch from the same weights, and the weights stay equal.
"""
import types

import numpy as np
import pytest

import labgrad as lg


def classic_loop(fw, model, inputs, targets, steps=20):
    """Unchanged PyTorch code: only the ``fw`` namespace differs."""
    l1, mse = fw.nn.L1Loss(), fw.nn.MSELoss()
    optimizer = fw.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(steps):
        loss_fn = l1 if step % 2 == 0 else mse
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return x, y


def test_the_classic_loop_trains_on_labgrad():
    lg.manual_seed(0)
    model = lg.nn.Sequential(lg.nn.Linear(3, 8), lg.nn.Tanh(), lg.nn.Linear(8, 1))
    x, y = data()
    losses = classic_loop(types.SimpleNamespace(nn=lg.nn, optim=lg.optim), model, lg.tensor(x), lg.tensor(y))
    assert losses[-1] < 0.5 * losses[1] and losses[-2] < 0.5 * losses[0]


def test_the_classic_loop_matches_pytorch_step_for_step():
    torch = pytest.importorskip("torch")
    lg.manual_seed(0)
    model = lg.nn.Sequential(lg.nn.Linear(3, 8), lg.nn.Tanh(), lg.nn.Linear(8, 1))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with torch.no_grad():
        for i in (0, 2):
            tmodel[i].weight.copy_(torch.tensor(model[i].weight.numpy().T))   # PyTorch stores (out, in)
            tmodel[i].bias.copy_(torch.tensor(model[i].bias.numpy()))
    x, y = data()
    ours = classic_loop(types.SimpleNamespace(nn=lg.nn, optim=lg.optim), model, lg.tensor(x), lg.tensor(y))
    theirs = classic_loop(types.SimpleNamespace(nn=torch.nn, optim=torch.optim), tmodel,
                          torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    for i in (0, 2):
        np.testing.assert_allclose(model[i].weight.numpy(), tmodel[i].weight.detach().numpy().T, rtol=1e-4, atol=1e-5)
