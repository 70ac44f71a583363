"""labgrad.nn: modules, layers, losses and initializers, checked against NumPy written here."""
import math
import time

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad import nn
from labgrad.errors import DTypeError, LabgradError, ShapeError


def leaf(a):
    return lg.tensor(np.asarray(a, dtype=np.float32), requires_grad=True)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.fc2 = nn.Linear(3, 2)
        self.register_buffer("steps", lg.zeros(1))

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


# ---------------------------------------------------------------- Parameter and registration

def test_parameter_is_a_plain_leaf_tensor_that_requires_grad():
    p = nn.Parameter(np.ones((2, 3)))          # float64 input becomes float32
    assert type(p) is lg.Tensor
    assert p.requires_grad and p.is_leaf and p.dtype == np.float32
    q = nn.Parameter(lg.ones(2), name="w")
    assert q.name == "w" and q.requires_grad
    with pytest.raises(DTypeError, match="floating-point"):
        nn.Parameter(np.arange(3))


def test_named_parameters_are_dotted_in_assignment_order_and_tensors_are_named():
    m = MLP()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [p.name for p in m.parameters()] == names
    outer = nn.Sequential(m, nn.ReLU())
    assert [p.name for p in outer.parameters()] == ["0." + n for n in names]
    assert [type(c).__name__ for c in outer.children()] == ["MLP", "ReLU"]
    assert [type(c).__name__ for c in outer.modules()] == ["Sequential", "MLP", "Linear", "Linear", "ReLU"]


def test_a_shared_parameter_is_listed_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert len(model) == 3


def test_plain_tensors_and_numbers_are_not_parameters():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(lg.ones(2))
            self.constant = lg.ones(2)       # no requires_grad: an ordinary attribute
            self.scale = 3.0
    m = M()
    assert [n for n, _ in m.named_parameters()] == ["w"]
    assert "constant" not in m.state_dict()


def test_registration_errors_teach():
    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(lg.ones(2))
    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Forgot()
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight is a parameter"):
        m.weight = np.zeros((2, 2))
    m.weight = None                          # allowed: removes the parameter's value
    assert [n for n, _ in m.named_parameters()] == ["bias"]


def test_delattr_unregisters():
    m = MLP()
    del m.fc2
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias"]


# ---------------------------------------------------------------- state dicts

def test_state_dict_has_parameters_and_buffers_detached_but_sharing_memory():
    m = MLP()
    sd = m.state_dict()
    assert list(sd) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "steps"]
    assert not sd["fc1.weight"].requires_grad
    assert np.shares_memory(sd["fc1.weight"].numpy(), m.fc1.weight.numpy())


def test_load_state_dict_copies_in_place_and_round_trips():
    lg.manual_seed(1)
    a = MLP()
    lg.manual_seed(2)
    b = MLP()
    before = b.fc1.weight
    missing, unexpected = b.load_state_dict(a.state_dict())
    assert missing == [] and unexpected == []
    assert b.fc1.weight is before            # same tensor: optimizers keep working
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    sd = {k: v.numpy() + 1 for k, v in a.state_dict().items()}   # NumPy values work too
    b.load_state_dict(sd)
    np.testing.assert_array_equal(b.fc2.bias.numpy(), sd["fc2.bias"])


def test_load_state_dict_lists_missing_and_unexpected_keys():
    m = MLP()
    sd = dict(m.state_dict())
    del sd["fc2.bias"]
    sd["fc3.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict(sd)
    text = str(info.value)
    assert "missing keys" in text and "fc2.bias" in text
    assert "unexpected keys" in text and "fc3.weight" in text
    assert isinstance(info.value, LabgradError) and isinstance(info.value, KeyError)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["fc2.bias"] and unexpected == ["fc3.weight"]


def test_load_state_dict_reports_shape_mismatches():
    m = MLP()
    sd = dict(m.state_dict())
    sd["fc1.weight"] = np.zeros((3, 4), np.float32)
    with pytest.raises(ShapeError, match=r"fc1.weight: checkpoint has shape \(3, 4\), model has \(4, 3\)"):
        m.load_state_dict(sd)
    with pytest.raises(ShapeError):
        m.load_state_dict(sd, strict=False)


# ---------------------------------------------------------------- modes, grads, repr, scopes

def test_train_eval_are_recursive_and_chain():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert m.eval() is m
    assert all(not x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())


def test_zero_grad_clears_every_parameter():
    m = MLP()
    F.cross_entropy(m(lg.ones(5, 4)), lg.tensor([0, 1, 1, 0, 1])).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_repr_reads_like_pytorch():
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10, bias=False))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=64, out_features=128, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.25)\n"
        "  (3): Linear(in_features=128, out_features=10, bias=False)\n"
        ")")
    nested = repr(nn.Sequential(nn.Sequential(nn.Tanh())))
    assert nested == "Sequential(\n  (0): Sequential(\n    (0): Tanh()\n  )\n)"


