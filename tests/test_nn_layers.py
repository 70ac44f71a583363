"""Normalization layers, Embedding and the extra losses: gradients by finite differences (first
and second order, float64), values against NumPy or PyTorch, and behaviour under lg.jit."""
import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad import nn
from labgrad.errors import DTypeError, ShapeError
from labgrad.testing import gradcheck

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape)


# ---------------------------------------------------------------- gradients (float64 finite differences)

GRAD_CASES = {
    "batch_norm_train_2d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                            [rand(5, 3), rand(3), rand(3)]),
    "batch_norm_train_4d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                            [rand(3, 2, 2, 2), rand(2), rand(2)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, lg.tensor(np.array([0.1, -0.2]), dtype="float64"),
                                                     lg.tensor(np.array([1.5, 0.5]), dtype="float64"),
                                                     w, b, training=False),
                        [rand(4, 2), rand(2), rand(2)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [rand(3, 4), rand(4), rand(4)]),
    "layer_norm_2_axes": (lambda x: F.layer_norm(x, (2, 3)), [rand(2, 2, 3)]),
    "embedding": (lambda w: F.embedding(lg.tensor([[0, 2], [2, 3]]), w), [rand(4, 3)]),
    "l1_loss": (lambda p, t: F.l1_loss(p, t), [rand(3, 4), rand(3, 4)]),
    "nll_loss": (lambda z: F.nll_loss(F.log_softmax(z, axis=1), lg.tensor([0, 2, 1])), [rand(3, 4)]),
    "bce_with_logits": (lambda z, t: F.binary_cross_entropy_with_logits(z, t),
                        [3 * rand(6), RNG.uniform(0, 1, 6)]),
}


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_match_finite_differences(name, order):
    fn, inputs = GRAD_CASES[name]
    gradcheck(fn, [lg.tensor(a, dtype="float64") for a in inputs], order=order)


# ---------------------------------------------------------------- against PyTorch

def test_batchnorm_training_eval_and_running_stats_match_torch():
    torch = pytest.importorskip("torch")
    lg.manual_seed(0)
    bn, tbn = nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    with lg.no_grad():
        bn.weight.copy_(np.array([1.0, 2.0, 0.5], np.float32))
        bn.bias.copy_(np.array([0.0, -1.0, 0.3], np.float32))
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        tbn.bias.copy_(torch.tensor([0.0, -1.0, 0.3]))
    for step in range(3):
        x = RNG.standard_normal((4, 3, 5, 5)).astype(np.float32) * (step + 1) + step
        xl, xt = lg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yl, yt = bn(xl), tbn(xt)
        np.testing.assert_allclose(yl.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-4)
        (yl * yl).sum().backward()
        (yt * yt).sum().backward()
        np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(bn.weight.grad.numpy(), tbn.weight.grad.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-5, atol=1e-5)
    bn.eval(), tbn.eval()
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(bn(lg.tensor(x)).numpy(), tbn(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_batchnorm1d_and_layernorm_match_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(nn.BatchNorm1d(4)(lg.tensor(x)).numpy(),
                               torch.nn.BatchNorm1d(4)(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    x3 = RNG.standard_normal((2, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(nn.BatchNorm1d(3)(lg.tensor(x3)).numpy(),
                               torch.nn.BatchNorm1d(3)(torch.tensor(x3)).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nn.LayerNorm((3, 5))(lg.tensor(x3)).numpy(),
                               torch.nn.LayerNorm((3, 5))(torch.tensor(x3)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    p, t = rand(4, 3), rand(4, 3)
    np.testing.assert_allclose(nn.L1Loss()(lg.tensor(p), lg.tensor(t)).numpy(),
                               tf.l1_loss(torch.tensor(p), torch.tensor(t)).numpy(), rtol=1e-6)
    logp = rand(5, 4)
    labels = np.array([0, 3, 1, 1, 2])
    np.testing.assert_allclose(nn.NLLLoss()(lg.tensor(logp), lg.tensor(labels)).numpy(),
                               tf.nll_loss(torch.tensor(logp), torch.tensor(labels)).numpy(), rtol=1e-6)
    z = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 40.0, 900.0])   # extreme logits: must stay finite
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 1.0, 0.0])
    zl = lg.tensor(z, dtype="float64", requires_grad=True)
    zt = torch.tensor(z, requires_grad=True)
    ours, theirs = nn.BCEWithLogitsLoss()(zl, lg.tensor(y, dtype="float64")), tf.binary_cross_entropy_with_logits(zt, torch.tensor(y))
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(zl.grad.numpy(), zt.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_nll_of_log_softmax_is_cross_entropy():
    z, t = lg.tensor(rand(5, 3)), lg.tensor([0, 1, 2, 2, 1])
    np.testing.assert_allclose(nn.NLLLoss()(F.log_softmax(z, axis=1), t).numpy(), F.cross_entropy(z, t).numpy(),
                               rtol=1e-6)


def test_embedding_matches_torch_and_accumulates_repeated_rows():
    torch = pytest.importorskip("torch")
    emb = nn.Embedding(5, 3)
    temb = torch.nn.Embedding(5, 3)
    with torch.no_grad():
        temb.weight.copy_(torch.tensor(emb.weight.numpy()))
    ids = np.array([[1, 1, 4], [0, 1, 2]])
    out, tout = emb(lg.tensor(ids)), temb(torch.tensor(ids))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy())
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), temb.weight.grad.numpy())
    assert emb.weight.grad.numpy()[1].tolist() == [3.0, 3.0, 3.0]     # row 1 was picked three times


# ---------------------------------------------------------------- behaviour

def test_batchnorm_train_uses_batch_statistics_and_eval_the_running_ones():
    bn = nn.BatchNorm1d(2, momentum=0.5)
    x = lg.tensor([[1.0, 10.0], [3.0, 30.0]])
    y = bn(x).numpy()
    np.testing.assert_allclose(y, [[-1, -1], [1, 1]], atol=1e-4)                      # (x - mean) / std
    np.testing.assert_allclose(bn.running_mean.numpy(), [1.0, 10.0])                 # 0.5*0 + 0.5*[2, 20]
    np.testing.assert_allclose(bn.running_var.numpy(), [0.5 + 0.5 * 2, 0.5 + 0.5 * 200])   # unbiased var 2, 200
    bn.eval()
    before = bn.running_mean.numpy().copy()
    one = bn(lg.tensor([[1.0, 10.0]])).numpy()                # a batch of one works in eval mode
    np.testing.assert_allclose(one, [[0.0, 0.0]], atol=1e-6)  # (1 - 1)/sqrt(1.5), (10 - 10)/...
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]


def test_batchnorm_without_affine_or_running_stats():
    bn = nn.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
    assert list(bn.parameters()) == [] and list(bn.buffers()) == []
    y = bn(lg.tensor(rand(4, 3), dtype="float32")).numpy()     # still uses batch statistics
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)


