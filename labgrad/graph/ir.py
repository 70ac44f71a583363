"""The static graph's data structures: ``Node``, ``Frame`` and ``Graph``.

A ``Node`` is one value in a program: an op applied to input nodes. Every node applies a
registered ``Op``: the eager ops (``add``, ``matmul``, ...) and the graph-only ones of
``ops/graph_ops.py`` (``placeholder``, ``constant``, ``variable``, ``assign``, ``cond``,
``while``, ``get``, ``arg``, ``stop_gradient``). Each op declares its effects, so a pass asks
``node.op.pure`` or ``node.op.writes_state`` instead of listing kinds. ``node.kind`` is
``"op"`` for an eager op and the graph op's name otherwise.

There are two lives of a node. While a program is being built, ``Symbol``s, the tracer and
control flow make *builder* nodes (numbered in creation order, so sorting by number is a
topological order). Making a ``Graph`` converts them: the graph owns fresh, immutable nodes
numbered ``0, 1, 2, ...`` in its own topological order (the fed inputs first), so the text
form, reports and drawings are the same on every run. Graph passes (``passes/``) never change
a graph: they build new nodes and make a new graph (``rewrite``, ``Graph.make``).

A ``Frame`` says where a builder node lives: at the top level (``ROOT``) or inside a cond
branch or while body being traced (``frame_scope`` enters one; ``current_frame`` is where new
nodes go).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..context import context
from ..backends import CPU
from ..errors import LabgradError, TraceError, format_location, short_location
from ..ops.graph_ops import graph_op
from ..ops.registry import Aval, Op
from .text import fmt_aval, format_graph

_ids = itertools.count()
SOURCE_KINDS = ("placeholder", "constant", "variable")


# ---------------------------------------------------------------- hashable attributes

def attr_key(value):
    """A hashable stand-in for an attribute value that compares by value: arrays (index
    arrays) by dtype, shape and contents, slices by their parts, lists as tuples."""
    if isinstance(value, (bool, int, float, str, type(None), np.dtype, np.generic)):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(attr_key(v) for v in value))
    if isinstance(value, slice):
        return ("slice", attr_key(value.start), attr_key(value.stop), attr_key(value.step))
    if value is Ellipsis:
        return ("...",)
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, attr_key(v)) for k, v in value.items())))
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = value.get() if hasattr(value, "get") else np.asarray(value)
        return ("array", arr.dtype.str, arr.shape, arr.tobytes())
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return (type(value).__name__, value)


class Attrs(dict):
    """A node's attributes: a read-only dict that is hashable and compares by value (index
    arrays included), so a pass can key on ``(op, inputs, attrs)``."""

    __slots__ = ("_key",)

    def _readonly(self, *args, **kwargs):
        raise TypeError("a graph node's attributes cannot change; build a new node instead")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly

    @property
    def key(self):
        try:
            return self._key
        except AttributeError:
            k = tuple(sorted((name, attr_key(v)) for name, v in self.items()))
            object.__setattr__(self, "_key", k)
            return k

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        if isinstance(other, Attrs):
            return self.key == other.key
        return dict.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    def __reduce__(self):
        return (Attrs, (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


_EMPTY = Attrs()


# ---------------------------------------------------------------- Node

class Node:
    """One value of a static program.

    ``op`` is a registered ``Op`` (a string names a graph op: ``Node("variable", ...)``).
    ``inputs`` holds input ``Node``s and literal Python numbers. ``aval`` is the abstract value
    (shape with ``None`` for unknown sizes, dtype, device); cond and while nodes, which have
    several outputs, have a tuple of avals. ``location`` is ``(file, line, text)`` of the
    user's line that created the node. ``value`` is the array of a constant or the Tensor a
    variable reads. ``subgraphs`` maps names (``"true"``, ``"body"``, ...) to ``Graph``s.

    A node of a ``Graph`` is immutable, and its ``id`` is its number in that graph; its
    ``origin`` is the id of the builder node it was made from (kept through passes that
    rewrite it), so ``graph.node_of(symbol)`` finds it.
    """

    __slots__ = ("id", "op", "inputs", "attrs", "aval", "device", "name", "location", "value",
                 "subgraphs", "frame", "stop_gradient", "requires_grad", "scope", "origin",
                 "__weakref__")

    def __init__(self, op, inputs=(), attrs=None, aval=None, device=None, name=None,
                 location=None, value=None, subgraphs=None, frame=None, stop_gradient=False,
                 requires_grad=False):
        self.id = next(_ids)
        self.op = graph_op(op) if isinstance(op, str) else op
        self.inputs = tuple(inputs)
        self.attrs = attrs if attrs is not None else {}
        self.device = device if device is not None else CPU.device
        self.aval = _with_device(aval, self.device)
        self.name = name
        self.location = location
        self.value = value
        self.subgraphs = subgraphs
        self.frame = frame if frame is not None else ROOT
        self.stop_gradient = stop_gradient
        self.requires_grad = requires_grad
        self.scope = context.scope
        self.origin = None

    @property
    def kind(self) -> str:
        """``"op"`` for an eager op, otherwise the graph op's name (``"variable"``, ...)."""
        return self.op.kind

    @property
    def op_name(self) -> str:
        return self.op.name

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
        return self.op.kind == "variable"

    @property
    def is_assign(self):
        return self.op.kind == "assign"

    @property
    def target(self):
        """For an assign: the variable node it writes."""
        return self.inputs[0] if self.op.kind == "assign" else None

    @property
    def tensor(self):
        """The live Tensor a variable node reads and writes (``None`` if it is gone)."""
        if self.op.kind != "variable":
            return None
        v = self.value
        return v() if self.attrs.get("weak") else v

    @property
    def source_location(self) -> str:
        """``"model.py:12"`` (``"cell:3"`` in a notebook), or ``""`` when unknown."""
        return short_location(self.location)

    def replace(self, **changes):
        """A new (builder) node like this one with some fields changed, e.g. ``inputs=``.
        Fields: op, inputs, attrs, aval, device, name, location, value, subgraphs,
        stop_gradient, requires_grad."""
        node = Node.__new__(Node)
        for field in Node.__slots__[1:-1]:
            object.__setattr__(node, field, changes.pop(field, getattr(self, field)))
        if changes:
            raise TypeError(f"Node.replace: unknown field(s) {sorted(changes)}")
        node.id = next(_ids)
        if isinstance(node.op, str):
            node.op = graph_op(node.op)
        node.inputs = tuple(node.inputs)
        node.aval = _with_device(node.aval, node.device)
        return node

    def __repr__(self):
        return f"<Node {self.op_name} {fmt_aval(self.aval)}{' ' + self.name if self.name else ''}>"


