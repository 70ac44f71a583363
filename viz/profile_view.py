"""``viz.ProfileView(prof)``: a profile as pictures: timeline, op table, roofline, memory.

    >>> with lg.profiler.profile() as prof:
    ...     loss = F.cross_entropy(model(x), t); loss.backward()
    >>> view = viz.ProfileView(prof, peaks=lg.profiler.measure_peaks())
    >>> view                       # in a notebook: all four panels, as HTML with PNG images
    >>> view.timeline()            # one panel, a matplotlib Figure
    >>> viz.draw(loss, heat=view.heat(loss))     # the graph, ops coloured by their time

The notebook display is static HTML (tables and base64 PNG images), so a notebook saved with
its outputs shows the profile without a kernel. ``repr`` counts events, phases, threads and
arrays, never times, so it is the same on every run of the same code.
"""
from __future__ import annotations

import base64
import html
import io

__all__ = ["ProfileView", "Picture"]

FORWARD = "#42a5f5"     # blue: forward ops
BACKWARD = "#ef6c00"    # orange: backward rules
COLORS = {"range": "#bdbdbd", "comm": "#8e24aa", "kernel": "#2e7d32", "trace": "#90a4ae"}


def _event_color(event):
    if event.category == "op":
        return BACKWARD if event.phase == "backward" else FORWARD
    return COLORS.get(event.category, "#9e9e9e")


def _figure(width, height):
    from matplotlib.figure import Figure      # not pyplot: no global state, nothing shown twice
    return Figure(figsize=(width, height), dpi=100)


