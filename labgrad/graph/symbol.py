"""``Symbol``: the handle a user holds for a graph value, and ``make_node``, which builds nodes.

A ``Symbol`` has the same operators and methods as ``Tensor`` (both use ``OpsMixin``), so
``a @ w + b`` on symbols builds nodes instead of computing::

    >>> a = lg.placeholder((None, 3), name="a")
    >>> (a * 2).sum(axis=1)
    Symbol(float32[?] = sum)

``make_node`` applies an op symbolically: ``to_input`` turns each input into a node of the
current frame (a Tensor becomes a constant, or under ``lg.jit`` a variable), the op's ``infer``
rule gives the result's shape and dtype, and errors name the user's line. ``Variable`` is the
symbol of persistent state, aliasing a live Tensor.
"""
from __future__ import annotations

import numpy as np

from ..context import context
from ..backends import CPU, get_backend, parse_device
from ..creation import tensor
from ..errors import (DeviceError, DTypeError, LabgradError, ShapeError, TraceError, format_location,
                      user_location)
from ..ops.device import to_device
from ..ops.registry import Aval, fmt_shape
from ..ops.shape import full_like, setitem, split_index
from ..tensor import OpsMixin, Tensor, get_default_dtype, normalize_index
from .ir import ROOT, Node, current_frame
from .text import fmt_aval

def constant_node(value, name=None, location=None):
    """A constant node holding ``value`` (a Tensor, array or number), in the current frame."""
    if isinstance(value, Tensor):
        array, backend = value.data, value._backend
    elif hasattr(value, "__cuda_array_interface__"):
        array, backend = value, get_backend(f"cuda:{value.device.id}")
    else:
        array, backend = np.asarray(value), CPU
        if array.dtype == np.float64 and not isinstance(value, np.ndarray):
            array = array.astype(get_default_dtype())   # Python floats: float32, as lg.tensor does
    return Node("constant", aval=Aval(array.shape, array.dtype), device=backend.device, name=name,
                location=location or user_location(), value=array, frame=current_frame(),
                requires_grad=isinstance(value, Tensor) and value.requires_grad)


def to_input(x):
    """An input of an op, as a node of the current frame or a literal Python number."""
    if isinstance(x, Symbol):
        return current_frame().capture(x.node)
    if x.__class__ is Tensor:
        # while lg.jit traces, a tensor is read through the tracer (a variable aliasing it)
        node = context.tracer.read(x) if context.tracer is not None else constant_node(x)
        return current_frame().capture(node)
    if isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
        return constant_node(x)
    if isinstance(x, Tensor):
        raise TypeError(f"subclasses of Tensor ({type(x).__name__}) cannot be used in graphs")
    raise TypeError(f"cannot use a {type(x).__name__} as an op input in a graph; pass a Symbol, "
                    f"Tensor, NumPy array or Python number")


def input_aval(x):
    """What an op's ``infer`` rule gets for one input: a node's aval; a literal number as is."""
    return x.aval if isinstance(x, Node) else x


def make_node(op, inputs, attrs, location=None):
    """Apply ``op`` symbolically: check shapes and dtypes with its ``infer`` rule, make a node.

    Errors are raised here, while the graph is built, naming the op and the user's line. An
    ``index`` attribute holding Symbols (``x[i]`` with ``i`` a placeholder) is split: the
    Symbols become inputs of the op, and the attribute keeps a template.
    """
    index = attrs.get("index")
    if isinstance(index, tuple) and any(isinstance(i, Symbol) for i in index):
        # index arrays that are graph values become inputs (see ops/shape.py, INDEX_INPUT)
        template, index_values = split_index(index, lambda i: isinstance(i, Symbol))
        inputs, attrs = (*inputs, *index_values), {**attrs, "index": template}
    nodes = [to_input(x) for x in inputs]
    where = location if location is not None else user_location()
    devices = {n.device for n in nodes if isinstance(n, Node)}
    if len(devices) > 1 and op.name != "to_device":
        listed = ", ".join(f"{fmt_aval(n.aval)} on {n.device}" for n in nodes if isinstance(n, Node))
        raise DeviceError(f"{op.name}: inputs are on different devices ({listed})."
                          f"{format_location(where)}\n  Move one of them first with .to(device): "
                          f"in a graph the transfer is an explicit to_device node.")
    try:
        aval = op.infer(*[input_aval(n) for n in nodes], **attrs)
    except (ShapeError, DTypeError) as e:
        raise type(e)(f"{e}{format_location(where)}") from None
    except LabgradError:
        raise
    except Exception as e:
        shapes = ", ".join(fmt_aval(input_aval(n)) if isinstance(n, Node) else repr(n) for n in nodes)
        raise ShapeError(f"{op.name}: cannot infer the result for inputs ({shapes}): "
                         f"{type(e).__name__}: {e}{format_location(where)}") from None
    if op.name == "to_device":
        device = parse_device(attrs["device"])
    else:
        device = next(iter(devices)) if devices else CPU.device
    grad_on = context.grad_enabled
    node = Node(op, nodes, attrs, aval, device, location=where, frame=current_frame(),
                stop_gradient=not grad_on,
                requires_grad=grad_on and op.differentiable and any(
                    isinstance(n, Node) and n.requires_grad for n in nodes))
    return Symbol(node)


# ---------------------------------------------------------------- Symbol

