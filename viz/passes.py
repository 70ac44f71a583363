"""``PassExplorer``: what each graph pass of a compiled program did, before and after.

>>> f = lg.compile(loss)                 # runs the default pipeline of passes
>>> viz.PassExplorer(f)                  # in a notebook: pick a pass, see both graphs
>>> viz.PassExplorer(f, "cse")           # start at the first cse pass

Each ``PassReport`` (``executable.reports``) keeps the graph the pass was given and the one it
returned. The explorer draws both side by side and marks, by the report's node ids (``%n``):

* in the graph *before*: nodes the pass **removed** (grey, dashed), **merged** into another
  (CSE, violet), **folded** into a constant (blue), **rewritten** by a rule (orange) or
  **fused** into a kernel (teal);
* in the graph *after*: the constants folding made (blue), what rules made (orange), fused
  nodes (teal), and other nodes the pass **added** (green);
* in both: a ``cond`` or ``while`` node whose subgraphs the pass changed (orange; the report's
  lines say what changed inside).

Every drawn node carries its number (``%3``), so the drawing, the report's lines and
``print(graph)`` name the same nodes. Beside the graphs: the report's numbers (nodes, bytes
moved, kernels and planned peak memory when the pass reports them), its lines, and, when the
report carries them, the fused kernels' source and why candidates were not fused.

In a notebook it is a widget (a drop-down of passes); the display bundle also holds a still
HTML view of the selected pass, which is what a notebook viewer without a kernel shows.
"""
from __future__ import annotations

import re

from labgrad.graph.passes import PassReport, fmt_bytes

from . import style
from .draw import DrawOptions
from .graph_figure import _GraphDrawing
from .labels import escape

__all__ = ["PassExplorer", "draw_pass", "pass_marks"]

_INSIDE = re.compile(r"in subgraph (\w+) of %(\d+):")

#: order in which marks are listed in the legend
MARK_ORDER = ("removed", "merged", "folded", "rewritten", "fused", "added")
MARK_WORDS = {"removed": "removed", "merged": "merged (CSE)", "folded": "folded to a constant",
              "rewritten": "rewritten by a rule", "fused": "fused", "added": "added"}


# ---------------------------------------------------------------- which node gets which mark

def pass_marks(report):
    """``(before, after)``: dicts from node id to ``(mark, note)`` for the graph before the
    pass and the one after it. ``mark`` is a key of ``viz.style.PASS_MARKS``; ``note`` is the
    short text written under the node (e.g. ``"merged into %2"``)."""
    before, after = {}, {}
    for i in report.removed:
        before[i] = ("removed", "removed")
    for a, b in report.merged:
        before[a] = ("merged", f"merged into %{b}")
    for a, b in report.folded:
        before[a] = ("folded", f"folded: %{b} after")
        after[b] = ("folded", f"folded: replaces %{a}")
    for rule, a, b in report.rewritten:
        before[a] = ("rewritten", f"{rule}: %{b} after")
        after.setdefault(b, ("rewritten", f"{rule}: replaces %{a}"))
    for group, b in report.fused:
        for a in group:
            before[a] = ("fused", f"fused into %{b}")
        after[b] = ("fused", "fused " + ", ".join(f"%{a}" for a in group))
    for i in report.added:
        after.setdefault(i, ("added", "added"))
    for line in getattr(report, "notes", ()):      # "in subgraph true of %3: ..." (cond, while)
        m = _INSIDE.match(str(line))
        if m:
            i = int(m.group(2))
            before.setdefault(i, ("rewritten", f"changed in its {m.group(1)} subgraph"))
            if i in report.kept:
                after.setdefault(report.kept[i], ("rewritten", f"changed in its {m.group(1)} subgraph"))
    return before, after


