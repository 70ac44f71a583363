"""The schedule: the order in which a graph's nodes run, what it costs in memory, and a better one.

A ``Graph`` lists its nodes in one topological order, and compiled code runs them in exactly
that order. Any other topological order computes the same values, but not with the same
memory: a result stays allocated from the node that makes it until its last reader has run.
Run four wide branches side by side and all four are alive at once; run each branch to its
end (a small sum) before starting the next, and only one is::

    print(schedule_table(graph))        # step, node, device, bytes allocated / freed, live after
    g, report = schedule_memory(graph)  # the pass "schedule": a lower-peak order
    f = lg.compile(y, passes=["schedule", "memory"])    # (not in the default pipeline)

**What is counted** (``live_memory``): the result of every node that computes a new array (ops
and fused kernels; ``to_device`` makes one on its target device), from its node until the last
node that reads it or a view of it; outputs and values a state update stores stay to the end.
Views, and the fed inputs, variables and constants (which exist anyway), count zero. This is
the ``del``-after-last-use behaviour of compiled code without a memory plan (and what
``MemoryPlan.peak_freed`` reports).

**The memory-aware order** (``memory_order``) is a greedy list scheduler: among the nodes whose
inputs are ready, run the one that adds the fewest bytes, that is its result's size minus the
bytes its run frees (inputs it is the last reader of); ties keep the graph's order. This is a
heuristic: the best order for the peak is NP-hard in general (it is register allocation's
"register sufficiency" problem), and a greedy choice can be myopic. The pass therefore keeps
the order it was given unless the new one has a strictly lower simulated peak: it never makes
that number worse.

**What never moves** (``dependencies``): besides data edges, nodes with effects keep their
relative order: reads of a variable (``variable`` nodes) and writes of it (``assign``) keep
theirs, and state updates, random draws, other impure ops and control flow (``cond``,
``while``, which run their subgraphs as one step) keep theirs. Subgraphs keep their own order.

Measuring it: ``with lg.profiler.profile(profile_memory=True) as prof: executable(x)`` records
every compiled node and follows each array it returns, so ``prof.memory.peak_bytes`` is the
measured peak of the executable's order. ``replay(graph, *feeds)`` does the same for any graph
without compiling it: it runs the nodes one by one as eager ops, in order, dropping each value
after its last use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...autograd import no_grad
from ...backends import get_backend
from ...creation import tensor
from ...dispatch import apply
from ...ops.registry import Aval
from ...tensor import Tensor
from ..ir import Graph, Node
from .memory import alias_roots, liveness, release_points
from .report import fmt_bytes, make_report

__all__ = ["schedule_memory", "memory_order", "dependencies", "live_memory", "schedule_table",
           "Schedule", "ScheduleStep", "replay"]


# ---------------------------------------------------------------- memory of an order

def _nbytes(node):
    avals = node.aval if isinstance(node.aval, tuple) else (node.aval,)
    total = 0
    for a in avals:
        if isinstance(a, Aval) and None not in a.shape:
            total += int(np.prod(a.shape, dtype=np.int64)) * a.dtype.itemsize
    return total


def _allocates(node):
    """Does ``node`` make a new array (not a view, not a source, not a name for another value)?"""
    if node.kind in ("fused", "cond", "while"):
        return True
    return node.kind == "op" and not node.op.view


def _owners(graph):
    """``{node id: set of allocating node ids whose memory the value may be}`` (views, ``get``,
    ``stop_gradient``: the memory of their inputs; the memory pass's alias analysis)."""
    return alias_roots(graph, {n.id for n in graph.nodes if _allocates(n)})


@dataclass
class ScheduleStep:
    """One row of a schedule: the node run at ``step``, its device, the bytes its result
    allocates, the bytes freed after it runs, the bytes live after it (total and per device)
    and during it (its inputs and its result at once)."""

    step: int
    node: Node
    device: str
    allocated: int
    freed: int
    live_after: int
    live_during: int
    live_by_device: dict = field(default_factory=dict)   # during the step


def live_memory(graph):
    """``[ScheduleStep, ...]``: the live bytes of running ``graph``'s nodes in its order (see
    the module docstring for what is counted)."""
    release = release_points(graph, liveness(graph), {n.id for n in graph.nodes if _allocates(n)})
    frees_at = {}
    for o, when in release.items():
        frees_at.setdefault(when, []).append(o)
    by_id = {n.id: n for n in graph.nodes}
    live, by_device, steps = 0, {}, []
    for n in graph.nodes:
        alloc = _nbytes(n) if _allocates(n) else 0
        live += alloc
        dev = str(n.device)
        if alloc:
            by_device[dev] = by_device.get(dev, 0) + alloc
        during, during_by_device = live, {d: b for d, b in by_device.items() if b}
        freed = 0
        for o in frees_at.get(n.id, ()):
            size = _nbytes(by_id[o])
            freed += size
            by_device[str(by_id[o].device)] -= size
        live -= freed
        steps.append(ScheduleStep(n.id, n, dev, alloc, freed, live, during, during_by_device))
    return steps


def peak_memory(graph):
    """The most bytes live at once while ``graph`` runs in its order (see ``live_memory``)."""
    return max((s.live_during for s in live_memory(graph)), default=0)


class Schedule:
    """A graph's schedule as a table (``print(schedule_table(graph))``); ``steps`` are
    ``ScheduleStep``s and ``peak`` the most bytes live at once."""

    def __init__(self, graph):
        self.graph = graph
        self.steps = live_memory(graph)
        self.peak = max((s.live_during for s in self.steps), default=0)
        self.peak_step = next((s.step for s in self.steps if s.live_during == self.peak), None)

    def lines(self, sources=False):
        """One line per step (placeholders, variables and constants left out unless
        ``sources``), then the peak."""
        rows = [("step", "node", "device", "allocated", "freed", "live after")]
        for s in self.steps:
            n = s.node
            if not sources and n.kind in ("placeholder", "variable", "constant"):
                continue
            label = f"%{n.id} {n.op_name}" + (f" {n.name}" if n.name and n.kind != "op" else "")
            rows.append((str(s.step), label, s.device, fmt_bytes(s.allocated) if s.allocated else "",
                         fmt_bytes(s.freed) if s.freed else "", fmt_bytes(s.live_after)))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        align = [str.rjust, str.ljust, str.ljust, str.rjust, str.rjust, str.rjust]
        out = ["  ".join(align[i](r[i], widths[i]) for i in range(6)).rstrip() for r in rows]
        out.append(f"peak: {fmt_bytes(self.peak)} live, during step {self.peak_step}")
        return out

    def __str__(self):
        return "\n".join(self.lines())

    def __repr__(self):
        return f"<Schedule {self.graph.name}: {len(self.steps)} steps, peak {fmt_bytes(self.peak)}>"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def schedule_table(graph):
    """The ``Schedule`` of ``graph`` (or of an ``Executable``'s graph): print it for a table."""
    return Schedule(getattr(graph, "graph", graph))


# ---------------------------------------------------------------- what must stay in order

def _state_key(node):
    target = node.inputs[0] if node.kind == "assign" else node
    return (id(target.value), target.attrs.get("slot"))


def dependencies(graph):
    """``{node id: set of node ids that must run before it}``: its inputs, and the ordering
    of effects described in the module docstring."""
    deps = {n.id: {x.id for x in n.input_nodes} for n in graph.nodes}
    last_effect, last_state = None, {}
    for n in graph.nodes:
        if n.kind in ("variable", "assign"):
            key = _state_key(n)
            if key in last_state:
                deps[n.id].add(last_state[key])
            last_state[key] = n.id
        if n.kind in ("placeholder", "variable", "constant", "arg"):
            continue
        if not n.op.pure or n.subgraphs:
            if last_effect is not None:
                deps[n.id].add(last_effect)
            last_effect = n.id
    return deps


# ---------------------------------------------------------------- the memory-aware order

def memory_order(graph):
    """The nodes of ``graph`` in the greedy low-memory order of the module docstring."""
    deps = dependencies(graph)
    owners = _owners(graph)
    last = liveness(graph)
    end = len(graph.nodes)
    by_id = {n.id: n for n in graph.nodes}
    readers = {}              # owner -> the nodes still to run that read it (or an alias of it)
    pinned = set()            # owners that live to the end (outputs, stored values)
    for n in graph.nodes:
        for x in n.input_nodes:
            for o in owners[x.id]:
                readers.setdefault(o, set()).add(n.id)
        if last.get(n.id) == end:
            pinned |= owners[n.id]
    users = {n.id: [] for n in graph.nodes}
    for n in graph.nodes:
        for d in deps[n.id]:
            users[d].append(n.id)
    waiting = {nid: len(d) for nid, d in deps.items()}
    ready = {nid for nid, k in waiting.items() if k == 0}
    order = []

    def gain(nid):
        n = by_id[nid]
        size = _nbytes(n) if _allocates(n) else 0
        freed = 0
        for o in set().union(*[owners[x.id] for x in n.input_nodes]) if n.input_nodes else ():
            if o not in pinned and readers.get(o) == {nid}:
                freed += _nbytes(by_id[o])
        if size and n.id not in pinned and not readers.get(n.id):
            freed += size            # a result nobody reads is freed at once
        return size - freed

    while ready:
        nid = min(ready, key=lambda i: (gain(i), i))
        ready.remove(nid)
        order.append(by_id[nid])
        n = by_id[nid]
        for x in n.input_nodes:
            for o in owners[x.id]:
                readers.get(o, set()).discard(nid)
        for u in users[nid]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.add(u)
    if len(order) != len(graph.nodes):
        raise RuntimeError("internal: the schedule's dependencies have a cycle")
    return order


def schedule_memory(graph):
    """``(graph, report)``: the same nodes in the greedy low-memory order, or in the given order
    if that one's simulated peak is not higher (the pass ``"schedule"``; see the module
    docstring). The report gives the simulated peak before and after."""
    before = peak_memory(graph)
    candidate, converted = Graph.make(memory_order(graph), graph.inputs, graph.outputs, graph.name)
    after_peak = peak_memory(candidate)
    if after_peak < before:
        new, moved = candidate, True
    else:
        new, converted = Graph.make(graph.nodes, graph.inputs, graph.outputs, graph.name)
        after_peak, moved = before, False
    kept = {n.id: converted[id(n)].id for n in graph.nodes}
    changed = sum(1 for a, b in kept.items() if a != b)
    notes = [f"schedule: {changed} nodes run at another step; peak live memory "
             f"{fmt_bytes(before)} -> {fmt_bytes(after_peak)} (every result freed after its last use)"
             if moved else f"schedule: kept the given order (the greedy order's peak, "
                           f"{fmt_bytes(peak_memory(candidate))}, is not lower than {fmt_bytes(before)})"]
    return new, make_report("schedule", graph, new, kept, notes=tuple(notes),
                            peak_memory_before=before, peak_memory_after=after_peak)


# ---------------------------------------------------------------- running an order eagerly

def replay(graph, *feeds):
    """Run ``graph``'s nodes one by one as eager ops, in its order, each value dropped after its
    last use; returns the outputs (a list). Under ``lg.profiler.profile(profile_memory=True)``
    the memory timeline then shows the live bytes of this order. Plain ops only (compile with
    ``passes=()`` or ``["schedule"]``: no fused kernels, no control flow)."""
    last = liveness(graph)
    env, outputs = {}, [o.id for o in graph.outputs if isinstance(o, Node)]
    feeds = list(feeds)
    with no_grad():
        for n in graph.nodes:
            if n.kind == "placeholder":
                x = feeds[graph.inputs.index(n)]
                env[n.id] = x if isinstance(x, Tensor) else tensor(x, dtype=n.dtype, device=n.device)
            elif n.kind == "variable":
                env[n.id] = n.tensor
            elif n.kind == "constant":
                env[n.id] = Tensor._wrap(n.value, get_backend(n.device))
            elif n.kind in ("stop_gradient",):
                env[n.id] = env[n.inputs[0].id]
            elif n.kind == "op":
                args = [env[x.id] if isinstance(x, Node) else x for x in n.inputs]
                env[n.id] = apply(n.op, *args, **n.attrs)
            else:
                raise NotImplementedError(f"replay runs plain ops only, not {n.kind} (%{n.id}); "
                                          f"compile without fusion and control flow")
            if n.id not in last:
                env.pop(n.id)            # nobody reads it
            for x in {x.id for x in n.input_nodes}:
                if last.get(x, -1) == n.id and x not in outputs:
                    del env[x]
    return [env[o] for o in outputs]
