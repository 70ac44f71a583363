"""``viz.compare``: the same function run define-by-run and as a static graph, side by side.

Eager code records a new graph on every call, and only the Python branch that call took is in
it. ``lg.jit`` records one graph, once, that must serve every call: Python ``if`` on a value
cannot be traced (it raises ``TraceError``), while ``lg.cond`` keeps both branches in the
graph and picks one when it runs. ``compare`` shows both worlds for the inputs you choose::

    def f(x):                                    # eager-style: a Python branch on a value
        if x.sum() > 0:
            return x * 2
        return -x

    def f_static(x):                             # the same function, written for graphs
        return lg.cond(x.sum() > 0, lambda x: x * 2, lambda x: -x, x)

    viz.compare(f, lg.tensor([1.0, 2.0]), lg.tensor([-1.0, -2.0]), static_fn=f_static)

The result shows one eager graph per call, the one static graph, which step reported an error
(here ``lg.jit(f)`` with its ``TraceError``) and the time per call of each.
"""
from __future__ import annotations

import html
import inspect
import math
import time

import numpy as np

import labgrad as lg

from . import style
from .draw import draw
from .graph_figure import SOURCES
from .labels import fmt_type, fmt_values, is_small
from .tape import read_tape

REPEAT = 5                 # timing rounds per side; the best round counts
ROUND_SECONDS = 2e-3       # each round repeats the calls until it lasts about this long
MAX_NUMBER = 200           # ... but at most this many times


def compare(fn, *examples, static_fn=None, values=True, repeat=REPEAT):
    """Run ``fn`` eagerly and under ``lg.jit`` on each example; show the graphs side by side.

    ``examples``: the arguments of one call each; a tuple is unpacked, anything else is the
    single argument (``compare(f, (x1, y1), (x2, y2))`` for a two-argument ``f``). Pick one
    that takes each Python branch of ``fn``.
    ``static_fn``: the same computation written for graphs (``lg.cond`` / ``lg.while_loop``
    instead of Python ``if`` / ``while`` on values); its graph is the static side. Without it
    the static side is ``lg.jit(fn)``'s own graph, when ``fn`` can be traced.
    ``values``: print small values in the drawings. ``repeat``: timing rounds (0: no timing).

    The dynamic drawings are the eager tape, which records ops on tensors that require grad:
    ``compare`` passes float tensor arguments as fresh leaves that require grad (your tensors
    are left alone), so each drawing shows exactly the ops that call ran.

    Returns a ``Comparison``: ``.dynamic`` (one ``GraphView`` per call, ``None`` where the call
    failed), ``.static`` (a ``GraphView`` or ``None``), ``.errors`` (``{"eager": ..., "jit":
    ..., "static": ...}``: the first error message of each, ``None`` when it ran fine),
    ``.timings`` (seconds per call; they vary from run to run, so the text form leaves them out).
    """
    if not callable(fn):
        raise TypeError(f"viz.compare: fn must be a function, got {type(fn).__name__}")
    if static_fn is not None and not callable(static_fn):
        raise TypeError(f"viz.compare: static_fn must be a function, got {type(static_fn).__name__}")
    if not examples:
        raise ValueError("viz.compare needs at least one example input: compare(fn, x1, x2, ...), "
                         "ideally one for each Python branch of fn (a tuple per call for functions "
                         "of several arguments)")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"viz.compare: repeat={repeat!r} must be an int >= 0 (0 turns timing off)")
    calls = [tuple(e) if isinstance(e, tuple) else (e,) for e in examples]
    names = _parameter_names(fn)
    result = Comparison(_name(fn), _name(static_fn) if static_fn is not None else None,
                        [_describe_call(args, names) for args in calls])

    eager_out = _run_eager(fn, calls, names, result, values)
    jitted = lg.jit(fn)
    jit_out, jit_first = _run_jit(jitted, calls, result, "jit")
    if static_fn is not None:
        static = lg.jit(static_fn)
        static_out, first = _run_jit(static, calls, result, "static")
    else:
        static, static_out, first = jitted, jit_out, jit_first
    if static.graph is not None and static_out is not None:
        result.static = draw(static, values=values)
        result.static_outline = outline(static.graph)
        result.traces = static.cache_info.misses
        if eager_out is not None:
            result.agree = [_same(a, b) for a, b in zip(eager_out, static_out)]
    if repeat:
        if eager_out is not None:
            result.timings["eager"] = _per_call(fn, calls, repeat)
        if static_out is not None:
            result.timings["jit"] = _per_call(static, calls, repeat)
            result.timings["first_call"] = first
    return result


