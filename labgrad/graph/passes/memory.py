"""Memory planning: where each intermediate array lives, decided once, before the graph runs.

Without a plan every op allocates a fresh array for its result, on every call. The plan:

1. *Liveness*: the last node that reads each value (the state writes at the end of a run read
   theirs last). A value that may share memory with another one (a view: ``transpose``,
   ``reshape``, ...; or any op that may hand back its input) keeps that memory alive too: the
   *alias analysis* follows such ops, so a buffer is free only when every value that may live
   in it is dead.
2. *Buffers*: each result that can be written with ``out=`` (NumPy/CuPy ufuncs, ``matmul``,
   ``linear``, ``relu``, fused elementwise kernels), of a fully known shape, gets a buffer:
   one that an earlier, now dead value of the same dtype and device used (the smallest that
   is big enough; else the biggest, which grows), or a new one. A buffer is flat; each value
   in it is a view of its first elements with the value's shape, made once.
   The buffers are allocated once, when the graph is compiled, and reused by every call.
3. *In place*: an elementwise op (ufunc or fused kernel) may write into the buffer of an input
   that dies at that op (same shape and dtype, read at the same index it writes). Only
   buffers the plan made are ever written: never a variable's array, a fed array, or a view of
   one.
4. *State updates in place*: ``w <- f(w, g)`` computed by an elementwise kernel or ufunc
   writes into ``w``'s own array when nothing reads ``w`` (or a view of it) later in the run
   and the new value has no other reader; the copy at the end of the run goes away. (If a
   later node fails, that update has already happened.)
5. *Buffers that do not pay*: a planned buffer is allocated for the whole run, so a value
   that is dead by the time the run reaches its peak (often the end of backward, when the
   large weight gradients appear) would hold memory there for nothing. After placing the
   buffers, the planner gives back every buffer whose values are cheaper as fresh arrays,
   freed after their last use: it drops a buffer when that lowers the planned peak (largest
   buffers first), so the plan's peak is never above what freeing after the last use gives.
6. *Safety across calls*: a value the caller gets back (an output, or anything that may alias
   one) and a gradient stored in a parameter's ``.grad`` are never put in a buffer, so a later
   call cannot overwrite an array someone holds. An output written with ``out=`` may *recycle*
   the array the previous call returned, but only when nobody holds it any more: the
   generated code keeps it and checks its reference count (``recycle``); if the caller still
   has it (or a view of it, or a Tensor around it), a new array is made.

The plan is attached to the graph (``graph.memory_plan``, a ``MemoryPlan``); the code generator
writes ``out=bufN`` where it says, and deletes each value's name after ``last_use`` (its
``del`` lines come from this liveness, not from an analysis of its own). The report gives the
planned peak memory of intermediates before (every result a fresh array that lives to the end
of the run: nothing planned) and after (the buffers plus what is still allocated fresh, freed
after its last use), and the kernel counts. ``MemoryPlan.peak_freed`` is the peak with fresh arrays freed after their last
use but no buffer reuse (what the generated ``del`` lines alone give).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...ops.registry import get_op
from ..ir import Graph, Node, input_aval
from .fuse import kernel_count
from .report import fmt_bytes, make_report

__all__ = ["memory_planning", "MemoryPlan", "liveness", "alias_roots", "release_points", "may_alias",
           "writes_out", "product_fits"]

#: ops known to return a fresh array (never their input's memory) when called normally
_FRESH = {"matmul", "linear", "fused", "relu", "fma", "cross_entropy", "cross_entropy_grad",
          "full_like", "exp", "log", "tanh", "sigmoid", "sqrt", "relu_grad", "neg", "div", "add",
          "sub", "mul"}


def _fresh(node):
    """Does ``node`` always produce a new array (never memory of its inputs)?"""
    if node.kind == "fused":
        return True
    if node.kind != "op" or node.op.view:
        return False
    return node.op.name in _FRESH or node.op.family == "reduce"


def may_alias(value, variables):
    """Could ``value`` share memory with one of ``variables`` (node ids)? Ops declared
    ``view=True`` (reshape, transpose, slicing, cast) may return views: follow them back
    (the code generator asks before the end-of-run state writes)."""
    seen, stack = set(), [value]
    while stack:
        n = stack.pop()
        if not isinstance(n, Node) or n.id in seen:
            continue
        seen.add(n.id)
        if n.kind == "variable" and n.id in variables:
            return True
        view = n.kind == "op" and n.op.view
        if view or n.kind in ("assign", "stop_gradient"):
            stack.extend(n.inputs)
    return False


def writes_out(node):
    """Can the code generator write ``node``'s result into a given buffer with ``out=``?"""
    if node.kind == "fused":
        return node.attrs["kernel"].kernel.reduce is None and not isinstance(node.aval, tuple)
    if node.kind != "op":
        return False
    name = node.op.name
    if name in ("matmul", "linear"):
        return all(isinstance(x, Node) and x.aval.ndim >= 1 for x in node.inputs)
    if name == "relu":
        return True
    if name == "fma":    # multiply into the buffer, then add in place: the product must fit it
        return product_fits(node)
    return node.op.ufunc is not None and not node.attrs and 1 <= len(node.inputs) <= 2


