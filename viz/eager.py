"""Drawers for eager tensors: ``viz.draw(loss)`` and ``viz.draw(loss, backward=True)``."""
from __future__ import annotations

import labgrad as lg

from .backward_figure import backward_figure
from .draw import register_drawer
from .forward_figure import forward_figure
from .tape import read_tape


@register_drawer(lg.Tensor)
def draw_tensor(tensor, options):
    tape = read_tape(tensor)
    return backward_figure(tape, options) if options.backward else forward_figure(tape, options)
