"""viz.compare: eager graphs per call vs the one static graph, the errors each side reports,
results checked against each other, timings kept out of the text form, and HTML that the
notebook sanitizer makes comparable."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import labgrad as lg
import viz
from viz.compare import fmt_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def branchy(x):
    """Eager-style: a Python if on a value (cannot be traced)."""
    if x.sum() > 0:
        return x * 2
    return -x


def branchy_static(x):
    return lg.cond(x.sum() > 0, lambda v: v * 2, lambda v: -v, x)


def doubling(x):
    while x.sum() < 10:
        x = x * 2
    return x


def doubling_static(x):
    return lg.while_loop(lambda v: v.sum() < 10, lambda v: v * 2, x, max_iterations=50)


POS, NEG = lg.tensor([1.0, 2.0]), lg.tensor([-1.0, -2.0])


@pytest.fixture
def result():
    return viz.compare(branchy, POS, NEG, static_fn=branchy_static, repeat=1)


def test_one_dynamic_graph_per_call_each_with_only_its_branch(result):
    assert len(result.dynamic) == 2 and all(isinstance(v, viz.GraphView) for v in result.dynamic)
    assert result.dynamic_ops == [["mul"], ["neg"]]
    first, second = (v.dot for v in result.dynamic)
    assert "mul" in first and "neg" not in first
    assert "neg" in second and "mul" not in second


def test_the_static_graph_holds_both_branches(result):
    static = result.static
    assert isinstance(static, viz.GraphView) and static.num_clusters == 2
    assert "cond: true branch" in static.dot and "cond: false branch" in static.dot
    assert "mul" in static.dot and "neg" in static.dot
    assert result.traces == 1                  # one trace served both calls
    assert result.static_outline == "sum, gt, cond[true: mul | false: neg]"


def test_errors_say_which_side_failed_and_why(result):
    assert result.errors["eager"] is None
    assert result.errors["static"] is None
    message = result.errors["jit"]
    assert message.startswith("call 1: TraceError:")
    assert "lg.cond" in message and "if x.sum() > 0:" in message   # names the user's line


def test_results_of_both_worlds_are_checked_against_each_other(result):
    assert result.agree == [True, True]

    def wrong_static(x):   # true branch differs from the eager function
        return lg.cond(x.sum() > 0, lambda v: v * 3, lambda v: -v, x)

    off = viz.compare(branchy, POS, NEG, static_fn=wrong_static, repeat=0)
    assert off.agree == [False, True]
    assert "matches eager branchy on 1 of 2 calls" in repr(off)


def test_text_form_is_deterministic_and_has_no_timings(result):
    again = viz.compare(branchy, POS, NEG, static_fn=branchy_static, repeat=2)
    text = repr(result)
    assert text == repr(again)
    assert result.timings and again.timings
    assert not re.search(r"\d\s?(ns|µs|us|ms|s)\b", text)
    assert "timing" not in text
    lines = text.splitlines()
    assert lines[0] == "viz.compare(branchy): 2 calls"
    assert "  call 1 (x=[1 2]): 1 op: mul" in lines
    assert "  call 2 (x=[-1 -2]): 1 op: neg" in lines
    assert "  eager branchy: none" in lines and "  lg.jit(branchy_static): none" in lines
    assert any(line.startswith("  lg.jit(branchy): call 1: TraceError") for line in lines)


def test_timings_are_seconds_per_call(result):
    t = result.timings
    assert set(t) == {"eager", "jit", "first_call"}
    assert all(isinstance(v, float) and 0 < v < 1 for v in t.values())
    assert viz.compare(branchy, POS, static_fn=branchy_static, repeat=0).timings == {}


def test_html_shows_every_picture_the_error_and_the_timings(result):
    page = result._repr_html_()
    assert page.count("<svg") == 3               # two eager calls, one static graph
    assert "TraceError" in page and "if x.sum() &gt; 0:" in page     # escaped
    assert "timings vary" in page
    assert fmt_seconds(result.timings["eager"]) in page


def _sanitize(text):
    """Apply the notebook sanitizer's rules (.nbval-sanitize.cfg), as nbval does."""
    with open(os.path.join(ROOT, ".nbval-sanitize.cfg"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    rules = [(lines[i][len("regex: "):], lines[i + 1][len("replace: "):])
             for i in range(len(lines) - 1) if lines[i].startswith("regex: ")]
    assert rules
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text)
    return text


def test_html_is_comparable_once_sanitized(result):
    again = viz.compare(branchy, POS, NEG, static_fn=branchy_static, repeat=1)
    again.timings = {k: v * 7.3 + 1e-3 for k, v in again.timings.items()}   # a slower machine
    assert result._repr_html_() != again._repr_html_()
    assert _sanitize(result._repr_html_()) == _sanitize(again._repr_html_())


@pytest.mark.parametrize("seconds, text", [(1.234e-5, "12.3 µs"), (0.0021, "2.1 ms"), (3.0, "3 s"),
                                           (4.5e-9, "4.5 ns"), (0.25, "250 ms")])
def test_fmt_seconds(seconds, text):
    assert fmt_seconds(seconds) == text
    assert _sanitize(text) == "DURATION"


def test_a_function_written_with_cond_is_its_own_static_version():
    both = viz.compare(branchy_static, POS, NEG, repeat=0)
    assert both.errors == {"eager": None, "jit": None}
    assert both.static.num_clusters == 2
    assert both.dynamic_ops == [["mul"], ["neg"]]     # eager lg.cond runs one branch
    assert both.agree == [True, True]


def test_without_a_static_version_there_is_no_static_graph():
    alone = viz.compare(branchy, POS, repeat=0)
    assert alone.static is None and alone.agree is None
    assert alone.errors["jit"].startswith("call 1: TraceError")
    assert "static: no graph" in repr(alone)
    assert "static_fn=" in alone._repr_html_()


def test_loops_record_as_many_ops_as_they_ran():
    loops = viz.compare(doubling, lg.tensor([1.0]), lg.tensor([6.0]), static_fn=doubling_static, repeat=0)
    # 1 -> 2 -> 4 -> 8 -> 16 takes 4 doublings; 6 -> 12 takes 1 (by hand)
    assert [len(ops) for ops in loops.dynamic_ops] == [4, 1]
    assert loops.dynamic[0].num_nodes > loops.dynamic[1].num_nodes
    assert loops.static.num_clusters == 2 and "while: body" in loops.static.dot
    assert loops.agree == [True, True]


def test_eager_errors_are_reported_per_call():
    def picky(x):
        if x.sum() > 0:
            return x * 2
        return x.reshape(3)                 # (2,) cannot become (3,)

    out = viz.compare(picky, POS, NEG, repeat=1)
    assert out.dynamic[0] is not None and out.dynamic[1] is None
    assert out.errors["eager"].startswith("call 2: ShapeError")
    assert "eager" not in out.timings and out.agree is None
    assert "call 2 (x=[-1 -2]): failed" in repr(out)


def test_examples_with_several_arguments():
    def scale(x, k):
        if k > 1:
            return x * k
        return x + k

    out = viz.compare(scale, (POS, 3.0), (POS, 0.5), repeat=0)
    assert out.calls == ["x=[1 2], k=3", "x=[1 2], k=0.5"]
    assert out.dynamic_ops == [["mul"], ["add"]]
    # k is a Python number: jit bakes it in and retraces per value, so it can be traced
    assert out.errors["jit"] is None and out.traces == 2


def test_the_callers_tensors_are_left_alone():
    x = lg.tensor([1.0, 2.0])
    viz.compare(branchy, x, static_fn=branchy_static, repeat=0)
    assert not x.requires_grad and x.grad is None and x.grad_fn is None
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def test_large_inputs_are_described_by_shape():
    out = viz.compare(branchy, lg.ones(4, 5), repeat=0)
    assert out.calls == ["x: (4, 5) float32"]


def test_bad_arguments_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="at least one example"):
        viz.compare(branchy)
    with pytest.raises(ValueError, match="repeat"):
        viz.compare(branchy, POS, repeat=-1)
    with pytest.raises(TypeError, match="function"):
        viz.compare(branchy, POS, static_fn=3)