class _MarkedDrawing(_GraphDrawing):
    """A graph drawing whose top-level nodes carry their number and, if the pass touched them,
    a mark (outline colour, pen, a note under the label)."""

    def __init__(self, graph, options, marks):
        super().__init__(graph, options)
        self.marks = marks

    def add(self, node, path, top=False, output=False, index=None):
        super().add(node, path, top=top, output=output, index=index)
        if not top or id(node) not in self.ids:
            return
        dot_id = self.ids[id(node)]
        at = int(dot_id[1:])
        node_id, label, attrs, scope = self.fig._nodes[at]
        extra = f'<font point-size="8" color="{style.MUTED}">%{node.id}</font>'
        mark = self.marks.get(node.id)
        if mark is not None:
            kind, note = mark
            look = style.PASS_MARKS[kind]
            attrs = dict(attrs, color=look["color"], penwidth=look["penwidth"])
            if look.get("dashed"):
                parts = [p for p in attrs.get("style", "").split(",") if p and p != "filled"]
                attrs["style"] = ",".join(parts + ["dashed"])
                attrs["fontcolor"] = look["fontcolor"]
            extra += f'<br/><font point-size="8" color="{look["fontcolor"]}"><b>{escape(note)}</b></font>'
        self.fig._nodes[at] = (node_id, label[:-1] + "<br/>" + extra + ">", attrs, scope)


def draw_pass(report, which="before", rankdir="TB", values=True):
    """The ``GraphView`` of the graph ``which`` (``"before"`` or ``"after"``) a pass, marked."""
    if which not in ("before", "after"):
        raise ValueError(f"draw_pass: which={which!r} must be 'before' or 'after'")
    graph = getattr(report, which)
    if graph is None:
        raise ValueError(f"this {report.name} report keeps no graph {which} the pass "
                         f"(it was made without before=/after=)")
    before, after = pass_marks(report)
    options = DrawOptions(values=values, grads=False, rankdir=rankdir)
    return _MarkedDrawing(graph, options, before if which == "before" else after).draw()


# ---------------------------------------------------------------- what a report may also carry

def _kernel_sources(report):
    """``[(name, source)]`` of the fused kernels a report carries, whatever the field is called."""
    for field in ("kernel_sources", "sources", "kernels", "kernel_source"):
        value = getattr(report, field, None)
        if not value:
            continue
        if isinstance(value, str):
            return [("kernel", value)]
        items = value.items() if isinstance(value, dict) else enumerate(value)
        out = []
        for key, item in items:
            text = item if isinstance(item, str) else getattr(item, "source", None)
            if isinstance(text, str):
                name = key if isinstance(key, str) else getattr(item, "name", f"kernel {key}")
                out.append((str(name), text))
        if out:
            return out
    return []


def _numbers(report):
    """``[(what, before, after)]``: the counts the report has (kernels, peak only when set)."""
    rows = [("nodes", str(report.nodes_before), str(report.nodes_after)),
            ("bytes moved (estimate)", fmt_bytes(report.bytes_before), fmt_bytes(report.bytes_after))]
    kb, ka = getattr(report, "kernels_before", None), getattr(report, "kernels_after", None)
    if ka is not None or kb is not None:
        rows.append(("kernels", "?" if kb is None else str(kb), "?" if ka is None else str(ka)))
    pb, pa = getattr(report, "peak_memory_before", None), getattr(report, "peak_memory_after", None)
    if pa is not None or pb is not None:
        rows.append(("planned peak memory", fmt_bytes(pb), fmt_bytes(pa)))
    return rows


# ---------------------------------------------------------------- the explorer

def _reports_of(obj):
    if isinstance(obj, PassReport):
        return [obj]
    if isinstance(obj, (list, tuple)) and all(isinstance(r, PassReport) for r in obj):
        return list(obj)
    reports = getattr(obj, "reports", None)
    if reports is None and getattr(obj, "executable", None) is not None:   # an lg.jit function
        reports = obj.executable.reports
    if reports is None:
        what = type(obj).__name__
        hint = (" This lg.jit function has not been traced yet: call it once first."
                if hasattr(obj, "executable") else "")
        raise TypeError(f"viz.PassExplorer needs a compiled program (lg.compile(...), an lg.jit "
                        f"function after its first call) or a list of PassReports, not a {what}.{hint}")
    return list(reports)


