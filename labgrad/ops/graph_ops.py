"""The ops that only static graphs have: sources, control flow and plumbing.

Every node of a graph applies an ``Op``; most are the eager ops of ``REGISTRY``, and these are
the others (kept in ``GRAPH_OPS``, so that lists of eager ops stay what they were). They have
no ``forward`` that eager code could call: the code generator writes what they do. What they
declare is what graph passes need to know, above all their ``effects``:

=================  ========  ==============  ====================================================
op                 family    effects         what it is
=================  ========  ==============  ====================================================
``placeholder``    source    reads_input     a value fed when the graph runs
``arg``            source    reads_input     an input of a cond branch or while body
``variable``       source    reads_state     persistent state (a Tensor), read at the start
``constant``       source    (pure)          a value baked into the graph
``assign``         state     writes_state    a state update, performed at the end of a run
``cond``           control   (pure)          pick one of two subgraphs at run time
``while``          control   (pure)          repeat a subgraph while another one says so
``get``            control   (pure)          output ``index`` of a cond or while node
``stop_gradient``  graph     (pure)          the same value; no gradient flows through it
=================  ========  ==============  ====================================================

``cond`` and ``while`` are pure because their subgraphs cannot write state (an ``assign``
inside a branch is refused when it is traced). The graph's ``assign`` is not the eager
``assign`` op of ``state.py`` (what ``x += 1`` runs): eagerly that one writes memory at once,
and under ``lg.jit`` the tracer records it as this state update instead.
"""
from __future__ import annotations

from .registry import GRAPH_OPS, Op, nbytes


def _not_eager(name):
    def forward(xp, *args, **attrs):
        raise TypeError(f"the graph op {name!r} has no eager forward: the code generator writes it")
    forward.__name__ = f"{name}_forward"
    return forward


def _no_infer(name):
    def infer(*avals, **attrs):
        raise TypeError(f"the graph op {name!r} has no infer rule: its node is made with its aval")
    return infer


def _free(*avals, **attrs):
    """Nothing computed, nothing moved (a name for a value that exists already)."""
    return {"flops": 0, "bytes": 0}


def _graph_op(name, family, effects=(), doc=None, cost=_free, writes_input=None):
    op = Op(name, family, forward=_not_eager(name), infer=_no_infer(name), cost=cost,
            differentiable=False, effects=effects, doc=doc, writes_input=writes_input)
    op.kind = name          # what Node.kind says for its nodes (eager ops say "op")
    GRAPH_OPS[name] = op
    return op


def assign_cost(target, value):
    return {"flops": 0, "bytes": nbytes(target) + (nbytes(value) if value is not None else 0)}


placeholder = _graph_op("placeholder", "source", ("reads_input",), "A value fed when the graph runs.")
arg = _graph_op("arg", "source", ("reads_input",), "An input of a cond branch or while body.")
variable = _graph_op("variable", "source", ("reads_state",),
                     "Persistent state: a live Tensor, read at the start of each run.")
constant = _graph_op("constant", "source", (), "A value baked into the graph (the node's ``value``).")
cond = _graph_op("cond", "control", (), "``true`` or ``false`` subgraph, picked by input 0 at run time.")
while_ = _graph_op("while", "control", (), "Repeat the ``body`` subgraph while ``cond`` holds.")
get = _graph_op("get", "control", (), "Output ``index`` of a cond or while node.")
stop_gradient = _graph_op("stop_gradient", "graph", (), "The same value; gradients stop here.")
assign = _graph_op("assign", "state", ("writes_state",),
                   "Write input 1 into the variable input 0 at the end of the run (a state update).",
                   cost=assign_cost, writes_input=0)

_unknown = {}


def graph_op(name) -> Op:
    """The graph op called ``name``; a name never declared gets an op with unknown effects
    (treated as impure by every pass), so that experiments with new node kinds still work."""
    op = GRAPH_OPS.get(name)
    if op is None:
        op = _unknown.get(name)
        if op is None:
            op = _unknown[name] = Op(name, None, forward=_not_eager(name), infer=_no_infer(name),
                                     cost=_free, differentiable=False,
                                     effects=("reads_state", "writes_state"))
            op.kind = name
    return op
