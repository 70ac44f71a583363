"""Placement: which device runs each node, chosen so that the fewest bytes cross between devices.

A graph built by hand already says where each node runs (an op runs where its inputs are, and
``x.to(d)`` is an explicit ``to_device`` node). Placement re-decides it for the whole graph at
once, the way a framework's *placer* does before a graph runs::

    f = lg.compile(loss, placement={"matmul": "cuda"})    # the matmuls on the GPU, the rest chosen
    g, report = place(graph, pins={"matmul": "cuda"})     # the same, as a pass on a Graph
    print(describe_placement(g))                          # every node with its device

**Pins** are the nodes whose device is not up for discussion:

* where the data lives: placeholders (fed there), variables (their tensor lives there), an
  ``assign`` (it writes its variable, so it runs on the variable's device);
* what the user asks: ``pins=`` pins ops by node (a ``Symbol``), by op name (``"matmul"``) or
  by a function ``node -> device or None``;
* what cannot move without changing results: random draws (each device has its own generator),
  ops with other effects, and control flow (``cond``/``while`` with their subgraphs, ``get``).

Each output must also end up where the graph built it (the caller reads it there): if it is
computed elsewhere, a transfer brings it back. Constants are never pinned and never cost a
transfer: each device that uses one gets its own copy, made once when the graph is compiled.
The ``to_device`` nodes already in the graph (``x.to(d)``, which the builder needs whenever
devices mix) are not pins: ``x.to(d)`` is the value ``x``, and placement makes the transfers
the chosen devices need, no more. Every other node is *free*.

**The policy.** A value used on a device other than its own is copied there once per run (one
``to_device`` node), and every user on that device reads the copy; so a value of ``b`` bytes
costs ``b`` for each *other* device that uses it. Placement gives every free node a device that
makes the total of these costs, the bytes moved per run, as small as possible (ties: the fewest
transfers, then the first device of ``devices``). ``cost="count"`` minimizes the number of
transfers instead. Sizes unknown until run time (``None``) count as 1.

* **Two devices: exact.** Splitting nodes between two devices at the least cost is a *minimum
  cut*: the pinned nodes of one device are the source, those of the other the sink, and a value
  with users is a *hyperedge* (it costs its bytes once if it has members on both sides,
  however many), which two helper vertices turn into ordinary edges (Lawler's construction).
  A max-flow (Edmonds-Karp: shortest augmenting paths) finds the cut in polynomial time.
* **Three or more devices: a heuristic.** The problem is then *multiway cut*, NP-hard in
  general. Each free node starts on the device holding most of its input bytes (in topological
  order), then nodes move one at a time while a move lowers the total (a local optimum; it can
  miss the best placement).

What placement does not model: compute speed (pin the heavy ops to the fast device yourself)
and memory capacity. Only the top-level graph is placed; a ``cond``/``while`` runs where it was
built, its subgraphs with it. A transfer happens right before its first user (it is placed there in the
node order). The placed graph computes the same values: only where they are computed changes.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ...backends import get_backend, parse_device
from ...errors import DeviceError, format_location
from ...ops.registry import Aval, get_op
from ..ir import Graph, Node
from .report import fmt_bytes, make_report, survivors

__all__ = ["place", "placer", "choose_devices", "transfer_cost", "transfers", "describe_placement",
           "pinned_devices"]

_FREE_KINDS = ("op", "fused", "stop_gradient")


# ---------------------------------------------------------------- sizes and pins

def value_bytes(node):
    """Bytes of one node's value (unknown sizes count as 1; several outputs add up)."""
    avals = node.aval if isinstance(node.aval, tuple) else (node.aval,)
    total = 0
    for a in avals:
        if isinstance(a, Aval):
            total += int(np.prod([1 if d is None else d for d in a.shape], dtype=np.int64)) * a.dtype.itemsize
    return total


def _free(node):
    """May placement choose this node's device? (see the module docstring for who is pinned)"""
    op = node.op
    return (node.kind in _FREE_KINDS and not node.subgraphs and op.output_device is None
            and not op.random and not op.writes_state and op.pure)


