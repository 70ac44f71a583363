"""The op format: each operation is defined once, as data plus a few rules.

An op is declared with ``@defop`` on a small namespace class::

    @defop("elementwise", expr="({0} * {1})")
    class mul:
        def forward(xp, a, b):          # compute with numpy or cupy arrays
            return xp.multiply(a, b)
        def backward(ctx, g):           # written with labgrad ops, so it is differentiable
            a, b = ctx.inputs
            return g * b, g * a

Rules an op may define (all plain functions, no ``self``):

``forward(xp, *arrays, **attrs)``
    The computation, with the backend's array module ``xp``. Python scalars arrive as scalars.
``infer(*avals, **attrs) -> Aval``
    Output shape and dtype from input avals, without computing anything. Elementwise,
    reduce and other families have defaults. Used by static graphs and error messages.
``backward(ctx, g) -> tuple``
    One gradient per input (``None`` where there is none), written with labgrad ops. ``ctx``
    follows the ``Ctx`` protocol below. Gradients may have the broadcast shape; the
    interpreters reduce them to each input's shape with ``sum_to``.
``cost(*avals, **attrs) -> dict``
    Estimated ``flops`` and ``bytes`` moved, for the profiler and pass reports.
``expr`` (elementwise only)
    A template for fused kernels: ``{0}``, ``{1}`` are the inputs, ``{alpha}`` an attribute.
    It uses infix ``+ - * /``, comparisons, and the functions ``exp log sqrt abs sin cos tanh
    max min where pow logical_and logical_or logical_not`` only, so each code generator (Numba, CUDA) can translate it.

Facts every interpreter reads are declared here too, never kept in lists elsewhere:

``array_backward=True``
    The backward rule may run on raw backend arrays (see ``autograd.py``, "array mode"): it
    uses only operators and op calls, never tensor methods such as ``.exp()``. Without it,
    the rule always runs on tensors. Every built-in op declares it; an op you define runs its
    rule on tensors, exactly once per node, unless you opt in.
``view=True``
    The output may share memory with input 0 (reshape, transpose, slicing): code generation
    copies such a value before writing state it may alias.
``commutative=True``
    ``op(a, b) == op(b, a)``: drawings need not number the inputs (and passes may reorder).
``output_device``
    ``output_device(attrs) -> device`` for an op whose result lives elsewhere than its
    inputs (a transfer); by default the output is on the inputs' device.
``ufunc``
    The name of the NumPy/CuPy ufunc that computes this elementwise op, so an in-place
    update (``p -= lr * g``) can write straight into the tensor's memory with ``out=``.
``writes_input``
    The op writes into the memory of this input and returns it (``assign``): an effect.
``effects``
    What running the op does besides computing its result, a subset of ``"reads_state"``
    (reads a variable), ``"writes_state"`` (an update), ``"random"`` (draws from a generator)
    and ``"reads_input"`` (a value fed at run time). An op with none is *pure*: graph passes
    may remove it when unused, merge two identical applications and fold it on constants.
    They ask ``op.pure`` and ``op.writes_state`` instead of special-casing names.

The ops that only static graphs have (placeholder, constant, variable, cond, while, get, arg,
stop_gradient; see ``graph_ops.py``) live in ``GRAPH_OPS``, next to ``REGISTRY``;
``get_op`` finds both.

Calling an op applies it: ``mul(x, y)`` is ``apply(mul, x, y)``, on eager tensors or graph
symbols alike.
"""
from __future__ import annotations

import math
from functools import lru_cache
from numbers import Number

import numpy as np

from ..dispatch import apply
from ..errors import DTypeError, ShapeError

REGISTRY: dict[str, "Op"] = {}
GRAPH_OPS: dict[str, "Op"] = {}   # graph-only ops (graph_ops.py): not eager, not in REGISTRY
EFFECTS = frozenset({"reads_state", "writes_state", "random", "reads_input"})


