"""``viz.draw_schedule(graph)``: a schedule as a picture: live memory at each step, by device.

    >>> viz.draw_schedule(f)                               # an Executable, a Graph or a Schedule
    >>> viz.draw_schedule(before, after, titles=["as built", "memory-aware"])   # same scale

One bar per step (the node that runs, named under it), as tall as the bytes live while it
runs (its inputs and its result), coloured by the device that holds them; the peak is marked.
Placeholders, variables and constants are left out (they allocate nothing). The picture is a
matplotlib ``Figure`` shown as a PNG, so a saved notebook shows it without a kernel.
"""
from __future__ import annotations

from labgrad.graph.passes import Schedule, schedule_table

from .profile_view import Picture, _figure

__all__ = ["draw_schedule", "SchedulePicture"]

DEVICE_COLORS = ["#42a5f5", "#ef6c00", "#2e7d32", "#8e24aa"]    # cpu first, then others in order
_SOURCES = ("placeholder", "variable", "constant")


class SchedulePicture(Picture):
    """The figure ``draw_schedule`` returns: a PNG in a notebook, ``.figure`` for matplotlib."""

    def __repr__(self):
        return f"<schedule picture: {len(self.figure.axes)} panel(s)>"


def _schedule(item):
    return item if isinstance(item, Schedule) else schedule_table(item)


def _unit(peak):
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if peak >= size:
            return unit, size
    return "B", 1.0


def draw_schedule(*schedules, titles=None, width=None):
    """A ``Picture`` with one panel per schedule (Graphs, Executables or ``Schedule``s), one
    above the other on the same scale; ``titles`` names the panels."""
    if not schedules:
        raise TypeError("draw_schedule needs at least one graph, executable or schedule")
    scheds = [_schedule(s) for s in schedules]
    steps = [[s for s in sc.steps if s.node.kind not in _SOURCES] for sc in scheds]
    devices = []
    for rows in steps:
        for s in rows:
            for d in sorted(s.live_by_device, key=lambda d: (not d.startswith("cpu"), d)):
                if d not in devices:
                    devices.append(d)
    colors = {d: DEVICE_COLORS[i % len(DEVICE_COLORS)] for i, d in enumerate(devices)}
    top = max((sc.peak for sc in scheds), default=0) or 1
    unit, size = _unit(top)
    most = max((len(r) for r in steps), default=1)
    fig = _figure(width or max(6.0, 0.42 * most + 1.5), 2.5 * len(scheds) + 0.4)
    for k, (sc, rows) in enumerate(zip(scheds, steps)):
        ax = fig.add_subplot(len(scheds), 1, k + 1)
        xs = list(range(len(rows)))
        bottom = [0.0] * len(rows)
        for d in devices:
            h = [s.live_by_device.get(d, 0) / size for s in rows]
            ax.bar(xs, h, bottom=bottom, color=colors[d], width=0.8, label=d)
            bottom = [b + v for b, v in zip(bottom, h)]
        ax.axhline(sc.peak / size, color="#c62828", linestyle="--", linewidth=1)
        ax.text(len(rows) - 0.5, sc.peak / size, f"peak {sc.peak / size:.3g} {unit}", ha="right",
                va="bottom", fontsize=8, color="#c62828")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"%{s.node.id} {s.node.op_name}" for s in rows], rotation=60,
                           ha="right", fontsize=7)
        ax.set_xlim(-0.6, max(most, 1) - 0.4)
        ax.set_ylim(0, top / size * 1.15)
        ax.set_ylabel(f"live ({unit})")
        title = titles[k] if titles and k < len(titles) else sc.graph.name
        ax.set_title(f"{title}: live memory at each step", fontsize=10, loc="left")
        if len(devices) > 1 or k == 0:
            ax.legend(loc="upper left", fontsize=7, frameon=False, title="device", title_fontsize=7)
    fig.tight_layout()
    return SchedulePicture(fig, "schedule")
