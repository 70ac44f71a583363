"""The static world: graphs built from symbols, gradient graphs, compiled execution, jit.

Where to find each idea:

* ``ir.py``: the data structures, ``Node``, ``Frame`` (top level or inside a branch) and ``Graph``
  (immutable nodes numbered in the graph, ``verify``, ``users``, ``rewrite``); every node applies
  a registered op, the graph-only ones (placeholder, cond, assign, ...) in ``ops/graph_ops.py``;
* ``text.py``: the readable text form that ``print(graph)`` shows;
* ``symbol.py``: ``Symbol``, the handle users hold, ``Variable``, and ``make_node``;
* ``build.py``: define-and-run, ``placeholder``, ``constant``, ``assign``, ``compile``;
* ``autodiff.py``: symbolic ``gradients``; ``control.py``: ``cond`` and ``while_loop``;
* ``passes/``: graph passes (dead code, constant folding, simplification, CSE, pattern fusion),
  ``lower`` (run a pipeline) and ``PassReport``; ``compile`` and ``jit`` take ``passes=``;
* ``inline.py``, ``codegen.py``: from a graph to Python source; ``executable.py``: running it;
* ``tracer.py``: recording one call of a function; ``signature.py``: the cache key of a call;
  ``jit_function.py``: ``jit``, its cache, and why it traces again.
"""
from .ir import Graph, Node  # noqa: F401
from .symbol import Symbol, Variable  # noqa: F401
from .build import assign, compile, constant, placeholder  # noqa: F401
from .autodiff import gradients  # noqa: F401
from .control import cond, while_loop  # noqa: F401
from .executable import Executable  # noqa: F401
from .jit_function import JitFunction, jit  # noqa: F401
from .passes import PassReport, lower  # noqa: F401
