"""Drawers for the static world: ``viz.draw`` of a ``Graph``, an ``Executable``, an
``lg.jit`` function (its latest trace) or a graph ``Symbol`` (the graph it needs).

>>> a = lg.placeholder((None, 3), name="a")
>>> w = lg.Variable(lg.ones(3, 2), name="w")
>>> viz.draw(a @ w)                       # the graph that computes a @ w
>>> viz.draw(lg.compile(a @ w), source=True)
"""
from __future__ import annotations

import labgrad as lg
from labgrad.graph import JitFunction

from .draw import register_drawer
from .graph_figure import graph_figure


def _static_options(options, what):
    if options.backward:
        raise ValueError(
            f"viz.draw({what}, backward=True): a static graph has no tape to run backward; its "
            f"gradient is more graph. Build it with lg.gradients(loss, [w, ...]) (or call "
            f"loss.backward() inside an lg.jit function) and draw the graph that holds it.")
    return options


@register_drawer(lg.Graph)
def draw_graph(graph, options):
    return graph_figure(graph, _static_options(options, "graph"))


@register_drawer(lg.Executable)
def draw_executable(executable, options):
    return graph_figure(executable.graph, _static_options(options, "executable"))


@register_drawer(JitFunction)
def draw_jit_function(fn, options):
    name = getattr(fn, "__name__", "fn")
    if fn.graph is None:
        raise ValueError(
            f"viz.draw({name}): this lg.jit function has not been traced yet, so it has no graph. "
            f"Call it once with example inputs, e.g. {name}(x), then draw it: lg.jit traces on "
            f"the first call for each input signature and viz.draw shows the latest trace.")
    return graph_figure(fn.graph, _static_options(options, name))


@register_drawer(lg.Symbol)
def draw_symbol(symbol, options):
    graph = lg.Graph.from_outputs([symbol.node])
    return graph_figure(graph, _static_options(options, "symbol"))