class Ctx:
    """What a backward rule receives: the one protocol every interpreter implements.

    ``backward(ctx, g)`` reads, and only reads:

    ``ctx.inputs``
        The op's inputs as they were when the op ran: tensors (eager), symbols (graphs), or
        raw arrays (array mode), and Python numbers as they were passed.
    ``ctx.attrs``
        The op's attributes (``axis=``, ``shape=``, ...), a dict.
    ``ctx.output``
        The op's output, for ops defined with ``saves_output=True`` (``exp``, ``tanh``).
    ``ctx.needs_input_grad``
        A tuple of bools, one per input: does that input want a gradient? A rule may skip
        work for the ones that do not.

    The eager tape node (``tape.TapeNode``), the raw-array context (``autograd.ArrayCtx``)
    and the graph context (``graph.autodiff.SymbolicContext``) all implement it.
    """

    __slots__ = ()

    @property
    def inputs(self):
        raise NotImplementedError

    @property
    def attrs(self):
        raise NotImplementedError

    @property
    def output(self):
        raise NotImplementedError

    @property
    def needs_input_grad(self):
        raise NotImplementedError


class Aval:
    """An abstract value: what is known about an array before it exists.

    ``shape`` is a tuple of ints, with ``None`` for a size known only at run time. ``device``
    is where the value lives (graph nodes always say; an op's ``infer`` rule need not, and
    ``None`` matches any device when avals are compared).
    """

    __slots__ = ("shape", "dtype", "device")

    def __init__(self, shape, dtype, device=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.device = device

    @property
    def ndim(self):
        return len(self.shape)

    def on(self, device):
        """This aval on ``device``."""
        return self if device == self.device else Aval(self.shape, self.dtype, device)

    def __eq__(self, other):
        return (isinstance(other, Aval) and self.shape == other.shape and self.dtype == other.dtype
                and (self.device is None or other.device is None or self.device == other.device))

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype.name}[{dims}]"


def aval_of(x):
    """The aval of a tensor, symbol or array; Python numbers stay numbers (weakly typed)."""
    if isinstance(x, Number):
        return x
    if isinstance(x, Aval):
        return x
    return Aval(x.shape, x.dtype)


