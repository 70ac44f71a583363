"""The static graph's data structures: ``Node``, ``Graph``, ``Symbol`` and its readable text form.

A ``Node`` is one value in a program: an op applied to input nodes, or a source of values
(placeholder, constant, variable). A ``Symbol`` is the user-facing handle of a node; it has the
same operators and methods as ``Tensor`` (both use ``OpsMixin``), so ``a @ w + b`` on symbols
builds nodes instead of computing. A ``Graph`` is the list of nodes an output needs, in
topological order, and prints like this::

    graph(%0:float32[?,64] a):
      %1:float32[64,10] = variable w
      %2:float32[?,10] = matmul %0, %1      # model.py:5
      return %2

Node kinds other than ``"op"``: ``placeholder`` (fed at run time), ``constant``, ``variable``
(persistent state, read live from a Tensor), ``assign`` (a state update), ``cond`` and ``while``
(with subgraphs), ``get`` (one output of a cond/while), ``arg`` (an input of a subgraph) and
``stop_gradient``.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..context import context
from ..backends import CPU, get_backend, parse_device
from ..errors import (DeviceError, DTypeError, LabgradError, ShapeError, TraceError, format_location,
                      short_location,
                      user_location)
from ..ops.registry import Aval, Op, fmt_shape
from ..tensor import OpsMixin, Tensor, get_default_dtype

_ids = itertools.count()
SOURCE_KINDS = ("placeholder", "constant", "variable")


class Node:
    """One value of a static program.

    ``op`` is a registered ``Op`` for op nodes, else the kind's name (``"placeholder"``,
    ``"variable"``, ...). ``inputs`` holds input ``Node``s and literal Python numbers. ``aval``
    is the abstract value (shape with ``None`` for unknown sizes, dtype); cond and while nodes,
    which have several outputs, have a tuple of avals. ``location`` is ``(file, line, text)`` of
    the user's line that created the node. ``value`` is the array of a constant or the Tensor a
    variable reads. ``subgraphs`` maps names (``"true"``, ``"body"``, ...) to ``Graph``s.
    """

    __slots__ = ("id", "op", "inputs", "attrs", "aval", "device", "name", "location", "value",
                 "subgraphs", "frame", "stop_gradient", "requires_grad", "scope", "__weakref__")

    def __init__(self, op, inputs=(), attrs=None, aval=None, device=None, name=None,
                 location=None, value=None, subgraphs=None, frame=None, stop_gradient=False,
                 requires_grad=False):
        self.id = next(_ids)
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = attrs if attrs is not None else {}
        self.aval = aval
        self.device = device if device is not None else CPU.device
        self.name = name
        self.location = location
        self.value = value
        self.subgraphs = subgraphs
        self.frame = frame if frame is not None else ROOT
        self.stop_gradient = stop_gradient
        self.requires_grad = requires_grad
        self.scope = context.scope

    @property
    def kind(self) -> str:
        """``"op"`` for an op application, otherwise the special kind (``"variable"``, ...)."""
        return "op" if isinstance(self.op, Op) else self.op

    @property
    def op_name(self) -> str:
        return self.op.name if isinstance(self.op, Op) else self.op

    @property
    def input_nodes(self):
        return [x for x in self.inputs if isinstance(x, Node)]

    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def is_variable(self):
        return self.op == "variable"

    @property
    def is_assign(self):
        return self.op == "assign"

    @property
    def target(self):
        """For an assign: the variable node it writes."""
        return self.inputs[0] if self.op == "assign" else None

    @property
    def tensor(self):
        """The live Tensor a variable node reads and writes (``None`` if it is gone)."""
        if self.op != "variable":
            return None
        v = self.value
        return v() if self.attrs.get("weak") else v

    @property
    def source_location(self) -> str:
        """``"model.py:12"`` (``"cell:3"`` in a notebook), or ``""`` when unknown."""
        return short_location(self.location)

    def __repr__(self):
        return f"<Node {self.op_name} {_fmt_aval(self.aval)}{' ' + self.name if self.name else ''}>"


class Frame:
    """Where new nodes go: the top level (``ROOT``), or a cond/while branch being traced.

    A branch may use values from outside it; each such value becomes an ``arg`` of the branch
    (its ``captures``), so a subgraph never points outside itself.
    """

    def __init__(self, parent=None, label="root"):
        self.parent = parent
        self.label = label
        self.args = []          # the branch's own arg nodes, in order
        self.captures = {}      # id(outer node) -> (outer node, arg node)

    def is_inside(self, other) -> bool:
        f = self
        while f is not None:
            if f is other:
                return True
            f = f.parent
        return False

    def new_arg(self, aval, device, name=None, requires_grad=False):
        node = Node("arg", aval=aval, device=device, name=name, frame=self, requires_grad=requires_grad)
        self.args.append(node)
        return node

    def capture(self, node):
        """``node`` (from this frame or an enclosing one) as a node of this frame."""
        if node.frame is self:
            return node
        if self.parent is None or not self.is_inside(node.frame):
            raise TraceError(
                f"a value computed inside a {node.frame.label} was used outside it "
                f"({node.op_name} {_fmt_aval(node.aval)}{format_location(node.location)}).\n"
                f"  Return it from the branch or loop body instead.")
        hit = self.captures.get(node.id)
        if hit is not None:
            return hit[1]
        outer = self.parent.capture(node)
        arg = Node("arg", aval=outer.aval, device=outer.device, name=outer.name, frame=self,
                   requires_grad=outer.requires_grad)
        self.captures[node.id] = (node, arg)
        return arg


ROOT = Frame()
_frames = [ROOT]


def current_frame() -> Frame:
    return _frames[-1]


class frame_scope:
    """``with frame_scope(frame):`` new nodes go into ``frame`` (a branch being traced)."""

    def __init__(self, frame):
        self.frame = frame

    def __enter__(self):
        _frames.append(self.frame)
        return self.frame

    def __exit__(self, *exc):
        _frames.pop()
        return False


# ---------------------------------------------------------------- from values to nodes

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


def aval_of(x):
    return x.aval if isinstance(x, Node) else x


def make_node(op, inputs, attrs, location=None):
    """Apply ``op`` symbolically: check shapes and dtypes with its ``infer`` rule, make a node.

    Errors are raised here, while the graph is built, naming the op and the user's line.
    """
    nodes = [to_input(x) for x in inputs]
    where = location if location is not None else user_location()
    devices = {n.device for n in nodes if isinstance(n, Node)}
    if len(devices) > 1 and op.name != "to_device":
        listed = ", ".join(f"{_fmt_aval(n.aval)} on {n.device}" for n in nodes if isinstance(n, Node))
        raise DeviceError(f"{op.name}: inputs are on different devices ({listed})."
                          f"{format_location(where)}\n  Move one of them first with .to(device): "
                          f"in a graph the transfer is an explicit to_device node.")
    try:
        aval = op.infer(*[aval_of(n) for n in nodes], **attrs)
    except (ShapeError, DTypeError) as e:
        raise type(e)(f"{e}{format_location(where)}") from None
    except LabgradError:
        raise
    except Exception as e:
        shapes = ", ".join(_fmt_aval(aval_of(n)) if isinstance(n, Node) else repr(n) for n in nodes)
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
        from ..ops.device import to_device
        return self if dev == self.device else to_device(self, device=str(dev))

    def clone(self):
        return Symbol(self.node)   # a new handle: in-place changes to it leave this one alone

    # ---- in place: rebinds this handle to a new value (every holder of it sees the change)
    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        from ..ops.shape import full_like
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
            f"{what} of a graph symbol ({_fmt_aval(self.aval)}, from {self.node.op_name}): its "
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
        raise TraceError(f"item assignment into a graph symbol is not supported"
                         f"{format_location(user_location())}\n  Build the new value instead, "
                         f"e.g. with lg.where(mask, value, x).")

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Inside ``lg.jit``: symbolic gradients, delivered to ``.grad`` as eager code would."""
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
        return f"Symbol({_fmt_aval(node.aval)} = {node.op_name}{name}{where})"

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
            from ..creation import tensor
            value = tensor(value, dtype=dtype, device=device)
        super().__init__(Node("variable", aval=Aval(value.shape, value.dtype), device=value.device,
                              name=name or value.name, location=user_location(), value=value,
                              frame=ROOT, requires_grad=value.dtype.kind in "fc"))

    @property
    def value(self):
        """The live Tensor: what the graph reads at the start of a run and assigns write into."""
        return self.node.value


