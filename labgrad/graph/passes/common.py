"""What several passes share: running a pass inside the subgraphs of cond and while nodes."""
from __future__ import annotations

__all__ = ["on_subgraphs"]


def on_subgraphs(node, run, ins=None):
    """``(new node or None, notes)``: ``node`` with ``run`` (a pass) applied to each of its
    subgraphs, or ``None`` when no subgraph changed. ``ins``: the node's new inputs."""
    if not node.subgraphs:
        return None, []
    subs, notes = {}, []
    for key, sub in node.subgraphs.items():
        new, report = run(sub)
        if report.changed:
            notes.append(f"in subgraph {key} of %{node.id}: {report.summary()}")
            notes.extend(f"  {line.strip()}" for line in report.lines()[1:])
        subs[key] = new if report.changed else sub
    if not notes:
        return None, []
    changes = {"subgraphs": subs}
    if ins is not None:
        changes["inputs"] = ins
    return node.replace(**changes), notes