def _with_device(aval, device):
    if isinstance(aval, Aval):
        return aval.on(device)
    if isinstance(aval, tuple):
        return tuple(a.on(device) if isinstance(a, Aval) and a.device is None else a for a in aval)
    return aval


class GraphNode(Node):
    """A node owned by a ``Graph``: immutable; ``id`` is its number in the graph."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"graph nodes are immutable (setting {name!r}): a pass builds new "
                             f"nodes and a new graph instead")


_FIELDS = Node.__slots__[1:-1]   # every field but id and __weakref__


def _frozen(node, number, inputs):
    new = GraphNode.__new__(GraphNode)
    put = object.__setattr__
    put(new, "id", number)
    for field in _FIELDS:
        put(new, field, getattr(node, field))
    put(new, "inputs", inputs)
    if node.origin is None:
        put(new, "origin", node.id)
    attrs = node.attrs
    put(new, "attrs", attrs if isinstance(attrs, Attrs) else (Attrs(attrs) if attrs else _EMPTY))
    return new


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
def current_frame() -> Frame:
    """Where new nodes go now: ``context.frame`` (a cond/while branch being traced) or ``ROOT``."""
    frame = context.frame
    return ROOT if frame is None else frame


class frame_scope:
    """``with frame_scope(frame):`` new nodes go into ``frame`` (a branch being traced)."""

    def __init__(self, frame):
        self.frame = frame

    def __enter__(self):
        self.outer, context.frame = context.frame, self.frame
        return self.frame

    def __exit__(self, *exc):
        context.frame = self.outer
        return False


# ---------------------------------------------------------------- Graph

class Graph:
    """A program: its nodes in topological order, the inputs it is fed, the outputs it returns.

    ``Graph(nodes, inputs, outputs)`` takes nodes in a topological order (builder nodes, or
    nodes of another graph, or both) and makes its own immutable copies, numbered ``0, 1, ...``:
    first ``inputs`` (placeholders, or ``arg``s in a subgraph) in feeding order, then the
    others in the order given. So ``graph.nodes[i].id == i`` and ``%i`` in the text form is
    node ``i``. Every ``assign`` node in ``nodes`` is a state update that running the graph
    performs.
    """

    def __init__(self, nodes, inputs, outputs, name="graph"):
        self._init(nodes, inputs, outputs, name)

    @classmethod
    def make(cls, nodes, inputs, outputs, name="graph"):
        """``(graph, converted)``: the graph, and a dict from ``id(given node)`` to its node in
        the graph, so that a pass can say which node became which."""
        graph = cls.__new__(cls)
        converted = graph._init(nodes, inputs, outputs, name)
        return graph, converted

    def _init(self, nodes, inputs, outputs, name):
        inputs = list(inputs)
        given = {id(n) for n in inputs}
        order = inputs + [n for n in nodes if id(n) not in given]
        converted = {}
        new_nodes = []
        for number, node in enumerate(order):
            if id(node) in converted:
                raise LabgradError(f"internal: node {node!r} is listed twice in a graph")
            ins = []
            for x in node.inputs:
                if isinstance(x, Node):
                    hit = converted.get(id(x))
                    if hit is None:
                        raise LabgradError(
                            f"internal: {node.op_name} node uses a {x.op_name} node that is not "
                            f"listed before it in the graph{format_location(node.location)}")
                    ins.append(hit)
                else:
                    ins.append(x)
            new = _frozen(node, number, tuple(ins))
            converted[id(node)] = new
            new_nodes.append(new)
        self.nodes = new_nodes
        self.inputs = new_nodes[:len(inputs)]
        try:
            self.outputs = [converted[id(o)] if isinstance(o, Node) else o for o in outputs]
        except KeyError:
            raise LabgradError("internal: a graph output is not one of its nodes") from None
        self.name = name
        return converted

    @classmethod
    def from_outputs(cls, outputs, inputs=None, extra_roots=(), name="graph"):
        """Walk back from ``outputs`` (and ``extra_roots``) to collect every node they need."""
        nodes = collect(list(outputs) + list(extra_roots))
        if inputs is None:
            inputs = [n for n in nodes if n.kind in ("placeholder", "arg")]
        return cls(nodes, inputs, outputs, name)

    def index(self, node) -> int:
        """The node's number in this graph (``%3`` in the text form); ``node`` may also be
        the builder node (or Symbol) it was made from."""
        return self.node_of(node).id

    def node_of(self, node):
        """This graph's node for ``node``: one of its nodes, or the builder node (or Symbol)
        it was made from. ``KeyError`` if a pass removed or merged it."""
        node = getattr(node, "node", node)
        if isinstance(node, GraphNode) and node.id < len(self.nodes) and self.nodes[node.id] is node:
            return node
        want = node.origin if isinstance(node, GraphNode) else node.id
        for n in self.nodes:
            if n.origin == want:
                return n
        raise KeyError(f"{node!r} is not in this graph (a pass may have removed or merged it)")

    def _numbers(self):
        return {n.id: n.id for n in self.nodes}

    # ---- looking around
    @property
    def variables(self):
        return [n for n in self.nodes if n.kind == "variable"]

    @property
    def assigns(self):
        return [n for n in self.nodes if n.kind == "assign"]

    @property
    def constants(self):
        return [n for n in self.nodes if n.kind == "constant"]

    @property
    def placeholders(self):
        return [n for n in self.nodes if n.kind == "placeholder"]

    def users(self, node=None):
        """The nodes that use ``node`` as an input (in order); without ``node``, a dict from
        every node's id to its users. Outputs are not users; see ``graph.outputs``."""
        table = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            seen = set()
            for x in n.inputs:
                if isinstance(x, Node) and x.id not in seen:
                    seen.add(x.id)
                    table[x.id].append(n)
        return table if node is None else table[node.id]

    def copy(self, name=None):
        """The same program as a new graph (new nodes, same numbers)."""
        return Graph(self.nodes, self.inputs, self.outputs, name or self.name)

    def map(self, fn, name=None):
        """A new graph with every node replaced by ``fn(node, inputs)`` (see ``rewrite``)."""
        return rewrite(self, fn, name=name)[0]

    def replace_all_uses(self, old, new, name=None):
        """A new graph in which every use of node ``old`` (inputs and outputs) is ``new``
        (a node of this graph, listed before each user, or a literal number)."""
        return rewrite(self, lambda n, ins: new if n is old else None, name=name)[0]

    def verify(self):
        """Check the invariants every pass must keep; raise ``LabgradError`` naming the broken
        one, else return the graph: nodes numbered in order, inputs first, every input of a
        node listed before it, outputs in the graph, avals as each op's ``infer`` rule says,
        subgraphs likewise."""
        _verify(self)
        return self

    def cost(self):
        """Estimated ``{"flops", "bytes"}`` of one run, from each op's ``cost`` rule."""
        return graph_cost(self)

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
    """Every node reachable from ``roots`` through inputs, in topological order. Builder nodes
    sort by creation (a node is always created after its inputs); when graph nodes are among
    them, a depth-first walk gives the order. Iterative, not recursive."""
    seen = {}
    stack = [r for r in roots if isinstance(r, Node)]
    frozen = False
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        frozen = frozen or isinstance(node, GraphNode)
        stack.extend(x for x in node.inputs if isinstance(x, Node) and id(x) not in seen)
    if not frozen:
        return sorted(seen.values(), key=lambda n: n.id)
    return _postorder([r for r in roots if isinstance(r, Node)])


