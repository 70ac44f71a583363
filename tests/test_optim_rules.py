"""Every optimizer against its published update rule, on a tiny example worked by hand, and
RMSprop against NumPy and torch.optim.

The hand-worked example: one parameter p = 1.0 and two gradients, 0.5 then -1.0. Each
expected value below is derived in the comment beside it, from the paper's / PyTorch's rule.
"""
import math

import numpy as np
import pytest

import labgrad as lg
from labgrad import optim

G1, G2 = 0.5, -1.0


def two_steps(make_opt):
    p = lg.tensor([1.0], dtype="float64", requires_grad=True)
    opt = make_opt([p])
    after = []
    for g in (G1, G2):
        p.grad = lg.tensor([g], dtype="float64")
        opt.step()
        after.append(float(p.numpy()[0]))
    return after


# Adam, step 2 (lr 0.1, betas 0.9/0.999): m = 0.9*0.05 - 0.1 = -0.055, v = 0.999*0.00025 + 0.001 = 0.00124975,
# m_hat = -0.055/0.19 = -0.289474, v_hat = 0.00124975/0.001999 = 0.625188, step = m_hat/sqrt(v_hat) = -0.366103
ADAM_STEP2 = -0.055 / 0.19 / math.sqrt(0.00124975 / 0.001999)

HAND_WORKED = [
    # p1 = 1 - 0.1*0.5 = 0.95;  p2 = 0.95 + 0.1*1 = 1.05
    ("SGD", dict(lr=0.1), [0.95, 1.05]),
    # buf1 = 0.5 -> p1 = 0.95;  buf2 = 0.9*0.5 - 1 = -0.55 -> p2 = 0.95 + 0.055 = 1.005
    ("SGD", dict(lr=0.1, momentum=0.9), [0.95, 1.005]),
    # step1 = g + 0.9*buf1 = 0.5 + 0.45 = 0.95 -> p1 = 0.905;  step2 = -1 + 0.9*(-0.55) = -1.495 -> p2 = 1.0545
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), [0.905, 1.0545]),
    # g1 = 0.5 + 0.1*1 = 0.6 -> p1 = 0.94;  g2 = -1 + 0.1*0.94 = -0.906 -> p2 = 1.0306
    ("SGD", dict(lr=0.1, weight_decay=0.1), [0.94, 1.0306]),
    # step 1: m_hat = g, v_hat = g*g, so the step is lr * sign(g): p1 = 0.9;  step 2 as above
    ("Adam", dict(lr=0.1), [0.9, 0.9 - 0.1 * ADAM_STEP2]),
    # decoupled decay first: p1 = 1*(1 - 0.1*0.1) - 0.1 = 0.89;  p2 = 0.89*0.99 - 0.1*step2 = 0.8811 + 0.036610
    ("AdamW", dict(lr=0.1, weight_decay=0.1), [0.89, 0.8811 - 0.1 * ADAM_STEP2]),
    # v1 = 0.01*0.25 = 0.0025, sqrt = 0.05 -> p1 = 1 - 0.01*0.5/0.05 = 0.9
    # v2 = 0.99*0.0025 + 0.01*1 = 0.012475, sqrt = 0.111692 -> p2 = 0.9 + 0.01/0.111692 = 0.989532
    ("RMSprop", dict(lr=0.01, alpha=0.99), [0.9, 0.9 + 0.01 / math.sqrt(0.012475)]),
    # with momentum 0.5: buf1 = 10 -> p1 = 0.9;  buf2 = 5 - 1/0.111692 = -3.953231 -> p2 = 0.939532
    ("RMSprop", dict(lr=0.01, alpha=0.99, momentum=0.5), [0.9, 0.9 - 0.01 * (5 - 1 / math.sqrt(0.012475))]),
    # centered: m1 = 0.005, v1 - m1^2 = 0.0025 - 0.000025 = 0.002475 -> p1 = 1 - 0.01*0.5/sqrt(0.002475)
    ("RMSprop", dict(lr=0.01, alpha=0.99, centered=True),
     [1 - 0.005 / math.sqrt(0.002475),
      1 - 0.005 / math.sqrt(0.002475) + 0.01 / math.sqrt(0.012475 - (0.99 * 0.005 - 0.01) ** 2)]),
]


