"""labgrad.optim: updates checked against NumPy written here and against torch.optim."""
import math

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad import nn, optim
from labgrad.errors import GradError, LabgradError

STEPS = 6


def grad_sequence(shape, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]


def fresh(a):
    """A new leaf holding a copy of ``a`` (each test starts from the same P0)."""
    return lg.tensor(a.copy(), requires_grad=True)


def run_labgrad(make_opt, p0, grads):
    p = fresh(p0)
    opt = make_opt([p])
    for g in grads:
        p.grad = lg.tensor(g)
        opt.step()
    return p.numpy()


# ---- NumPy references, written from the papers / PyTorch docs (float64)

def sgd_numpy(p, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    p = p.astype(np.float64)
    buf = None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_numpy(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


P0 = np.random.default_rng(42).standard_normal((3, 4)).astype(np.float32)
GRADS = grad_sequence((3, 4))


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, weight_decay=0.1),
])
def test_sgd_matches_numpy(kw):
    got = run_labgrad(lambda ps: optim.SGD(ps, **kw), P0, GRADS)
    np.testing.assert_allclose(got, sgd_numpy(P0, GRADS, **kw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(lr=0.01),
    dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
])
def test_adam_matches_numpy(kw):
    got = run_labgrad(lambda ps: optim.Adam(ps, **kw), P0, GRADS)
    np.testing.assert_allclose(got, adam_numpy(P0, GRADS, **kw), rtol=1e-5, atol=1e-6)


def test_adamw_decays_weights_decoupled():
    got = run_labgrad(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), P0, GRADS)
    np.testing.assert_allclose(got, adam_numpy(P0, GRADS, lr=0.01, weight_decay=0.1, decoupled=True),
                               rtol=1e-5, atol=1e-6)
    l2 = adam_numpy(P0, GRADS, lr=0.01, weight_decay=0.1)
    assert not np.allclose(got, l2, rtol=1e-5, atol=1e-6)   # it is not the L2 version


# ---- torch.optim as a second, independent reference

TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.05)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, kw", TORCH_CASES)
def test_optimizers_match_torch_given_the_same_gradients(name, kw):
    torch = pytest.importorskip("torch")
    tp = torch.tensor(P0.copy(), requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw)
    for g in GRADS:
        tp.grad = torch.tensor(g)
        topt.step()
    got = run_labgrad(lambda ps: getattr(optim, name)(ps, **kw), P0, GRADS)
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_training_an_mlp_matches_torch_step_for_step():
    torch = pytest.importorskip("torch")
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    tm = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for i in (0, 2):
            tm[i].weight.copy_(torch.tensor(model[i].weight.numpy().T))
            tm[i].bias.copy_(torch.tensor(model[i].bias.numpy()))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = rng.standard_normal((16, 8)).astype(np.float32)
        t = rng.integers(0, 3, 16)
        loss = F.cross_entropy(model(lg.tensor(x)), lg.tensor(t))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(t))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-4)
    for i in (0, 2):
        np.testing.assert_allclose(model[i].weight.numpy(), tm[i].weight.detach().numpy().T, rtol=1e-4, atol=1e-5)


# ---- behaviour

def test_step_updates_parameters_in_place():
    p = fresh(P0)
    array = p.data
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = lg.tensor(GRADS[0])
    opt.step()
    assert p.data is array                  # graph Variables alias this array: it must stay
    assert p.requires_grad and p.grad_fn is None


def test_step_invalidates_a_graph_that_used_the_old_values():
    p = fresh(P0)
    y = (p * p).sum()                       # saved p for backward
    opt = optim.SGD([p], lr=0.1)
    p.grad = lg.tensor(GRADS[0])
    opt.step()
    with pytest.raises(GradError, match="modified in place"):
        y.backward()


def test_parameters_without_grad_are_skipped():
    a, b = fresh(P0), fresh(P0)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = lg.tensor(GRADS[0])
    opt.step()
    np.testing.assert_array_equal(b.numpy(), P0)
    assert not np.allclose(a.numpy(), P0)


def test_param_groups_have_their_own_learning_rates():
    a, b = fresh(P0), fresh(P0)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    for g in GRADS:
        a.grad, b.grad = lg.tensor(g), lg.tensor(g)
        opt.step()
    np.testing.assert_allclose(a.numpy(), sgd_numpy(P0, GRADS, 0.1, 0.9), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), sgd_numpy(P0, GRADS, 0.5, 0.9), rtol=1e-5, atol=1e-5)