def product_fits(node):
    """For ``fma(a, b, c)``: does ``a * b`` already have the result's shape and dtype (so
    ``multiply(a, b, out=y); add(y, c, out=y)`` computes it with no temporary)?"""
    a, b, c = (input_aval(x) for x in node.inputs)
    try:
        product = get_op("mul").infer(a, b)
    except Exception:   # noqa: BLE001
        return False
    if tuple(product.shape) != tuple(node.aval.shape) or product.dtype != node.aval.dtype:
        return False
    # with unknown sizes, only an addend that cannot widen the product is certain to fit
    return None not in node.aval.shape or not hasattr(c, "shape") or len(c.shape) == 0


def _elementwise(node):
    return node.kind == "fused" or (node.kind == "op" and (node.op.ufunc is not None
                                                           or node.op.name == "relu"))


def _nbytes(aval):
    if isinstance(aval, tuple) or None in aval.shape:
        return 0
    return int(np.prod(aval.shape, dtype=np.int64)) * aval.dtype.itemsize


def liveness(graph):
    """``{node id: index of the last node that reads it}``; values the run's state writes or
    outputs read live to the end (``len(graph.nodes)``)."""
    end = len(graph.nodes)
    last = {}
    for n in graph.nodes:
        for x in n.inputs:
            if isinstance(x, Node):
                last[x.id] = end if n.kind == "assign" else max(last.get(x.id, -1), n.id)
    for o in graph.outputs:
        if isinstance(o, Node):
            last[o.id] = end
    return last


def alias_roots(graph, owners):
    """``{node id: set of nodes whose memory it may share}``: a node in ``owners`` (it has
    its own buffer) is its own root; an op known to make a fresh array has none; anything else
    (views, cond/while/get, ops that may hand back an input) may share its inputs' memory."""
    roots = {}
    for n in graph.nodes:
        if n.id in owners:
            roots[n.id] = {n.id}
        elif _fresh(n):
            roots[n.id] = set()
        elif n.kind in ("placeholder", "variable", "constant", "arg"):
            roots[n.id] = set()
        else:
            r = set()
            for x in n.input_nodes:
                r |= roots.get(x.id, set())
            roots[n.id] = r
    return roots


