"""Reading an eager tape: the ops that computed a tensor, and the tensors between them.

A tensor's ``grad_fn`` is a ``TapeNode``; each node knows its op and its inputs (tensors and
Python numbers). ``read_tape`` walks back from a tensor and lists the ops in the order they ran,
and one entry per tensor, so drawers and the stepper share one reading of the graph.

After ``backward()`` (without ``retain_graph``) the tape keeps its structure but frees the
intermediate values: each is then a ``Released`` stand-in, drawn as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import labgrad as lg
from labgrad.autograd import topological_order
from labgrad.tape import TapeNode


@dataclass(eq=False)
class TensorEntry:
    """One box in a drawing. ``kind``: ``param`` (a leaf that requires grad), ``const`` (a leaf
    that does not), ``number`` (a Python number input), ``value`` (an op's result) or
    ``output`` (the tensor being drawn)."""

    kind: str
    value: Any                      # the Tensor, or the Python number
    producer: Any = None            # the TapeNode that computed it (value/output)
    consumers: list = field(default_factory=list)   # OpEntry objects that use it

    @property
    def is_leaf(self):
        return self.kind in ("param", "const", "number")


@dataclass(eq=False)
class OpEntry:
    """One op application: its tape node, input entries (by position) and output entry."""

    node: Any
    inputs: list
    output: TensorEntry
    scope: tuple
    index: int                      # position in forward order


@dataclass
class Tape:
    root: Any                       # the tensor read from
    ops: list                       # OpEntry, in forward order
    tensors: list                   # TensorEntry, in order of first appearance
    by_node: dict                   # TapeNode -> OpEntry


class Released:
    """An intermediate value that ``backward()`` freed: only the op that computed it is known."""

    name = None
    grad = None
    requires_grad = True

    def __init__(self, node):
        self.node = node

    def __repr__(self):
        return f"<released result of {self.node.op.name}>"


def node_inputs(node):
    """The inputs of a tape node as drawn: tensors, numbers, and the producing ``TapeNode`` in
    place of each value that backward() released."""
    return node.recorded_inputs


def scope_parts(node) -> tuple:
    scope = getattr(node, "scope", None)
    return tuple(scope.split("/")) if scope else ()


def forward_order(root_node) -> list:
    """Tape nodes reachable from ``root_node`` in the order their ops ran: the engine's
    topological order (newest first, the order backward visits them), reversed."""
    return topological_order([root_node], for_backward=False)[::-1]


def read_tape(tensor) -> Tape:
    """Walk back from ``tensor`` and describe every op and tensor that led to it."""
    if not isinstance(tensor, lg.Tensor):
        raise TypeError(f"read_tape needs a labgrad Tensor, not {type(tensor).__name__}")
    root_node = tensor.grad_fn
    if root_node is None:
        kind = "param" if tensor.requires_grad else "const"
        entry = TensorEntry(kind, tensor)
        return Tape(tensor, [], [entry], {})
    order = forward_order(root_node)
    results = {root_node: tensor}   # TapeNode -> a Tensor holding its output
    for node in order:
        for x in node_inputs(node):
            if isinstance(x, lg.Tensor) and x.grad_fn is not None:
                results.setdefault(x.grad_fn, x)
            elif isinstance(x, TapeNode):
                results.setdefault(x, Released(x))
    tensors, leaves, ops, by_node, outputs = [], {}, [], {}, {}
    for index, node in enumerate(order):
        inputs = []
        for x in node_inputs(node):
            if isinstance(x, TapeNode):            # a value backward() released
                entry = outputs[x]
            elif isinstance(x, lg.Tensor) and x.grad_fn is not None:
                entry = outputs[x.grad_fn]
            elif isinstance(x, lg.Tensor):
                entry = leaves.get(id(x))
                if entry is None:
                    entry = leaves[id(x)] = TensorEntry("param" if x.requires_grad else "const", x)
                    tensors.append(entry)
            else:
                entry = TensorEntry("number", x)
                tensors.append(entry)
            inputs.append(entry)
        out = TensorEntry("output" if node is root_node else "value", results[node], node)
        outputs[node] = out
        tensors.append(out)
        op = OpEntry(node, inputs, out, scope_parts(node), index)
        for entry in inputs:
            if not entry.consumers or entry.consumers[-1] is not op:
                entry.consumers.append(op)
        ops.append(op)
        by_node[node] = op
    return Tape(tensor, ops, tensors, by_node)


def distances(tape: Tape) -> dict:
    """Fewest ops between each op and the output (the output's own op is 0)."""
    if not tape.ops:
        return {}
    dist = {tape.ops[-1]: 0}
    frontier = [tape.ops[-1]]
    while frontier:
        nxt = []
        for op in frontier:
            for entry in op.inputs:
                producer = tape.by_node.get(entry.producer) if entry.producer is not None else None
                if producer is not None and producer not in dist:
                    dist[producer] = dist[op] + 1
                    nxt.append(producer)
        frontier = nxt
    return dist
