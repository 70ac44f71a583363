"""viz.draw_onnx: an exported ONNX model drawn with viz's figure and renderer."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import labgrad as lg
import labgrad.onnx as lonnx
import viz
from labgrad import nn
from viz.onnx_view import _origin, onnx_family


def small_cnn():
    lg.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 2 * 2, 3))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    path = folder / "cnn.onnx"
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    lonnx.export(small_cnn(), lg.tensor(x), path)
    q = lonnx.quantize(path, [x], folder / "cnn.int8.onnx")
    return path, q


def test_float_model_draws_every_node_and_the_io(exported):
    path, _ = exported
    info = lonnx.to_graph(path)
    view = viz.draw_onnx(path)
    assert view.num_nodes == len(info["nodes"]) + len(info["inputs"]) + len(info["outputs"])
    assert "Conv" in view.dot and "MaxPool" in view.dot and "float32[N,1,4,4]" in view.dot
    # the labgrad origin, without the source line (same drawing on every machine)
    assert "0:Conv2d" in view.dot and ".py:" not in view.dot and "<ipython" not in view.dot
    svg = view.svg
    assert svg.lstrip().startswith("<svg") and "Conv" in svg


def test_drawing_is_deterministic_and_edges_follow_the_data(exported):
    path, _ = exported
    a, b = viz.draw_onnx(path), viz.draw_onnx(path)
    assert a.dot == b.dot
    info = lonnx.to_graph(path)
    value_edges = sum(1 for src, dst, _ in info["edges"] if not src.startswith("init:"))
    assert a.num_edges == value_edges


def test_quantized_model_shows_qdq_and_int8_weights(exported):
    _, q = exported
    plain = viz.draw_onnx(q)
    assert "QuantizeLinear" in plain.dot and "DequantizeLinear" in plain.dot
    assert "int8[" not in plain.dot
    with_w = viz.draw_onnx(q, show_weights=True, origin=False)
    assert "int8[4,1,3,3]" in with_w.dot
    assert with_w.num_nodes > plain.num_nodes and with_w.num_edges > plain.num_edges
    assert with_w.svg.lstrip().startswith("<svg")


def test_origin_and_families():
    assert _origin("labgrad %8 add at /tmp/x.py:3 in Sequential/0:Conv2d") == ("%8 add", "0:Conv2d")
    assert _origin("labgrad %2 matmul") == ("%2 matmul", None)
    assert _origin("") == (None, None)
    assert onnx_family("Conv") == "linalg" and onnx_family("Relu") == "elementwise"
    assert onnx_family("Reshape") == "shape" and onnx_family("MaxPool") == "reduce"