def test_normalization_errors_teach():
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3\).*\(N, C, H, W\).*C = 3.*got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(lg.zeros(2, 3))
    with pytest.raises(ShapeError, match="num_features"):
        nn.BatchNorm1d(4)(lg.zeros(2, 3))
    with pytest.raises(ShapeError, match=r"last 1 axes must have shape \(5,\)"):
        nn.LayerNorm(5)(lg.zeros(2, 3))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=2)
    with pytest.raises(DTypeError, match="integers"):
        nn.Embedding(3, 2)(lg.zeros(2))
    with pytest.raises(ShapeError, match="must match"):
        nn.L1Loss()(lg.zeros(3), lg.zeros(3, 1))
    with pytest.raises(DTypeError, match="integer class indices"):
        nn.NLLLoss()(lg.zeros(2, 3), lg.zeros(2))


def test_embedding_and_batchnorm_train_under_jit_like_eager():
    def build():
        lg.manual_seed(1)
        return nn.Sequential(nn.Embedding(7, 4), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6),
                             nn.ReLU(), nn.Linear(6, 3))

    ids = lg.tensor(np.random.default_rng(0).integers(0, 7, (10, 2)))
    labels = lg.tensor(np.random.default_rng(1).integers(0, 3, 10))
    models = [build(), build()]
    opts = [lg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in models]

    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    jitted = lg.jit(lambda x, y: step(models[1], opts[1], x, y))
    for _ in range(4):
        eager_loss = step(models[0], opts[0], ids, labels)
        jit_loss = jitted(ids, labels)
        np.testing.assert_allclose(jit_loss.numpy(), eager_loss.numpy(), rtol=1e-5)
    assert jitted.cache_info.misses == 1
    for (name, a), (_, b) in zip(models[0].state_dict().items(), models[1].state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    assert "getitem" in str(jitted.graph)


def test_module_names_are_name_scopes_on_graph_nodes():
    """Drawings group nodes by module: each node built inside a module call records its scope,
    eagerly on the tape and in a traced graph alike."""
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())

    @lg.jit
    def forward(x):
        return model(x)

    forward(lg.ones(2, 4))
    scopes = {node.op.name if hasattr(node.op, "name") else str(node.op): node.scope
              for node in forward.executable.built_graph.nodes}   # (before fusion merges them)
    assert scopes["matmul"] == "Sequential/0:Linear"
    assert scopes["var"] == "Sequential/1:BatchNorm1d"
    assert scopes["relu"] == "Sequential/2:ReLU"
    eager = model(lg.ones(2, 4))
    assert eager.grad_fn.scope == "Sequential/2:ReLU"


def test_drawings_of_a_traced_model_group_nodes_by_module():
    viz = pytest.importorskip("viz")
    pytest.importorskip("graphviz")
    lg.manual_seed(0)
    net = nn.from_config({"name": "block", "inputs": ["x"], "layers": [
        {"name": "fc", "type": "Linear", "params": {"in_features": 4, "out_features": 4}},
        {"name": "norm", "type": "LayerNorm", "params": {"normalized_shape": 4}},
        {"name": "skip", "type": "Add", "bottom": ["x", "norm"]}]})

    @lg.jit
    def forward(x):
        return net(x)

    forward(lg.ones(2, 4))
    view = viz.draw(forward.executable.built_graph, group=True)   # (fusion merges norm and skip)
    assert view.num_clusters >= 4                       # block, and fc / norm / skip inside it
    for name in ("block", "fc", "norm", "skip"):
        assert f'label="{name}"' in view.dot or f"label={name}" in view.dot, name


def test_batchnorm_builds_in_a_static_graph_with_an_unknown_batch_size():
    bn = nn.BatchNorm1d(3)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    f = lg.compile(bn(lg.placeholder((None, 3), name="a")))
    np.testing.assert_allclose(f(x).numpy(), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-4, atol=1e-5)
    assert bn.running_mean.tolist() == [0, 0, 0] and bn.running_var.tolist() == [1, 1, 1]   # a graph cannot write them
    bn.eval()
    np.testing.assert_allclose(lg.compile(bn(lg.placeholder((None, 3), name="a")))(x).numpy(), x / np.sqrt(1 + 1e-5),
                               rtol=1e-5)
