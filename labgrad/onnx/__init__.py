"""ONNX interop and deployment: export a labgrad graph, quantize it to int8, read it back.

::

    import labgrad as lg
    import labgrad.onnx
    model.eval()
    lg.onnx.export(model, x_example, "model.onnx")          # float32, dynamic batch
    (y,) = lg.onnx.run("model.onnx", x)                      # onnxruntime
    q = lg.onnx.quantize("model.onnx", calibration, "model.int8.onnx")
    print(lg.onnx.summary("model.int8.onnx"))                # text; lg.onnx.to_dot(...) for DOT

The ``onnx`` extra provides the packages (``pip install 'labgrad[onnx]'``: onnx and
onnxruntime); they are imported only when a function here runs.
"""
from .core import OnnxExportError, require  # noqa: F401  (require: for the chapter and viz)
from .export import DEFAULT_OPSET, export
from .mapping import MAPPING, SUPPORTED_OPS
from .quantize import QuantizeReport, calibrate, quantize
from .summary import load, run, session, summary, to_dot, to_graph

__all__ = [
           "DEFAULT_OPSET",
           "MAPPING",
           "SUPPORTED_OPS",
           "OnnxExportError",
           "QuantizeReport",
           "calibrate",
           "export",
           "load",
           "quantize",
           "run",
           "session",
           "summary",
           "to_dot",
           "to_graph",
]
