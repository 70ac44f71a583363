"""viz.ProfileView and viz.draw(..., heat=): structure, never timing values."""
import re

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
import viz
from labgrad import nn

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def step():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    rng = np.random.default_rng(0)
    x = lg.tensor(rng.normal(size=(32, 8)).astype("float32"))
    t = lg.tensor(rng.integers(0, 3, size=32))
    with lg.profiler.profile() as prof:
        with lg.profiler.record("step"):
            loss = F.cross_entropy(model(x), t)
            loss.backward()
    return prof, loss


@pytest.fixture(scope="module")
def peaks():
    return lg.profiler.measure_peaks(copy_mib=4, matmul_n=128, repeats=2)


def test_repr_counts_events_not_times(step):
    prof, _ = step
    text = repr(viz.ProfileView(prof))
    assert text == "ProfileView(13 events: 1 range, 6 forward, 6 backward; 1 thread; memory: 10 arrays)"
    assert "ms" not in text and "us" not in text


def test_needs_a_finished_profile():
    with lg.profiler.profile() as prof:
        with pytest.raises(ValueError, match="finished profile"):
            viz.ProfileView(prof)


def test_display_bundle_is_static_html_with_images(step, peaks):
    prof, _ = step
    bundle = viz.ProfileView(prof, peaks=peaks)._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    page = bundle["text/html"]
    assert page.count("data:image/png;base64,") == 3          # timeline, memory, roofline
    assert "<script" not in page                                # readable without a kernel
    assert "<table" in page and "matmul (backward)" in page
    assert "self ms" in page and "total ms" in page
    without = viz.ProfileView(prof)._repr_mimebundle_()["text/html"]
    assert without.count("data:image/png;base64,") == 2       # no peaks: no roofline panel


def test_timeline_has_one_bar_per_event_coloured_by_phase(step):
    prof, _ = step
    fig = viz.ProfileView(prof).timeline()
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == len(prof.events)
    colors = {tuple(round(c, 3) for c in b.get_facecolor()[:3]) for b in bars}
    assert len(colors) == 3                                     # forward, backward, range
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("thread 0") and any("depth 1" in s for s in labels)
    assert "step" in {t.get_text() for t in ax.texts}           # wide bars carry their names
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["forward op", "backward rule", "range"]


def test_memory_curve_marks_the_peak(step):
    prof, _ = step
    ax = viz.ProfileView(prof).memory().axes[0]
    marks = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert len(marks) == 1
    assert marks[0].get_ydata()[0] == pytest.approx(prof.memory.peak_bytes / 1024)
    assert any(t.get_text().startswith("peak ") for t in ax.texts)


def test_roofline_places_each_op_under_the_measured_roofs(step, peaks):
    prof, _ = step
    ax = viz.ProfileView(prof).roofline(peaks).axes[0]
    names = {t.get_text() for t in ax.texts}
    assert {"matmul", "relu", "add"} <= names
    roof = ax.get_lines()[0]
    assert max(roof.get_ydata()) == pytest.approx(peaks.flops / 1e9)
    assert "cpu" in ax.get_title(loc="left")


def test_heat_maps_each_forward_op_of_the_loss_to_its_time(step):
    prof, loss = step
    heat = viz.ProfileView(prof).heat(loss)
    assert sorted(n.op.name for n in heat) == ["add", "add", "cross_entropy", "matmul", "matmul", "relu"]
    assert all(s > 0 for s in heat.values())
    view = viz.draw(loss, heat=heat)
    assert len(re.findall(r'fillcolor="#(?:fff7bc|fee391|fec44f|fe9929|ec7014|cc4c02|993404)"', view.dot)) == 6
    assert "993404" in view.dot                                 # the slowest op is the darkest
    assert view.dot.count(" us<") + view.dot.count(" ms<") == 6


def test_draw_without_heat_is_unchanged(step):
    _, loss = step
    assert viz.draw(loss).dot == viz.draw(loss, heat=None).dot
    assert "993404" not in viz.draw(loss).dot


def test_panels_show_themselves_as_png_with_a_stable_repr(step):
    prof, _ = step
    pic = viz.ProfileView(prof).memory()
    assert repr(pic) == "<ProfileView memory curve>"
    assert pic._repr_png_().startswith(b"\x89PNG")
    assert pic.figure.axes == pic.axes                          # the figure's attributes pass through


def test_heat_of_a_compiled_step_colours_its_nodes_and_fused_kernels(jitted_step):
    from viz import style

    train_step, x, t = jitted_step
    with lg.profiler.profile() as prof:
        train_step(x, t)
        train_step(x, t)
    heat = viz.ProfileView(prof).heat(train_step)
    kinds = {n.kind for n in heat}
    assert kinds == {"op", "fused"} and all(s > 0 for s in heat.values())
    assert set(heat) <= set(train_step.graph.nodes)
    dot = viz.draw(train_step, heat=heat).dot
    assert any(c in dot for c in style.HEAT_COLORS) and not any(c in viz.draw(train_step).dot for c in style.HEAT_COLORS[-3:])
    assert len(re.findall(r'point-size="8">[0-9.]+ (?:us|ms)<', dot)) == len(heat)
