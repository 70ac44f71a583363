"""The profiler: where the time and memory of eager code go, op by op.

    with lg.profiler.profile() as prof:
        loss = F.cross_entropy(model(x), t); loss.backward()
    print(prof.table(sort_by="self"))          # op table: self and total time, flops, bytes
    prof.export_chrome_trace("step.json")       # open at https://ui.perfetto.dev
    print(prof.memory.summary())               # the peak and what was alive at it
    prof.roofline(lg.profiler.measure_peaks("cpu"))

It is an interpreter hook (``labgrad.context``): installed only inside ``with profile()``,
so code runs exactly as fast as before when no profile is active. Modules: ``events``
(what is recorded), ``profile`` (the hook and the span API for compiled code), ``table``,
``trace`` (Chrome trace export), ``memory`` (the memory timeline), ``peaks`` and
``roofline``.
"""
from .events import Event  # noqa: F401
from .memory import Allocation, MemoryTimeline  # noqa: F401
from .peaks import Peaks, measure_peaks  # noqa: F401
from .profile import Profile, active, begin, end, profile, record  # noqa: F401
from .table import ProfileTable  # noqa: F401
from .trace import chrome_trace, merge_chrome_traces  # noqa: F401

__all__ = ["profile", "Profile", "record", "begin", "end", "active", "measure_peaks", "Peaks",
           "Event", "MemoryTimeline", "Allocation", "ProfileTable", "chrome_trace", "merge_chrome_traces"]
