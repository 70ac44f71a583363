"""viz.draw of a compiled program draws each fused kernel as a cluster of its steps."""
import re

import pytest

import labgrad as lg
import viz

pytest.importorskip("graphviz")


def _program(passes=None):
    a, b, c, d = (lg.placeholder((None,), name=n) for n in "abcd")
    y = ((a * b + c) * d - a) * 0.5 + b * c - d
    return lg.compile(y) if passes is None else lg.compile(y, passes=passes)


def _fused_node(executable):
    return next(n for n in executable.graph.nodes if n.kind == "fused")


def test_a_fused_node_is_a_cluster_named_after_its_kernel():
    exe = _program()
    kernel = _fused_node(exe).attrs["kernel"].kernel
    view = viz.draw(exe)
    assert view.num_clusters == 1
    assert f'label="kernel {kernel.name}"' in view.dot
    # every step is an oval inside the cluster, plus the kernel's exit box
    assert view.num_nodes == 4 + len(kernel.steps) + 1 + 1      # 4 inputs, steps, 0.5, exit
    for op in set(kernel.ops):
        assert re.search(rf"label=<{op}<br/>", view.dot)


def test_operands_feed_the_steps_that_read_them():
    exe = _program()
    dot = viz.draw(exe).dot
    cluster = dot[dot.index("subgraph cluster_1"):]
    assert "fma" in cluster and "sub" in cluster
    # d is read by two steps (mul and the last sub): two edges leave it
    d_id = re.search(r"(\w+) \[label=<<b>d</b>", dot).group(1)
    assert len(re.findall(rf"\b{d_id} -> ", dot)) == 2


def test_the_unfused_program_draws_as_before():
    exe = _program(passes=["dce"])
    view = viz.draw(exe)
    assert view.num_clusters == 0
    assert view.svg == viz.draw(exe.graph).svg


def test_same_program_same_bytes():
    assert viz.draw(_program()).svg == viz.draw(_program()).svg


def test_several_outputs_are_numbered_into_the_exit_box():
    a, b = lg.placeholder((None,), name="a"), lg.placeholder((None,), name="b")
    t = a * b + 1.0
    exe = lg.compile([lg.exp(t) if hasattr(lg, "exp") else t * t, t * 2.0])
    fused = [n for n in exe.graph.nodes if n.kind == "fused"]
    if not fused or len(fused[0].attrs["kernel"].kernel.outputs) < 2:
        pytest.skip("this pipeline made no multi-output kernel")
    dot = viz.draw(exe).dot
    assert 'label="out [0]"' in dot and 'label="out [1]"' in dot
