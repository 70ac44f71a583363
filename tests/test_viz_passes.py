"""viz.PassExplorer: it builds (widget and still view), marks the nodes each pass touched
(dce, fold, cse, simplify, patterns) on small graphs, shows the report's numbers and whatever
extra fields a report carries, and draws the same SVG every time."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

import labgrad as lg
import viz
from labgrad.graph.passes import PassReport, lower
from viz.passes import draw_pass, pass_marks


def two_inputs():
    a = lg.placeholder((4,), name="a")
    b = lg.placeholder((4,), name="b")
    return a, b


def graph_with_dead_code():
    a, b = two_inputs()
    dead = lg.exp(a - b)
    out = a * b
    return lg.Graph.from_outputs([out.node], extra_roots=[dead.node])


def marked_nodes(view):
    """{node number: colour of its outline} for the nodes a pass marked in a drawing."""
    out = {}
    for line in view.dot.splitlines():
        m = re.search(r'>%(\d+)</font><br/><font point-size="8" color="(#[0-9a-f]+)"><b>', line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def test_dce_marks_the_dead_nodes_as_removed():
    graph = graph_with_dead_code()
    _, (report,) = lower(graph, ["dce"])
    explorer = viz.PassExplorer([report])
    before, after = explorer.marks()
    dead = {n.id for n in graph.nodes if n.op_name in ("sub", "exp")}
    assert set(before) == dead and all(k == "removed" for k, _ in before.values())
    assert after == {}
    grey = viz.style.PASS_MARKS["removed"]["fontcolor"]
    assert marked_nodes(explorer.before) == {i: grey for i in dead}
    assert marked_nodes(explorer.after) == {}
    assert "dashed" in explorer.before.dot


def test_fold_marks_folded_nodes_before_and_their_constants_after():
    a, _ = two_inputs()
    c = lg.constant(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32), name="c")
    f = lg.compile(a * (c * 2.0 + 1.0), passes=["fold"])
    before, after = viz.PassExplorer(f).marks()
    (report,) = f.reports
    assert {a for a, _ in report.folded} == {i for i, (k, _) in before.items() if k == "folded"}
    assert {b for _, b in report.folded} == {i for i, (k, _) in after.items() if k == "folded"}
    assert len(report.folded) == 2
    for i in before:
        assert report.before.nodes[i].op_name in ("mul", "add")
    for i in after:
        assert report.after.nodes[i].kind == "constant"


def test_cse_marks_the_merged_node_with_its_target():
    a, b = two_inputs()
    f = lg.compile(a * b + b * a, passes=["cse"])
    before, after = viz.PassExplorer(f).marks()
    (report,) = f.reports
    (dup, into), = report.merged
    assert before == {dup: ("merged", f"merged into %{into}")}
    assert after == {}
    view = viz.PassExplorer(f).before
    assert marked_nodes(view) == {dup: viz.style.PASS_MARKS["merged"]["color"]}


def test_simplify_marks_the_rule_and_patterns_mark_fused_nodes():
    a, b = two_inputs()
    f = lg.compile((a * b) * 1 + b, passes=["simplify", "dce", "patterns"])
    explorer = viz.PassExplorer(f, "simplify")
    before, after = explorer.marks()
    assert [k for k, _ in before.values()] == ["rewritten"]
    assert "mul_one" in next(iter(before.values()))[1]
    explorer.select("patterns")
    before, after = explorer.marks()
    fused = f.reports[2].fused
    assert fused and set(before) == set(fused[0][0])
    assert list(after) == [fused[0][1]] and after[fused[0][1]][0] == "fused"
    assert "fma" in explorer.after.dot


def test_default_start_is_the_first_pass_that_changed_and_select_by_name():
    a, b = two_inputs()
    f = lg.compile(a * b + b * a)     # default pipeline: dce and fold change nothing here
    explorer = viz.PassExplorer(f)
    assert explorer.report.changed and explorer.report.name == "cse"
    assert explorer.select(0).index == 0
    with pytest.raises(ValueError, match="no pass named 'nope'"):
        explorer.select("nope")
    with pytest.raises(IndexError):
        explorer.select(99)


def test_widget_builds_and_follows_select():
    pytest.importorskip("ipywidgets")
    a, b = two_inputs()
    f = lg.compile(a * b + b * a)
    explorer = viz.PassExplorer(f)
    box = explorer.widget
    pick, _table, body = explorer._controls
    assert pick.value == explorer.index
    assert [value for _, value in pick.options] == list(range(len(f.reports)))
    pick.value = 0                       # as if the student picked the first pass
    assert explorer.index == 0 and "<b>before</b> dce" in body.value
    explorer.select("cse")
    assert pick.value == explorer.index and "merged into" in body.value
    assert box is explorer.widget


def test_static_html_in_the_display_bundle():
    a, b = two_inputs()
    f = lg.compile(a * b + b * a)
    explorer = viz.PassExplorer(f)
    bundle = explorer._repr_mimebundle_()
    html = bundle["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert html.count("<svg") == 2 and "<script" not in html
    assert "a still picture" in html and "merged (CSE)" in html
    for r in f.reports:                  # the whole pipeline is listed
        assert r.name in html
    assert "nodes" in html and "bytes moved" in html
    assert "kernels" not in html and "peak" not in html   # not reported by these passes
    assert bundle["text/plain"] == repr(explorer)


def test_repr_is_stable():
    a, b = two_inputs()
    f = lg.compile(a * b + b * a)
    text = repr(viz.PassExplorer(f))
    assert "0x" not in text
    assert text == (f"PassExplorer({len(f.reports)} passes; showing 4. cse: 5 -> 4 nodes, "
                    f"144 B -> 96 B moved)")


def test_svg_is_deterministic():
    def build():
        a, b = two_inputs()
        f = lg.compile((a * b) * 1 + b * a)
        e = viz.PassExplorer(f)
        return e.before.svg + e.after.svg + e.static_html()

    assert build() == build()


@dataclass(eq=False)
class _FusionReport(PassReport):
    """A report as a fusion pass may make it: kernels, peak memory and kernel sources."""

    kernel_sources: dict = None


def test_optional_fields_kernels_peak_sources_and_not_fused():
    a, b = two_inputs()
    f = lg.compile(a * b + 1.0, passes=["patterns"])
    r = f.reports[0]
    fake = _FusionReport(name="fuse", nodes_before=r.nodes_before, nodes_after=r.nodes_after,
                         bytes_before=r.bytes_before, bytes_after=r.bytes_after, fused=r.fused,
                         not_fused=((2, "its result is also an output"),), kept=r.kept,
                         kernels_before=2, kernels_after=1, peak_memory_before=64,
                         peak_memory_after=32, before=r.before, after=r.after,
                         kernel_sources={"fused_fma_0": "def fused_fma_0(a, b, out):\n    out[:] = a * b + 1"})
    html = viz.PassExplorer([fake]).static_html()
    assert "kernels" in html and "2</td>" in html and "planned peak memory" in html
    assert "fused_fma_0" in html and "out[:] = a * b + 1" in html
    assert "not fused" in html and "its result is also an output" in html


def test_errors_say_what_to_do():
    with pytest.raises(TypeError, match="compiled program"):
        viz.PassExplorer(3)
    a, b = two_inputs()
    with pytest.raises(ValueError, match="ran no passes"):
        viz.PassExplorer(lg.compile(a * b, passes=()))


def test_jit_function_after_its_first_call():
    @lg.jit
    def f(x):
        return x * 1.0 + x * 1.0

    f(lg.tensor(np.ones(3, dtype=np.float32)))
    explorer = viz.PassExplorer(f)
    assert explorer.reports is not None and explorer.report.changed


def test_draw_pass_checks_which():
    a, b = two_inputs()
    f = lg.compile(a * b + b * a, passes=["cse"])
    with pytest.raises(ValueError, match="before"):
        draw_pass(f.reports[0], "middle")
    before, _ = pass_marks(f.reports[0])
    assert before and draw_pass(f.reports[0], "after").num_nodes == len(f.reports[0].after.nodes)


def test_changes_inside_a_subgraph_mark_the_control_node():
    x = lg.placeholder((3,), name="x")
    y = lg.cond(x.sum() > 0, lambda v: (v * 1.0) * 2, lambda v: v * 3, x)
    f = lg.compile(y, passes=["simplify"])
    explorer = viz.PassExplorer(f)
    before, after = explorer.marks()
    (cond,) = [n.id for n in f.reports[0].before.nodes if n.kind == "cond"]
    assert before == {cond: ("rewritten", "changed in its true subgraph")}
    assert list(after.values()) == [("rewritten", "changed in its true subgraph")]
    assert "mul_one" in explorer.static_html()
