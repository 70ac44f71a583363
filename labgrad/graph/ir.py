"""The static graph's data structures: ``Node``, ``Frame`` and ``Graph``.

A ``Node`` is one value in a program: an op applied to input nodes, or a source of values
(placeholder, constant, variable). A ``Graph`` is the list of nodes some outputs need, in
topological order, with the nodes fed as inputs; ``print(graph)`` shows its text form
(``text.py``). Users do not handle nodes directly but ``Symbol``s (``symbol.py``), whose
operators build nodes.

Node kinds other than ``"op"``: ``placeholder`` (fed at run time), ``constant``, ``variable``
(persistent state, read live from a Tensor), ``assign`` (a state update), ``cond`` and ``while``
(with subgraphs), ``get`` (one output of a cond/while), ``arg`` (an input of a subgraph) and
``stop_gradient``.

A ``Frame`` says where a node lives: at the top level (``ROOT``) or inside a cond branch or
while body being traced (``frame_scope`` enters one; ``current_frame`` is where new nodes go).
"""
from __future__ import annotations

import itertools

from ..context import context
from ..backends import CPU
from ..errors import TraceError, format_location, short_location
from ..ops.registry import Op
from .text import fmt_aval, format_graph

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
        return f"<Node {self.op_name} {fmt_aval(self.aval)}{' ' + self.name if self.name else ''}>"


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
                f"({node.op_name} {fmt_aval(node.aval)}{format_location(node.location)}).\n"
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
