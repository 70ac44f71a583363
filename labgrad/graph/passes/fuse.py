"""Elementwise fusion: each maximal group of elementwise ops becomes one ``fused`` node.

An op is *elementwise* when it has an ``expr`` template (``add``, ``relu``, ``where``, the
comparisons, ``fma``...): each output element depends only on the same element of the
(broadcast) inputs, so a whole group can run as one loop that reads each input once and writes
each result once, instead of one pass over memory per op (and one temporary array each).

How groups are found, in the graph's order:

* an elementwise node joins the groups of the elementwise nodes it reads (same device), as
  long as the group stays *convex*: no path leaves the group and comes back into it (the
  kernel would need a value that needs the kernel). Broadcasting is fine: a bias add
  ``(N, C) + (C,)`` is in the loop.
* a value of the group that something outside uses (or that the graph returns) is an
  *output* of the kernel; a group may have several.
* a reduction (``sum``, ``mean``, ``max`` over axes; ``sum_to`` when it sums leading axes
  only) of a group's only output, when nothing else reads that output, joins the group: the
  kernel accumulates as it goes and the full-size value is never stored.
* a group of one op without a reduction is left alone (nothing to save), unless NumPy runs
  that op as several passes (``relu_grad``, ``sigmoid``, ``gelu``...: one loop beats them).

Each fused group becomes one ``fused`` node (``ops/fused_kernel.py``) whose ``kernel``
attribute is a ``FusedKernel`` (``backends/fusion.py``); with several outputs, ``get`` nodes
read them. The report lists what was fused (node ids before, the fused node after), kernel
counts before and after, and for every candidate left alone why (a dtype kernels do not
support such as float16, different devices, a ``FusionError``, a reduction whose input is used
elsewhere...). Runs inside cond and while subgraphs too.
"""
from __future__ import annotations

import heapq

import numpy as np

from ...backends import get_backend
from ...backends.base import Backend
from ...backends.fusion import SUPPORTED_DTYPES, FusedKernel, FusionError
from ...ops.fused_kernel import KernelAttr, fused as fused_op
from ...ops.shape import sum_to_axes
from ..ir import Graph, Node
from .common import on_subgraphs
from .report import make_report

__all__ = ["elementwise_fusion", "kernel_count", "REDUCTIONS"]

#: reduction ops a fused kernel can end with (``sum_to`` when it sums leading axes only)
REDUCTIONS = {"sum": "sum", "mean": "mean", "max": "max", "sum_to": "sum"}


def kernel_count(graph):
    """How many kernels a run launches: nodes that compute (ops and fused nodes), not views,
    sources or plumbing. Subgraphs count once each."""
    total = 0
    for n in graph.nodes:
        if n.kind == "fused" or (n.kind == "op" and not n.op.view):
            total += 1
        for sub in (n.subgraphs or {}).values():
            total += kernel_count(sub)
    return total


def _dtypes(node):
    avals = node.aval if isinstance(node.aval, tuple) else (node.aval,)
    return [a.dtype for a in avals] + [x.aval.dtype for x in node.input_nodes
                                       if not isinstance(x.aval, tuple)]


def _why_not_elementwise(node):
    """None if ``node`` may join a group, else why not (for elementwise ops only)."""
    for dt in _dtypes(node):
        if dt not in SUPPORTED_DTYPES:
            return f"{node.op_name}: {dt} values are not supported by fused kernels"
    for x in node.input_nodes:
        if x.device != node.device:
            return f"{node.op_name}: its inputs are on different devices ({x.device}, {node.device})"
    backend = get_backend(node.device)
    if type(backend).compile_fused is Backend.compile_fused:
        return f"{node.op_name}: the {node.device} backend cannot compile fused kernels"
    return None