def _postorder(roots, done=None):
    """Nodes reachable from ``roots`` and not in ``done`` (ids), inputs before users."""
    order, stack = [], [(r, False) for r in reversed(roots)]
    done = set() if done is None else done
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for x in reversed(node.inputs):
            if isinstance(x, Node) and id(x) not in done:
                stack.append((x, False))
    return order


# ---------------------------------------------------------------- rewriting

def rewrite(graph, fn, name=None):
    """The rewriting loop passes use: ``(new graph, env, converted)``.

    ``fn(node, inputs)`` is called for each node in order, with the node's inputs already
    rewritten, and returns what the node becomes: ``None`` (keep it, with the new inputs), a
    node (new ones may use other new nodes: they are placed before it) or a literal number.
    Nothing is changed in place. A node that no node or output uses any more is still kept
    (removing it is dead-code elimination's job). ``env`` maps each old node's id to what it
    became; ``converted`` maps ``id()`` of each node placed to its node in the new graph.
    """
    env, order, placed = {}, [], set()
    for node in graph.nodes:
        ins = tuple(env[x.id] if isinstance(x, Node) else x for x in node.inputs)
        out = fn(node, ins)
        if out is None:
            same = all(a is b for a, b in zip(ins, node.inputs))
            out = node if same else node.replace(inputs=ins)
        env[node.id] = out
        if isinstance(out, Node) and id(out) not in placed:
            order.extend(_postorder([out], placed))
    inputs = [env[n.id] for n in graph.inputs]
    outputs = [env[o.id] if isinstance(o, Node) else o for o in graph.outputs]
    new, converted = Graph.make(order, inputs, outputs, name or graph.name)
    return new, env, converted