@dataclass
class MemoryPlan:
    """Where results live: ``out[node id] = buffer index``; ``buffers[i] = ((elements,), dtype,
    device)``, a flat buffer that each value placed in it views with its own shape;
    ``last_use`` from ``liveness``; peaks in bytes (see the module docstring)."""

    out: dict = field(default_factory=dict)
    buffers: list = field(default_factory=list)
    inplace: dict = field(default_factory=dict)     # node id -> the input id whose buffer it took
    into_variable: dict = field(default_factory=dict)   # node id -> the variable node it updates
    recycle: set = field(default_factory=set)   # outputs that may reuse the last call's array
    last_use: dict = field(default_factory=dict)
    peak_naive: int = 0
    peak_freed: int = 0
    peak_planned: int = 0
    peak_naive_intermediates: int = 0     # the same two peaks, the outputs left out (they are
    peak_planned_intermediates: int = 0   # the results: the same arrays in every plan)

    def lines(self):
        out = [f"{len(self.buffers)} buffers ({fmt_bytes(sum(_nbytes_of(b) for b in self.buffers))}) "
               f"for {len(self.out)} results, {len(self.inplace)} in place, "
               f"{len(self.into_variable)} state updates in place"]
        for nid, b in sorted(self.out.items()):
            shape, dtype, _ = self.buffers[b]
            extra = f" (in place of %{self.inplace[nid]})" if nid in self.inplace else ""
            out.append(f"%{nid} -> buf{b} ({dtype}, {shape[0]} elements){extra}")
        return out


def _nbytes_of(buf):
    shape, dtype, _ = buf
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _protected(graph):
    """Nodes whose value must not live in a reused buffer: what the caller gets back and
    gradients stored into ``.grad`` (followed back through possible aliases)."""
    roots = [o for o in graph.outputs if isinstance(o, Node)]
    for n in graph.nodes:
        if n.kind == "assign" and n.inputs[0].attrs.get("slot") == "grad" and isinstance(n.inputs[1], Node):
            roots.append(n.inputs[1])
    keep, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n.id in keep:
            continue
        keep.add(n.id)
        if not (_fresh(n) or n.kind in ("placeholder", "variable", "constant", "arg")):
            stack.extend(n.input_nodes)
    return keep


def plan(graph):
    """The ``MemoryPlan`` for ``graph`` (top level only; subgraphs allocate as they run)."""
    last = liveness(graph)
    protected = _protected(graph)
    p = MemoryPlan(last_use=last)
    _updates_in_place(graph, p, protected)
    candidates = {n.id for n in graph.nodes
                  if writes_out(n) and n.id not in protected and n.id not in p.into_variable and not isinstance(n.aval, tuple)
                  and None not in n.aval.shape and n.aval.ndim >= 1 and n.id in last}
    roots = alias_roots(graph, candidates)
    # when each buffer's memory is free again: after the last use of every value that may alias it
    release = release_points(graph, last, candidates)
    free = {}                       # (dtype, device) -> [buffer indices]
    frees_at = {}                   # node index -> [(key, buffer)] released after it
    sizes = []                      # elements of each buffer (the most any of its values needs)
    for n in graph.nodes:
        if n.id in candidates:
            key = (n.aval.dtype, n.device)
            need = int(np.prod(n.aval.shape, dtype=np.int64))
            chosen = None
            if _elementwise(n):     # in place: an input buffer that dies here
                for x in n.input_nodes:
                    if x.id in p.out and release.get(x.id) == n.id and x.aval.shape == n.aval.shape \
                            and x.aval.dtype == n.aval.dtype and x.device == n.device:
                        others = [y for y in n.input_nodes if y is not x and x.id in roots.get(y.id, ())]
                        if not others:
                            chosen = p.out[x.id]
                            p.inplace[n.id] = x.id
                            frees_at[n.id] = [(k, b) for k, b in frees_at.get(n.id, []) if b != chosen]
                            break
            pool = free.get(key)
            if chosen is None and pool:
                # best fit: the smallest free buffer that is big enough, else the biggest (it grows)
                fits = [b for b in pool if sizes[b] >= need]
                chosen = min(fits, key=lambda b: sizes[b]) if fits else max(pool, key=lambda b: sizes[b])
                pool.remove(chosen)
            if chosen is None:
                chosen = len(sizes)
                sizes.append(0)
                p.buffers.append(None)
            sizes[chosen] = max(sizes[chosen], need)
            p.buffers[chosen] = ((sizes[chosen],), n.aval.dtype, n.device)
            p.out[n.id] = chosen
            when = release.get(n.id, n.id)
            frees_at.setdefault(when, []).append((key, chosen))
        for key, b in frees_at.pop(n.id, []):
            free.setdefault(key, []).append(b)
    outs = [o for o in graph.outputs if isinstance(o, Node)]
    p.recycle = {o.id for o in outs if writes_out(o) and not isinstance(o.aval, tuple)
                 and None not in o.aval.shape and o.aval.ndim >= 1 and o.id not in p.into_variable
                 and outs.count(o) == 1}
    allocs = [n for n in graph.nodes if n.kind == "fused" or (n.kind == "op" and not n.op.view)]
    release = release_points(graph, last, {n.id for n in allocs})
    _drop_unprofitable_buffers(graph, p, allocs, release)
    p.peak_naive, p.peak_freed, p.peak_planned = _peaks(graph, p, allocs, release)
    outs = {o.id for o in graph.outputs if isinstance(o, Node)}
    p.peak_naive_intermediates, _, p.peak_planned_intermediates = _peaks(
        graph, p, [n for n in allocs if n.id not in outs], release)
    return p