@pytest.mark.parametrize("name, kw, expected", HAND_WORKED,
                         ids=[f"{n}-{'-'.join(k for k in kw if k != 'lr') or 'plain'}" for n, kw, _ in HAND_WORKED])
def test_two_steps_worked_by_hand(name, kw, expected):
    got = two_steps(lambda ps: getattr(optim, name)(ps, **kw))
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)


# ---- RMSprop over several steps on a matrix: NumPy (float64) and torch.optim

def rmsprop_numpy(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p = p.astype(np.float64)
    v, m, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        v_hat = v
        if centered:
            m = alpha * m + (1 - alpha) * g
            v_hat = v - m * m
        step = g / (np.sqrt(v_hat) + eps)
        if momentum:
            buf = momentum * buf + step
            step = buf
        p = p - lr * step
    return p


P0 = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
GRADS = [np.random.default_rng(s).standard_normal((3, 4)).astype(np.float32) for s in range(6)]
RMS_CASES = [dict(lr=0.01), dict(lr=0.01, alpha=0.9, eps=1e-6), dict(lr=0.01, momentum=0.9),
             dict(lr=0.01, centered=True, weight_decay=0.1), dict(lr=0.005, momentum=0.5, centered=True)]


def run_labgrad(make_opt):
    p = lg.tensor(P0.copy(), requires_grad=True)
    opt = make_opt([p])
    for g in GRADS:
        p.grad = lg.tensor(g)
        opt.step()
    return p.numpy()


@pytest.mark.parametrize("kw", RMS_CASES)
def test_rmsprop_matches_numpy(kw):
    np.testing.assert_allclose(run_labgrad(lambda ps: optim.RMSprop(ps, **kw)),
                               rmsprop_numpy(P0, GRADS, **kw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", RMS_CASES)
def test_rmsprop_matches_torch(kw):
    torch = pytest.importorskip("torch")
    tp = torch.tensor(P0.copy(), requires_grad=True)
    topt = torch.optim.RMSprop([tp], **kw)
    for g in GRADS:
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(run_labgrad(lambda ps: optim.RMSprop(ps, **kw)), tp.detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kw, _", HAND_WORKED[:7])
def test_hand_worked_examples_agree_with_torch(name, kw, _):
    torch = pytest.importorskip("torch")
    tp = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw)
    after = []
    for g in (G1, G2):
        tp.grad = torch.tensor([g], dtype=torch.float64)
        topt.step()
        after.append(float(tp.detach()[0]))
    np.testing.assert_allclose(two_steps(lambda ps: getattr(optim, name)(ps, **kw)), after, rtol=1e-7)


def test_rmsprop_state_round_trips_and_runs_under_jit():
    lg.manual_seed(0)
    model = lg.nn.Linear(3, 2)
    opt = optim.RMSprop(model.parameters(), lr=0.01, momentum=0.9, centered=True)
    x, y = lg.randn(5, 3), lg.randn(5, 2)

    @lg.jit
    def step(x, y):
        loss = lg.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    eager_model = lg.nn.Linear(3, 2)
    eager_model.load_state_dict(model.state_dict())
    eager_opt = optim.RMSprop(eager_model.parameters(), lr=0.01, momentum=0.9, centered=True)
    for _ in range(3):
        step(x, y)
        loss = lg.functional.mse_loss(eager_model(x), y)
        eager_opt.zero_grad()
        loss.backward()
        eager_opt.step()
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5, atol=1e-6)
    fresh = optim.RMSprop(eager_model.parameters(), lr=0.01, momentum=0.9, centered=True)
    fresh.load_state_dict(eager_opt.state_dict())
    np.testing.assert_allclose(fresh.state[eager_model.weight]["square_avg"].numpy(),
                               eager_opt.state[eager_model.weight]["square_avg"].numpy())


def test_rmsprop_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop([lg.zeros(1, requires_grad=True)], alpha=1.5)