class Symbol(OpsMixin):
    """A value in a graph being built: use it like a Tensor, and ops build nodes.

    >>> a = lg.placeholder((None, 3), name="a")
    >>> (a * 2).sum(axis=1)
    Symbol(float32[?] = sum)
    """

    __slots__ = ("node",)

    def __init__(self, node):
        self.node = node

    @classmethod
    def _lg_apply(cls, op, inputs, attrs):
        return make_node(op, inputs, attrs)

    # ---- what is known before running
    @property
    def aval(self):
        return self.node.aval

    @property
    def shape(self):
        return self.node.aval.shape

    @property
    def dtype(self):
        return self.node.aval.dtype

    @property
    def device(self):
        return self.node.device

    @property
    def name(self):
        return self.node.name

    @property
    def size(self):
        shape = self.shape
        return None if None in shape else int(np.prod(shape, dtype=np.int64))

    @property
    def requires_grad(self):
        return self.node.requires_grad

    @property
    def is_leaf(self):
        return self.node.kind != "op"

    @property
    def grad_fn(self):
        return None

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d symbol")
        if self.shape[0] is None:
            raise TraceError(f"len() of a symbol whose first axis has unknown size "
                             f"{fmt_shape(self.shape)}{format_location(user_location())}")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def detach(self):
        """The same value, through which no gradient flows."""
        node = Node("stop_gradient", (current_frame().capture(self.node),), aval=self.aval,
                    device=self.device, location=user_location(), frame=current_frame(),
                    stop_gradient=True)
        return Symbol(node)

    def to(self, target):
        try:
            dev = parse_device(target)
        except (TypeError, ValueError):
            return self.astype(target)
        return self if dev == self.device else to_device(self, device=str(dev))

    def clone(self):
        return Symbol(self.node)   # a new handle: in-place changes to it leave this one alone

    # ---- in place: rebinds this handle to a new value (every holder of it sees the change)
    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self.node = full_like(self, value=value, dtype=None).node
        return self

    def copy_(self, src):
        src = src if isinstance(src, Symbol) else Symbol(to_input(src))
        if tuple(src.shape) != tuple(self.shape):
            src = src.broadcast_to(self.shape)
        self.node = src.astype(self.dtype).node
        return self

    # ---- values do not exist yet
    def _no_value(self, what):
        return TraceError(
            f"{what} of a graph symbol ({fmt_aval(self.aval)}, from {self.node.op_name}): its "
            f"value exists only when the graph runs.{format_location(user_location())}\n  "
            f"Python `if`/`while` on a traced value cannot be captured: use lg.cond(pred, "
            f"true_fn, false_fn, *operands) or lg.while_loop(cond_fn, body_fn, loop_vars); to "
            f"look at a value, return it from the function (or compile it as an output).")

    def __bool__(self):
        raise self._no_value("the truth value")

    def __float__(self):
        raise self._no_value("float()")

    def __int__(self):
        raise self._no_value("int()")

    def __index__(self):
        raise self._no_value("using as an index")

    def item(self):
        raise self._no_value("item()")

    def numpy(self):
        raise self._no_value("numpy()")

    def tolist(self):
        raise self._no_value("tolist()")

    def __array__(self, dtype=None, copy=None):
        raise self._no_value("converting to a NumPy array")

    @property
    def data(self):
        raise self._no_value(".data")

    @property
    def grad(self):
        return None

    def __setitem__(self, index, value):
        """``s[index] = value`` rebinds this handle to a ``setitem`` node: a copy with ``value``
        written at ``index`` (like ``fill_`` and ``copy_`` above)."""
        if self.node.kind == "variable":
            raise TraceError(f"item assignment into the variable {self.name or ''} of a graph"
                             f"{format_location(user_location())}\n  State changes only through "
                             f"assign: build the new value, then lg.assign(w, new_value).")
        if self.node.kind == "placeholder" and context.tracer is not None:
            raise TraceError(f"item assignment into an argument of a jitted function"
                             f"{format_location(user_location())}\n  Eagerly this would change the "
                             f"caller's tensor, which compiled code cannot do: work on a copy "
                             f"(x = x.clone()) or return the new value.")
        if not isinstance(value, (Symbol, Tensor, bool, int, float)):
            value = Symbol(constant_node(np.asarray(value, dtype=self.dtype)))
        self.node = setitem(self, value, index=normalize_index(index, self)).node

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Inside ``lg.jit``: a gradient graph (``lg.gradients``), delivered to ``.grad`` as eager code would."""
        if context.tracer is None:
            raise TraceError(f"backward() on a static-graph symbol{format_location(user_location())}"
                             f"\n  In a define-and-run graph, build the gradient graph with "
                             f"lg.gradients(loss, [w, b]) and update with lg.assign. "
                             f"(Inside a function decorated with @lg.jit, loss.backward() works.)")
        context.tracer.backward(self, grad)

    def __repr__(self):
        node = self.node
        where = f", {node.source_location}" if node.source_location else ""
        name = f" {node.name!r}" if node.name else ""
        return f"Symbol({fmt_aval(node.aval)} = {node.op_name}{name}{where})"

    __str__ = __repr__


class Variable(Symbol):
    """Persistent state in a static graph: read at the start of each run, updated by ``assign``.

    It aliases a live Tensor (``.value``): an executable reads and writes that very tensor, so
    eager code sees every update::

        w = lg.Variable(lg.zeros(3), name="w")
        step = lg.compile(lg.assign(w, w + 1))
        step(); w.value      # tensor([1., 1., 1.])
    """

    __slots__ = ()

    def __init__(self, value, name=None, dtype=None, device=None):
        if isinstance(value, Variable):
            value = value.value
        if not isinstance(value, Tensor) or dtype is not None or device is not None:
            value = tensor(value, dtype=dtype, device=device)
        super().__init__(Node("variable", aval=Aval(value.shape, value.dtype), device=value.device,
                              name=name or value.name, location=user_location(), value=value,
                              frame=ROOT, requires_grad=value.dtype.kind in "fc"))

    @property
    def value(self):
        """The live Tensor: what the graph reads at the start of a run and assigns write into."""
        return self.node.value