# ---------------------------------------------------------------- Graph

class Graph:
    """The nodes that ``outputs`` need, in topological order, with the placeholders fed.

    ``inputs`` are the placeholder (or, in a subgraph, ``arg``) nodes, in feeding order.
    Every ``assign`` node in ``nodes`` is a state update that running the graph performs.
    """

    def __init__(self, nodes, inputs, outputs, name="graph"):
        self.nodes = list(nodes)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.name = name

    @classmethod
    def from_outputs(cls, outputs, inputs=None, extra_roots=(), name="graph"):
        """Walk back from ``outputs`` (and ``extra_roots``) to collect every node they need."""
        nodes = collect(list(outputs) + list(extra_roots))
        if inputs is None:
            inputs = [n for n in nodes if n.op in ("placeholder", "arg")]
        return cls(nodes, inputs, outputs, name)

    def index(self, node) -> int:
        """The node's number in this graph (``%3`` in the text form)."""
        return self._numbers()[node.id]

    def _numbers(self):
        numbers = {n.id: i for i, n in enumerate(self.inputs)}
        for n in self.nodes:
            if n.id not in numbers:
                numbers[n.id] = len(numbers)
        return numbers

    @property
    def variables(self):
        return [n for n in self.nodes if n.op == "variable"]

    @property
    def assigns(self):
        return [n for n in self.nodes if n.op == "assign"]

    @property
    def constants(self):
        return [n for n in self.nodes if n.op == "constant"]

    @property
    def placeholders(self):
        return [n for n in self.nodes if n.op == "placeholder"]

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __str__(self):
        return "\n".join(format_graph(self))

    def __repr__(self):
        return f"<Graph {self.name}: {len(self.nodes)} nodes, {len(self.inputs)} inputs, {len(self.outputs)} outputs>"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def collect(roots):
    """Every node reachable from ``roots`` through inputs, sorted by creation (a valid
    topological order: a node is always created after its inputs). Iterative, not recursive."""
    seen = {}
    stack = [r for r in roots if isinstance(r, Node)]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen[node.id] = node
        stack.extend(x for x in node.inputs if isinstance(x, Node) and x.id not in seen)
    return [seen[i] for i in sorted(seen)]