def test_module_calls_open_a_name_scope_per_module():
    m = MLP()
    y = m(lg.ones(2, 4))
    assert y.grad_fn.scope == "MLP/fc2"                       # the bias add of fc2
    seq = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    z = seq(lg.ones(2, 4))
    assert z.grad_fn.scope == "Sequential/1:Tanh"
    assert z.grad_fn.inputs[0].grad_fn.scope == "Sequential/0:Linear"
    assert (lg.ones(1, requires_grad=True) * 2).grad_fn.scope is None     # outside any module


def test_forward_must_be_defined():
    class Empty(nn.Module):
        pass
    with pytest.raises(NotImplementedError, match="forward"):
        Empty()(lg.ones(1))


def test_to_cpu_keeps_the_same_tensors():
    m = MLP()
    w = m.fc1.weight
    assert m.to("cpu") is m and m.fc1.weight is w


def test_to_cuda_without_a_gpu_raises_a_device_error():
    if lg.cuda.is_available():
        pytest.skip("a GPU is available here; this checks the error without one")
    with pytest.raises(lg.DeviceError, match="not available"):
        MLP().to("cuda")


# ---------------------------------------------------------------- layers vs NumPy

def test_linear_is_x_at_w_plus_b_with_in_out_weight_layout():
    lg.manual_seed(0)
    fc = nn.Linear(5, 3)
    assert fc.weight.shape == (5, 3) and fc.bias.shape == (3,)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    xt = lg.tensor(x)
    y = fc(xt)
    w, b = fc.weight.numpy(), fc.bias.numpy()
    np.testing.assert_allclose(y.numpy(), x @ w + b, rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    y.backward(lg.tensor(g))
    np.testing.assert_allclose(fc.weight.grad.numpy(), x.T @ g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fc.bias.grad.numpy(), g.sum(0), rtol=1e-5, atol=1e-6)


def test_linear_without_bias():
    fc = nn.Linear(3, 2, bias=False)
    assert fc.bias is None and [n for n, _ in fc.named_parameters()] == ["weight"]
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(fc(lg.tensor(x)).numpy(), x @ fc.weight.numpy(), rtol=1e-6)


def test_linear_init_is_seeded_and_bounded_by_one_over_sqrt_fan_in():
    lg.manual_seed(7)
    a = nn.Linear(400, 300)
    lg.manual_seed(7)
    b = nn.Linear(400, 300)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    lg.manual_seed(8)
    assert not np.array_equal(nn.Linear(400, 300).weight.numpy(), a.weight.numpy())
    w = a.weight.numpy()
    bound = 1 / math.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(a.bias.numpy()).max() <= bound
    assert abs(w.var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3     # uniform: var = bound^2 / 3
    assert abs(w.mean()) < 0.01 * bound


@pytest.mark.parametrize("module, reference", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.Softmax(axis=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.Flatten(), lambda x: x.reshape(x.shape[0], -1)),
])
def test_activation_layers_match_numpy(module, reference):
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float64)
    np.testing.assert_allclose(module(lg.tensor(x)).numpy(), reference(x), rtol=1e-10, atol=1e-12)


def test_flatten_of_images():
    assert nn.Flatten()(lg.zeros(2, 3, 4, 5)).shape == (2, 60)
    assert nn.Flatten(2)(lg.zeros(2, 3, 4, 5)).shape == (2, 3, 20)


def test_sequential_indexing_slicing_iteration_and_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    with pytest.raises(IndexError, match="3 layers"):
        seq[3]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and isinstance(seq[3], nn.Sigmoid)
    x = np.ones((5, 2), np.float32)
    h = np.maximum(x @ layers[0].weight.numpy() + layers[0].bias.numpy(), 0)
    expected = 1 / (1 + np.exp(-(h @ layers[2].weight.numpy() + layers[2].bias.numpy())))
    np.testing.assert_allclose(seq(lg.tensor(x)).numpy(), expected, rtol=1e-6)
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), F.relu)


def test_sequential_with_named_children():
    from collections import OrderedDict
    seq = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in seq.named_parameters()] == ["hidden.weight", "hidden.bias"]
    assert seq(lg.ones(1, 2)).grad_fn.scope == "Sequential/act"


def test_module_list_registers_its_modules():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
    s = Stack()
    assert len(list(s.parameters())) == 6 and len(s.layers) == 3
    assert s(lg.ones(1, 2)).shape == (1, 2)


def test_dropout_in_training_and_eval():
    lg.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = np.random.default_rng(0).uniform(1, 2, size=(200, 50)).astype(np.float32)
    y = drop(lg.tensor(x)).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - 0.25) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-6)
    drop.eval()
    np.testing.assert_array_equal(drop(lg.tensor(x)).numpy(), x)
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.0)


def _conv_reference(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w) + b
    return out


def test_conv2d_matches_a_loop_over_windows():
    lg.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel_size=3, stride=2, padding=1, dtype="float64")
    assert conv.weight.shape == (3, 2, 3, 3) and conv.bias.shape == (3,)
    bound = 1 / math.sqrt(2 * 9)
    assert np.abs(conv.weight.numpy()).max() <= bound
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
    y = conv(lg.tensor(x))
    np.testing.assert_allclose(y.numpy(), _conv_reference(x, conv.weight.numpy(), conv.bias.numpy(), 2, 1),
                               rtol=1e-10, atol=1e-12)
    assert repr(conv) == "Conv2d(2, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))"


