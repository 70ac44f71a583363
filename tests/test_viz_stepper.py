"""viz.BackpropStepper: its steps, what each step shows (checked against finite differences and
hand-derived values), moving around, the highlight, the widget, and that gradients accumulate
exactly once however often one steps back and forth."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

import labgrad as lg
import viz

X0 = np.array([1.0, 2.0])
Y0 = np.array([3.0, -1.0])


def loss_np(x, y):
    return float(np.sum(x * y + y))


def finite_difference(f, at, eps=1e-6):
    """Central differences of scalar ``f`` in float64, one coordinate at a time."""
    at = np.array(at, dtype=np.float64)
    grad = np.zeros_like(at)
    for i in np.ndindex(at.shape):
        up, down = at.copy(), at.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (f(up) - f(down)) / (2 * eps)
    return grad


def make():
    """loss = (x*y + y).sum(), in float64 so finite differences are sharp."""
    x = lg.tensor(X0, requires_grad=True, name="x")
    y = lg.tensor(Y0, requires_grad=True, name="y")
    return x, y, (x * y + y).sum()


@pytest.fixture
def stepper():
    x, y, loss = make()
    return x, y, viz.BackpropStepper(loss)


def current_node_label(stepper):
    """The words of the node whose DOT id is lg-current (there must be exactly one)."""
    hot = [line for line in stepper.view.dot.splitlines() if 'id="lg-current"' in line]
    assert len(hot) == 1
    start = hot[0].index("label=<") + len("label=")
    depth, end = 0, start
    while True:                      # the label is <...> with balanced tags inside
        depth += {"<": 1, ">": -1}.get(hot[0][end], 0)
        end += 1
        if depth == 0:
            break
    markup = hot[0][start + 1:end - 1]
    return html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()[0]


def test_steps_go_forward_in_run_order_then_backward_in_engine_order(stepper):
    *_, s = stepper
    assert [(st.phase, st.op_name) for st in s.steps] == [
        ("forward", "mul"), ("forward", "add"), ("forward", "sum"),
        ("backward", "sum"), ("backward", "add"), ("backward", "mul")]
    assert [st.label for st in s.steps][2:4] == ["forward 3/3: sum", "backward 1/3: sum backward"]
    assert s.steps[2].node is s.loss.grad_fn and s.steps[3].node is s.loss.grad_fn
    assert s.index == 0 and s.current is s.steps[0]


def test_forward_steps_show_inputs_and_output(stepper):
    *_, s = stepper
    shown = s.shown
    np.testing.assert_array_equal(shown["input_0"], X0)
    np.testing.assert_array_equal(shown["input_1"], Y0)
    np.testing.assert_array_equal(shown["output"], X0 * Y0)
    s.goto(2)
    assert s.shown["output"] == pytest.approx(loss_np(X0, Y0))


def test_backward_steps_show_gradients_equal_to_finite_differences(stepper):
    x, y, s = stepper
    dx = finite_difference(lambda v: loss_np(v, Y0), X0)
    dy = finite_difference(lambda v: loss_np(X0, v), Y0)
    s.goto(3)                                              # sum backward
    assert s.shown["grad_out"] == pytest.approx(1.0)
    np.testing.assert_allclose(s.shown["grad_in_0"], np.ones(2))
    assert "vector-Jacobian product" in s.shown["local_0"]
    s.next()                                               # add backward: (x*y) + y
    np.testing.assert_allclose(s.shown["local_0"], np.ones(2))
    np.testing.assert_allclose(s.shown["accum_1"], np.ones(2))   # y so far: only the "+ y" path
    s.next()                                               # mul backward: x * y
    np.testing.assert_allclose(s.shown["grad_out"], np.ones(2))
    np.testing.assert_allclose(s.shown["local_0"], Y0)            # d(x*y)/dx = y
    np.testing.assert_allclose(s.shown["local_1"], X0)            # d(x*y)/dy = x
    np.testing.assert_allclose(s.shown["accum_0"], dx, rtol=1e-6)
    np.testing.assert_allclose(s.shown["accum_1"], dy, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), dy, rtol=1e-6)


def test_broadcast_gradients_are_shown_summed_to_the_inputs_shape():
    a0 = np.arange(6.0).reshape(2, 3)
    b0 = np.array([1.0, -2.0, 0.5])
    a = lg.tensor(a0, requires_grad=True, name="a")
    b = lg.tensor(b0, requires_grad=True, name="b")
    s = viz.BackpropStepper(lg.exp(a * b).sum())
    s.goto(-1)
    assert s.current.op_name == "mul"
    expected_b = finite_difference(lambda v: float(np.exp(a0 * v).sum()), b0)
    assert s.shown["grad_in_1"].shape == (3,)
    np.testing.assert_allclose(s.shown["grad_in_1"], expected_b, rtol=1e-6)
    np.testing.assert_allclose(s.shown["local_1"], a0)      # d(a*b)/db, elementwise: a
    s.back()                                                 # exp backward
    assert s.current.op_name == "exp"
    np.testing.assert_allclose(s.shown["local_0"], np.exp(a0 * b0))


def test_numbers_and_constants_need_no_gradient():
    w = lg.tensor([2.0], requires_grad=True, name="w")
    c = lg.tensor([5.0], name="c")
    s = viz.BackpropStepper((w * 3.0 + c).sum())
    s.goto(-1)                                               # mul backward
    assert s.shown["grad_in_1"] == "no gradient needed" == s.shown["local_1"] == s.shown["accum_1"]
    np.testing.assert_allclose(s.shown["local_0"], [3.0])
    s.goto(-2)                                               # add backward
    assert s.shown["accum_1"] == "no gradient needed"


def test_moving_around(stepper):
    _, _, s = stepper
    assert s.back() is s.steps[0] and s.index == 0          # stays at the start
    s.next()
    s.next()
    assert s.index == 2
    s.goto(-1)
    assert s.index == 5
    assert s.next() is s.steps[5]                            # stays at the end
    s.back()
    assert s.index == 4
    with pytest.raises(IndexError, match="6 steps"):
        s.goto(6)
    with pytest.raises(IndexError):
        s.goto(1.5)


def test_the_highlight_follows_the_current_op(stepper):
    _, _, s = stepper
    seen = []
    for i in range(len(s.steps)):
        s.goto(i)
        seen.append(current_node_label(s))
    assert seen == ["mul", "add", "sum", "sum", "add", "mul"]
    s.goto(0)
    first = s.view.dot
    s.goto(1)
    assert s.view.dot != first
    assert 'id="lg-current"' in html.unescape(s.view.svg)


def test_values_and_gradients_appear_without_moving_the_layout(stepper):
    _, _, s = stepper
    s.goto(0)
    early = s.view
    s.goto(5)
    late = s.view
    # positions of the ovals (ops) are the same in every step
    centres = [re.findall(r'<ellipse[^>]* cx="([\d.-]+)" cy="([\d.-]+)"', v.svg) for v in (early, late)]
    assert centres[0] == centres[1] and len(centres[0]) == 3
    # in the first step the sum's result is not known yet: its value is laid out but invisible
    hidden = re.findall(r'<font color="#fafafa">([^<]*)</font>', early.dot)
    assert "3" in hidden                    # loss = (1*3 + 3) + (2*(-1) - 1) = 3 (by hand)
    assert not re.findall(r'<font color="#fafafa">', late.dot)
    assert "grad [3 -1]" in late.dot        # x's gradient, shown in the backward phase


def test_stepping_never_accumulates_gradients_twice():
    x, _, loss = make()
    x.grad = lg.tensor([10.0, 10.0])                         # a gradient from an earlier step
    s = viz.BackpropStepper(loss)
    dx = finite_difference(lambda v: loss_np(v, Y0), X0)
    np.testing.assert_allclose(x.grad.numpy(), 10.0 + dx, rtol=1e-6)
    for i in list(range(len(s.steps))) + list(range(len(s.steps) - 1, -1, -1)):
        s.goto(i)
        assert s.shown["op"] == s.current.op_name
        assert s.view.svg.startswith("<svg")
    np.testing.assert_allclose(x.grad.numpy(), 10.0 + dx, rtol=1e-6)
    s.goto(4)                                                # add backward: x's grad not touched yet
    np.testing.assert_allclose(s._accumulated(s._tape.tensors[0], 2), [10.0, 10.0])
    s.goto(5)
    np.testing.assert_allclose(s.shown["accum_0"], 10.0 + dx, rtol=1e-6)


def test_views_are_rendered_lazily_and_cached(stepper):
    _, _, s = stepper
    assert s._views == {}
    view = s.view
    assert s.view is view and view.svg is view.svg
    s.next()
    assert s.view is not view and len(s._views) == 2


def test_widget_controls_drive_the_stepper(stepper):
    _, _, s = stepper
    box = s.widget
    controls, panes = box.children
    play, back, slider, forward, label = controls.children
    assert (type(play).__name__, type(slider).__name__) == ("Play", "IntSlider")
    assert (back.description, forward.description) == ("back", "next")
    assert play.max == slider.max == len(s.steps) - 1
    forward.click()
    forward.click()
    assert s.index == 2 and slider.value == 2 and "forward 3/3: sum" in label.value
    back.click()
    assert s.index == 1
    slider.value = 4
    assert s.index == 4 and s.current.label == "backward 2/3: add backward"
    graph, table = panes.children
    assert 'id="lg-current"' in html.unescape(graph.value)
    assert "incoming grad" in table.value and "x grad so far" not in table.value
    s.goto(5)
    assert slider.value == 5 and "x grad so far" in table.value


def test_text_form_is_stable(stepper):
    _, _, s = stepper
    assert repr(s) == "BackpropStepper(3 forward + 3 backward steps; at forward 1/3: mul)"
    bundle = s._repr_mimebundle_()
    assert bundle["text/plain"] == repr(s)
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_without_a_kernel_the_first_step_shows_as_a_still_picture(stepper):
    """nbconvert (and any viewer with no widget state) falls back from the widget view to
    text/html, then to image/svg+xml: both hold step 1's graph, and the HTML its table."""
    _, _, s = stepper
    bundle = s._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert bundle["image/svg+xml"] == s.view.svg and bundle["image/svg+xml"].lstrip().startswith("<svg")
    page = html.unescape(bundle["text/html"])
    assert "<script" not in page and s.view.svg in bundle["text/html"]
    assert "forward 1/3: mul" in page and "step 1 of 6" in page and "output:" in page
    assert 'id="lg-current"' in page


