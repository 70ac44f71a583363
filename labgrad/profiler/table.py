"""The op table: events grouped and summed, with self and total time.

Total time of an event: from its start to its end, everything it contains included.
Self time: its total time minus the total time of the events directly inside it. For an
eager op the two are equal (an op contains nothing); they differ for a range
(``profiler.record``), a communication span or a compiled function, whose self time is the
time not accounted for by the events inside it. Summed over a group, the self times of all
events add up to the profiled time covered by events, with nothing counted twice; total
times do count nested time once per level.
"""
from __future__ import annotations

__all__ = ["ProfileTable"]

SORT_KEYS = ("self", "total", "count", "flops", "bytes", "name")
GROUPS = ("op", "name", "scope", "shape", "category")


def _group_key(event, group_by):
    if group_by == "op":
        return event.key
    if group_by == "name":
        return event.name
    if group_by == "scope":
        return event.scope or "(no scope)"
    if group_by == "category":
        return event.category
    shapes = ", ".join(str(list(s)) for s in event.shapes or ())
    return f"{event.key} [{shapes}]"


class ProfileTable:
    """``prof.table(sort_by="self", group_by="op", phase=None, limit=None)``.

    ``group_by``: ``"op"`` (op name, backward rules apart), ``"name"`` (forward and backward
    together), ``"scope"`` (the module or name scope), ``"shape"`` (op and input shapes),
    ``"category"`` (op, range, comm, kernel). ``sort_by``: ``"self"``, ``"total"``,
    ``"count"``, ``"flops"``, ``"bytes"``, ``"name"``. ``phase``: keep only ``"forward"`` or
    ``"backward"`` events. ``rows`` holds the numbers as dicts (seconds, flops, bytes).
    """

    def __init__(self, prof, sort_by="self", group_by="op", phase=None, limit=None):
        if sort_by not in SORT_KEYS:
            raise ValueError(f"sort_by={sort_by!r}: choose one of {', '.join(SORT_KEYS)}")
        if group_by not in GROUPS:
            raise ValueError(f"group_by={group_by!r}: choose one of {', '.join(GROUPS)}")
        if group_by == "shape" and not prof.record_shapes:
            raise ValueError("group_by='shape' needs the shapes: profile with record_shapes=True")
        groups = {}
        for e in prof.events:
            if phase is not None and e.phase != phase:
                continue
            row = groups.get(_group_key(e, group_by))
            if row is None:
                row = groups[_group_key(e, group_by)] = {
                    "name": _group_key(e, group_by), "count": 0, "total_s": 0.0, "self_s": 0.0,
                    "flops": None, "bytes": None}
            row["count"] += 1
            row["total_s"] += e.dur
            row["self_s"] += e.self_time
            if e.flops is not None:
                row["flops"] = (row["flops"] or 0) + e.flops
            if e.bytes is not None:
                row["bytes"] = (row["bytes"] or 0) + e.bytes
        key = {"self": lambda r: -r["self_s"], "total": lambda r: -r["total_s"],
               "count": lambda r: -r["count"], "flops": lambda r: -(r["flops"] or 0),
               "bytes": lambda r: -(r["bytes"] or 0), "name": lambda r: r["name"]}[sort_by]
        self.rows = sorted(groups.values(), key=key)[:limit]
        self.self_total_s = sum(r["self_s"] for r in groups.values())
        self.group_by = group_by

    def __str__(self):
        all_self = self.self_total_s or 1.0
        header = (f"{self.group_by:<34} {'calls':>6} {'total ms':>9} {'self ms':>9} {'self %':>7} "
                  f"{'avg us':>8} {'MFLOP':>9} {'MB':>8} {'GFLOP/s':>8}")
        lines = [header, "-" * len(header)]
        for r in self.rows:
            flops = "" if r["flops"] is None else f"{r['flops'] / 1e6:.3f}"
            mb = "" if r["bytes"] is None else f"{r['bytes'] / 1e6:.3f}"
            rate = ("" if r["flops"] is None or r["self_s"] <= 0
                    else f"{r['flops'] / r['self_s'] / 1e9:.2f}")
            lines.append(f"{r['name'][:34]:<34} {r['count']:>6} {r['total_s'] * 1e3:>9.3f} "
                         f"{r['self_s'] * 1e3:>9.3f} {100 * r['self_s'] / all_self:>6.1f}% "
                         f"{r['total_s'] / r['count'] * 1e6:>8.1f} {flops:>9} {mb:>8} {rate:>8}")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)
