"""viz.draw: what the DOT says (boxes, ovals, colours, values, numbering, clusters, depth),
that it renders to deterministic SVG, saving, and the renderer's errors."""
from __future__ import annotations

import html
import os
import re
import stat

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
import viz
from labgrad.autograd import backward_steps
from viz.style import FAMILY_COLORS
from viz import render as render_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- reading DOT back

def _split_label(line):
    """(label markup, rest of the attribute text) of one DOT statement."""
    start = line.find("label=<")
    if start < 0:
        m = re.search(r'label="([^"]*)"', line)
        return (m.group(1) if m else None), line
    depth, i = 0, start + len("label=")
    while True:
        ch = line[i]
        depth += ch == "<"
        depth -= ch == ">"
        i += 1
        if depth == 0:
            return line[start + len("label=<"):i - 1], line[:start] + line[i:]


def _attrs(text):
    return dict(re.findall(r'(\w+)=("[^"]*"|[^\s\]]+)', text))


def text_of(markup):
    """The visible words of an HTML-like label."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup or "")).split()


def parse(dot):
    """Nodes {id: (label words, attrs)} and edges [(tail, head, attrs)] of a DOT text."""
    nodes, edges = {}, []
    for line in dot.splitlines():
        line = line.strip()
        m = re.match(r"(n\d+) -> (n\d+)(.*)$", line)
        if m:
            label, rest = _split_label(m.group(3))
            attrs = {k: v.strip('"') for k, v in _attrs(rest).items()}
            attrs["label"] = label if label is not None else attrs.get("label")
            edges.append((m.group(1), m.group(2), attrs))
            continue
        m = re.match(r"(n\d+) \[(.*)\]$", line)
        if m:
            label, rest = _split_label(m.group(2))
            attrs = {k: v.strip('"') for k, v in _attrs(rest).items()}
            attrs["markup"] = label
            nodes[m.group(1)] = (text_of(label), attrs)
    return nodes, edges


def find(nodes, *words):
    """The ids of nodes whose label contains all ``words`` (in order, consecutive or not)."""
    return [n for n, (text, _) in nodes.items() if all(w in text for w in words)]


def one(nodes, *words):
    found = find(nodes, *words)
    assert len(found) == 1, f"expected one node labelled {words}, found {len(found)}: {nodes}"
    return found[0]


@pytest.fixture
def small():
    """loss = (x*y + y).sum() with x = [1, 2], y = [3, -1]."""
    x = lg.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = lg.tensor([3.0, -1.0], requires_grad=True, name="y")
    loss = (x * y + y).sum()
    return x, y, loss


# ---------------------------------------------------------------- forward graph

def test_forward_graph_has_a_box_per_tensor_and_an_oval_per_op(small):
    *_, loss = small
    view = viz.draw(loss)
    nodes, edges = parse(view.dot)
    ovals = [n for n, (_, a) in nodes.items() if a.get("shape") == "ellipse"]
    boxes = [n for n, (_, a) in nodes.items() if a.get("shape") == "box"]
    assert sorted(nodes[n][0][0] for n in ovals) == ["add", "mul", "sum"]
    assert len(boxes) == 5                       # x, y, x*y, x*y+y, loss
    assert len(edges) == 8                       # 2+1 (mul), 2+1 (add), 1+1 (sum)
    assert (view.num_nodes, view.num_edges) == (8, 8)
    assert repr(view) == "GraphView(8 nodes, 8 edges)"
    mul, add, total = one(nodes, "mul"), one(nodes, "add"), one(nodes, "sum")
    xs, ys = one(nodes, "x"), one(nodes, "y")
    # data flows from the inputs through the ops in the order they were applied
    assert (xs, mul) in [(t, h) for t, h, _ in edges] and (ys, mul) in [(t, h) for t, h, _ in edges]
    assert (ys, add) in [(t, h) for t, h, _ in edges]
    sum_out = [h for t, h, _ in edges if t == total]
    assert len(sum_out) == 1 and "()" in nodes[sum_out[0]][0]


def test_ops_are_coloured_by_family(small):
    *_, loss = small
    nodes, _ = parse(viz.draw(loss).dot)
    assert nodes[one(nodes, "mul")][1]["fillcolor"] == FAMILY_COLORS["elementwise"]
    assert nodes[one(nodes, "sum")][1]["fillcolor"] == FAMILY_COLORS["reduce"]
    a = lg.randn(2, 3, requires_grad=True)
    nodes, _ = parse(viz.draw(F.relu(a @ lg.randn(3, 2)).sum()).dot)
    assert nodes[one(nodes, "matmul")][1]["fillcolor"] == FAMILY_COLORS["linalg"]


def test_parameters_constants_and_numbers_look_different():
    w = lg.tensor([1.0, 2.0], requires_grad=True, name="w")
    c = lg.tensor([5.0, 6.0], name="c")
    nodes, edges = parse(viz.draw((w * c + 2.5).sum()).dot)
    param, const, number = (nodes[one(nodes, word)][1] for word in ("w", "c", "2.5"))
    assert param["fillcolor"] != const.get("fillcolor")
    assert "dashed" in number["style"] and float(number["fontsize"]) < 11
    assert "(2,)" not in nodes[one(nodes, "2.5")][0]   # a number is just its value
    assert len(edges) == 2 + 1 + 2 + 1 + 1 + 1


def test_small_tensors_show_values_with_three_significant_digits():
    x = lg.tensor([3.14159, -0.000123456, 2000.0], requires_grad=True, name="x")
    big = lg.tensor(np.arange(7.0), requires_grad=True, name="big")
    nodes, _ = parse(viz.draw(x.sum() + big.sum()).dot)
    text = nodes[one(nodes, "x")][0]
    assert text[text.index("float32") + 1:] == ["[3.14", "-0.000123", "2e+03]"]
    big_text = nodes[one(nodes, "big")][0]
    assert big_text == ["big", "(7,)", "float64"]        # 7 elements: no values


def test_grads_are_shown_once_computed_and_can_be_turned_off(small):
    *_, loss = small
    before, _ = parse(viz.draw(loss).dot)
    assert "grad" not in before[one(before, "x")][0]
    loss.backward(retain_graph=True)
    nodes, _ = parse(viz.draw(loss).dot)
    # d loss / dx = y, d loss / dy = x + 1 (by hand)
    assert nodes[one(nodes, "x")][0][-3:] == ["grad", "[3", "-1]"]
    assert nodes[one(nodes, "y")][0][-3:] == ["grad", "[2", "3]"]
    plain, _ = parse(viz.draw(loss, values=False, grads=False).dot)
    assert plain[one(plain, "x")][0] == ["x", "(2,)", "float32"]


def test_a_leaf_draws_as_one_box():
    w = lg.tensor([1.0], requires_grad=True, name="w")
    view = viz.draw(w)
    nodes, edges = parse(view.dot)
    assert next(iter(nodes.values()))[0][:1] == ["w"] and edges == []


def test_labels_are_ascii_even_for_non_ascii_names():
    x = lg.tensor([1.0], requires_grad=True, name="\u03b1")
    dot = viz.draw((x * x).sum()).dot
    dot.encode("ascii")
    assert "\\u03b1" in dot


def test_input_order_is_marked_where_it_matters():
    a = lg.tensor([4.0], requires_grad=True, name="a")
    b = lg.tensor([2.0], requires_grad=True, name="b")
    nodes, edges = parse(viz.draw(a / b).dot)
    div = one(nodes, "div")
    labels = {nodes[t][0][0]: e["label"] for t, h, e in edges if h == div}
    assert labels == {"a": "0", "b": "1"}
    nodes, edges = parse(viz.draw(a * b).dot)
    assert all(e["label"] is None for t, h, e in edges if h == one(nodes, "mul"))


def test_op_attributes_are_shown_briefly():
    x = lg.randn(2, 3, requires_grad=True)
    nodes, _ = parse(viz.draw(x.sum(axis=1, keepdims=True)).dot)
    assert nodes[one(nodes, "sum")][0] == ["sum", "axis=(1,),", "keepdims=True"]


# ---------------------------------------------------------------- backward graph

def test_backward_graph_numbers_the_rules_in_the_engines_order(small):
    x, y, loss = small
    nodes, edges = parse(viz.draw(loss, backward=True).dot)
    steps = {int(text[0]): n for n, (text, a) in nodes.items() if a.get("shape") == "ellipse"}
    engine = [node.op.name for node, _, _ in backward_steps((x * y + y).sum())]
    assert [nodes[steps[k]][0][1:] for k in sorted(steps)] == [[name, "backward"] for name in engine]
    assert engine == ["sum", "add", "mul"]
    seed = one(nodes, "d", "output", "=", "1")
    xg, yg = one(nodes, "x.grad"), one(nodes, "y.grad")
    pairs = [(t, h) for t, h, _ in edges]
    assert pairs.count((seed, steps[1])) == 1
    assert (steps[1], steps[2]) in pairs and (steps[2], steps[3]) in pairs
    assert (steps[2], yg) in pairs and (steps[3], xg) in pairs and (steps[3], yg) in pairs
    assert len(edges) == 6
    assert all(e["label"] in ("()", "(2,)") for _, _, e in edges)


def test_backward_sums_the_gradients_of_a_tensor_used_twice():
    x = lg.tensor([1.0, 2.0], requires_grad=True, name="x")
    h = x + 1
    nodes, edges = parse(viz.draw((h * h).sum(), backward=True).dot)
    plus = one(nodes, "+")
    mul = one(nodes, "mul", "backward")
    add = one(nodes, "add", "backward")
    pairs = [(t, h) for t, h, _ in edges]
    assert pairs.count((mul, plus)) == 2 and pairs.count((plus, add)) == 1
    assert (mul, add) not in pairs


def test_backward_graph_of_a_constant_is_refused():
    with pytest.raises(lg.GradError, match="does not require grad"):
        viz.draw(lg.tensor([1.0]) * 2, backward=True)


def test_backward_graph_shows_leaf_grads_after_backward(small):
    *_, loss = small
    loss.backward(retain_graph=True)
    nodes, _ = parse(viz.draw(loss, backward=True).dot)
    assert nodes[one(nodes, "x.grad")][0][-2:] == ["[3", "-1]"]


# ---------------------------------------------------------------- higher order

def test_a_gradient_built_with_create_graph_draws_with_its_rules_clustered():
    t = lg.tensor(2.0, requires_grad=True, name="t")
    (g,) = lg.grad(t * lg.sin(t), [t], create_graph=True)
    view = viz.draw(g)
    labels = re.findall(r"label=\"?([\w ]+ backward)\"?", view.dot)
    assert sorted(labels) == ["mul backward", "sin backward"]
    nodes, _ = parse(view.dot)
    out = [text for text, a in nodes.values() if a.get("penwidth") == "2.0"]
    expected = np.sin(2.0) + 2.0 * np.cos(2.0)                  # d/dt t sin t, by hand
    assert out[0][-1] == f"{expected:.3g}"
    assert "<svg" in view.svg


def test_second_order_backward_graph_renders():
    t = lg.tensor([0.5, 1.5], requires_grad=True, name="t")
    (g,) = lg.grad((lg.exp(t) * t).sum(), [t], create_graph=True)
    view = viz.draw(g.sum(), backward=True)
    nodes, _ = parse(view.dot)
    assert find(nodes, "exp", "backward") and find(nodes, "t.grad")
    assert 'class="node"' in view.svg


# ---------------------------------------------------------------- depth and grouping

def chain(n):
    x = lg.tensor([0.5], requires_grad=True, name="x")
    y = x
    for _ in range(n):
        y = lg.sin(y)
    return y


def test_depth_cuts_the_graph_and_marks_the_cut():
    view = viz.draw(chain(6), depth=2)
    nodes, edges = parse(view.dot)
    assert len(find(nodes, "sin")) == 2
    dots = one(nodes, "...")
    assert nodes[dots][0] == ["...", "4", "more", "ops"]
    (cut_edge,) = [(t, h) for t, h, _ in edges if t == dots]
    assert nodes[cut_edge[1]][1]["shape"] == "box"          # into the tensor whose maker was cut
    assert not find(nodes, "x")
    full, _ = parse(viz.draw(chain(6), depth=6).dot)
    assert not find(full, "...") and find(full, "x")


def test_depth_on_the_backward_graph():
    nodes, _ = parse(viz.draw(chain(5), backward=True, depth=3).dot)
    assert [nodes[n][0][:2] for n in find(nodes, "backward")] == [["1", "sin"], ["2", "sin"], ["3", "sin"]]
    assert nodes[one(nodes, "...")][0] == ["...", "2", "more", "steps"]


def test_bad_options_are_explained():
    x = lg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw(x * 2, rankdir="up")
    with pytest.raises(ValueError, match="positive int"):
        viz.draw(x * 2, depth=0)


def test_rankdir_reaches_the_dot(small):
    assert "rankdir=LR" in viz.draw(small[2], rankdir="LR").dot


def blocks(n_blocks, ops_per_block=10):
    """``n_blocks`` residual blocks of ``ops_per_block`` ops, each in its own name scope."""
    h = lg.tensor(np.linspace(-1, 1, 4), requires_grad=True, name="x")
    for i in range(n_blocks):
        with lg.name_scope(f"block{i}"):
            z = h
            for _ in range(ops_per_block - 1):
                z = lg.tanh(z)
            h = z + h
    return h.sum()


def test_scopes_become_clusters_when_asked():
    loss = blocks(3, 4)                 # 12 + 1 ops: small, so not grouped by default
    assert viz.draw(loss).num_clusters == 0
    view = viz.draw(loss, group=True)
    # edges: 3 blocks x (3 tanh x 2 + add 3) + sum 2
    assert view.num_clusters == 3 and repr(view) == "GraphView(27 nodes, 29 edges, 3 clusters)"
    assert re.findall(r"label=(block\d)", view.dot) == ["block0", "block1", "block2"]
    nodes, _ = parse(view.dot)
    assert len(nodes) == 13 + 1 + 13     # ops, the input, their results


def test_nested_scopes_nest_clusters():
    x = lg.tensor([1.0], requires_grad=True)
    with lg.name_scope("encoder"):
        with lg.name_scope("layer0"):
            y = x * 2
        with lg.name_scope("layer1"):
            y = y * 3
    view = viz.draw(y, group=True)
    assert view.num_clusters == 3
    outer = view.dot.index("label=encoder")
    assert outer < view.dot.index("label=layer0") and outer < view.dot.index("label=layer1")


def test_a_300_op_graph_is_grouped_compact_and_renders():
    loss = blocks(30, 10)
    view = viz.draw(loss)
    assert view.num_clusters == 30                         # grouped automatically (> 40 ops)
    nodes, edges = parse(view.dot)
    ovals = [n for n, (_, a) in nodes.items() if a.get("shape") == "ellipse"]
    assert len(ovals) == 301
    boxes = [n for n, (_, a) in nodes.items() if a.get("shape") == "box"]
    assert len(boxes) == 1 + 30 + 1        # the input, each block's output (it leaves its block), the loss
    assert any(e["label"] == "(4,)" for _, _, e in edges)   # results between ops are edge labels
    svg = view.svg
    assert svg.count('class="cluster"') == 30 and svg.count('class="node"') == len(nodes)
    assert view.dot.count("label=block") == 30
    assert viz.draw(loss, group=False).num_clusters == 0
    assert viz.draw(loss, backward=True).num_clusters == 30


# ---------------------------------------------------------------- highlight

def test_highlight_marks_one_node_with_a_stable_id(small):
    x, _, loss = small
    view = viz.draw(loss, highlight=loss.grad_fn)
    nodes, _ = parse(view.dot)
    hot = [n for n, (_, a) in nodes.items() if a.get("id") == "lg-current"]
    assert len(hot) == 1 and nodes[hot[0]][0][0] == "sum"
    assert nodes[hot[0]][1]["fillcolor"] not in FAMILY_COLORS.values()
    both = parse(viz.draw(loss, highlight=[x, loss.grad_fn]).dot)[0]
    assert sum(a.get("id") == "lg-current" for _, a in both.values()) == 1
    assert sum(a.get("class") == "lg-highlight" for _, a in both.values()) == 2
    assert 'id="lg-current"' in html.unescape(view.svg)


# ---------------------------------------------------------------- rendering and saving

def test_svg_is_inline_ready_deterministic_and_names_nodes(small):
    *_, loss = small
    first = viz.draw(loss)
    svg = first.svg
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert re.search(r'<g id="[^"]+" class="node">', svg)
    assert first.svg is svg                                   # rendered once
    x = lg.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = lg.tensor([3.0, -1.0], requires_grad=True, name="y")
    again = viz.draw((x * y + y).sum())
    assert again.dot == first.dot and again.svg == svg        # same graph, same bytes
    bundle = first._repr_mimebundle_()
    assert bundle["image/svg+xml"] == svg and bundle["text/plain"] == repr(first)
    assert first._repr_svg_() == svg
    assert "0x" not in repr(first)


def test_save_writes_svg_png_and_dot(tmp_path, small):
    view = viz.draw(small[2])
    view.save(tmp_path / "g.svg")
    view.save(tmp_path / "g.png")
    view.save(str(tmp_path / "g.dot"))
    assert "<svg" in (tmp_path / "g.svg").read_text()
    png = (tmp_path / "g.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    assert (tmp_path / "g.dot").read_text() == view.dot
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.dot"):
        view.save(tmp_path / "g.pdf")


def test_bad_dot_reports_the_renderers_message():
    with pytest.raises(viz.RenderError, match="syntax error"):
        viz.render_svg("digraph { a -> }")


def test_a_missing_renderer_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.delenv("LABGRAD_DOT", raising=False)
    monkeypatch.setattr(render_module.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(render_module.shutil, "which", lambda name: None)
    with pytest.raises(viz.RendererNotFoundError) as info:
        _ = viz.draw(lg.tensor([1.0], requires_grad=True) * 2).svg
    message = str(info.value)
    assert "pip install graphviz-pure" in message and "pip install -e '.[viz]'" in message
    assert str(tmp_path) in message


def test_a_renderer_can_be_chosen_by_env_var_or_set_renderer(monkeypatch, tmp_path):
    fake = tmp_path / "fake-dot"
    fake.write_text("#!/bin/sh\ncat > /dev/null\necho '<svg>fake</svg>'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("LABGRAD_DOT", str(fake))
    assert viz.render_svg("digraph { a }") == "<svg>fake</svg>\n"
    monkeypatch.setenv("LABGRAD_DOT", str(tmp_path / "nowhere" / "dot"))
    with pytest.raises(viz.RendererNotFoundError, match="LABGRAD_DOT"):
        viz.render_svg("digraph { a }")
    monkeypatch.delenv("LABGRAD_DOT")
    try:
        assert viz.set_renderer(str(fake)) == str(fake)
        assert viz.render_svg("digraph { a }") == "<svg>fake</svg>\n"
        with pytest.raises(viz.RendererNotFoundError, match="not found"):
            viz.set_renderer(str(tmp_path / "missing"))
        assert viz.render_svg("digraph { a }") == "<svg>fake</svg>\n"   # a failed choice changes nothing
    finally:
        viz.set_renderer(None)
    assert viz.render_svg("digraph { a }").startswith("<svg")
    assert os.path.basename(render_module.find_renderer()) == "graphviz-pure"


# ---------------------------------------------------------------- drawers and errors

def test_drawers_are_found_by_type_and_new_types_can_plug_in():
    class Thing:
        pass

    class SpecialThing(Thing):
        pass

    with pytest.raises(TypeError, match="cannot draw a Thing.*Tensor"):
        viz.draw(Thing())
    seen = []

    @viz.register_drawer(Thing)
    def draw_thing(obj, options):
        seen.append((type(obj).__name__, options.rankdir, options.depth))
        return viz.GraphView("digraph { a }", 1, 0)

    try:
        view = viz.draw(SpecialThing(), rankdir="LR", depth=3)
        assert seen == [("SpecialThing", "LR", 3)] and repr(view) == "GraphView(1 node, 0 edges)"
    finally:
        from viz.draw import _DRAWERS
        del _DRAWERS[Thing]


def test_drawing_after_backward_keeps_the_graph_and_marks_released_values(small):
    """As torchviz users do: draw after loss.backward(). The ops and leaves are all there; the
    intermediate values backward() freed are drawn as released boxes."""
    x, y, loss = small
    before = parse(viz.draw(loss).dot)[0]
    loss.backward()
    nodes, edges = parse(viz.draw(loss).dot)
    ops = lambda ns: sorted(w[0] for w, a in ns.values() if a.get("shape") != "box")  # noqa: E731
    assert ops(nodes) == ops(before) == ["add", "mul", "sum"]
    assert len(nodes) == len(before) and len(edges) == len(parse(viz.draw(loss).dot)[1])
    released = [w for w, a in nodes.values() if "dashed" in a.get("style", "")]
    assert len(released) == 2 and all("released" in w for w in released)   # x*y and x*y + y
    assert any("x" in w for w, _ in nodes.values()) and x.grad.tolist() == [3.0, -1.0]
    backward_view = viz.draw(loss, backward=True)   # the backward steps can be drawn too
    assert "released" in backward_view.dot
    with pytest.raises(lg.GradError, match="a second time"):
        loss.backward()
