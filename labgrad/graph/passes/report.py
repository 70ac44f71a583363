"""``PassReport``: what one pass did to a graph, in numbers and node ids.

Ids are the ``%n`` numbers of the text form: ``removed``, ``merged`` and ``folded`` name nodes
of the graph *before* the pass, ``added`` nodes of the graph *after* it, and ``kept`` says
which number each surviving node has now (passes renumber). Byte counts are estimates from
each op's ``cost`` rule (what a node reads and writes), summed over the graph's nodes.
Fields a pass has nothing to say about stay empty (``()``) or ``None`` (kernel counts and
planned peak memory: filled in by the fusion and memory passes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Node, graph_cost

__all__ = ["PassReport", "make_report", "survivors", "fmt_bytes"]


def fmt_bytes(n):
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _ids(items):
    return ", ".join(f"%{i}" for i in items)


@dataclass(eq=False)
class PassReport:
    """What one pass changed (see the module docstring for what the ids refer to)."""

    name: str
    nodes_before: int
    nodes_after: int
    bytes_before: int
    bytes_after: int
    removed: tuple = ()       # ids before: nodes that are gone
    added: tuple = ()         # ids after: nodes the pass made
    merged: tuple = ()        # (id before, id before it was merged into): CSE
    folded: tuple = ()        # (id before, id after): nodes that became constants
    rewritten: tuple = ()     # (rule, id before, id after): simplification, pattern fusion
    fused: tuple = ()         # (ids before, id after): fusion passes
    not_fused: tuple = ()     # (id before, why): fusion candidates left alone
    kept: dict = field(default_factory=dict)    # id before -> id after, for nodes that stayed
    kernels_before: int | None = None
    kernels_after: int | None = None
    peak_memory_before: int | None = None
    peak_memory_after: int | None = None
    notes: tuple = ()         # anything else worth a line (e.g. changes inside subgraphs)
    before: Graph | None = field(default=None, repr=False)
    after: Graph | None = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.added or self.merged or self.folded or self.rewritten
                    or self.fused or self.notes) or self.nodes_before != self.nodes_after

    def summary(self) -> str:
        """One line: ``cse: 14 -> 12 nodes, 3.2 kB -> 2.9 kB moved``."""
        text = (f"{self.name}: {self.nodes_before} -> {self.nodes_after} nodes, "
                f"{fmt_bytes(self.bytes_before)} -> {fmt_bytes(self.bytes_after)} moved")
        if self.kernels_after is not None:
            text += f", {self.kernels_before} -> {self.kernels_after} kernels"
        if self.peak_memory_after is not None:
            text += (f", peak {fmt_bytes(self.peak_memory_before)} -> "
                     f"{fmt_bytes(self.peak_memory_after)}")
        return text

    def lines(self):
        out = [self.summary()]
        if not self.changed:
            out.append("  no change")
        if self.removed:
            out.append(f"  removed {_ids(self.removed)}")
        for a, b in self.folded:
            out.append(f"  folded %{a} into the constant %{b} (after)")
        for a, b in self.merged:
            out.append(f"  merged %{a} into %{b}")
        for rule, a, b in self.rewritten:
            out.append(f"  {rule}: %{a} -> %{b} (after)")
        for group, b in self.fused:
            out.append(f"  fused {_ids(group)} -> %{b} (after)")
        for a, why in self.not_fused:
            out.append(f"  not fused %{a}: {why}")
        if self.added:
            out.append(f"  added {_ids(self.added)} (after)")
        out.extend(f"  {n}" for n in self.notes)
        return out

    def __str__(self):
        return "\n".join(self.lines())

    def __repr__(self):
        return f"<PassReport {self.summary()}>"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def survivors(before, env, converted):
    """``{id before: id after}`` for the nodes a rewrite kept as themselves: the same op,
    made from the same builder node (possibly with new inputs)."""
    kept = {}
    for node in before.nodes:
        new = env.get(node.id)
        if isinstance(new, Node) and new.op is node.op and new.origin == node.origin:
            hit = converted.get(id(new))
            if hit is not None:
                kept[node.id] = hit.id
    return kept


def make_report(name, before, after, kept, **fields):
    """A report with the counts, the bytes and ``removed``/``added`` worked out from ``kept``
    (nodes listed as merged or folded are not repeated under ``removed``)."""
    explained = {a for a, _ in fields.get("merged", ())} | {a for a, _ in fields.get("folded", ())}
    explained |= {a for _, a, _ in fields.get("rewritten", ())}
    explained |= {i for group, _ in fields.get("fused", ()) for i in group}
    removed = tuple(n.id for n in before.nodes if n.id not in kept and n.id not in explained)
    survived = set(kept.values()) | {b for _, b in fields.get("folded", ())}
    survived |= {b for _, _, b in fields.get("rewritten", ())} | {b for _, b in fields.get("fused", ())}
    added = tuple(n.id for n in after.nodes if n.id not in survived)
    return PassReport(name=name, nodes_before=len(before.nodes), nodes_after=len(after.nodes),
                      bytes_before=graph_cost(before)["bytes"], bytes_after=graph_cost(after)["bytes"],
                      removed=removed, added=added, kept=kept, before=before, after=after, **fields)
