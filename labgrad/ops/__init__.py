"""All ops, by family. ``REGISTRY`` maps each op's name to its one definition.

Every op is also an attribute of this package under its registered name (``lg.ops.tanh_grad``),
so the building blocks that only backward rules call have a public name too. The graph-only
ops (placeholder, variable, assign, cond, ...) are in ``GRAPH_OPS``.
"""
from .registry import GRAPH_OPS, REGISTRY, Aval, Op, aval_of, defop, get_op  # noqa: F401
from . import elementwise, shape, reduce, linalg, nn, conv, device, state  # noqa: F401  (registers the ops)
from . import fused  # noqa: F401  (ops that pattern fusion makes: fma, linear)
from . import graph_ops  # noqa: F401  (the graph-only ops: GRAPH_OPS)
from . import fused_kernel  # noqa: F401  (the fused op that elementwise fusion makes)

globals().update(REGISTRY)   # lg.ops.<name> for every op (see the docstring)
