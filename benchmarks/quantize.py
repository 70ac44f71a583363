"""Post-training int8 quantization for deployment (issue 10): size, accuracy and latency.

Two digits models, trained here with fixed seeds (``lg.nn.Trainer``, Adam, ``jit=True``):

* ``mlp``: 64-128-10 with ReLU, 20 epochs;
* ``cnn``: conv 16 -> pool -> conv 32 -> pool -> linear 64 -> linear 10, 10 epochs.

Each is exported with ``lg.onnx.export`` (float32), then quantized with ``lg.onnx.quantize``
(int8 weights per output channel, uint8 activations calibrated by min/max on 4 batches of 128
training images, QDQ format), and both files run in onnxruntime (CPU, one thread) in the same
process. Columns: file bytes, test accuracy (360 held-out images), and latency per call for the
whole test set in one batch and for a single image (median over interleaved rounds, see
``_timing``), and which integer kernels onnxruntime fused the QDQ groups into (QLinearConv,
QLinearMatMul). At this size int8 is not faster: the models are tiny, and the quantize,
dequantize and layout changes around each integer kernel cost as much as they save; the win
here is the file (and memory) size. Targets: at most 1 percentage point of accuracy lost, file at least 3x smaller.

Run: ``python benchmarks/quantize.py`` (needs ``pip install 'labgrad[onnx]'``; without onnx or
onnxruntime it says so and exits 0).
"""
from __future__ import annotations

import _timing  # first: pins BLAS threads before NumPy loads

import os
import sys
import tempfile
import time

import labgrad as lg
from labgrad import nn

TARGETS = {"accuracy_drop_pp": ("<=", 1.0), "size_ratio": (">=", 3.0)}


def make_model(kind):
    lg.manual_seed(0)
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10))
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def digits_arrays(kind):
    train, test = lg.data.datasets.digits("train"), lg.data.datasets.digits("test")
    shape = (-1, 1, 8, 8) if kind == "cnn" else (-1, 64)
    return (train.features.reshape(shape), train.labels), (test.features.reshape(shape), test.labels)


def train(kind, epochs=None):
    (x, y), _ = digits_arrays(kind)
    model = make_model(kind)
    epochs = epochs or (10 if kind == "cnn" else 20)
    trainer = nn.Trainer(model, lg.optim.Adam(model.parameters(), lr=1e-2), metrics=["accuracy"], jit=True)
    start = time.perf_counter()
    trainer.fit((x, y), epochs=epochs, batch_size=32, seed=0, progress=False)
    return model, time.perf_counter() - start


def integer_kernels(path, folder):
    """The integer ops onnxruntime fused the QDQ groups into (from its optimized graph)."""
    import collections

    import onnx
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = os.path.join(folder, "optimized.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return {k: v for k, v in sorted(ops.items()) if k.startswith("QLinear") or "Integer" in k}


def measure(kind, folder, epochs=None):
    import labgrad.onnx as lonnx
    model, train_s = train(kind, epochs)
    (x, _), (xt, yt) = digits_arrays(kind)
    f32 = os.path.join(folder, f"{kind}.onnx")
    i8 = os.path.join(folder, f"{kind}.int8.onnx")
    lonnx.export(model, lg.tensor(x[:2]), f32)
    report = lonnx.QuantizeReport()
    lonnx.quantize(f32, [x[i:i + 128] for i in range(0, 512, 128)], i8, report=report)
    model.eval()
    eager_acc = float((model(lg.tensor(xt)).numpy().argmax(1) == yt).mean())
    row = {"train_s": train_s, "labgrad_eager_accuracy": eager_acc,
           "weights_bytes": {"float32": report.float_weight_bytes, "int8": report.int8_weight_bytes}}
    sessions = {"float32": lonnx.session(f32), "int8": lonnx.session(i8)}
    for name, path in (("float32", f32), ("int8", i8)):
        (out,) = lonnx.run(path, xt, sess=sessions[name])
        row[name] = {"file_bytes": os.path.getsize(path), "accuracy": float((out.argmax(1) == yt).mean())}
    one = xt[:1]
    batch_times = _timing.compare({n: (lambda s=s: s.run(None, {"input": xt})) for n, s in sessions.items()})
    single_times = _timing.compare({n: (lambda s=s: s.run(None, {"input": one})) for n, s in sessions.items()})
    for name in sessions:
        row[name]["latency_batch_s"] = batch_times[name]["median_s"]
        row[name]["latency_one_s"] = single_times[name]["median_s"]
    row["int8_kernels"] = integer_kernels(i8, folder)
    row["size_ratio"] = row["float32"]["file_bytes"] / row["int8"]["file_bytes"]
    row["accuracy_drop_pp"] = 100 * (row["float32"]["accuracy"] - row["int8"]["accuracy"])
    row["met"] = {k: (row[k] <= v if op == "<=" else row[k] >= v) for k, (op, v) in TARGETS.items()}
    return row


def main():
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        print(f"quantize benchmark skipped: {e} (pip install 'labgrad[onnx]')")
        return 0
    epochs = 2 if _timing.QUICK else None
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("mlp", "cnn"):
            results[kind] = measure(kind, folder, epochs)
    headers = ["model", "format", "file bytes", "test accuracy", "latency (360 images)", "latency (1 image)"]
    rows = []
    for kind, r in results.items():
        for name in ("float32", "int8"):
            c = r[name]
            rows.append([kind, name, f"{c['file_bytes']:,}", f"{100 * c['accuracy']:.2f}%",
                         _timing.fmt_time(c["latency_batch_s"]), _timing.fmt_time(c["latency_one_s"])])
    print(f"int8 post-training quantization, onnxruntime {ort.__version__} (CPU, 1 thread), onnx {onnx.__version__}"
          f"{', QUICK mode' if _timing.QUICK else ''}")
    _timing.print_table(headers, rows)
    for kind, r in results.items():
        verdict = ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in r["met"].items())
        print(f"{kind}: {r['size_ratio']:.2f}x smaller file (weights {r['weights_bytes']['float32']:,} -> "
              f"{r['weights_bytes']['int8']:,} bytes), accuracy {r['accuracy_drop_pp']:+.2f} pp lost; {verdict}; "
              f"onnxruntime runs it with {', '.join(f'{v} {k}' for k, v in r['int8_kernels'].items()) or 'no integer kernels'}")
    path = _timing.write_results("quantize", {
        "environment": _timing.environment({"onnx": onnx.__version__, "onnxruntime": ort.__version__,
                                            "labgrad": lg.__version__}),
        "targets": TARGETS, "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