def _passes(node):
    """How many passes over memory NumPy makes for one elementwise op: the operations in its
    ``expr`` (``relu_grad``'s ``where({1} > 0, {0}, 0)`` is two: a comparison, then a select).
    An op alone is worth a kernel when it is more than one."""
    if node.op.ufunc is not None:
        return 1
    text = node.op.expr
    calls = sum(text.count(f + "(") for f in ("exp", "log", "sqrt", "abs", "sin", "cos", "tanh",
                                                "max", "min", "where", "pow", "logical_"))
    infix = sum(text.count(c) for c in "+-*/<>=!") - text.count("==") - text.count("!=") \
        - text.count(">=") - text.count("<=")
    return calls + infix


def _live(graph):
    """Ids of the nodes an output or an effect needs."""
    stack = [o for o in graph.outputs if isinstance(o, Node)]
    stack += [n for n in graph.nodes if n.op.writes_state or n.op.random]
    stack += list(graph.inputs)
    live = set()
    while stack:
        n = stack.pop()
        if n.id not in live:
            live.add(n.id)
            stack.extend(x for x in n.input_nodes if x.id not in live)
    return live


def _reduction(node):
    """``(kind, axes, keepdims)`` when ``node`` is a reduction a kernel can end with."""
    if node.kind != "op" or node.op.name not in REDUCTIONS:
        return None
    kind = REDUCTIONS[node.op.name]
    src = node.inputs[0]
    if not isinstance(src, Node) or isinstance(src.aval, tuple):
        return None
    if node.op.name == "sum_to":
        shape = node.attrs["shape"]
        if None in src.aval.shape:
            return None
        lead, axes = sum_to_axes(src.aval.shape, shape)
        if len(axes) != lead:     # also sums kept axes of size 1: not a plain sum
            return None
        return kind, axes, False
    if set(node.attrs) - {"axis", "keepdims"}:
        return None
    return kind, node.attrs.get("axis"), bool(node.attrs.get("keepdims", False))