def test_zero_grad():
    p = fresh(P0)
    opt = optim.SGD([p], lr=0.1)
    p.grad = lg.tensor(GRADS[0])
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and not p.grad.numpy().any()
    opt.zero_grad()
    assert p.grad is None


def test_state_dict_round_trip_continues_exactly():
    def make():
        lg.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
        return m, optim.Adam(m.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 2, 6)) for _ in range(6)]

    def train(m, opt, data):
        for x, t in data:
            loss = F.cross_entropy(m(lg.tensor(x)), lg.tensor(t))
            opt.zero_grad()
            loss.backward()
            opt.step()

    m1, o1 = make()
    train(m1, o1, batches)
    m2, o2 = make()
    train(m2, o2, batches[:3])
    saved_model, saved_opt = m2.state_dict(), o2.state_dict()
    assert saved_opt["state"][0]["step"] == 3 and saved_opt["param_groups"][0]["params"] == [0, 1, 2, 3]
    m3, o3 = make()
    m3.load_state_dict(saved_model)
    o3.load_state_dict(saved_opt)
    train(m3, o3, batches[3:])
    for p1, p3 in zip(m1.parameters(), m3.parameters()):
        np.testing.assert_array_equal(p1.numpy(), p3.numpy())


def test_load_state_dict_copies_state_rather_than_aliasing():
    p = fresh(P0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = lg.tensor(GRADS[0])
    opt.step()
    sd = opt.state_dict()
    q = fresh(P0)
    other = optim.SGD([q], lr=0.1, momentum=0.9)
    other.load_state_dict(sd)
    q.grad = lg.tensor(GRADS[1])
    other.step()
    np.testing.assert_allclose(sd["state"][0]["momentum_buffer"].numpy(), GRADS[0])


def test_load_state_dict_rejects_a_different_model():
    a = fresh(P0)
    sd = optim.SGD([a], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="1 parameters in the saved state but 2 here"):
        optim.SGD([fresh(P0), fresh(P0)], lr=0.1).load_state_dict(sd)


def test_constructor_errors_teach():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="not a single Tensor"):
        optim.SGD(lg.ones(2, requires_grad=True), lr=0.1)
    with pytest.raises(LabgradError, match="leaf tensor that requires grad"):
        optim.SGD([lg.ones(2)], lr=0.1)
    w = lg.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([w], betas=(1.0, 0.9))


# ---- schedulers

def lrs(scheduler, opt, epochs):
    out = []
    for _ in range(epochs):
        opt.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


def test_step_lr_closed_form():
    opt = optim.SGD([lg.ones(1, requires_grad=True)], lr=1.0)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    assert sched.get_last_lr() == [1.0]
    assert lrs(sched, opt, 7) == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert opt.param_groups[0]["lr"] == 0.25


def test_cosine_annealing_closed_form():
    opt = optim.SGD([lg.ones(1, requires_grad=True)], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.02)
    got = lrs(sched, opt, 4)
    expected = [0.02 + 0.08 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[-1] == pytest.approx(0.02)


@pytest.mark.parametrize("make", [
    lambda mod, opt: mod.StepLR(opt, step_size=2, gamma=0.3),
    lambda mod, opt: mod.CosineAnnealingLR(opt, T_max=5, eta_min=0.001),
])
def test_schedulers_match_torch(make):
    torch = pytest.importorskip("torch")
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    tsched = make(torch.optim.lr_scheduler, topt)
    opt = optim.SGD([lg.ones(1, requires_grad=True)], lr=0.1)
    sched = make(optim.lr_scheduler, opt)
    expected = lrs(tsched, topt, 8)
    np.testing.assert_allclose(lrs(sched, opt, 8), expected, rtol=1e-9, atol=1e-12)


def test_optimizer_state_lives_on_the_parameters_device(device):
    p = lg.tensor(P0.copy(), device=device, requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    assert opt.state[p]["exp_avg"].device == lg.device(device)
    for g in GRADS:
        p.grad = lg.tensor(g, device=device)
        opt.step()
    np.testing.assert_allclose(p.numpy(), adam_numpy(P0, GRADS, lr=0.01), rtol=1e-5, atol=1e-6)
    q = lg.tensor(P0.copy(), device=device, requires_grad=True)
    other = optim.Adam([q], lr=0.01)
    other.load_state_dict(opt.state_dict())
    assert other.state[q]["exp_avg_sq"].device == lg.device(device)
    np.testing.assert_array_equal(other.state[q]["exp_avg"].numpy(), opt.state[p]["exp_avg"].numpy())