_BOX = f"font-family:{style.FONT};font-size:12px;color:{style.INK}"
_CELL = "text-align:left;padding:2px 8px"


class PassExplorer:
    """Pick a pass of ``program`` (an ``Executable``, an ``lg.jit`` function after its first
    call, or a list of ``PassReport``s) and see what it did. ``start``: the pass shown first,
    by position or name (default: the first pass that changed something).

    ``select(i or name)`` changes the pass; ``before`` / ``after`` are the marked drawings of
    the selected pass; ``static_html()`` is the still view.
    """

    def __init__(self, program, start=None, *, rankdir="TB", values=True):
        self.reports = _reports_of(program)
        if not self.reports:
            raise ValueError("viz.PassExplorer: this program ran no passes (passes=()), so there is "
                             "nothing to explore; compile it with the default pipeline or a list "
                             "of passes, e.g. lg.compile(y, passes=['dce', 'cse'])")
        self.rankdir = rankdir
        self.values = values
        self._views = {}
        self._widget = None
        self._controls = None
        if start is None:
            start = next((i for i, r in enumerate(self.reports) if r.changed), 0)
        self.index = self._position(start)

    # ---- choosing
    def _position(self, which):
        if isinstance(which, str):
            for i, r in enumerate(self.reports):
                if r.name == which:
                    return i
            raise ValueError(f"no pass named {which!r} here; the passes were: "
                             f"{', '.join(r.name for r in self.reports)}")
        if not isinstance(which, int) or not -len(self.reports) <= which < len(self.reports):
            raise IndexError(f"pass {which!r} out of range: there are {len(self.reports)} passes")
        return which % len(self.reports)

    def select(self, which):
        """Show pass ``which`` (a position, or the name of the first pass so called)."""
        self.index = self._position(which)
        self._sync()
        return self

    @property
    def report(self) -> PassReport:
        return self.reports[self.index]

    def _view(self, which):
        key = (self.index, which)
        if key not in self._views:
            self._views[key] = draw_pass(self.report, which, self.rankdir, self.values)
        return self._views[key]

    @property
    def before(self):
        """The marked drawing of the graph the selected pass was given."""
        return self._view("before")

    @property
    def after(self):
        """The marked drawing of the graph the selected pass returned."""
        return self._view("after")

    def marks(self):
        """``(before, after)`` marks of the selected pass (see ``pass_marks``)."""
        return pass_marks(self.report)

    # ---- HTML pieces
    def _title(self, i):
        return f"{i + 1}. {self.reports[i].name}"

    def pipeline_html(self) -> str:
        """Every pass in one table, one line each; the selected one in bold."""
        rows = []
        for i, r in enumerate(self.reports):
            weight = "bold" if i == self.index else "normal"
            changed = "" if r.changed else " (no change)"
            rows.append(f'<tr style="font-weight:{weight}"><td style="{_CELL}">{escape(self._title(i))}</td>'
                        f'<td style="{_CELL}">{r.nodes_before} &#8594; {r.nodes_after} nodes</td>'
                        f'<td style="{_CELL}">{fmt_bytes(r.bytes_before)} &#8594; {fmt_bytes(r.bytes_after)}'
                        f'{changed}</td></tr>')
        return f'<table style="border-collapse:collapse">{"".join(rows)}</table>'

    def numbers_html(self) -> str:
        head = (f'<tr><th style="{_CELL}"></th><th style="{_CELL}">before</th>'
                f'<th style="{_CELL}">after</th></tr>')
        body = "".join(f'<tr><td style="{_CELL};color:{style.MUTED}">{escape(what)}</td>'
                       f'<td style="{_CELL}">{escape(b)}</td><td style="{_CELL}">{escape(a)}</td></tr>'
                       for what, b, a in _numbers(self.report))
        return f'<table style="border-collapse:collapse">{head}{body}</table>'

    def legend_html(self) -> str:
        before, after = self.marks()
        used = {k for k, _ in before.values()} | {k for k, _ in after.values()}
        items = []
        for kind in MARK_ORDER:
            if kind not in used:
                continue
            look = style.PASS_MARKS[kind]
            line = "dashed" if look.get("dashed") else "solid"
            items.append(f'<span style="display:inline-block;margin-right:10px">'
                         f'<span style="display:inline-block;width:14px;height:9px;border:2px {line} '
                         f'{look["color"]};border-radius:5px;margin-right:4px"></span>'
                         f'{escape(MARK_WORDS[kind])}</span>')
        return "".join(items) or f'<span style="color:{style.MUTED}">this pass changed nothing</span>'

    def details_html(self) -> str:
        """The report's lines, the fused kernels' source and why candidates were not fused."""
        r = self.report
        parts = [f'<pre style="margin:4px 0">{escape(str(r))}</pre>']
        not_fused = getattr(r, "not_fused", ())
        if not_fused:
            items = "".join(f"<li>%{a}: {escape(str(why))}</li>" for a, why in not_fused)
            parts.append(f"<div><b>not fused</b><ul style=\"margin:2px 0\">{items}</ul></div>")
        for name, source in _kernel_sources(r):
            parts.append(f'<details open><summary><b>kernel {escape(name)}</b></summary>'
                         f'<pre style="margin:2px 0;padding:4px;background:#f6f8fa">{escape(source)}</pre>'
                         f'</details>')
        return "".join(parts)

    def body_html(self) -> str:
        """The selected pass: the two marked graphs side by side, the numbers and the details."""
        col = "overflow:auto;max-width:50%;margin-right:12px"
        graphs = (f'<div style="display:flex;align-items:flex-start">'
                  f'<div style="{col}"><div><b>before</b> {escape(self.report.name)}</div>{self.before.svg}</div>'
                  f'<div style="{col}"><div><b>after</b> {escape(self.report.name)}</div>{self.after.svg}</div></div>')
        return (f'<div style="{_BOX}"><div style="margin:4px 0">{self.legend_html()}</div>{graphs}'
                f'<div style="display:flex;align-items:flex-start;margin-top:6px">'
                f'<div style="margin-right:16px">{self.numbers_html()}</div>'
                f'<div>{self.details_html()}</div></div></div>')

    def static_html(self) -> str:
        """The selected pass as plain HTML, no widget and no JavaScript: what a notebook shows
        where no kernel runs the widget."""
        note = (f'<div style="color:{style.MUTED};margin-bottom:4px">PassExplorer: pass '
                f'{self.index + 1} of {len(self.reports)}, a still picture (run the notebook to '
                f'pick another pass)</div>')
        return (f'<div style="{_BOX}">{note}{self.pipeline_html()}'
                f'<div style="margin-top:6px">{self.body_html()}</div></div>')

    # ---- the widget
    @property
    def widget(self):
        """The ipywidgets control (built on first use): a drop-down of passes, the view."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _build_widget(self):
        import ipywidgets as w

        options = [(f"{self._title(i)}{'' if r.changed else ' (no change)'}", i)
                   for i, r in enumerate(self.reports)]
        pick = w.Dropdown(options=options, value=self.index, description="pass",
                          layout=w.Layout(width="320px"))
        table = w.HTML()
        body = w.HTML()
        pick.observe(lambda change: self.select(change["new"]), names="value")
        self._controls = (pick, table, body)
        box = w.VBox([w.HBox([pick, table]), body])
        self._widget = box
        self._sync()
        return box

    def _sync(self):
        if self._controls is None:
            return
        pick, table, body = self._controls
        if pick.value != self.index:
            pick.value = self.index
        table.value = f'<div style="{_BOX}">{self.pipeline_html()}</div>'
        body.value = self.body_html()

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The widget, plus the still view of the selected pass for viewers without a kernel
        (``text/html``; see ``BackpropStepper._repr_mimebundle_``)."""
        bundle = self.widget._repr_mimebundle_()
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self):
        return (f"PassExplorer({len(self.reports)} passes; showing "
                f"{self._title(self.index)}: {self.report.summary().split(': ', 1)[1]})")