def _png(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class Picture:
    """One panel of a ``ProfileView``: a matplotlib ``Figure`` (``.figure``) that shows itself
    as a PNG in a notebook. Anything else (``.axes``, ``.savefig(path)``) is the figure's."""

    def __init__(self, figure, name):
        self.figure = figure
        self.name = name

    def __getattr__(self, attr):
        if attr == "figure":            # not set yet (copying, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.figure, attr)

    def _repr_png_(self):
        return _png(self.figure)

    def __repr__(self):
        return f"<ProfileView {self.name}>"


class ProfileView:
    """Pictures of a finished ``lg.profiler`` profile.

    ``peaks``: a ``lg.profiler.Peaks`` (``measure_peaks()``) for the roofline panel; without it
    the roofline is left out of the display (``roofline()`` still measures them when called).
    ``top``: how many rows the op table shows.

    Panels (each a ``Picture``: a matplotlib ``Figure`` shown as a PNG): ``timeline()`` (one lane per thread and nesting depth;
    forward ops blue, backward orange, ranges grey, communication purple, kernels green),
    ``roofline()`` (ops by arithmetic intensity and attained flop/s under the measured roofs),
    ``memory()`` (bytes live over time, the peak marked). ``table()`` is ``prof.table``.
    ``heat(loss)`` gives per-op times for ``viz.draw(loss, heat=...)`` (``heat(step)`` per node of a
    compiled or jitted step).
    """

    def __init__(self, prof, peaks=None, top=12):
        if getattr(prof, "wall_time", None) is None:
            raise ValueError("ProfileView needs a finished profile: view it after the "
                             "`with lg.profiler.profile() as prof:` block has ended")
        self.prof = prof
        self.peaks = peaks
        self.top = top

    # ---- counts (stable)
    def counts(self):
        """Events by kind: ``{"forward": n, "backward": n, "range": n, ...}``."""
        out = {}
        for e in self.prof.events:
            kind = e.phase if e.category == "op" else e.category
            out[kind] = out.get(kind, 0) + 1
        return out

    def threads(self):
        """Thread ids in the order they first appear."""
        seen = []
        for e in self.prof.events:
            if e.tid not in seen:
                seen.append(e.tid)
        return seen

    def __repr__(self):
        parts = ", ".join(f"{n} {k}" for k, n in self.counts().items())
        n_threads = len(self.threads())
        text = (f"ProfileView({len(self.prof.events)} events: {parts or 'none'}; "
                f"{n_threads} thread{'s' if n_threads != 1 else ''}")
        if self.prof.memory is not None:
            text += f"; memory: {len(self.prof.memory.allocations)} arrays"
        return text + ")"

    # ---- panels
    def table(self, sort_by="self", group_by="op", limit=None):
        """The op table (``prof.table``): self and total time per op, flops, bytes."""
        return self.prof.table(sort_by=sort_by, group_by=group_by, limit=limit or self.top)

    def timeline(self, width=9.0):
        """Each event as a bar from its start to its end, one lane per (thread, depth)."""
        events = self.prof.events
        threads = self.threads()
        lanes = sorted({(threads.index(e.tid), e.depth) for e in events})
        lane_of = {lane: i for i, lane in enumerate(lanes)}
        fig = _figure(width, 0.9 + 0.32 * max(len(lanes), 1))
        ax = fig.add_subplot()
        scale = 1e3
        span = max((e.end for e in events), default=0.0) - min((e.start for e in events), default=0.0)
        for e in events:
            y = lane_of[(threads.index(e.tid), e.depth)]
            ax.barh(y, max(e.dur, 1e-9) * scale, left=e.start * scale, height=0.8,
                    color=_event_color(e), edgecolor="white", linewidth=0.3)
            if span > 0 and e.dur > 0.07 * span:          # wide enough to carry its name
                ax.text((e.start + e.dur / 2) * scale, y, e.key, ha="center", va="center",
                        fontsize=7, clip_on=True)
        ax.set_yticks(range(len(lanes)))
        ax.set_yticklabels([f"thread {t}" + (f" · depth {d}" if d else "") for t, d in lanes],
                           fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("time since the profile started (ms)")
        from matplotlib.patches import Patch
        used = {(e.category, e.phase) for e in events}
        legend = [Patch(color=FORWARD, label="forward op"), Patch(color=BACKWARD, label="backward rule")]
        legend = [p for p, k in zip(legend, ("forward", "backward")) if ("op", k) in used]
        legend += [Patch(color=c, label=k) for k, c in COLORS.items() if any(u[0] == k for u in used)]
        if legend:
            ax.legend(handles=legend, fontsize=8, loc="center left", frameon=False,
                      bbox_to_anchor=(1.0, 0.5))
        ax.set_title("timeline", fontsize=10, loc="left")
        fig.tight_layout()
        return Picture(fig, "timeline")

    def memory(self, width=9.0):
        """Bytes live over time (a step curve), the peak marked."""
        mem = self.prof.memory
        if mem is None:
            raise ValueError("this profile has no memory timeline: profile with profile_memory=True")
        fig = _figure(width, 2.6)
        ax = fig.add_subplot()
        ts = [t * 1e3 for t, _ in mem.points]
        bs = [b / 1024 for _, b in mem.points]
        ax.step(ts, bs, where="post", color="#1565c0", linewidth=1.2)
        ax.fill_between(ts, bs, step="post", color="#90caf9", alpha=0.5)
        ax.plot([mem.peak_time * 1e3], [mem.peak_bytes / 1024], "v", color="#c62828")
        ax.annotate(f"peak {mem.peak_bytes / 1024:.1f} KiB", (mem.peak_time * 1e3, mem.peak_bytes / 1024),
                    textcoords="offset points", xytext=(6, -2), fontsize=8, color="#c62828")
        ax.set_xlabel("time since the profile started (ms)")
        ax.set_ylabel("live (KiB)")
        ax.set_title("memory: bytes the computation keeps alive", fontsize=10, loc="left")
        fig.tight_layout()
        return Picture(fig, "memory curve")

    def roofline(self, peaks=None, width=6.5):
        """Each op (summed over its calls) at (flops/byte, attained flop/s) under the roofs."""
        peaks = peaks or self.peaks
        rows = self.prof.roofline(peaks)
        peaks = rows[0]["peaks"] if rows else peaks
        fig = _figure(width, 4.0)
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.set_yscale("log")
        if peaks is not None:
            lo, hi = 1e-2, 1e3
            xs = [lo * (hi / lo) ** (k / 100) for k in range(101)]
            ax.plot(xs, [peaks.roof(x) / 1e9 for x in xs], color="#37474f", linewidth=1.5)
            ax.axvline(peaks.ridge, color="#b0bec5", linestyle=":", linewidth=1)
            ax.annotate(f"ridge {peaks.ridge:.1f} flop/byte", (peaks.ridge, peaks.flops / 1e9),
                        textcoords="offset points", xytext=(4, -12), fontsize=8, color="#546e7a")
        for r in rows:
            if r["attained"] <= 0:
                continue
            color = BACKWARD if r["name"].endswith("(backward)") else FORWARD
            ax.plot([r["intensity"]], [r["attained"] / 1e9], "o", color=color)
            ax.annotate(r["name"], (r["intensity"], r["attained"] / 1e9), textcoords="offset points",
                        xytext=(4, 3), fontsize=7)
        ax.set_xlabel("arithmetic intensity (flop/byte)")
        ax.set_ylabel("attained GFLOP/s")
        where = f" · peaks measured on {peaks.device}" if peaks is not None else ""
        ax.set_title(f"roofline{where}", fontsize=10, loc="left")
        fig.tight_layout()
        return Picture(fig, "roofline")

    # ---- the graph, heat-coloured
    def heat(self, loss):
        """``{node: seconds}`` to pass to ``viz.draw(..., heat=...)``.

        ``loss`` an eager tensor: its forward ops' tape nodes. Events are matched to tape
        nodes in the order they ran (the tape's forward order is a subsequence of the
        profile's forward op events); draw the loss of the profiled step, before anything
        else runs on its graph.
        ``loss`` an ``Executable`` (or a ``lg.jit`` function): each node of its graph, with
        the time of its compiled code summed over the profiled runs (the profiler records
        one event per node and fused kernel, named by its ``%`` number).
        """
        from .tape import forward_order
        graph = getattr(loss, "graph", None)
        if graph is None and hasattr(loss, "executable"):
            graph = getattr(loss.executable, "graph", None)
        if graph is not None and hasattr(graph, "nodes"):
            return self._graph_heat(graph)
        node = getattr(loss, "grad_fn", None)
        if node is None:
            return {}
        order = forward_order(node)
        events = [e for e in self.prof.events
                  if e.category == "op" and e.phase == "forward"
                  and (e.parent is None or self.prof.events[e.parent].category != "op")]
        out, i = {}, 0
        for n in order:
            while i < len(events) and events[i].name != n.op.name:
                i += 1
            if i == len(events):
                break
            out[n] = events[i].dur
            i += 1
        return out

    def _graph_heat(self, graph):
        seconds = {}
        for e in self.prof.events:
            args = e.args or {}
            if e.category == "kernel" and args.get("graph") == graph.name and "node" in args:
                seconds[args["node"]] = seconds.get(args["node"], 0.0) + e.dur
        return {n: seconds[f"%{n.id}"] for n in graph.nodes if f"%{n.id}" in seconds}

    # ---- display
    def _png(self, picture):
        return base64.b64encode(_png(picture.figure)).decode("ascii")

    def _table_html(self):
        t = self.table()
        head = ("<tr><th style='text-align:left'>op</th><th>calls</th><th>total ms</th>"
                "<th>self ms</th><th>self %</th><th>MFLOP</th><th>MB</th></tr>")
        body = []
        for r in t.rows:
            body.append("<tr><td style='text-align:left'>{}</td><td>{}</td><td>{:.3f}</td><td>{:.3f}</td>"
                        "<td>{:.1f}</td><td>{}</td><td>{}</td></tr>".format(
                            html.escape(r["name"]), r["count"], r["total_s"] * 1e3, r["self_s"] * 1e3,
                            100 * r["self_s"] / (t.self_total_s or 1.0),
                            "" if r["flops"] is None else f"{r['flops'] / 1e6:.3f}",
                            "" if r["bytes"] is None else f"{r['bytes'] / 1e6:.3f}"))
        return f"<table style='font-size:12px'>{head}{''.join(body)}</table>"

    def _repr_html_(self):
        parts = [f"<div><b>{html.escape(repr(self))}</b>"]
        parts.append(f"<p>op table (top {self.top}, by self time):</p>{self._table_html()}")
        panels = [self.timeline()]
        if self.prof.memory is not None:
            panels.append(self.memory())
        if self.peaks is not None:
            panels.append(self.roofline())
        for fig in panels:
            parts.append(f"<img src='data:image/png;base64,{self._png(fig)}'/>")
        parts.append("</div>")
        return "".join(parts)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self._repr_html_(), "text/plain": repr(self)}