# ---------------------------------------------------------------- running

def _run_eager(fn, calls, names, result, values):
    """Each call on leaves that require grad; record and draw its tape. Outputs, or None."""
    outputs, failed = [], None
    for k, args in enumerate(calls):
        view, ops, note = None, None, ""
        try:
            out = fn(*[_leaf(a, _arg_name(names, i)) for i, a in enumerate(args)])
        except Exception as e:  # noqa: BLE001 - shown to the student, not raised
            failed = failed or f"call {k + 1}: {_message(e)}"
        else:
            outputs.append(out)
            root, note = _first_tensor(out)
            if root is not None:
                view = draw(root, values=values, grads=False)
                ops = [op.node.op.name for op in read_tape(root).ops]
            else:
                note = f"returned a {type(out).__name__}, no tensor to draw"
        result.dynamic.append(view)
        result.dynamic_ops.append(ops)
        result.dynamic_notes.append(note)
    result.errors["eager"] = failed
    return None if failed else outputs


def _run_jit(jitted, calls, result, key):
    """Every call through ``jitted``; (outputs, seconds of the first call) or (None, None)."""
    outputs, first = [], None
    for k, args in enumerate(calls):
        start = time.perf_counter()
        try:
            outputs.append(jitted(*args))
        except Exception as e:  # noqa: BLE001 - shown to the student, not raised
            result.errors[key] = f"call {k + 1}: {_message(e)}"
            return None, None
        if k == 0:
            first = time.perf_counter() - start
    result.errors[key] = None
    return outputs, first


def _per_call(fn, calls, repeat):
    """Seconds per call: the best of ``repeat`` rounds, each running every call ``number`` times."""
    def one_round(number):
        start = time.perf_counter()
        for _ in range(number):
            for args in calls:
                fn(*args)
        return time.perf_counter() - start

    once = one_round(1)
    number = max(1, min(MAX_NUMBER, int(ROUND_SECONDS / max(once, 1e-9))))
    best = min(one_round(number) for _ in range(repeat))
    return best / (number * len(calls))


def _leaf(x, name):
    """A float tensor as a fresh leaf that requires grad (named, so the drawing says which
    argument it is); anything else as it is."""
    if isinstance(x, lg.Tensor) and x.dtype.kind == "f":
        leaf = x.detach().requires_grad_(True)
        leaf.name = x.name or name
        return leaf
    return x


def _first_tensor(out):
    if isinstance(out, lg.Tensor):
        return out, ""
    if isinstance(out, (tuple, list)):
        tensors = [o for o in out if isinstance(o, lg.Tensor)]
        if tensors:
            return tensors[0], f"output 0 of {len(out)}"
    return None, ""


def _arrays(out):
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [np.asarray(o.numpy() if isinstance(o, lg.Tensor) else o) for o in items]


def _same(a, b) -> bool:
    xs, ys = _arrays(a), _arrays(b)
    return len(xs) == len(ys) and all(
        x.shape == y.shape and np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True) for x, y in zip(xs, ys))


def _message(e) -> str:
    return f"{type(e).__name__}: {e}"


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _parameter_names(fn):
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return []


def _arg_name(names, i):
    return names[i] if i < len(names) else f"arg {i}"


def _describe_call(args, names) -> str:
    """``x=[1 2]`` for small tensors, ``x: (32, 64) float32`` for large ones."""
    parts = []
    for i, a in enumerate(args):
        name = _arg_name(names, i)
        if isinstance(a, lg.Tensor):
            parts.append(f"{name}={fmt_values(a)}" if is_small(a) else f"{name}: {fmt_type(a)}")
        elif isinstance(a, (bool, int, float, np.generic)):
            parts.append(f"{name}={fmt_values(a)}")
        else:
            parts.append(f"{name}: {type(a).__name__}")
    return ", ".join(parts)