def _user_pin(graph, pins):
    """``{node id: Device}`` from ``pins``: keys are nodes/Symbols, op names or functions."""
    if not pins:
        return {}
    by_node, by_name, by_fn = {}, {}, []
    items = pins.items() if isinstance(pins, dict) else [(pins, None)]
    for key, dev in items:
        if callable(key) and not hasattr(key, "node") and not isinstance(key, Node):
            by_fn.append(key)
        elif isinstance(key, str):
            by_name[key] = parse_device(dev)
        else:
            by_node[graph.node_of(key).id] = parse_device(dev)
    out = {}
    for n in graph.nodes:
        dev = by_node.get(n.id)
        if dev is None:
            dev = by_name.get(n.op_name)
        if dev is None:
            for fn in by_fn:
                got = fn(n)
                if got is not None:
                    dev = parse_device(got)
                    break
        if dev is None:
            continue
        if not _free(n) and n.kind != "constant" and dev != n.device and n.id in by_node:
            raise DeviceError(f"place: %{n.id} ({n.op_name}) cannot be pinned to {dev}: it stays on "
                              f"{n.device}{format_location(n.location)}\n  Placeholders, variables, "
                              f"state updates, random draws and control flow stay where their data "
                              f"lives; move the value with .to('{dev}') instead.")
        if _free(n):
            out[n.id] = dev
    return out


def _is_transfer(node):
    return node.kind == "op" and node.op.output_device is not None


def pinned_devices(graph, pins=None):
    """``{node id: Device}`` for every pinned node of ``graph``. Constants are never pinned
    (they are copied to each device that uses them), nor are transfers (placement makes its own)."""
    user = _user_pin(graph, pins)
    out = {}
    for n in graph.nodes:
        if n.kind == "constant" or _is_transfer(n):
            continue
        if n.id in user:
            out[n.id] = user[n.id]
        elif n.kind == "assign":
            out[n.id] = n.inputs[0].device
        elif not _free(n):
            out[n.id] = n.device
    return out


# ---------------------------------------------------------------- the cost model

def _roots(graph):
    """``{node id: id of the value it is}``: a transfer is the value it moves (followed back)."""
    root = {}
    for n in graph.nodes:
        root[n.id] = root[n.inputs[0].id] if _is_transfer(n) and isinstance(n.inputs[0], Node) else n.id
    return root


def _nets(graph):
    """``[(value id, bytes, members)]``: each value that is not a constant or a transfer, then
    where it is used: the ids of its users, and ``("out", device)`` where it is an output (the
    caller reads it on the device the graph built that output on)."""
    root = _roots(graph)
    by_id = {n.id: n for n in graph.nodes}
    used = {}
    for n in graph.nodes:
        if _is_transfer(n):
            continue
        for x in n.input_nodes:
            members = used.setdefault(root[x.id], [])
            if n.id not in members:
                members.append(n.id)
    for o in graph.outputs:
        if isinstance(o, Node):
            members = used.setdefault(root[o.id], [])
            if ("out", o.device) not in members:
                members.append(("out", o.device))
    nets = []
    for v, members in used.items():
        node = by_id[v]
        if node.kind != "constant" and not _is_transfer(node):
            nets.append((v, value_bytes(node), [v] + members))
    return nets


def _device_of(member, devices):
    return member[1] if isinstance(member, tuple) else devices[member]


def transfer_cost(graph, devices, cost="bytes"):
    """What a placement ``{node id: device}`` (every node but constants and transfers) costs
    per run: bytes moved (``cost="bytes"``) or the number of transfers (``cost="count"``). A
    value pays once for each other device that uses it."""
    total = 0
    for v, size, members in _nets(graph):
        others = {str(_device_of(m, devices)) for m in members[1:]} - {str(devices[v])}
        total += len(others) * (size if cost == "bytes" else 1)
    return total


def choose_devices(graph, pins=None, devices=None, cost="bytes"):
    """``({node id: Device}, method)``: the policy of the module docstring, without rewriting
    the graph (constants and transfers get no entry). ``method`` is ``"min-cut"`` (exact, two
    devices), ``"local search"`` (three or more) or ``"one device"``."""
    pinned = pinned_devices(graph, pins)
    nets = _nets(graph)
    if devices is None:
        found = set(pinned.values()) | {m[1] for _, _, ms in nets for m in ms if isinstance(m, tuple)}
        devices = sorted(found, key=lambda d: (d.type != "cpu", str(d)))
    devices = [parse_device(d) for d in devices]
    for d in list(pinned.values()) + [m[1] for _, _, ms in nets for m in ms if isinstance(m, tuple)]:
        if d not in devices:
            devices.append(d)
    free = [n.id for n in graph.nodes if n.id not in pinned and n.kind != "constant" and not _is_transfer(n)]
    n_values = len(nets) + 1
    weight = {v: (size * n_values + 1 if cost == "bytes" else 1) for v, size, _ in nets}
    if len(devices) <= 1:
        chosen, method = {nid: (devices or [graph.nodes[nid].device])[0] for nid in free}, "one device"
    elif len(devices) == 2:
        chosen, method = _min_cut(free, pinned, nets, weight, devices), "min-cut"
    else:
        chosen, method = _local_search(graph, free, pinned, nets, weight, devices), "local search"
    return {**pinned, **chosen}, method