def fmt_shape(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class Op:
    """One operation: its rules, and the metadata every interpreter reads."""

    kind = "op"   # what a graph node applying it says it is (graph-only ops: their name)

    def __init__(self, name, family, forward, infer, backward=None, cost=None, expr=None,
                 differentiable=True, saves_output=False, doc=None, array_backward=False,
                 view=False, commutative=False, output_device=None, ufunc=None,
                 writes_input=None, effects=()):
        unknown = set(effects) - EFFECTS
        if unknown:
            raise ValueError(f"op {name!r}: unknown effect(s) {sorted(unknown)}; known: {sorted(EFFECTS)}")
        self.name = name
        self.family = family
        self.forward = forward
        self.infer = infer
        self.backward = backward
        self.cost = cost
        self.expr = expr
        self.differentiable = differentiable and backward is not None
        self.saves_output = saves_output
        self.array_backward = array_backward
        self.view = view
        self.commutative = commutative
        self.output_device = output_device
        self.ufunc = ufunc
        self.writes_input = writes_input
        self.effects = frozenset(effects)
        self.__doc__ = doc

    @property
    def pure(self) -> bool:
        """No effects: the result depends only on the inputs and attributes."""
        return not self.effects

    @property
    def reads_state(self) -> bool:
        return "reads_state" in self.effects

    @property
    def writes_state(self) -> bool:
        return "writes_state" in self.effects

    @property
    def random(self) -> bool:
        return "random" in self.effects

    def __call__(self, *inputs, **attrs):
        return apply(self, *inputs, **attrs)

    def __repr__(self):
        return f"<op {self.name}>"

    def __reduce__(self):  # ops pickle (and copy) by name: there is one of each
        if GRAPH_OPS.get(self.name) is self:
            return (_graph_op_named, (self.name,))
        return (get_op, (self.name,))


def _graph_op_named(name):
    return GRAPH_OPS[name]


def get_op(name: str) -> Op:
    op = REGISTRY.get(name) or GRAPH_OPS.get(name)   # "assign": the eager op
    if op is None:
        raise KeyError(f"no op named {name!r}; known ops: {', '.join(sorted(REGISTRY))}")
    return op


# ---------------------------------------------------------------- default rules per family

def broadcast_shapes(opname, *shapes):
    """NumPy broadcasting over shapes that may contain ``None`` (unknown sizes)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        dim = 1
        for s in shapes:
            d = s[i] if -i <= len(s) else 1
            if d == 1:
                continue
            if dim == 1:
                dim = d
            elif d is None or dim is None:
                dim = d if dim is None else dim
            elif d != dim:
                listed = " and ".join(fmt_shape(s) for s in shapes)
                raise ShapeError(
                    f"{opname}: cannot broadcast shapes {listed}: at axis {i} the sizes are "
                    f"{dim} and {d}.\n  Broadcasting lines shapes up from the right; each pair of "
                    f"sizes must be equal or one of them 1. Reshape one operand (e.g. x[:, None] "
                    f"or x.reshape(...)) so the axes you mean to match line up.")
        out.append(dim)
    return tuple(out)


@lru_cache(maxsize=4096)
def _probe_dtype(forward, dtypes, attrs):
    """The result dtype of an elementwise ``forward``, found by running it on 0-d arrays."""
    args = [d if isinstance(d, (int, float, bool)) else np.ones((), d) for d in dtypes]
    with np.errstate(all="ignore"):
        return np.asarray(forward(np, *args, **dict(attrs))).dtype


def elementwise_infer(op):
    def infer(*avals, **attrs):
        shapes = [a.shape for a in avals if isinstance(a, Aval)]
        shape = broadcast_shapes(op.name, *shapes)
        dtypes = tuple(a.dtype if isinstance(a, Aval) else a for a in avals)
        try:
            dtype = _probe_dtype(op.forward, dtypes, tuple(sorted(attrs.items())))
        except TypeError as e:
            raise DTypeError(f"{op.name}: cannot apply to dtypes "
                             f"{', '.join(str(d) for d in dtypes)} ({e})") from None
        return Aval(shape, dtype)
    return infer


def numel(shape) -> int:
    return math.prod(1 if d is None else d for d in shape)


def nbytes(aval) -> int:
    return numel(aval.shape) * aval.dtype.itemsize if isinstance(aval, Aval) else 0


def elementwise_cost(op, flops_per_element):
    def cost(*avals, **attrs):
        out = op.infer(*avals, **attrs)
        n = numel(out.shape)
        return {"flops": n * flops_per_element,
                "bytes": sum(nbytes(a) for a in avals) + nbytes(out)}
    return cost


def memory_cost(op):
    """Cost of an op that only moves data: no flops, bytes in + bytes out."""
    def cost(*avals, **attrs):
        out = op.infer(*avals, **attrs)
        return {"flops": 0, "bytes": sum(nbytes(a) for a in avals) + nbytes(out)}
    return cost


def reduce_cost(op):
    def cost(*avals, **attrs):
        out = op.infer(*avals, **attrs)
        return {"flops": numel(avals[0].shape), "bytes": nbytes(avals[0]) + nbytes(out)}
    return cost


# ---------------------------------------------------------------- the decorator

def defop(family, *, expr=None, differentiable=True, saves_output=False, flops=1, name=None,
          array_backward=False, view=False, commutative=False, output_device=None, ufunc=None,
          writes_input=None, effects=()):
    """Turn a namespace class of rules into a registered ``Op`` (see the module docstring)."""

    def wrap(ns):
        rules = ns.__dict__
        opname = name or ns.__name__.rstrip("_")
        if opname in REGISTRY:
            raise ValueError(f"op {opname!r} is defined twice")
        op = Op(opname, family, forward=rules["forward"], infer=rules.get("infer"),
                backward=rules.get("backward"), cost=rules.get("cost"), expr=expr,
                differentiable=differentiable, saves_output=saves_output, doc=ns.__doc__,
                array_backward=array_backward, view=view, commutative=commutative,
                output_device=output_device, ufunc=ufunc, writes_input=writes_input,
                effects=effects)
        if op.infer is None:
            if family in ("elementwise", "compare"):
                op.infer = elementwise_infer(op)
            else:
                raise TypeError(f"op {opname!r} ({family}) needs an infer rule")
        if op.cost is None:
            if family in ("elementwise", "compare"):
                op.cost = elementwise_cost(op, flops)
            elif family == "reduce":
                op.cost = reduce_cost(op)
            else:
                op.cost = memory_cost(op)
        REGISTRY[opname] = op
        return op

    return wrap

