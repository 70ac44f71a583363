"""lg.onnx.export: labgrad graphs written as ONNX and run in onnxruntime (issue 10)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install 'labgrad[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="running exported models needs onnxruntime (pip install 'labgrad[onnx]')")

import labgrad as lg
import labgrad.onnx as lonnx
from labgrad import nn
from labgrad.ops import fused

RTOL, ATOL = 1e-5, 1e-6


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def op_types(model):
    return [n.op_type for n in lonnx.load(model).graph.node]


def check_model(model, example, path, batches=(4, 7), **kw):
    """Export, validate, and compare onnxruntime with labgrad eager at two batch sizes."""
    lonnx.export(model, lg.tensor(example), path, **kw)
    onnx.checker.check_model(onnx.load(str(path)))
    sess = lonnx.session(path)
    model.eval()
    for n in batches:
        x = rand(n, *example.shape[1:], seed=n)
        (got,) = lonnx.run(path, x, sess=sess)
        want = model(lg.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return lonnx.load(path)


def test_mlp_dynamic_batch(tmp_path):
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    m = check_model(model, rand(3, 64), tmp_path / "mlp.onnx")
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 64
    assert [i.name for i in m.graph.input] == ["input"]
    assert {t.name for t in m.graph.initializer} >= {"model.0.weight", "model.0.bias", "model.2.weight"}
    assert op_types(m) == ["MatMul", "Add", "Relu", "MatMul", "Add"]


def test_static_batch(tmp_path):
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.Tanh())
    m = lonnx.export(model, lg.tensor(rand(5, 8)), tmp_path / "s.onnx", dynamic_batch=False)
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [5, 8]
    (y,) = lonnx.run(tmp_path / "s.onnx", rand(5, 8))
    np.testing.assert_allclose(y, model(lg.tensor(rand(5, 8))).numpy(), rtol=RTOL, atol=ATOL)


def small_cnn():
    lg.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(6, 10))


def test_cnn_maps_to_conv_and_pool(tmp_path):
    model = small_cnn()
    m = check_model(model, rand(2, 1, 8, 8), tmp_path / "cnn.onnx")
    ops = op_types(m)
    assert ops.count("Conv") == 2 and "MaxPool" in ops and "AveragePool" in ops
    assert "MatMul" in ops and ops.count("MatMul") == 1      # the Linear layer only


def test_pool_padding_dilation(tmp_path):
    def f(x):
        a = lg.functional.max_pool2d(x, 3, stride=2, padding=1)
        b = lg.functional.avg_pool2d(x, 3, stride=2, padding=1)
        w = lg.tensor(rand(3, 3, 3, 3, seed=9))
        c = lg.functional.conv2d(x, w, None, stride=2, padding=2, dilation=2)
        return a + b + c
    x = rand(2, 3, 9, 9)
    lonnx.export(f, lg.tensor(x), tmp_path / "p.onnx")
    assert {"Conv", "MaxPool", "AveragePool", "Pad"} <= set(op_types(tmp_path / "p.onnx"))
    for n in (2, 5):
        xx = rand(n, 3, 9, 9, seed=n)
        (got,) = lonnx.run(tmp_path / "p.onnx", xx)
        np.testing.assert_allclose(got, f(lg.tensor(xx)).numpy(), rtol=RTOL, atol=1e-5)


def trained_bn_model():
    lg.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    opt = lg.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for step in range(3):          # move the running statistics away from 0 and 1
        x = lg.tensor(rand(6, 1, 6, 6, seed=10 + step) * 2 + 1)
        loss = (model(x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_batchnorm_eval(tmp_path):
    model = trained_bn_model()
    rm = model[1].running_mean.numpy()
    assert np.abs(rm).max() > 1e-3           # the running statistics are not the initial ones
    check_model(model, rand(4, 1, 6, 6), tmp_path / "bn.onnx", batches=(1, 5))
    assert model.training is False           # check_model called eval(); export restores the flag
    model.train()
    lonnx.export(model, lg.tensor(rand(2, 1, 6, 6)), tmp_path / "bn2.onnx")
    assert model.training is True            # export traces in eval mode, then restores the flag


def test_many_ops(tmp_path):
    def f(x, y):
        a = lg.where(x > 0, x, y * 0.5) + lg.clip(y, -0.5, 0.5)
        b = lg.functional.softmax(a, axis=-1) + lg.functional.log_softmax(x, axis=1).exp()
        c = (x.abs() + 1).log() + (x * x + 1).sqrt() - y.tanh() + x.sigmoid() ** 2
        d = lg.functional.leaky_relu(x, 0.1) + lg.functional.gelu(y) + lg.maximum(x, y) - lg.minimum(x, 0.2)
        e = x[:, 1:5].sum(axis=1, keepdims=True) + y[:, ::2].mean(axis=1, keepdims=True)
        g = lg.concatenate([x[:, :3], y[:, -3:]], axis=1).max(axis=1, keepdims=True) - x.min(axis=1, keepdims=True)
        h = x.var(axis=1, keepdims=True) + (x.T @ y).sum(axis=0).reshape(1, -1)[:, :1]
        k = lg.stack([x[:, 0], y[:, 0]], axis=1).reshape(-1, 2, 1).squeeze(-1).sum(axis=1)[:, None]
        m = (x > y).astype("float32") + (x <= 0.1).astype("float32") + lg.broadcast_to(x[:1], (x.shape[0], 6)) * 0
        n = (-x) / (y.abs() + 1) + x[:, 2][:, None]
        return a + b + c + d + e + g + h + k + m + n
    x, y = rand(4, 6), rand(4, 6, seed=1)
    lonnx.export(f, (lg.tensor(x), lg.tensor(y)), tmp_path / "ops.onnx", dynamic_batch=False)
    (got,) = lonnx.run(tmp_path / "ops.onnx", x, y)
    np.testing.assert_allclose(got, f(lg.tensor(x), lg.tensor(y)).numpy(), rtol=1e-5, atol=1e-5)


def test_fused_linear_and_fma(tmp_path):
    w, b = lg.tensor(rand(5, 3)), lg.tensor(rand(3, seed=2))

    @lg.jit
    def f(x):
        h = lg.apply(fused.linear, x, w, b, relu=True)
        return lg.apply(fused.fma, h, h, b)
    x = rand(4, 5)
    lonnx.export(f, lg.tensor(x), tmp_path / "f.onnx")
    assert op_types(tmp_path / "f.onnx") == ["MatMul", "Add", "Relu", "Mul", "Add"]
    for n in (4, 9):
        xx = rand(n, 5, seed=n)
        (got,) = lonnx.run(tmp_path / "f.onnx", xx)
        np.testing.assert_allclose(got, f(lg.tensor(xx)).numpy(), rtol=RTOL, atol=ATOL)


def test_compiled_executable_with_unknown_batch(tmp_path):
    x = lg.placeholder((None, 4), name="x")
    w = lg.Variable(lg.tensor(rand(4, 2)), name="w") if hasattr(lg, "Variable") else None
    y = (x @ w).reshape(-1, 2) * 2.0
    exe = lg.compile(y)
    m = lonnx.export(exe, None, tmp_path / "c.onnx")
    assert m.graph.input[0].name == "x"
    for n in (1, 6):
        xx = rand(n, 4, seed=n)
        (got,) = lonnx.run(tmp_path / "c.onnx", xx)
        np.testing.assert_allclose(got, exe(xx).numpy(), rtol=RTOL, atol=ATOL)


def test_embedding_gather(tmp_path):
    lg.manual_seed(3)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    ids = np.array([[1, 2, 3], [4, 5, 9]], dtype=np.int64)
    lonnx.export(model, lg.tensor(ids), tmp_path / "e.onnx")
    assert "Gather" in op_types(tmp_path / "e.onnx")
    more = np.array([[0, 0, 1], [9, 8, 7], [3, 3, 3]], dtype=np.int64)
    (got,) = lonnx.run(tmp_path / "e.onnx", more)
    np.testing.assert_allclose(got, model(lg.tensor(more)).numpy(), rtol=RTOL, atol=ATOL)


def test_unmapped_op_names_op_and_line(tmp_path):
    def f(x, t):
        return lg.functional.cross_entropy(x, t)   # the line the error must name
    with pytest.raises(lonnx.OnnxExportError) as e:
        lonnx.export(f, (lg.tensor(rand(3, 4)), lg.tensor(np.array([0, 1, 2]))), tmp_path / "x.onnx")
    msg = str(e.value)
    assert "'cross_entropy'" in msg and "no ONNX mapping" in msg
    assert "test_onnx.py" in msg and "cross_entropy(x, t)" in msg
    assert not (tmp_path / "x.onnx").exists()


def test_state_updates_are_refused(tmp_path):
    x = lg.placeholder((None, 3), name="x")
    v = lg.Variable(lg.tensor(np.zeros(3, np.float32)), name="count")
    exe = lg.compile(x * 2, updates=[lg.assign(v, v + 1)])
    with pytest.raises(lonnx.OnnxExportError, match="writes state"):
        lonnx.export(exe, None, tmp_path / "u.onnx")


def test_bad_opset(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        lonnx.export(lambda x: x + 1, lg.tensor(rand(2, 2)), tmp_path / "o.onnx", opset=9)


@pytest.mark.parametrize("opset", [13, 18, 20])
def test_opsets(tmp_path, opset):
    def f(x):
        return lg.functional.gelu(x).mean(axis=1) + x.max(axis=1)
    x = rand(3, 5)
    m = lonnx.export(f, lg.tensor(x), tmp_path / "o.onnx", opset=opset)
    assert m.opset_import[0].version == opset
    (got,) = lonnx.run(tmp_path / "o.onnx", rand(6, 5, seed=6))
    np.testing.assert_allclose(got, f(lg.tensor(rand(6, 5, seed=6))).numpy(), rtol=RTOL, atol=1e-5)


def test_summary_graph_and_dot(tmp_path):
    model = small_cnn()
    lonnx.export(model, lg.tensor(rand(2, 1, 8, 8)), tmp_path / "cnn.onnx")
    text = lonnx.summary(tmp_path / "cnn.onnx")
    assert "input  input: float32[N,1,8,8]" in text and "Conv(" in text and "MaxPool2d" in text
    info = lonnx.to_graph(tmp_path / "cnn.onnx")
    assert info["inputs"][0]["shape"] == "[N,1,8,8]" and info["opset"] == lonnx.DEFAULT_OPSET
    names = {n["name"] for n in info["nodes"]}
    for a, b, _ in info["edges"]:
        assert a in names or a.split(":")[0] in ("input", "init")
        assert b in names or b.startswith("output:")
    dot = lonnx.to_dot(tmp_path / "cnn.onnx")
    assert dot.startswith("digraph") and '"Conv"' in dot and dot.rstrip().endswith("}")


def test_supported_ops_cover_the_table():
    for op in ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "tanh", "sigmoid",
               "relu", "leaky_relu", "gelu", "maximum", "minimum", "where", "clip", "cast", "eq", "ne",
               "lt", "le", "gt", "ge", "matmul", "transpose", "reshape", "squeeze", "unsqueeze",
               "broadcast_to", "sum", "mean", "max", "min", "softmax", "log_softmax", "getitem",
               "concatenate", "linear", "fma"]:
        assert op in lonnx.MAPPING, op


def test_kernel_ops_made_by_a_pass_fall_back_to_the_graph_passes(tmp_path):
    """A later pass (a fusion) may leave an op the table does not know; export then writes the
    built graph run through the graph-level passes only."""
    from labgrad.graph.ir import rewrite
    from labgrad.graph.passes import make_report, survivors
    from labgrad.ops.registry import REGISTRY

    def relu_as_kernel(graph):       # relu(x) == relu_grad(x, x): same values, an unmapped op
        def fn(node, ins):
            if node.op_name == "relu":
                return node.replace(op=REGISTRY["relu_grad"], inputs=(ins[0], ins[0]))
            return None
        new, env, converted = rewrite(graph, fn)
        return new, make_report("relu_as_kernel", graph, new, survivors(graph, env, converted))

    f = lg.jit(lambda x: lg.functional.relu(x) * 2, passes=["dce", relu_as_kernel])
    x = rand(3, 4)
    f(lg.tensor(x))
    assert "relu_grad" in [n.op_name for n in f.executable.graph.nodes]
    lonnx.export(f, lg.tensor(x), tmp_path / "k.onnx")
    assert "Relu" in op_types(tmp_path / "k.onnx")
    (got,) = lonnx.run(tmp_path / "k.onnx", x)
    np.testing.assert_allclose(got, np.maximum(x, 0) * 2, rtol=RTOL)


def test_example_batch_of_one(tmp_path):
    check_model(small_cnn(), rand(1, 1, 8, 8), tmp_path / "one.onnx", batches=(1, 3))


def test_declarative_residual_network(tmp_path):
    """A model written as data (nn.from_config, with a skip connection) exports like any other."""
    lg.manual_seed(6)
    config = {"inputs": ["x"],
              "layers": [
                  {"name": "fc1", "type": "Linear", "params": {"in_features": 8, "out_features": 8}, "bottom": "x"},
                  {"name": "act1", "type": "ReLU"},
                  {"name": "fc2", "type": "Linear", "params": {"in_features": 8, "out_features": 8}},
                  {"name": "skip", "type": "Add", "bottom": ["x", "fc2"], "top": "y"}],
              "outputs": ["y"]}
    model = nn.from_config(config)
    m = check_model(model, rand(2, 8), tmp_path / "res.onnx", batches=(3, 6))
    assert op_types(m).count("Add") == 3       # two biases and the skip connection


def test_with_pattern_fusion(tmp_path):
    """With the fusion pass on (linear, fma in the graph), the export computes the same."""
    model = trained_bn_model()
    model.eval()
    f = lg.jit(lambda x: model(x), passes=["dce", "fold", "simplify", "cse", "patterns", "dce"])
    x = rand(3, 1, 6, 6)
    f(lg.tensor(x))
    ops = {n.op_name for n in f.executable.graph.nodes}
    assert ops & {"linear", "fma"}, ops
    lonnx.export(f, lg.tensor(x), tmp_path / "fused.onnx")
    for n in (2, 5):
        xx = rand(n, 1, 6, 6, seed=n)
        (got,) = lonnx.run(tmp_path / "fused.onnx", xx)
        np.testing.assert_allclose(got, model(lg.tensor(xx)).numpy(), rtol=RTOL, atol=ATOL)


def test_dot_renders_with_viz(tmp_path):
    render = pytest.importorskip("viz.render", reason="viz (the drawing package) is not importable")
    lonnx.export(small_cnn(), lg.tensor(rand(2, 1, 8, 8)), tmp_path / "cnn.onnx")
    svg = render.render_svg(lonnx.to_dot(tmp_path / "cnn.onnx"))
    assert svg.lstrip().startswith("<svg") and "Conv" in svg