def _min_cut(free, pinned, nets, weight, devices):
    """Exact two-device placement: a minimum s-t cut (source = devices[0], sink = devices[1])."""
    src, dst = devices
    cap = {}

    def vertex(m):
        if isinstance(m, tuple) or m in pinned:
            return "s" if (m[1] if isinstance(m, tuple) else pinned[m]) == src else "t"
        return m

    def edge(a, b, c):
        cap.setdefault(a, {}).setdefault(b, 0)
        cap.setdefault(b, {}).setdefault(a, 0)
        cap[a][b] += c

    inf = sum(weight.values()) + 1
    for v, _, members in nets:
        vs = {vertex(m) for m in members}
        if len(vs) < 2:
            continue
        if len(vs) == 2:
            a, b = vs
            edge(a, b, weight[v])
            edge(b, a, weight[v])
            continue
        into, out = ("in", v), ("out", v)        # Lawler: members -> in -> out -> members
        edge(into, out, weight[v])
        for m in vs:
            edge(m, into, inf)
            edge(out, m, inf)
    if "s" in cap and "t" in cap:
        _max_flow(cap, "s", "t")
    # the sink side: every vertex that can still reach t in the residual graph (the smallest
    # minimum cut's sink side); the rest, ties included, goes to devices[0]
    sink, queue = {"t"}, deque(["t"])
    while queue:
        b = queue.popleft()
        for a in cap.get(b, {}):
            if a not in sink and cap[a][b] > 0:
                sink.add(a)
                queue.append(a)
    return {nid: (dst if nid in sink else src) for nid in free}


def _max_flow(cap, s, t):
    """Edmonds-Karp: push flow along shortest augmenting paths until none is left (``cap``
    becomes the residual graph)."""
    while True:
        parent, queue = {s: None}, deque([s])
        while queue and t not in parent:
            a = queue.popleft()
            for b, c in cap[a].items():
                if c > 0 and b not in parent:
                    parent[b] = a
                    queue.append(b)
        if t not in parent:
            return
        path, b = [], t
        while parent[b] is not None:
            path.append((parent[b], b))
            b = parent[b]
        push = min(cap[a][b] for a, b in path)
        for a, b in path:
            cap[a][b] -= push
            cap[b][a] += push


def _local_search(graph, free, pinned, nets, weight, devices):
    """Three or more devices: greedy start (most input bytes), then single moves that lower the cost."""
    place = dict(pinned)
    by_id = {n.id: n for n in graph.nodes}
    root = _roots(graph)
    for nid in free:                                   # topological order
        here = {}
        for x in by_id[nid].input_nodes:
            r = root[x.id]
            if r in place:
                here[place[r]] = here.get(place[r], 0) + value_bytes(by_id[r])
        place[nid] = max(devices, key=lambda d: (here.get(d, 0), -devices.index(d)))
    touching = {}
    for i, (v, _, members) in enumerate(nets):
        for m in set(members):
            if not isinstance(m, tuple):
                touching.setdefault(m, []).append(i)

    def local(nid):
        total = 0
        for i in touching.get(nid, ()):
            v, _, members = nets[i]
            used_on = {m[1] if isinstance(m, tuple) else place.get(m) for m in members[1:]}
            total += weight[v] * len(used_on - {place[v], None})
        return total

    for _ in range(20):
        moved = False
        for nid in free:
            start = place[nid]
            best, best_cost = start, local(nid)
            for d in devices:
                place[nid] = d
                c = local(nid)
                if c < best_cost:
                    best, best_cost = d, c
            place[nid] = best
            moved = moved or best != start
        if not moved:
            break
    return {nid: place[nid] for nid in free}


# ---------------------------------------------------------------- the pass

