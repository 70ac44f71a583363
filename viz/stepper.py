"""``BackpropStepper``: walk through a forward pass and its backward pass, one op at a time.

The forward steps are the ops that computed ``loss``, each after its inputs; the backward
steps are what ``backward()`` ran, in the engine's order (recorded by
``labgrad.autograd.backward_steps``, which runs backward once, so the leaves' ``.grad``
accumulate exactly as after ``loss.backward()``). Stepping back and forth only changes what
is *shown*; the recorded gradients are replayed, never recomputed.

>>> stepper = viz.BackpropStepper(loss)
>>> stepper                          # in a notebook: play button, slider, graph and table
>>> stepper.goto(5); stepper.shown["grad_out"]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import labgrad as lg
from labgrad.autograd import backward_steps

from . import style
from .draw import DrawOptions
from .forward_figure import Annotations, forward_figure
from .labels import as_array, escape, fmt_table_value, fmt_type, fmt_values
from .tape import read_tape

NO_GRAD = "no gradient needed"
VJP = ("not elementwise: its backward rule computes the vector-Jacobian product "
       "directly, shown as the grad sent")


@dataclass(eq=False)
class Step:
    """One step: ``phase`` is ``"forward"`` or ``"backward"``; ``node`` the tape node (the
    op application); ``label`` e.g. ``"backward 2/5: mul backward"``."""

    phase: str
    node: Any
    op_name: str
    label: str
    number: int                              # 1-based, within its phase
    grad_out: Any = None                     # backward: gradient arriving at the op's output
    grads_sent: tuple = field(default=())    # backward: per input, reduced to its shape (or None)


def sum_to(a, shape):
    """Sum a broadcast gradient back to ``shape``, as the engine does before delivering it."""
    a = np.asarray(a)
    lead = a.ndim - len(shape)
    if lead > 0:
        a = a.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and a.shape[i] != 1)
    return a.sum(axis=axes, keepdims=True) if axes else a


class _StepAnnotations(Annotations):
    """Values appear as the forward pass computes them; gradients as backward delivers them.
    Lines not known yet are laid out invisibly, so the picture keeps its layout."""

    def __init__(self, stepper, index):
        super().__init__()
        self.stepper, self.index = stepper, index
        step = stepper.steps[index]
        self.backward = step.phase == "backward"
        self.forward_done = len(stepper._tape.ops) if self.backward else step.number
        self.backward_done = step.number if self.backward else 0

    def value(self, entry):
        if entry.kind == "number":
            return None, False
        if entry.producer is None:
            return entry.value, True
        return entry.value, self.stepper._tape.by_node[entry.producer].index < self.forward_done

    def grad(self, entry):
        if entry.kind not in ("param", "value", "output"):
            return None, False
        final = self.stepper._accumulated(entry, len(self.stepper._backward))
        if not self.backward:
            return final, False
        so_far = self.stepper._accumulated(entry, self.backward_done)
        return (final, False) if so_far is None else (so_far, True)


class BackpropStepper:
    """Step through the forward and backward pass of ``loss``, one op at a time.

    State, usable without a browser: ``index``, ``steps`` (``Step`` records), ``current``,
    ``shown`` (the table's values: NumPy arrays or strings), ``view`` (the ``GraphView`` of
    this step, current node highlighted with SVG id ``"lg-current"``), and ``next()``,
    ``back()``, ``goto(i)``. In a notebook it displays as a widget: play, back, slider, next.

    ``shown`` keys: forward steps have ``input_0, input_1, ...`` and ``output``; backward
    steps have ``grad_out`` (the incoming gradient), and per input ``i``: ``local_i`` (d out /
    d input, elementwise, for elementwise ops), ``grad_in_i`` (the gradient sent to that input,
    summed to its shape) and ``accum_i`` (that input's gradient accumulated so far).
    """

    def __init__(self, loss, grad=None, *, rankdir="TB", group=None):
        if not isinstance(loss, lg.Tensor):
            raise TypeError(f"BackpropStepper needs a labgrad Tensor (e.g. a loss), "
                            f"not {type(loss).__name__}")
        self.loss = loss
        self._options = DrawOptions(rankdir=rankdir, group=group)
        self._tape = read_tape(loss)
        self._prior = {id(e): None if e.value.grad is None else as_array(e.value.grad).copy()
                       for e in self._tape.tensors if e.kind == "param"}
        records = backward_steps(loss, grad)
        self._backward = records
        self._deliveries = {}
        self.steps = [self._forward_step(op, len(self._tape.ops)) for op in self._tape.ops]
        for k, (node, g, sent) in enumerate(records, 1):
            self.steps.append(self._backward_step(k, node, g, sent, len(records)))
        if not self.steps:
            raise ValueError("BackpropStepper: loss is a leaf tensor; there are no ops to step through")
        self.index = 0
        self._views = {}
        self._shown = {}
        self._widget = None
        self._controls = None

    # ---- building the steps
    def _forward_step(self, op, total):
        name = op.node.op.name
        return Step("forward", op.node, name, f"forward {op.index + 1}/{total}: {name}", op.index + 1)

    def _backward_step(self, k, node, g, sent, total):
        op = self._tape.by_node[node]
        g = as_array(g)
        reduced = []
        for entry, gx in zip(op.inputs, sent):
            if gx is None or entry.kind not in ("param", "value", "output"):
                reduced.append(None)
                continue
            gx = sum_to(as_array(gx), tuple(entry.value.shape))
            reduced.append(gx)
            self._deliveries.setdefault(id(entry), []).append((k, gx))
        if k == 1:
            root = self._tape.by_node[node].output
            self._deliveries.setdefault(id(root), []).insert(0, (0, g))
        name = node.op.name
        return Step("backward", node, name, f"backward {k}/{total}: {name} backward", k, g, tuple(reduced))

    def _accumulated(self, entry, upto):
        """``entry``'s gradient after backward step ``upto`` (1-based; 0 = before backward)."""
        total = self._prior.get(id(entry))
        for k, g in self._deliveries.get(id(entry), ()):
            if k <= upto:
                total = g if total is None else np.asarray(total + g)
        return total

    # ---- moving
    @property
    def current(self) -> Step:
        return self.steps[self.index]

    def goto(self, index):
        """Show step ``index`` (0-based over forward then backward steps; negative from the end)."""
        n = len(self.steps)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"BackpropStepper.goto({index!r}): there are {n} steps "
                             f"({self.num_forward} forward, {n - self.num_forward} backward), "
                             f"so use 0..{n - 1}")
        self.index = int(index) % n
        self._sync()
        return self.current

    def next(self):
        """Go one step on (stays on the last step)."""
        return self.goto(min(self.index + 1, len(self.steps) - 1))

    def back(self):
        """Go one step back (stays on the first step)."""
        return self.goto(max(self.index - 1, 0))

    @property
    def num_forward(self):
        return len(self._tape.ops)

    # ---- what a step shows
    @property
    def shown(self) -> dict:
        """The values in this step's table (NumPy arrays, or strings where there is no array)."""
        if self.index not in self._shown:
            self._shown[self.index] = self._compute_shown(self.current)
        return self._shown[self.index]

    def _compute_shown(self, step):
        op = self._tape.by_node[step.node]
        shown = {"op": step.op_name}
        if step.phase == "forward":
            for i, entry in enumerate(op.inputs):
                shown[f"input_{i}"] = as_array(entry.value)
            shown["output"] = as_array(op.output.value)
            return shown
        shown["grad_out"] = step.grad_out
        local = self._local_derivatives(step, op)
        for i, entry in enumerate(op.inputs):
            needs = entry.kind in ("param", "value", "output")
            shown[f"local_{i}"] = local[i] if needs else NO_GRAD
            sent = step.grads_sent[i]
            shown[f"grad_in_{i}"] = sent if sent is not None else NO_GRAD
            so_far = self._accumulated(entry, step.number) if needs else None
            shown[f"accum_{i}"] = so_far if so_far is not None else NO_GRAD
        return shown

    def _local_derivatives(self, step, op):
        """For an elementwise op, its backward rule applied to ones: d out / d input at each
        output position. Other ops mix positions, so their rule's result is the VJP itself."""
        node = step.node
        if node.op.family != "elementwise":
            return [VJP] * len(op.inputs)
        ones = lg.ones(tuple(step.grad_out.shape), dtype=step.grad_out.dtype)
        with lg.no_grad():
            rule = node.op.backward(node, ones)
        return [as_array(d) if d is not None else NO_GRAD for d in rule]

    @property
    def view(self):
        """The ``GraphView`` of the current step (rendered lazily and cached per step)."""
        if self.index not in self._views:
            step = self.current
            options = DrawOptions(values=True, grads=True, rankdir=self._options.rankdir,
                                  group=self._options.group, highlight=step.node)
            active = self._tape.by_node[step.node] if step.phase == "backward" else None
            self._views[self.index] = forward_figure(self._tape, options,
                                                     _StepAnnotations(self, self.index), active)
        return self._views[self.index]

    def table_html(self) -> str:
        """The current step's table as HTML (what the widget shows beside the graph)."""
        step, shown = self.current, self.shown
        op = self._tape.by_node[step.node]
        rows = []
        if step.phase == "forward":
            for i, entry in enumerate(op.inputs):
                rows.append((f"input {i}: {_describe(entry)}", shown[f"input_{i}"]))
            rows.append((f"output: {_describe(op.output)}", shown["output"]))
        else:
            rows.append(("incoming grad (d loss / d out)", shown["grad_out"]))
            for i, entry in enumerate(op.inputs):
                who = _describe(entry)
                rows.append((f"local d out / d {who}", shown[f"local_{i}"]))
                rows.append((f"grad sent to {who}", shown[f"grad_in_{i}"]))
                rows.append((f"{who} grad so far", shown[f"accum_{i}"]))
        cells = "".join(
            f'<tr><th style="text-align:left;padding:2px 8px;font-weight:normal;color:{style.MUTED}">'
            f'{escape(caption)}</th><td style="text-align:left;padding:2px 8px"><pre style="margin:0">'
            f'{escape(fmt_table_value(value))}</pre></td></tr>' for caption, value in rows)
        return (f'<div style="font-family:{style.FONT};font-size:12px"><b>{escape(step.label)}</b>'
                f'<table style="border-collapse:collapse;margin-top:4px">{cells}</table></div>')

    # ---- the widget
    @property
    def widget(self):
        """The ipywidgets control (built on first use): play, back, slider, next, graph, table."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _build_widget(self):
        import ipywidgets as w

        last = len(self.steps) - 1
        play = w.Play(min=0, max=last, step=1, interval=1500, value=self.index, description="play")
        slider = w.IntSlider(min=0, max=last, step=1, value=self.index, readout=False,
                             continuous_update=True, layout=w.Layout(width="320px"))
        back = w.Button(description="back", icon="step-backward", layout=w.Layout(width="80px"))
        forward = w.Button(description="next", icon="step-forward", layout=w.Layout(width="80px"))
        label = w.HTML()
        graph = w.HTML(layout=w.Layout(overflow="auto", max_width="70%"))
        table = w.HTML(layout=w.Layout(margin="0 0 0 12px"))
        w.jslink((play, "value"), (slider, "value"))
        slider.observe(lambda change: self.goto(change["new"]), names="value")
        back.on_click(lambda _: self.back())
        forward.on_click(lambda _: self.next())
        self._controls = (slider, label, graph, table)
        box = w.VBox([w.HBox([play, back, slider, forward, label]), w.HBox([graph, table])])
        self._widget = box
        self._sync()
        return box

    def _sync(self):
        """Bring the widget (if shown) in line with ``index``."""
        if self._controls is None:
            return
        slider, label, graph, table = self._controls
        if slider.value != self.index:
            slider.value = self.index
        label.value = f'<span style="font-family:{style.FONT}">{escape(self.current.label)}</span>'
        graph.value = self.view.svg
        table.value = self.table_html()

    def static_html(self) -> str:
        """The current step as plain HTML (controls' caption, graph, table): no widget, no
        JavaScript. This is what a notebook shows where no kernel runs the widget."""
        note = (f'<div style="font-family:{style.FONT};font-size:12px;color:{style.MUTED};'
                f'margin-bottom:4px">BackpropStepper: step {self.index + 1} of {len(self.steps)}, '
                f'a still picture (run the notebook to step through all '
                f'{len(self.steps)} steps)</div>')
        return (f'<div>{note}<div style="display:flex;align-items:flex-start">'
                f'<div style="overflow:auto;max-width:70%">{self.view.svg}</div>'
                f'<div style="margin:0 0 0 12px">{self.table_html()}</div></div></div>')

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The widget, plus a still picture of the current step for viewers without a kernel.

        A front end with a live kernel renders the widget view; nbconvert skips a widget view
        whose state was not saved and uses ``text/html`` instead, and a viewer that renders no
        HTML can use the ``image/svg+xml`` drawing of the step."""
        bundle = self.widget._repr_mimebundle_()
        bundle["text/html"] = self.static_html()
        bundle["image/svg+xml"] = self.view.svg
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self):
        backward = len(self.steps) - self.num_forward
        return (f"BackpropStepper({self.num_forward} forward + {backward} backward steps; "
                f"at {self.current.label})")


def _describe(entry):
    t = entry.value
    if entry.kind == "number":
        return f"the number {fmt_values(t)}"
    return t.name if t.name else fmt_type(t)