def outline(graph) -> str:
    """The ops of a graph in order, subgraphs in brackets: ``gt, cond[true: mul | false: neg]``."""
    parts = []
    for node in graph.nodes:
        kind = node.kind
        if kind == "op":
            parts.append(node.op.name)
        elif node.subgraphs:
            inner = " | ".join(f"{key}: {outline(sub) or 'pass'}" for key, sub in node.subgraphs.items())
            parts.append(f"{kind}[{inner}]")
        elif kind not in SOURCES and kind not in ("get", "arg"):   # assign, stop_gradient, ...
            parts.append(kind)
    return ", ".join(parts)


# ---------------------------------------------------------------- the result

def fmt_seconds(s) -> str:
    """``12.3 µs``: three significant digits and a unit (the notebook sanitizer masks these)."""
    if s is None or not math.isfinite(s):
        return "?"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            return f"{s / scale:.3g} {unit}"
    return f"{s:.3g} s"


class Comparison:
    """What ``viz.compare`` found. Shown in Jupyter as the two worlds side by side (HTML);
    its text form is deterministic (no timings), so notebooks can compare it."""

    def __init__(self, fn_name, static_name, calls):
        self.fn_name = fn_name
        self.static_name = static_name
        self.calls = calls                  # one description per call: "x=[1 2]"
        self.dynamic = []                   # GraphView per call (None where it failed)
        self.dynamic_ops = []               # op names per call, in the order they ran
        self.dynamic_notes = []
        self.static = None                  # GraphView of the one static graph
        self.static_outline = ""
        self.traces = 0                     # how many times lg.jit traced the static function
        self.agree = None                   # per call: did eager and jit give the same result?
        self.errors = {}
        self.timings = {}

    @property
    def static_label(self) -> str:
        return f"lg.jit({self.static_name or self.fn_name})"

    # ---- text
    def __repr__(self):
        n = len(self.calls)
        lines = [f"viz.compare({self.fn_name}): {n} call{'s' if n != 1 else ''}",
                 f"dynamic (eager {self.fn_name}, a new graph on every call):"]
        for k, desc in enumerate(self.calls):
            ops, note = self.dynamic_ops[k], self.dynamic_notes[k]
            if ops is None:
                lines.append(f"  call {k + 1} ({desc}): {note or 'failed'}")
                continue
            note = f" ({note})" if note else ""
            lines.append(f"  call {k + 1} ({desc}): {len(ops)} op{'s' if len(ops) != 1 else ''}"
                         f"{': ' + ', '.join(ops) if ops else ''}{note}")
        if self.static is not None:
            lines.append(f"static ({self.static_label}, one graph for every call, traced "
                         f"{self.traces} time{'s' if self.traces != 1 else ''}):")
            lines.append(f"  {self.static_outline}")
        else:
            lines.append("static: no graph (lg.jit could not trace it; pass static_fn=, written "
                         "with lg.cond / lg.while_loop)")
        lines.append("errors:")
        for key, message in self.errors.items():
            text = "none" if message is None else message.replace("\n", "\n    ")
            lines.append(f"  {self._who(key)}: {text}")
        if self.agree is not None:
            same = sum(self.agree)
            lines.append(f"results: {self.static_label} matches eager {self.fn_name} on "
                         f"{'every call' if same == len(self.agree) else f'{same} of {len(self.agree)} calls'}")
        return "\n".join(lines)

    def _who(self, key):
        return {"eager": f"eager {self.fn_name}", "jit": f"lg.jit({self.fn_name})",
                "static": f"lg.jit({self.static_name})"}.get(key, key)

    # ---- HTML
    def _repr_html_(self):
        e = html.escape
        dyn = []
        for k, desc in enumerate(self.calls):
            view, ops, note = self.dynamic[k], self.dynamic_ops[k], self.dynamic_notes[k]
            picture = (_svg_box(view) if view is not None else
                       f'<div style="color:{style.GRAD_INK}">{e(note or "failed")}</div>')
            caption = f"<b>call {k + 1}</b>: {e(desc)}"
            if ops is not None:
                caption += f"<br/>{len(ops)} op{'s' if len(ops) != 1 else ''} recorded"
                if note:
                    caption += f" ({e(note)})"
            dyn.append(f'<figure style="margin:0">{picture}<figcaption style="{_CAPTION}">{caption}'
                       f'</figcaption></figure>')
        left = (f'<section style="flex:0 1 auto; min-width:0">'
                f'<div style="{_HEADING}">dynamic: eager <code>{e(self.fn_name)}</code> records a new '
                f'graph on every call</div>'
                f'<div style="display:flex; flex-wrap:wrap; gap:18px; align-items:flex-start">{"".join(dyn)}</div>'
                f'{self._error_html("eager")}</section>')
        if self.static is not None:
            n = len(self.calls)
            caption = (f"<b>one graph for {n} call{'s' if n != 1 else ''}</b>: traced {self.traces} "
                       f"time{'s' if self.traces != 1 else ''}")
            static = (f'<figure style="margin:0">{_svg_box(self.static)}<figcaption style="{_CAPTION}">'
                      f'{caption}</figcaption></figure>')
        else:
            static = (f'<div style="{_CAPTION}">no static graph: lg.jit could not trace '
                      f'<code>{e(self.fn_name)}</code>. Pass <code>static_fn=</code>, the same '
                      f'function written with <code>lg.cond</code> / <code>lg.while_loop</code>.</div>')
        right = (f'<section style="flex:1 1 340px; min-width:0">'
                 f'<div style="{_HEADING}">static: <code>{e(self.static_label)}</code> traces one graph'
                 f'</div>{static}{self._error_html("jit")}{self._error_html("static")}</section>')
        foot = []
        if self.agree is not None:
            same = sum(self.agree)
            verdict = "every call" if same == len(self.agree) else f"{same} of {len(self.agree)} calls"
            foot.append(f"results: <code>{e(self.static_label)}</code> matches eager "
                        f"<code>{e(self.fn_name)}</code> on {verdict}")
        if self.timings:
            parts = []
            if "eager" in self.timings:
                parts.append(f"eager {e(self.fn_name)} {fmt_seconds(self.timings['eager'])}")
            if "jit" in self.timings:
                parts.append(f"{e(self.static_label)} {fmt_seconds(self.timings['jit'])}")
            text = "time per call: " + ", ".join(parts)
            if self.timings.get("first_call") is not None:
                text += f"; its first call (trace + compile) {fmt_seconds(self.timings['first_call'])}"
            foot.append(f"{text} <i>(timings vary from run to run and machine to machine)</i>")
        footer = "".join(f'<div style="margin-top:4px">{line}</div>' for line in foot)
        return (f'<div style="font-family:Helvetica,Arial,sans-serif; color:{style.INK}; font-size:13px">'
                f'<div style="display:flex; flex-wrap:wrap; gap:32px; align-items:flex-start">{left}{right}</div>'
                f'<div style="margin-top:10px; color:{style.MUTED}">{footer}</div></div>')

    def _error_html(self, key):
        message = self.errors.get(key)
        if message is None:
            return ""
        return (f'<div style="border-left:3px solid {style.GRAD_INK}; background:#fdf1f1; '
                f'padding:6px 10px; margin-top:10px; max-width:38em"><b>{html.escape(self._who(key))} '
                f'raised an error</b><pre style="white-space:pre-wrap; margin:4px 0 0 0; font-size:12px">'
                f'{html.escape(message)}</pre></div>')


_HEADING = "font-weight:bold; margin-bottom:6px"
_CAPTION = f"font-size:12px; color:{style.MUTED}; margin-top:4px"


def _svg_box(view) -> str:
    return f'<div style="max-width:100%; overflow-x:auto">{view.svg}</div>'