def test_nbconvert_shows_the_still_picture_of_a_stepper_whose_widget_state_was_not_saved(stepper):
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    _, _, s = stepper
    bundle = s._repr_mimebundle_()
    out = nbformat.v4.new_output("display_data", data=bundle)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("stepper", outputs=[out])])
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    assert "step 1 of 6" in body and "forward 1/3: mul" in html.unescape(body)


def test_table_names_inputs_and_gives_values(stepper):
    _, _, s = stepper
    s.goto(5)
    table = html.unescape(s.table_html())
    assert "local d out / d x" in table and "grad sent to y" in table and "[3 -1]" in table


def test_bad_arguments_are_explained():
    with pytest.raises(TypeError, match="Tensor"):
        viz.BackpropStepper([1.0, 2.0])
    with pytest.raises(lg.GradError, match="does not require grad"):
        viz.BackpropStepper(lg.tensor([1.0]).sum())
    with pytest.raises(ValueError, match="leaf"):
        viz.BackpropStepper(lg.tensor(1.0, requires_grad=True))


def test_gradient_edges_light_up_only_where_gradients_flow():
    w = lg.tensor([2.0], requires_grad=True, name="w")
    c = lg.tensor([5.0], name="c")
    s = viz.BackpropStepper((w * c).sum())
    s.goto(-1)                                               # mul backward
    red = [line for line in s.view.dot.splitlines() if "->" in line and "dir=back" in line]
    assert len(red) == 2                                     # into w, and from the result; not into c
    s.goto(0)
    assert "dir=back" not in s.view.dot


def test_a_gradient_of_a_gradient_can_be_stepped_through():
    t = lg.tensor(2.0, requires_grad=True, dtype="float64", name="t")
    (g,) = lg.grad(t * lg.sin(t), [t], create_graph=True)
    s = viz.BackpropStepper(g)
    s.goto(-1)
    # d/dt (sin t + t cos t) = 2 cos t - t sin t, by hand
    assert float(t.grad) == pytest.approx(2 * np.cos(2.0) - 2.0 * np.sin(2.0))
    assert isinstance(s.shown["accum_0"], np.ndarray)
