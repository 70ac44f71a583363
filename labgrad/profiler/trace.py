"""Export a profile in the Chrome trace event format (JSON), which Perfetto
(https://ui.perfetto.dev) and chrome://tracing open.

Each event becomes a complete event (``"ph": "X"``) with ``ts`` and ``dur`` in microseconds,
``pid`` (the process: the MPI rank when an MPI launcher started it, else the OS process
id), ``tid`` (a small number per thread), ``cat`` (``"forward"``, ``"backward"``, ``"range"``,
``"comm"``, ``"kernel"``) and ``args`` (phase, device, shapes, dtypes, flops, bytes, scope).
Viewers nest complete events of one thread by time, so an event's children sit under it.
Name scopes (module calls) become enclosing ``"scope"`` events (see ``scope_events``).
The memory timeline becomes a counter track (``"ph": "C"``, name ``"memory"``), and
metadata events (``"ph": "M"``) name the process and threads.
"""
from __future__ import annotations

import json
import os

__all__ = ["chrome_trace", "write_chrome_trace", "merge_chrome_traces"]


_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")


def _pid():
    """The MPI rank the launcher gave this process (mpiexec, Open MPI, Slurm set these), so
    traces of several ranks merge into one timeline; else the OS process id."""
    for var in _RANK_VARIABLES:
        if os.environ.get(var, "").isdigit():
            rank = int(os.environ[var])
            return rank, f"labgrad rank {rank}"
    return os.getpid(), "labgrad"


def chrome_trace(prof):
    """The trace as a dict ``{"traceEvents": [...], "displayTimeUnit": "ms"}``."""
    pid, pname = _pid()
    tids = {}
    out = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": pname}}]
    for e in prof.events:
        if e.tid not in tids:
            tids[e.tid] = len(tids)
            out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tids[e.tid],
                        "args": {"name": "main" if tids[e.tid] == 0 else f"thread {tids[e.tid]}"}})
        args = {"device": e.device}
        if e.phase is not None:
            args["phase"] = e.phase
        for field in ("shapes", "dtypes", "flops", "bytes", "scope"):
            value = getattr(e, field)
            if value is not None:
                args[field] = [list(s) for s in value] if field == "shapes" else value
        if e.args:
            args.update({k: v if isinstance(v, (int, float, str, bool)) else str(v)
                         for k, v in e.args.items()})
        out.append({"name": e.key, "cat": e.phase or e.category, "ph": "X",
                    **_span(e.start, e.start + e.dur),
                    "pid": pid, "tid": tids[e.tid], "args": args})
    out.extend(scope_events(prof, pid, tids))
    if prof.memory is not None:
        for t, live in prof.memory.points:
            out.append({"name": "memory", "ph": "C", "ts": round(t * 1e6, 3), "pid": pid,
                        "tid": 0, "args": {"bytes": live}})
    return {"traceEvents": out, "displayTimeUnit": "ms",
            "otherData": {"labgrad_started_at": prof.started_at}}


def scope_events(prof, pid, tids):
    """Name scopes (``nn.Module`` calls, ``lg.name_scope``) as enclosing events, ``cat: "scope"``.

    Consecutive ops of one thread, under the same parent, whose scopes share a prefix are
    covered by one event per scope level (``Sequential``, then ``Sequential/0:Linear``), from
    the first op's start to the last op's end; so the viewer shows the model's structure
    above its ops. Derived from the ops' ``scope``: nothing is timed for them.
    """
    out = []
    open_ = {}          # (tid, parent) -> [[name, start, end], ...], outermost first

    def close(key, keep):
        segments = open_.get(key, [])
        while len(segments) > keep:
            name, start, end = segments.pop()
            out.append({"name": name.rpartition("/")[2], "cat": "scope", "ph": "X",
                        **_span(start, end),
                        "pid": pid, "tid": tids[key[0]], "args": {"scope": name}})

    last_key = {}
    for e in prof.events:
        key = (e.tid, e.parent)
        if last_key.get(e.tid) not in (None, key):
            close(last_key[e.tid], 0)   # another parent: scopes under the old one end
        last_key[e.tid] = key
        parts = e.scope.split("/") if e.scope and e.category == "op" else []
        paths = ["/".join(parts[:i + 1]) for i in range(len(parts))]
        segments = open_.setdefault(key, [])
        same = 0
        while same < min(len(segments), len(paths)) and segments[same][0] == paths[same]:
            same += 1
        close(key, same)
        for path in paths[same:]:
            segments.append([path, e.start, e.end])
        for segment in segments:
            segment[2] = max(segment[2], e.end)
    for key in list(open_):
        close(key, 0)
    return out


def write_chrome_trace(prof, path):
    """Write ``chrome_trace(prof)`` to ``path`` and return the path."""
    with open(path, "w") as f:
        json.dump(chrome_trace(prof), f)
    return path


def merge_chrome_traces(paths, out_path):
    """Merge the traces of several processes (one per rank) into one file, on one time axis.

    Each trace's times start at its own profile's start; they are shifted by the wall-clock
    difference between the starts (``otherData.labgrad_started_at``), so the ranks' events line
    up (exactly on one machine; across machines only as well as their clocks agree). Each rank
    keeps its own ``pid``, so the viewer shows one process per rank.
    """
    traces = []
    for path in paths:
        with open(path) as f:
            traces.append(json.load(f))
    starts = [t.get("otherData", {}).get("labgrad_started_at") for t in traces]
    if None in starts:
        raise ValueError("merge_chrome_traces needs traces written by labgrad's "
                         "export_chrome_trace (they record when each profile started)")
    first = min(starts)
    events = []
    for trace, start in zip(traces, starts):
        shift = (start - first) * 1e6
        for e in trace["traceEvents"]:
            if "ts" in e:
                e = dict(e, ts=round(e["ts"] + shift, 3))
            events.append(e)
    with open(out_path, "w") as f:
        json.dump({"traceEvents": events, "displayTimeUnit": "ms",
                   "otherData": {"labgrad_started_at": first}}, f)
    return out_path


def _span(start, end):
    """``ts`` and ``dur`` in microseconds, rounded so that rounding cannot make a child event
    stick out of its parent: the end is rounded, not the duration."""
    ts = round(start * 1e6, 3)
    return {"ts": ts, "dur": round(round(end * 1e6, 3) - ts, 3)}
