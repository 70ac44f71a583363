"""labgrad: a small deep-learning framework to read, run and rebuild.

>>> import labgrad as lg
>>> x = lg.tensor([1.0, 2.0], requires_grad=True)
>>> y = (x * x).sum(); y.backward(); x.grad
tensor([2., 4.])
"""
from .errors import (CheckpointError, DeviceError, DTypeError, GradError, LabgradError,  # noqa: F401
                     ShapeError, TraceError)
from .backends import Device, available_devices  # noqa: F401
from .backends import parse_device as device  # noqa: F401
from .tensor import Tensor, get_default_dtype, set_default_dtype  # noqa: F401
from .dispatch import apply  # noqa: F401
from .autograd import (enable_grad, grad, is_grad_enabled, name_scope, no_grad,  # noqa: F401
                       set_grad_enabled)
from .random import manual_seed  # noqa: F401
from .creation import (arange, as_tensor, empty, eye, full, full_like, linspace, ones,  # noqa: F401
                       ones_like, rand, rand_like, randint, randn, randn_like, tensor, uniform,
                       zeros, zeros_like)
from .functional import (abs, broadcast_to, clip, concatenate, cat, cos, exp, log, logsumexp, matmul,  # noqa: F401
                         maximum, minimum, pad, relu, sigmoid, sin, split, sqrt, stack, tanh,
                         where)
from . import cuda, functional, ops, testing  # noqa: F401
from . import data, io, nn, optim  # noqa: F401
from . import distributed, onnx, profiler  # noqa: F401  (none imports its optional packages yet)
from .io.checkpoint import load, save  # noqa: F401
from .graph import (Executable, Graph, Node, Symbol, Variable, assign, compile, cond,  # noqa: F401
                    constant, gradients, jit, placeholder, while_loop)

float32 = "float32"
float64 = "float64"
int64 = "int64"
int32 = "int32"
bool_ = "bool"

__version__ = "0.1.0"
