"""``viz.draw``: one function that draws anything it has a drawer for.

Drawers are registered per type, so a new kind of object (a static ``Graph``, an
``Executable``) plugs in without touching ``draw``::

    @viz.register_drawer(MyGraph)
    def draw_my_graph(graph, options: viz.DrawOptions) -> viz.GraphView:
        ...

``draw`` looks the object's class up along its MRO, checks the options once, and calls the
drawer with a ``DrawOptions``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .view import GraphView

__all__ = ["DrawOptions", "GraphView", "draw", "register_drawer"]

RANKDIRS = ("TB", "LR", "BT", "RL")
_DRAWERS: dict[type, Any] = {}


@dataclass(frozen=True)
class DrawOptions:
    """What ``draw`` was asked to show (see ``draw`` for the meaning of each)."""

    values: bool = True
    grads: bool = True
    backward: bool = False
    depth: int | None = None
    group: bool | None = None
    rankdir: str = "TB"
    highlight: Any = None
    source: bool = False
    heat: Any = None

    def heat_of(self, node):
        """``(fraction, text)`` for a tape node in ``heat``, or ``None``."""
        return None if self.heat is None else self.heat.get(id(node))

    def highlighted(self) -> set:
        """``id``s of the objects to highlight (one object, or a list/tuple/set of them)."""
        h = self.highlight
        if h is None:
            return set()
        items = h if isinstance(h, (list, tuple, set, frozenset)) else (h,)
        return {id(x) for x in items}

    def highlighted_results(self) -> set:
        """``id``s of the tape nodes whose results are highlighted (via a Tensor)."""
        h = self.highlight
        if h is None:
            return set()
        items = h if isinstance(h, (list, tuple, set, frozenset)) else (h,)
        return {id(x.grad_fn) for x in items if getattr(x, "grad_fn", None) is not None}


def register_drawer(cls):
    """Decorator: use the decorated function to draw instances of ``cls`` (and subclasses)."""

    def register(fn):
        _DRAWERS[cls] = fn
        return fn

    return register


def draw(obj, *, values=True, grads=True, backward=False, depth=None, group=None, rankdir="TB",
         highlight=None, source=False, heat=None) -> GraphView:
    """Draw ``obj`` as a graph and return a ``GraphView`` (shown inline in Jupyter).

    For an eager ``Tensor``: the ops that computed it (ovals, coloured by family) and the
    tensors between them (boxes; parameters yellow, constants white, Python numbers dashed).
    For a static ``Graph``, ``Executable``, ``lg.jit`` function (its latest trace) or graph
    ``Symbol``: one shape per IR node, variables as cylinders, assigns writing back to them,
    ``cond`` / ``while`` subgraphs as clusters (see ``viz.graph_figure``).

    ``values`` / ``grads``: print the data / ``.grad`` of tensors with at most 6 elements.
    ``backward``: draw what ``backward()`` would run instead: one node per backward rule,
    numbered in the engine's order, gradients flowing from the output to the leaves' ``.grad``.
    ``depth``: show only the last ``depth`` ops before the output; ``...`` marks the cut.
    ``group``: cluster ops by ``lg.name_scope`` (``nn.Module`` calls open one each); by
    default on when there are more than 40 ops, which are then drawn compactly (intermediate
    tensors become edge labels).
    ``rankdir``: ``"TB"`` (top to bottom), ``"LR"``, ``"BT"`` or ``"RL"``.
    ``highlight``: a tensor or tape node (``y.grad_fn``), or a list of them, to emphasise.
    ``source``: static graphs (``Graph``, ``Executable``, ``lg.jit`` functions, symbols): write
    the user's line that made each node (``model.py:12``) under it.
    ``heat``: eager tensors: ``{tape node: seconds}`` (``viz.ProfileView(prof).heat(loss)``
    makes it from a profile): each op with a time is filled from pale yellow to deep red by
    its share of the largest, and its time is written under it. Off by default.

    >>> x = lg.tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> viz.draw((x * x).sum())
    GraphView(5 nodes, 5 edges)
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"viz.draw: rankdir={rankdir!r} is not one of {', '.join(RANKDIRS)}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"viz.draw: depth={depth!r} must be a positive int (the number of ops "
                         f"to show, counted back from the output), or None for all")
    options = DrawOptions(bool(values), bool(grads), bool(backward), depth,
                          None if group is None else bool(group), rankdir, highlight, bool(source),
                          _heat_fractions(heat))
    for cls in type(obj).__mro__:
        drawer = _DRAWERS.get(cls)
        if drawer is not None:
            return drawer(obj, options)
    known = ", ".join(sorted(c.__name__ for c in _DRAWERS)) or "nothing yet"
    raise TypeError(f"viz.draw cannot draw a {type(obj).__name__}; it knows how to draw: {known}.\n"
                    f"  Pass a labgrad Tensor (e.g. a loss), or register a drawer with "
                    f"@viz.register_drawer({type(obj).__name__}).")


def _heat_fractions(heat):
    """``{tape node: seconds}`` -> ``{id(node): (fraction of the largest, "12.3 us")}``."""
    if not heat:
        return None
    top = max(heat.values()) or 1.0
    return {id(node): (seconds / top, _fmt_seconds(seconds)) for node, seconds in heat.items()}


def _fmt_seconds(s):
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"
