"""The static world: graphs built from symbols, symbolic gradients, compiled execution, jit.

``ir`` holds the data structures (``Graph``, ``Node``, ``Symbol``), ``build`` the define-and-run
API (``placeholder``, ``constant``, ``Variable``, ``assign``, ``compile``), ``autodiff`` the
symbolic ``gradients``, ``control`` ``cond`` and ``while_loop``, ``codegen`` the
``Executable``, and ``trace`` ``jit``.
"""
from .ir import Graph, Node, Symbol, Variable  # noqa: F401
from .build import assign, compile, constant, placeholder  # noqa: F401
from .autodiff import gradients  # noqa: F401
from .control import cond, while_loop  # noqa: F401
from .codegen import Executable  # noqa: F401
from .trace import JitFunction, jit  # noqa: F401
