"""Graph passes: pure functions ``Graph -> (Graph, PassReport)``, and the pipeline that runs them.

A pass never changes the graph it is given: it builds new nodes and returns a new graph (see
``ir.rewrite``), with a ``PassReport`` of what changed. ``lower(graph, passes)`` runs a
pipeline and returns the final graph and the reports, in order; ``lg.compile`` and
``lg.jit`` call it with their ``passes=`` argument::

    f = lg.compile(loss, passes=["dce", "cse"])     # just these two
    f = lg.compile(loss, passes=())                 # the graph as built
    f = lg.compile(loss)                            # the default pipeline, DEFAULT_PIPELINE
    for r in f.reports: print(r)

The passes, one module each: ``dce`` (dead-code elimination), ``fold`` (constant folding),
``simplify`` (algebraic simplification; ``simplify_unsafe`` adds rules that change some values
and is never run by default), ``cse`` (common-subexpression elimination), ``patterns``
(pattern fusion: ``a * b + c`` -> ``fma``, ``matmul + bias (+ relu)`` -> ``linear``,
``relu_grad`` reads the relu's output), ``fuse`` (elementwise fusion: each group of
elementwise ops, with a reduction that ends it, becomes one ``fused`` node running one
generated kernel), ``memory`` (memory planning: liveness, buffers reused across calls, safe
in-place writes; attaches ``graph.memory_plan`` for the code generator). Two more are not in
the default pipeline: ``place`` (placement: every op on the device that makes the fewest bytes
cross between devices, with explicit ``to_device`` transfer nodes; ``placer(pins)`` makes one
with pins, and ``lg.compile(..., placement={"matmul": "cuda"})`` runs it first) and
``schedule`` (a node order with a lower peak of live memory: ``passes=[..., "schedule",
"memory"]``). A pass is named by its key in ``PASSES`` or given as a function; ``register_pass``
adds one (and may put it into the default pipeline).
"""
from __future__ import annotations

from ..ir import Graph
from .cse import common_subexpression_elimination
from .dce import dead_code_elimination
from .fold import constant_folding
from .fuse import elementwise_fusion, kernel_count
from .memory import MemoryPlan, memory_planning
from .report import PassReport, fmt_bytes, make_report, survivors
from .patterns import pattern_fusion
from .place import describe_placement, place, placer, transfers
from .schedule import Schedule, memory_order, schedule_memory, schedule_table
from .simplify import algebraic_simplification, simplify_unsafe

__all__ = ["PASSES", "DEFAULT_PIPELINE", "FUSION_PIPELINE", "enable_fusion", "PassReport", "lower",
           "register_pass", "resolve",
           "make_report", "survivors", "fmt_bytes", "dead_code_elimination", "constant_folding",
           "common_subexpression_elimination", "algebraic_simplification", "simplify_unsafe", "pattern_fusion",
           "elementwise_fusion", "kernel_count", "memory_planning", "MemoryPlan", "place", "placer",
           "transfers", "describe_placement", "schedule_memory", "memory_order", "schedule_table", "Schedule"]

#: every known pass, by name
PASSES = {
    "dce": dead_code_elimination,
    "fold": constant_folding,
    "cse": common_subexpression_elimination,
    "simplify": algebraic_simplification,
    "simplify_unsafe": simplify_unsafe,   # not in the default pipeline: changes some values
    "patterns": pattern_fusion,
    "fuse": elementwise_fusion,
    "memory": memory_planning,
    "place": place,                       # not in the default pipeline: see place.py
    "schedule": schedule_memory,          # not in the default pipeline: see schedule.py
}

#: what ``lg.compile`` and ``lg.jit`` run by default, in order. Dead code goes first (less to
#: look at); folding turns constant work into constants, which simplification's rules can
#: see (``x * 1``); simplification can make two nodes the same, so CSE comes after it; the
#: fusion passes go after ``cse`` (pattern fusion needs to know how many users a product
#: really has; elementwise fusion then groups what is left, ``fma`` included); the rewrites
#: leave dead nodes behind, so ``dce`` runs again; memory planning goes last, on the final graph.
DEFAULT_PIPELINE = ["dce", "fold", "simplify", "cse", "patterns", "fuse", "dce", "memory"]

#: the fusion passes, in order, that ``enable_fusion`` puts after ``cse`` (both are in the
#: default pipeline; ``enable_fusion`` restores them into a pipeline that left them out).
FUSION_PIPELINE = ["patterns", "fuse"]

#: run ``graph.verify()`` after every pass (cheap; catches a broken pass where it broke)
VERIFY = True


def enable_fusion(passes=None):
    """Put the fusion passes (``FUSION_PIPELINE``, or ``passes``) into ``DEFAULT_PIPELINE``
    right after ``cse``, in order (those already there are left where they are)."""
    at = DEFAULT_PIPELINE.index("cse") + 1
    for name in (FUSION_PIPELINE if passes is None else passes):
        if name not in DEFAULT_PIPELINE:
            DEFAULT_PIPELINE.insert(at, name)
            at += 1
        else:
            at = DEFAULT_PIPELINE.index(name) + 1
    return list(DEFAULT_PIPELINE)


def register_pass(name, fn, before=None, after=None, default=False):
    """Make ``fn`` (``Graph -> (Graph, PassReport)``) known as ``name``. With ``default=True``
    it also joins ``DEFAULT_PIPELINE``: just before the first ``before`` entry, just after the
    last ``after`` entry, or at the end (before the final ``dce``)."""
    PASSES[name] = fn
    if default and name not in DEFAULT_PIPELINE:
        if before is not None and before in DEFAULT_PIPELINE:
            DEFAULT_PIPELINE.insert(DEFAULT_PIPELINE.index(before), name)
        elif after is not None and after in DEFAULT_PIPELINE:
            i = len(DEFAULT_PIPELINE) - 1 - DEFAULT_PIPELINE[::-1].index(after)
            DEFAULT_PIPELINE.insert(i + 1, name)
        else:
            DEFAULT_PIPELINE.insert(len(DEFAULT_PIPELINE) - 1, name)
    return fn


def resolve(passes):
    """The pass functions for ``passes``: None (the default pipeline), or a list of names
    and functions."""
    if passes is None:
        passes = DEFAULT_PIPELINE
    if isinstance(passes, str) or callable(passes):
        passes = [passes]
    out = []
    for p in passes:
        if callable(p):
            out.append(p)
        elif p in PASSES:
            out.append(PASSES[p])
        else:
            raise ValueError(f"unknown pass {p!r}; the passes are: {', '.join(PASSES)} "
                             f"(or give a function Graph -> (Graph, PassReport))")
    return out


def lower(graph: Graph, passes=None, verify=None):
    """Run ``passes`` (default: ``DEFAULT_PIPELINE``; ``()``: none) over ``graph``:
    ``(final graph, [PassReport, ...])``, one report per pass, in order."""
    check = VERIFY if verify is None else verify
    reports = []
    for fn in resolve(passes):
        result = fn(graph)
        if (not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[0], Graph)
                or not isinstance(result[1], PassReport)):
            raise TypeError(f"the pass {getattr(fn, '__name__', fn)!r} must return "
                            f"(Graph, PassReport), got {type(result).__name__}")
        new, report = result
        if check:
            new.verify()
        reports.append(report)
        graph = new
    return graph, reports