def elementwise_fusion(graph):
    """``(graph, report)`` with each fusible group replaced by one ``fused`` node."""
    nodes = graph.nodes
    users = graph.users()
    out_ids = {o.id for o in graph.outputs if isinstance(o, Node)}
    not_fused = {}         # node id -> why
    notes = []
    live = _live(graph)    # dead nodes (a rewrite's leftovers) join no group: dce drops them
    users = {k: [u for u in v if u.id in live] for k, v in users.items()}   # nor count as users

    # ---- union-find over groups
    parent = {}

    def find(g):
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    group = {}             # node id -> group id (its first member's id)
    members = {}           # root -> [node ids]
    anc = {}               # node id -> set of group ids it depends on (through any path)
    gdeps = {}             # root -> groups the group, run as one kernel, needs first

    def needs(ext):
        """The groups that values ``ext`` depend on directly (as ``anc`` recorded them)."""
        direct = set()
        for x in ext:
            direct |= {find(a) for a in anc[x.id]}
            if x.id in group:
                direct.add(find(group[x.id]))
        return direct

    def needed_through(groups):
        """``groups`` and every group they need, run as units: a group that absorbed a member
        later may need more than its members did when ``anc`` was recorded, so the
        group-to-group needs are followed to the end."""
        seen, stack = set(), list(groups)
        while stack:
            g = stack.pop()
            if g not in seen:
                seen.add(g)
                stack.extend(find(h) for h in gdeps.get(g, ()))
        return seen

    for node in nodes:
        deps = set()
        for x in node.input_nodes:
            deps |= anc[x.id]
            if x.id in group:
                deps.add(group[x.id])
        anc[node.id] = deps
        if node.kind != "op" or node.op.expr is None or node.id not in live:
            continue
        why = _why_not_elementwise(node)
        if why is not None:
            not_fused[node.id] = why
            continue
        cands = []
        for x in node.input_nodes:
            if x.id in group and x.device == node.device:
                g = find(group[x.id])
                if g not in cands:
                    cands.append(g)
        chosen = []
        for g in cands:
            trial = set(chosen) | {g}
            ext = [x for x in node.input_nodes if x.id not in group or find(group[x.id]) not in trial]
            for h in trial:
                for m in members[h]:
                    ext += [x for x in nodes[m].input_nodes
                            if x.id not in group or find(group[x.id]) not in trial]
            if not (needed_through(needs(ext)) & trial):   # (else the group would need itself)
                chosen.append(g)
            else:
                not_fused.setdefault(node.id, f"{node.op_name}: joining the group of "
                                              f"%{members[g][0]} would make a cycle (a value "
                                              f"leaves the group and comes back)")
        gid = node.id
        parent[gid] = gid
        members[gid] = []
        for g in chosen:
            parent[g] = gid
            members[gid].extend(members.pop(g))
        members[gid].append(node.id)
        group[node.id] = gid
        own = needs([x for x in node.input_nodes if x.id not in group or find(group[x.id]) != gid])
        gdeps[gid] = ({find(h) for g in chosen for h in gdeps.pop(g, ())} | own) - {gid}
        if chosen:
            not_fused.pop(node.id, None)
    # group ids at the end
    final = {}
    for root, ids in members.items():
        ids.sort()
        for i in ids:
            final[i] = root

    # ---- the outputs of each group, and reductions that can join it
    reduce_of = {}        # group root -> reduction node
    for node in nodes:
        red = _reduction(node)
        if red is None:
            continue
        src = node.inputs[0]
        g = final.get(src.id)
        if g is None:
            continue
        inside = set(members[g])
        outs = [m for m in members[g] if m in out_ids or any(u.id not in inside for u in users[m])]
        if src.device != node.device:
            not_fused[node.id] = f"{node.op_name}: on {node.device}, its input on {src.device}"
        elif outs != [src.id] or len(users[src.id]) != 1 or src.id in out_ids:
            not_fused[node.id] = (f"{node.op_name}: its input %{src.id} is used elsewhere too, "
                                  f"so the kernel must store it anyway")
        elif g in reduce_of:
            not_fused[node.id] = f"{node.op_name}: the group already ends with a reduction"
        else:
            reduce_of[g] = (node, red)

    # ---- build the kernels
    kernels = {}          # group root -> (KernelAttr, inputs (nodes), output member ids)
    for g, ids in members.items():
        red = reduce_of.get(g)
        if len(ids) < 2 and red is None and _passes(nodes[ids[0]]) < 2:
            if ids[0] not in not_fused:
                not_fused[ids[0]] = f"{nodes[ids[0]].op_name}: alone (no elementwise neighbour to fuse with)"
            continue
        inside = set(ids)
        inputs, names = [], {}
        steps = []
        for k, i in enumerate(ids):
            n = nodes[i]
            refs = []
            for x in n.inputs:
                if isinstance(x, Node):
                    if x.id in inside:
                        refs.append(f"t{ids.index(x.id)}")
                    else:
                        if x.id not in names:
                            names[x.id] = f"x{len(inputs)}"
                            inputs.append(x)
                        refs.append(names[x.id])
                else:
                    refs.append(x)
            steps.append((f"t{k}", n.op, tuple(refs), dict(n.attrs), n.aval.dtype))
        if red is None:
            outs = [i for i in ids if i in out_ids or any(u.id not in inside for u in users[i])]
            avals = [nodes[i].aval for i in outs]
        else:
            outs = [ids[-1]]
            avals = [red[0].aval]
        try:
            kernel = FusedKernel([(names[x.id], x.aval.dtype, x.aval.shape) for x in inputs], steps,
                                 [f"t{ids.index(i)}" for i in outs],
                                 reduce=None if red is None else red[1])
            if red is not None and kernel.outputs[0].dtype != red[0].aval.dtype:
                raise FusionError(f"the fused {red[1][0]} gives {kernel.outputs[0].dtype}, "
                                  f"the graph's {red[0].aval.dtype}")
        except FusionError as e:
            for i in ids:
                not_fused[i] = str(e)
            continue
        kernel.name = f"fused_{kernel.key[:6]}"
        kernels[g] = (KernelAttr(kernel, avals, [nodes[i].location for i in ids]), inputs, outs)
        for i in ids:
            not_fused.pop(i, None)
        if red is not None:
            not_fused.pop(red[0].id, None)

    if not kernels and not any(n.subgraphs for n in nodes):
        return _unchanged(graph, not_fused)

    # ---- emit: units (kept nodes and fused groups) in a topological order close to the old one
    unit_of = {}
    for g, (_, _, _) in kernels.items():
        for i in members[g]:
            unit_of[i] = ("g", g)
        red = reduce_of.get(g)
        if red is not None:
            unit_of[red[0].id] = ("g", g)
    units = {}
    for n in nodes:
        u = unit_of.get(n.id, ("n", n.id))
        units.setdefault(u, []).append(n.id)
    deps = {u: set() for u in units}
    rdeps = {u: set() for u in units}
    for u, ids in units.items():
        for i in ids:
            for x in nodes[i].input_nodes:
                v = unit_of.get(x.id, ("n", x.id))
                if v != u:
                    deps[u].add(v)
                    rdeps[v].add(u)
    heap = [(max(ids), u) for u, ids in units.items() if not deps[u]]
    heapq.heapify(heap)
    env, order, fused_report = {}, [], []
    while heap:
        _, u = heapq.heappop(heap)
        if u[0] == "n" and u[1] not in live:
            pass                # dead: dropped here (what dce would do)
        elif u[0] == "n":
            n = nodes[u[1]]
            ins = tuple(env[x.id] if isinstance(x, Node) else x for x in n.inputs)
            new, inner = on_subgraphs(n, elementwise_fusion, ins)
            notes.extend(inner)
            if new is None:
                new = n if all(a is b for a, b in zip(ins, n.inputs)) else n.replace(inputs=ins)
            env[n.id] = new
            order.append(new)
        else:
            attr, inputs, outs = kernels[u[1]]
            last = nodes[units[u][-1]]
            avals = attr.avals
            node = Node(fused_op, tuple(env[x.id] for x in inputs), {"kernel": attr},
                        aval=avals[0] if len(avals) == 1 else tuple(avals), device=last.device,
                        location=last.location, name=last.name)
            node.scope = last.scope     # (a drawing groups it with the module of its last op)
            order.append(node)
            red = reduce_of.get(u[1])
            if red is not None:
                env[red[0].id] = node
            elif len(outs) == 1:
                env[outs[0]] = node
            else:
                for k, i in enumerate(outs):
                    get = Node("get", (node,), {"index": k}, aval=avals[k], device=last.device,
                               location=nodes[i].location, name=nodes[i].name)
                    env[i] = get
                    order.append(get)
            fused_report.append((tuple(units[u]), node))
        for v in rdeps[u]:
            deps[v].discard(u)
            if not deps[v]:
                heapq.heappush(heap, (max(units[v]), v))
    inputs = [env[n.id] for n in graph.inputs]
    outputs = [env[o.id] if isinstance(o, Node) else o for o in graph.outputs]
    after, converted = Graph.make(order, inputs, outputs, graph.name)
    kept = {}
    for n in nodes:
        new = env.get(n.id)
        if new is not None and unit_of.get(n.id) is None and id(new) in converted:
            kept[n.id] = converted[id(new)].id
    report = make_report("fuse", graph, after, kept,
                         fused=tuple((ids, converted[id(node)].id) for ids, node in fused_report),
                         not_fused=tuple(sorted(not_fused.items())), notes=tuple(notes),
                         kernels_before=kernel_count(graph), kernels_after=kernel_count(after))
    return after, report


def _unchanged(graph, not_fused):
    kept = {n.id: n.id for n in graph.nodes}
    k = kernel_count(graph)
    return graph, make_report("fuse", graph, graph, kept, not_fused=tuple(sorted(not_fused.items())),
                              kernels_before=k, kernels_after=k)