def place(graph, pins=None, devices=None, cost="bytes"):
    """``(placed graph, report)``: every node on the device the policy chooses (see the module
    docstring), with an explicit ``to_device`` node for each value used on another device.

    ``pins``: ``{node or Symbol or op name or function: device}``; ``devices``: the devices
    free nodes may use (default: those of the pins and the graph, CPU first); ``cost``:
    ``"bytes"`` (default) or ``"count"``. The report's notes give the method, the transfers and
    the bytes they move per run, before and after.
    """
    placement, method = choose_devices(graph, pins, devices, cost)
    by_id = {n.id: n for n in graph.nodes}
    to_device = get_op("to_device")
    env, order, moved = {}, [], {}
    copies = {}

    def on(value, device):
        """``value`` (a new node) on ``device``: itself, or its transfer (one per device)."""
        if value.device == device:
            return value
        key = (id(value), device)
        hit = moved.get(key)
        if hit is None:
            hit = Node(to_device, (value,), {"device": str(device)}, aval=Aval(value.aval.shape, value.aval.dtype),
                       device=device, location=value.location, stop_gradient=value.stop_gradient,
                       requires_grad=value.requires_grad)
            moved[key] = hit
            placed.add(id(hit))
            order.append(hit)
        return hit

    def value_on(vid, device):
        node = by_id[vid]
        return constant_on(node, device) if node.kind == "constant" else on(env[vid], device)

    def constant_on(node, device):
        if node.device == device:
            new = env[node.id]
        else:
            key = (node.id, device)
            new = copies.get(key)
            if new is None:
                value = get_backend(device).asarray(node.value)
                new = copies[key] = node.replace(device=device, value=value)
        if id(new) not in placed:
            placed.add(id(new))
            order.append(new)
        return new

    placed = set()
    root = _roots(graph)
    for n in graph.nodes:
        if n.kind == "constant":
            env[n.id] = n          # placed where a user needs it
            continue
        if _is_transfer(n):
            env[n.id] = env[root[n.id]]    # x.to(d) is x: placement moves values where they are used
            continue
        device = placement[n.id]
        ins = []
        for k, x in enumerate(n.inputs):
            if not isinstance(x, Node):
                ins.append(x)
            elif n.kind == "assign" and k == 0:
                ins.append(env[x.id])            # the target is named, not read
            else:
                ins.append(value_on(root[x.id], device))
        if device == n.device and all(a is b for a, b in zip(ins, n.inputs)):
            new = n
        else:
            new = n.replace(inputs=tuple(ins), device=device)
        env[n.id] = new
        placed.add(id(new))
        order.append(new)
    inputs = [env[n.id] for n in graph.inputs]
    outputs = [value_on(root[o.id], o.device) if isinstance(o, Node) else o for o in graph.outputs]
    after, converted = Graph.make(order, inputs, outputs, graph.name)
    kept = survivors(graph, env, converted)
    before_t, after_t = transfers(graph), transfers(after)
    devs = {}
    for n in after.nodes:
        if n.kind in _FREE_KINDS and not _is_transfer(n):
            devs[str(n.device)] = devs.get(str(n.device), 0) + 1
    notes = [f"placement ({method}, fewest {'bytes moved' if cost == 'bytes' else 'transfers'}): "
             + ", ".join(f"{k} ops on {d}" for d, k in devs.items()),
             f"transfers: {len(before_t)} ({fmt_bytes(sum(b for _, b in before_t))} per run) -> "
             f"{len(after_t)} ({fmt_bytes(sum(b for _, b in after_t))} per run)"]
    notes += [f"  %{t.id} moves %{t.inputs[0].id} from {t.inputs[0].device} to {t.device} ({fmt_bytes(b)})"
              for t, b in after_t]
    return after, make_report("place", graph, after, kept, notes=tuple(notes))


def placer(pins=None, devices=None, cost="bytes"):
    """A pass (``Graph -> (Graph, PassReport)``) that places with these arguments, for
    ``passes=[placer({"matmul": "cuda"}), ...]`` in ``lg.compile`` or ``lg.jit``."""
    def place_pass(graph):
        return place(graph, pins=pins, devices=devices, cost=cost)
    place_pass.__name__ = "place"
    return place_pass


# ---------------------------------------------------------------- looking at a placement

def transfers(graph):
    """``[(to_device node, bytes per run)]``: the graph's transfers, in order."""
    return [(n, value_bytes(n)) for n in graph.nodes if n.kind == "op" and n.op.output_device is not None]


def describe_placement(graph):
    """A table: each node, its device, and for a transfer where it moves what."""
    rows = [("node", "op", "device", "")]
    for n in graph.nodes:
        if n.kind == "op" and n.op.output_device is not None:
            x = n.inputs[0]
            what = f"transfer %{x.id}: {x.device} -> {n.device}, {fmt_bytes(value_bytes(n))}"
        else:
            what = n.name or ""
        rows.append((f"%{n.id}", n.op_name, str(n.device), what))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else "")
             for r in rows]
    t = transfers(graph)
    lines.append(f"{len(t)} transfers, {fmt_bytes(sum(b for _, b in t))} per run")
    return "\n".join(line.rstrip() for line in lines)
