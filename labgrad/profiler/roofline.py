"""Roofline data: where each op sits against the device's measured peaks.

For an op, the arithmetic intensity is ``flops / bytes`` (from its ``cost`` rule): how much
work it does per byte it moves. Its attained throughput is ``flops / time`` (measured). The
roof at that intensity is ``min(peak_flops, intensity * bandwidth)``: below the ridge point an
op is memory-bound (more bandwidth would help, faster arithmetic would not); above it,
compute-bound. ``fraction`` is how much of its roof an op reaches; a small fraction for a
small op usually means framework overhead (Python, dispatch), not the hardware.
"""
from __future__ import annotations

from .peaks import measure_peaks

__all__ = ["roofline"]


def roofline(prof, peaks=None, group_by="op"):
    """One dict per op (forward events with a known cost), sorted by time spent:

    ``name, count, flops, bytes, seconds, intensity`` (flop/byte), ``attained`` (flop/s),
    ``roof`` (flop/s), ``fraction`` (attained / roof), ``bound`` (``"memory"`` or
    ``"compute"``), plus ``peaks`` (the ``Peaks`` used) in every row.
    """
    events = [e for e in prof.events if e.category in ("op", "kernel") and e.flops is not None
              and e.bytes and e.phase != "backward"]
    if peaks is None:
        devices = {e.device for e in events} or {"cpu"}
        if len(devices) > 1:
            raise ValueError(f"this profile ran on several devices ({', '.join(sorted(devices))}); "
                             f"pass the peaks of the one you want: prof.roofline(measure_peaks(device))")
        peaks = measure_peaks(devices.pop())
    rows = {}
    for e in events:
        if e.device != peaks.device:
            continue
        key = e.key if group_by == "op" else e.name
        r = rows.setdefault(key, {"name": key, "count": 0, "flops": 0, "bytes": 0, "seconds": 0.0})
        r["count"] += 1
        r["flops"] += e.flops
        r["bytes"] += e.bytes
        r["seconds"] += e.self_time
    out = []
    for r in rows.values():
        r["intensity"] = r["flops"] / r["bytes"]
        r["attained"] = r["flops"] / r["seconds"] if r["seconds"] > 0 else 0.0
        r["roof"] = peaks.roof(r["intensity"])
        r["fraction"] = r["attained"] / r["roof"] if r["roof"] > 0 else 0.0
        r["bound"] = "memory" if r["intensity"] < peaks.ridge else "compute"
        r["peaks"] = peaks
        out.append(r)
    return sorted(out, key=lambda r: -r["seconds"])