def test_pooling_layers_match_numpy():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 6))
    blocks = x.reshape(2, 3, 2, 2, 3, 2)
    np.testing.assert_allclose(nn.MaxPool2d(2)(lg.tensor(x)).numpy(), blocks.max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(lg.tensor(x)).numpy(), blocks.mean(axis=(3, 5)))
    assert nn.MaxPool2d(3, stride=1)(lg.tensor(x)).shape == (2, 3, 2, 4)


def test_losses_match_numpy():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((6, 4))
    targets = np.array([0, 3, 1, 1, 2, 0])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = nn.CrossEntropyLoss()(lg.tensor(logits), lg.tensor(targets))
    assert ce.item() == pytest.approx(-logp[np.arange(6), targets].mean(), rel=1e-12)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    assert nn.MSELoss()(lg.tensor(a), lg.tensor(b)).item() == pytest.approx(((a - b) ** 2).mean(), rel=1e-12)


# ---------------------------------------------------------------- init

def test_fans_follow_labgrads_layouts():
    assert nn.init.fans((64, 128)) == (64, 128)              # Linear: (in, out)
    assert nn.init.fans((8, 3, 5, 5)) == (75, 200)           # Conv: (out, in, kh, kw)
    with pytest.raises(ShapeError, match="at least 2"):
        nn.init.fans((3,))


def test_init_functions_write_in_place_within_their_bounds():
    lg.manual_seed(0)
    w = nn.Parameter(lg.zeros(300, 200))
    data = w.data
    assert nn.init.kaiming_uniform_(w, nonlinearity="relu") is w and w.data is data
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    nn.init.xavier_uniform_(w)
    bound = math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    nn.init.normal_(w, mean=1.0, std=0.5)
    assert abs(w.numpy().mean() - 1.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.constant_(w, 2.5)
    assert (w.numpy() == 2.5).all()
    assert w.requires_grad and w.grad_fn is None


def test_calculate_gain_values():
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")


# ---------------------------------------------------------------- against PyTorch

def test_linear_and_mlp_gradients_match_torch():
    torch = pytest.importorskip("torch")
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    tm = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for i in (0, 2):
            tm[i].weight.copy_(torch.tensor(model[i].weight.numpy().T))   # PyTorch stores (out, in)
            tm[i].bias.copy_(torch.tensor(model[i].bias.numpy()))
    x = np.random.default_rng(0).standard_normal((4, 6))
    t = np.array([0, 2, 1, 2])
    F.cross_entropy(model(lg.tensor(x, dtype="float32")), lg.tensor(t)).backward()
    torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(t)).backward()
    for i in (0, 2):
        np.testing.assert_allclose(model[i].weight.grad.numpy(), tm[i].weight.grad.numpy().T, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(model[i].bias.grad.numpy(), tm[i].bias.grad.numpy(), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- the digits claim

def train_digits_mlp(epochs=20, seed=0):
    """The course's MLP (64-128-10, ReLU, SGD lr 0.1, batch 32) on the digits split."""
    lg.manual_seed(seed)
    train, test = lg.data.datasets.digits("train"), lg.data.datasets.digits("test")
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = lg.optim.SGD(model.parameters(), lr=0.1)
    loader = lg.data.DataLoader(train, batch_size=32, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with lg.no_grad():
        predicted = model(lg.tensor(test.features)).numpy().argmax(axis=1)
    return float((predicted == test.labels).mean())


def test_mlp_reaches_95_percent_on_digits_in_20_epochs():
    pytest.importorskip("sklearn")
    start = time.perf_counter()
    accuracy = train_digits_mlp()
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f} after 20 epochs (took {time.perf_counter() - start:.1f} s)"


# ---------------------------------------------------------------- devices

def test_a_model_moves_to_a_device_and_trains_there(device):
    lg.manual_seed(0)
    on_cpu = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    lg.manual_seed(0)
    moved = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    weights = list(moved.parameters())
    assert moved.to(device) is moved
    assert all(p is q for p, q in zip(moved.parameters(), weights))
    assert all(p.device == lg.device(device) and p.requires_grad for p in moved.parameters())
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    t = np.array([0, 2, 1, 1, 0])
    for model, dev in ((on_cpu, "cpu"), (moved, device)):
        F.cross_entropy(model(lg.tensor(x, device=dev)), lg.tensor(t, device=dev)).backward()
    for p, q in zip(on_cpu.parameters(), moved.parameters()):
        assert q.grad.device == lg.device(device)
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-7)
    moved.to("cpu")
    assert all(p.device == lg.device("cpu") for p in moved.parameters())


def test_layers_can_be_built_on_a_device(device):
    fc = nn.Linear(3, 2, device=device)
    conv = nn.Conv2d(1, 2, 3, device=device)
    assert fc.weight.device == conv.weight.device == lg.device(device)
    assert fc(lg.ones(1, 3, device=device)).device == lg.device(device)
