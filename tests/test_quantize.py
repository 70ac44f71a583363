"""lg.onnx.quantize: post-training int8 (QDQ) models run in onnxruntime (issue 10)."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="quantization writes ONNX: needs the onnx package (pip install 'labgrad[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="quantized models run in onnxruntime (pip install 'labgrad[onnx]')")

import labgrad as lg
import labgrad.onnx as lonnx
from labgrad import nn
from labgrad.onnx.quantize import activation_params, dequantize, quantize_weight


def test_weight_round_trip_per_channel():
    w = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32) * np.array([1, 10, 0.01], np.float32)
    q, scale = quantize_weight(w, axis=1)
    assert q.dtype == np.int8 and scale.shape == (3,)
    assert np.abs(q).max() == 127
    back = q.astype(np.float32) * scale
    assert np.all(np.abs(back - w) <= scale / 2 + 1e-7)     # within half a step, per column
    zero = quantize_weight(np.zeros((2, 2), np.float32), axis=0)[0]
    assert np.all(zero == 0)


def test_activation_params_include_zero():
    scale, zp = activation_params(0.5, 2.0)       # the range is widened to [0, 2]
    assert zp == 0 and np.isclose(scale, 2 / 255)
    scale, zp = activation_params(-1.0, 3.0)
    q = np.round(np.float32(0) / scale) + zp
    assert dequantize(q, scale, zp) == 0          # zero is exact
    assert np.isclose(dequantize(255, scale, zp), 3.0, atol=scale)


def digits(kind):
    train, test = lg.data.datasets.digits("train"), lg.data.datasets.digits("test")
    shape = (-1, 1, 8, 8) if kind == "cnn" else (-1, 64)
    return train.features.reshape(shape), train.labels, test.features.reshape(shape), test.labels


def trained(kind):
    lg.manual_seed(0)
    if kind == "cnn":
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    else:
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    x, y, _, _ = digits(kind)
    trainer = nn.Trainer(model, lg.optim.Adam(model.parameters(), lr=1e-2), jit=True)
    trainer.fit((x, y), epochs=6 if kind == "cnn" else 10, batch_size=32, seed=0, progress=False)
    return model


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_int8_targets(tmp_path, kind):
    """At most 1 percentage point of accuracy lost, a file at least 3x smaller."""
    model = trained(kind)
    x, _, xt, yt = digits(kind)
    f32, i8 = tmp_path / "f.onnx", tmp_path / "q.onnx"
    lonnx.export(model, lg.tensor(x[:2]), f32)
    report = lonnx.QuantizeReport()
    m = lonnx.quantize(f32, [x[i:i + 128] for i in range(0, 512, 128)], i8, report=report)
    ops = [n.op_type for n in m.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert all(t.data_type != onnx.TensorProto.FLOAT or np.prod(t.dims) <= 64
               for t in m.graph.initializer if len(t.dims) >= 2)       # no float matrices left
    acc = {}
    for name, path in (("f32", f32), ("i8", i8)):
        (out,) = lonnx.run(path, xt)
        acc[name] = (out.argmax(1) == yt).mean()
    assert acc["f32"] >= 0.95
    assert acc["f32"] - acc["i8"] <= 0.01, acc
    assert os.path.getsize(f32) >= 3 * os.path.getsize(i8), (os.path.getsize(f32), os.path.getsize(i8))
    assert report.float_weight_bytes > 3.5 * report.int8_weight_bytes
    # dynamic batch survives quantization
    (one,) = lonnx.run(i8, xt[:1])
    assert one.shape == (1, 10)


def test_calibration_methods_and_options(tmp_path):
    lg.manual_seed(4)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = np.random.default_rng(1).standard_normal((64, 8)).astype(np.float32)
    x[0, 0] = 50.0                                              # one outlier
    lonnx.export(model, lg.tensor(x[:2]), tmp_path / "f.onnx")
    mm = lonnx.calibrate(tmp_path / "f.onnx", [x[:32], x[32:]])
    pc = lonnx.calibrate(tmp_path / "f.onnx", [x[:32], x[32:]], method="percentile", percentile=99.0)
    assert set(mm) == set(pc) and "input" in mm
    assert mm["input"][1] == pytest.approx(50.0) and pc["input"][1] < 10      # percentiles ignore it
    with pytest.raises(ValueError, match="method"):
        lonnx.calibrate(tmp_path / "f.onnx", [x], method="entropy")
    ref = model.eval()(lg.tensor(x[1:])).numpy()
    for kw in ({}, {"per_channel": False}, {"activations": False}, {"compact": False, "strip_doc": False}):
        lonnx.quantize(tmp_path / "f.onnx", pc, tmp_path / "q.onnx", **kw)
        (got,) = lonnx.run(tmp_path / "q.onnx", x[1:])
        # percentile calibration clips the input's tails, so compare typical errors
        assert np.abs(got - ref).mean() < 0.05 * np.abs(ref).max(), kw
    wo = lonnx.quantize(tmp_path / "f.onnx", None, activations=False)
    assert "QuantizeLinear" not in [n.op_type for n in wo.graph.node]


def test_summary_of_quantized(tmp_path):
    lg.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = np.random.default_rng(2).random((8, 1, 6, 6)).astype(np.float32)
    lonnx.export(model, lg.tensor(x), tmp_path / "f.onnx")
    lonnx.quantize(tmp_path / "f.onnx", [x], tmp_path / "q.onnx")
    text = lonnx.summary(tmp_path / "q.onnx")
    assert "QuantizeLinear(" in text and "int8[" in text and "int32" not in text.split("weight")[0]
    assert "fillcolor" in lonnx.to_dot(tmp_path / "q.onnx")


def test_missing_onnx_says_how_to_install(monkeypatch):
    import sys

    from labgrad.onnx.export import require
    monkeypatch.setitem(sys.modules, "onnx", None)      # as if it were not installed
    with pytest.raises(ImportError, match=r"labgrad\[onnx\]"):
        require("onnx")
    with pytest.raises(ImportError, match=r"labgrad\[onnx\]"):
        lonnx.export(lambda x: x + 1, lg.ones(2), None)