# ---------------------------------------------------------------- checks and costs

def _verify(graph, where="graph"):
    def fail(msg):
        raise LabgradError(f"graph.verify ({where} {graph.name}): {msg}")

    if graph.nodes[:len(graph.inputs)] != graph.inputs:
        fail("the inputs are not the first nodes")
    listed = set()
    for i, node in enumerate(graph.nodes):
        if not isinstance(node, GraphNode):
            fail(f"node {i} is not a graph node")
        if node.id != i:
            fail(f"node {i} is numbered {node.id}")
        if not isinstance(node.op, Op):
            fail(f"%{i} has no registered op")
        for x in node.inputs:
            if isinstance(x, Node) and id(x) not in listed:
                fail(f"%{i} ({node.op_name}) uses a node that is not listed before it (dangling input)")
        listed.add(id(node))
        _check_aval(node, fail)
        for key, sub in (node.subgraphs or {}).items():
            _verify(sub, f"subgraph {key} of %{i} in")
    for o in graph.outputs:
        if isinstance(o, Node) and id(o) not in listed:
            fail("an output is not a node of the graph")


def _check_aval(node, fail):
    kind, aval = node.kind, node.aval
    avals = aval if isinstance(aval, tuple) else (aval,)
    for a in avals:
        if not isinstance(a, Aval):
            fail(f"%{node.id} ({node.op_name}) has no aval")
        # (a node with several outputs, a while loop carrying a CPU counter and a GPU tensor,
        # may have them on different devices: each ``get`` says where its output lives)
        if a.device is not None and a.device != node.device and not isinstance(aval, tuple):
            fail(f"%{node.id} ({node.op_name}) says it is on {node.device} but its aval on {a.device}")
    if kind == "op":
        try:
            want = node.op.infer(*[input_aval(x) for x in node.inputs], **node.attrs)
        except Exception as e:   # noqa: BLE001
            fail(f"%{node.id} ({node.op_name}): its infer rule rejects its inputs: {e}")
        if want.shape != aval.shape or want.dtype != aval.dtype:
            fail(f"%{node.id} ({node.op_name}) is {fmt_aval(aval)} but its inputs give {fmt_aval(want)}")
    elif kind == "get":
        src = node.inputs[0]
        want = src.aval[node.attrs["index"]]
        if (want.shape, want.dtype) != (aval.shape, aval.dtype):
            fail(f"%{node.id} (get) is {fmt_aval(aval)} but output {node.attrs['index']} of %{src.id} is {fmt_aval(want)}")
        if want.device is not None and want.device != node.device:
            fail(f"%{node.id} (get) is on {node.device} but output {node.attrs['index']} of %{src.id} is on {want.device}")
    elif kind in ("assign", "stop_gradient"):
        src = node.inputs[0]
        if (src.aval.shape, src.aval.dtype) != (aval.shape, aval.dtype):
            fail(f"%{node.id} ({kind}) is {fmt_aval(aval)} but its input %{src.id} is {fmt_aval(src.aval)}")
    elif kind == "constant":
        v = node.value
        if tuple(v.shape) != aval.shape or v.dtype != aval.dtype:
            fail(f"%{node.id} (constant) is {fmt_aval(aval)} but holds {v.dtype}{list(v.shape)}")


def input_aval(x):
    """What an op's ``infer`` or ``cost`` rule gets for one input: a node's aval, a number as is."""
    return x.aval if isinstance(x, Node) else x


def node_cost(node):
    """``{"flops", "bytes"}`` for one node, from its op's ``cost`` rule (0 when it has none)."""
    cost = node.op.cost
    if cost is None or node.kind in ("cond", "while"):
        total = {"flops": 0, "bytes": 0}
        for sub in (node.subgraphs or {}).values():   # one run of each subgraph: a rough guess
            c = graph_cost(sub)
            total["flops"] += c["flops"]
            total["bytes"] += c["bytes"]
        return total
    try:
        c = cost(*[input_aval(x) for x in node.inputs], **node.attrs)
    except Exception:   # noqa: BLE001  an estimate must never break a pass
        return {"flops": 0, "bytes": 0}
    return {"flops": int(c.get("flops", 0)), "bytes": int(c.get("bytes", 0))}


def graph_cost(graph):
    flops = moved = 0
    for n in graph.nodes:
        c = node_cost(n)
        flops += c["flops"]
        moved += c["bytes"]
    return {"flops": flops, "bytes": moved}