# ---------------------------------------------------------------- text form

def _fmt_aval(aval):
    if isinstance(aval, tuple):
        return "(" + ", ".join(_fmt_aval(a) for a in aval) + ")"
    if aval is None:
        return "?"
    return f"{aval.dtype.name}[{','.join('?' if d is None else str(d) for d in aval.shape)}]"


def _fmt_attr(value):
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, tuple):
        inner = ", ".join(_fmt_attr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, slice):
        parts = ["" if v is None else str(v) for v in (value.start, value.stop, value.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if value.step is not None else "")
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = value.get() if hasattr(value, "get") else np.asarray(value)
        return np.array2string(arr, separator=",") if arr.size <= 6 else f"<{arr.dtype.name}{list(arr.shape)}>"
    return repr(value)


def _fmt_value(array):
    arr = array.get() if hasattr(array, "get") else np.asarray(array)
    if arr.size <= 4:
        return np.array2string(arr, separator=", ", precision=4).replace("\n", "")
    return f"<{arr.dtype.name}{list(arr.shape)}>"


def format_graph(graph, indent="", header=None):
    """The lines of a graph's text form (see the module docstring)."""
    numbers = graph._numbers()

    def ref(x):
        return f"%{numbers[x.id]}" if isinstance(x, Node) else repr(x)

    head = ", ".join(f"%{numbers[n.id]}:{_fmt_aval(n.aval)}" + (f" {n.name}" if n.name else "")
                     for n in graph.inputs)
    lines = [(f"{indent}{header or graph.name}({head}):", "")]
    for node in graph.nodes:
        if node.op in ("placeholder", "arg") and node.id in numbers and node in graph.inputs:
            continue
        lhs = f"{indent}  %{numbers[node.id]}:{_fmt_aval(node.aval)} = "
        kind = node.op_name
        if node.op == "constant":
            rhs = f"constant {node.name + ' ' if node.name else ''}{_fmt_value(node.value)}"
        elif node.op == "variable":
            slot = ".grad" if node.attrs.get("slot") == "grad" else ""
            rhs = f"variable {node.name or ''}{slot}".rstrip()
        elif node.op == "placeholder":
            rhs = f"placeholder {node.name or ''}".rstrip()
        elif node.op == "get":
            rhs = f"get {ref(node.inputs[0])}[{node.attrs['index']}]"
        else:
            rhs = f"{kind} " + ", ".join(ref(x) for x in node.inputs)
            shown = {k: v for k, v in node.attrs.items() if k not in ("weak",)}
            if shown and node.op not in ("cond", "while"):
                rhs += " {" + ", ".join(f"{k}={_fmt_attr(v)}" for k, v in shown.items()) + "}"
            elif node.op == "while" and shown.get("max_iterations") is not None:
                rhs += f" {{max_iterations={shown['max_iterations']}}}"
        lines.append((lhs + rhs, node.source_location))
        for label, sub in (node.subgraphs or {}).items():
            lines.extend((text, "") for text in format_graph(sub, indent + "    ", header=label))
    outs = ", ".join(ref(o) for o in graph.outputs)
    lines.append((f"{indent}  return {outs}".rstrip(), ""))
    width = min(max(len(text) for text, where in lines if where) if any(w for _, w in lines) else 0, 60)
    return [f"{text.ljust(width)}   # {where}" if where else text for text, where in lines]