def _updates_in_place(graph, p, protected):
    """A state update ``w <- f(w, ...)`` computed by an elementwise kernel or ufunc writes
    straight into ``w``'s array (no buffer, no copy at the end of the run) when nothing reads
    ``w``, or a view of it, after that node, and nothing else reads the new value."""
    users = graph.users()
    last = {}
    for a in graph.assigns:
        last[a.target.id] = a
    by_tensor = {}
    for v in graph.variables:
        by_tensor.setdefault((id(v.value), v.attrs.get("slot")), []).append(v)
    # the last node that reads each variable's memory (through views too), assigns' targets apart
    reads = {}
    aliases = {}
    for n in graph.nodes:
        if n.kind == "variable":
            aliases[n.id] = {n.id}
        elif n.kind in ("placeholder", "constant", "arg") or _fresh(n):
            aliases[n.id] = set()
        else:
            r = set()
            for k, x in enumerate(n.inputs):
                if isinstance(x, Node) and not (n.kind == "assign" and k == 0):
                    r |= aliases.get(x.id, set())
            aliases[n.id] = r
        for k, x in enumerate(n.inputs):
            if isinstance(x, Node) and not (n.kind == "assign" and k == 0):
                at = len(graph.nodes) if n.kind == "assign" else n.id
                for v in aliases.get(x.id, ()):
                    reads[v] = max(reads.get(v, -1), at)
    for o in graph.outputs:
        if isinstance(o, Node):
            for v in aliases.get(o.id, ()):
                reads[v] = len(graph.nodes)
    counts = {}
    for a in graph.assigns:
        counts[a.target.id] = counts.get(a.target.id, 0) + 1
    for var_id, a in last.items():
        var = a.target
        u = a.inputs[1]
        if (counts[var_id] != 1 or var.attrs.get("slot") == "grad" or var.attrs.get("weak")
                or not isinstance(u, Node) or not writes_out(u) or not _elementwise(u)
                or u.id in protected or isinstance(u.aval, tuple)
                or (u.aval.shape, u.aval.dtype) != (var.aval.shape, var.aval.dtype)
                or [x.id for x in users[u.id]] != [a.id]):
            continue
        same = by_tensor.get((id(var.value), var.attrs.get("slot")), [var])
        if any(c is not var and counts.get(c.id) for c in same):
            continue
        if any(reads.get(c.id, -1) > u.id for c in same):
            continue
        # u reads the variable only elementwise-aligned: as the variable node itself
        ok = True
        for x in u.input_nodes:
            if aliases.get(x.id, set()) & {c.id for c in same} and x.kind != "variable":
                ok = False
        if ok:
            p.into_variable[u.id] = var


