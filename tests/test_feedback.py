"""viz.feedback.check: the visible checks of the exercises (✓ / ✗ with a hint / not attempted)."""
import re

import numpy as np
import pytest

import labgrad as lg
from viz.feedback import check


def run_check(body, title="Part 1: demo"):
    """Run ``body(c)`` inside a quiet check and return the check."""
    with check(title, show=False) as c:
        body(c)
    return c


def stub():
    raise NotImplementedError()


def test_all_expectations_hold_gives_a_tick():
    def body(c):
        c.equal((2, 3), (2, 3))
        c.close(lg.tensor([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]))
        c.true(lg.tensor([1.0, 2.0]).sum().item() == 3.0)
    c = run_check(body)
    assert c.passed and c.result.status == "passed"
    assert c.result.text == "✓ Part 1: demo"


def test_not_implemented_reads_as_not_attempted_and_names_the_stub():
    def body(c):
        c.equal(stub(), 1)
    c = run_check(body)
    assert c.result.status == "not attempted" and not c.passed
    assert "not attempted" in c.result.text
    assert "`stub` still raises NotImplementedError" in c.result.text
    assert c.result.text.startswith("○ Part 1: demo")


def test_failed_expectation_shows_hint_and_what_was_got_and_stops_there():
    reached = []

    def body(c):
        c.close(lg.tensor([1.0, 2.0, 3.0]), [1.0, 2.0, 3.5], hint="add the bias once")
        reached.append(True)
        c.equal(1, 1)
    c = run_check(body)
    assert c.result.status == "failed" and reached == []
    text = c.result.text
    assert text.startswith("✗ Part 1: demo: add the bias once")
    assert "1 of 3 values differ" in text and "index (2,)" in text
    assert "got 3," in text and "expected 3.5" in text


def test_close_uses_the_tolerances_given():
    assert run_check(lambda c: c.close(1.0 + 1e-3, 1.0, rtol=1e-2)).passed
    assert not run_check(lambda c: c.close(1.0 + 1e-3, 1.0, rtol=1e-5)).passed
    assert run_check(lambda c: c.close([0.0, 1e-9], [0.0, 0.0], atol=1e-8)).passed


def test_close_rejects_a_broadcastable_but_different_shape():
    c = run_check(lambda c: c.close(lg.ones(2, 3), np.ones(3), hint="keep the input's shape"))
    assert c.result.status == "failed"
    assert "got shape (2, 3), expected shape (3,)" in c.result.text


def test_close_with_none_asks_about_return():
    c = run_check(lambda c: c.close(None, 1.0, hint="h"))
    assert "got None" in c.result.text and "return" in c.result.text


def test_close_flags_nan():
    c = run_check(lambda c: c.close([1.0, float("nan")], [1.0, 2.0]))
    assert c.result.status == "failed" and "index (1,)" in c.result.text


def test_equal_on_plain_values_shows_both():
    c = run_check(lambda c: c.equal((4, 1), (4, 6), hint="stretch the size-1 axis"))
    assert c.result.text == "✗ Part 1: demo: stretch the size-1 axis\n    got (4, 1), expected (4, 6)"


def test_equal_on_tensors_compares_every_element_and_shape():
    assert run_check(lambda c: c.equal(lg.tensor([1, 2]), np.array([1, 2]))).passed
    c = run_check(lambda c: c.equal(lg.tensor([1, 2]), np.array([1, 3])))
    assert "1 of 2 values differ; at index (1,): got 2, expected 3" in c.result.text
    c = run_check(lambda c: c.equal(lg.tensor([1, 2]), np.array([[1, 2]])))
    assert "got shape (2,), expected shape (1, 2)" in c.result.text


def test_equal_none_against_a_value():
    assert run_check(lambda c: c.equal(None, None)).passed
    c = run_check(lambda c: c.equal((3,), None, hint="these do not broadcast"))
    assert "got (3,), expected None" in c.result.text


def test_equal_on_values_that_compare_elementwise_fails_cleanly():
    c = run_check(lambda c: c.equal([np.array([1, 2])], [np.array([1, 3])], hint="h"))
    assert c.result.status == "failed" and "expected [array([1, 3])]" in c.result.text


def test_true_with_tensors_means_every_element():
    assert run_check(lambda c: c.true(lg.tensor([1.0, 2.0]) > 0)).passed
    c = run_check(lambda c: c.true(lg.tensor([1.0, -2.0]) > 0, hint="all positive"))
    assert c.result.text == "✗ Part 1: demo: all positive"


def test_other_exceptions_are_reported_not_raised():
    def shapes_wrong():
        return lg.ones(2, 3) @ lg.ones(2, 3)

    c = run_check(lambda c: shapes_wrong())
    assert c.result.status == "error"
    first = c.result.text.splitlines()[0]
    assert first.startswith("✗ Part 1: demo: your code raised ShapeError: ")
    assert "in `shapes_wrong`, line" in c.result.text


def test_keyboard_interrupt_still_stops_the_cell():
    with pytest.raises(KeyboardInterrupt):
        with check("x", show=False):
            raise KeyboardInterrupt


def test_outside_ipython_it_prints_the_text(capsys):
    with check("Part 2: shown"):
        stub()
    assert capsys.readouterr().out == "○ Part 2: shown: not attempted yet (`stub` still raises NotImplementedError)\n"


class Thing:
    pass


def test_text_is_deterministic_and_has_no_addresses():
    texts = {run_check(lambda c: c.equal(Thing(), 1)).result.text for _ in range(2)}
    assert len(texts) == 1
    (text,) = texts
    assert "not the expected value" in text and "<test_feedback.Thing object>" in text
    assert re.search(r"0x[0-9a-fA-F]+", text) is None
    assert run_check(lambda c: c.close([1.0], [2.0])).result.text == \
        run_check(lambda c: c.close([1.0], [2.0])).result.text


def test_html_is_coloured_and_escaped():
    ok = run_check(lambda c: None, title="<b>part</b>").result._repr_html_()
    assert "&lt;b&gt;part&lt;/b&gt;" in ok and "#1a7f37" in ok and "lg-check-passed" in ok
    bad = run_check(lambda c: c.true(False, hint="a < b")).result._repr_html_()
    assert "a &lt; b" in bad and "#cf222e" in bad
    todo = run_check(lambda c: stub()).result._repr_html_()
    assert "not attempted" in todo and "#6e7781" in todo and "<code>stub</code>" in todo


def test_ipython_display_publishes_html_and_plain_text():
    from IPython.core.formatters import DisplayFormatter

    result = run_check(lambda c: c.equal(1, 2, hint="h")).result
    data, _ = DisplayFormatter().format(result)
    assert data["text/plain"] == result.text
    assert "lg-check-failed" in data["text/html"]


def test_step_turns_an_exception_into_its_hint():
    def wrong_shapes():
        return lg.ones(4, 3) - lg.ones(4)      # a (4,) mean without keepdims

    def body(c):
        with c.step(hint="reduce with keepdims=True"):
            wrong_shapes()
        c.equal(1, 2, hint="never reached")
    c = run_check(body)
    assert c.result.status == "failed"
    assert c.result.text.startswith("✗ Part 1: demo: reduce with keepdims=True")
    assert "your code raised ShapeError" in c.result.text and "`wrong_shapes`" in c.result.text


def test_step_keeps_not_attempted_and_inner_hints():
    def body(c):
        with c.step(hint="outer"):
            stub()
    assert run_check(body).result.status == "not attempted"

    def body2(c):
        with c.step(hint="outer"):
            c.equal(1, 2, hint="inner")
    assert "inner" in run_check(body2).result.text