def _peaks(graph, p, allocs, release):
    """(nothing planned, fresh arrays freed after their last use, the plan) for the values
    ``allocs`` (the nodes that allocate); ``release`` from ``release_points``: a fresh array
    is freed when no value that may share its memory (a view of it) is read any more."""
    naive = sum(_nbytes(n.aval) for n in allocs)
    return naive, _simulate(graph, allocs, release, set()), _planned_peak(graph, p, allocs, release)


def release_points(graph, last, owners):
    """``{owner id: index of the node after which its memory is free}``: after the last use
    (``last``, from ``liveness``) of every value that may share its memory (views followed)."""
    roots = alias_roots(graph, owners)
    release = {}
    for n in graph.nodes:
        for r in roots.get(n.id, ()):
            release[r] = max(release.get(r, -1), last.get(n.id, n.id))
    return release


def _simulate(graph, allocs, release, planned):
    """Peak bytes of the fresh arrays (``allocs`` not in ``planned``), each alive from its node
    to its release."""
    sizes = {n.id: _nbytes(n.aval) for n in allocs if n.id not in planned}
    live, peak, ends = 0, 0, {}
    for n in graph.nodes:
        size = sizes.get(n.id)
        if size is not None:
            live += size
            ends.setdefault(release.get(n.id, n.id), []).append(size)
        peak = max(peak, live)
        live -= sum(ends.pop(n.id, ()))
    return peak


def _planned_peak(graph, p, allocs, release):
    pool = sum(_nbytes_of(b) for b in p.buffers if b is not None)
    return pool + _simulate(graph, allocs, release, set(p.out) | set(p.into_variable))


def _drop_unprofitable_buffers(graph, p, allocs, release):
    """Give back each buffer (largest first) whose values, made fresh and freed after their
    last use instead, lower the planned peak (see the module docstring, point 5)."""
    best = _planned_peak(graph, p, allocs, release)
    for b in sorted(range(len(p.buffers)), key=lambda b: -_nbytes_of(p.buffers[b])):
        kept_out = {k: v for k, v in p.out.items() if v != b}
        trial = MemoryPlan(out=kept_out, buffers=[x if i != b else None for i, x in enumerate(p.buffers)],
                           into_variable=p.into_variable)
        peak = _planned_peak(graph, trial, allocs, release)
        if peak < best:
            best = peak
            p.out, p.buffers = kept_out, trial.buffers
            p.inplace = {k: v for k, v in p.inplace.items() if k in kept_out}
    # (one at a time may stop early: never be worse than no buffers at all)
    if best > _planned_peak(graph, MemoryPlan(into_variable=p.into_variable), allocs, release):
        p.out, p.buffers, p.inplace = {}, [None] * len(p.buffers), {}
    # number the buffers that are left 0, 1, ...
    renumber = {}
    for b, buf in enumerate(p.buffers):
        if buf is not None:
            renumber[b] = len(renumber)
    p.buffers = [buf for buf in p.buffers if buf is not None]
    p.out = {k: renumber[v] for k, v in p.out.items()}


def memory_planning(graph):
    """``(graph, report)``: the same nodes, with ``graph.memory_plan`` set (see the docstring)."""
    new = Graph(graph.nodes, graph.inputs, graph.outputs, graph.name)
    p = plan(new)
    new.memory_plan = p
    k = kernel_count(graph)
    kept = {n.id: n.id for n in graph.nodes}
    notes = [f"memory plan: {p.lines()[0]}; peak {fmt_bytes(p.peak_naive)} with every result "
             f"fresh and kept, {fmt_bytes(p.peak_freed)} freed after last use, "
             f"{fmt_bytes(p.peak_planned)} planned"]
    report = make_report("memory", graph, new, kept, notes=tuple(notes), kernels_before=k,
                         kernels_after=k, peak_memory_before=p.peak_naive,
                         peak_memory_after=p.peak_planned)
    return new, report
