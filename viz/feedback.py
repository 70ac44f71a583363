"""Instant feedback for exercises: visible checks with hints.

A check is a ``with`` block that tries the student's code and then shows one line: a green ✓
when every expectation held, a red ✗ with a hint when one did not (or when the code raised), and
a grey ○ "not attempted yet" while the code still raises ``NotImplementedError`` (the stub nbgrader
leaves in the student version). It never raises, so a notebook with unfinished parts still runs
from top to bottom::

    from viz.feedback import check
    with check("Part 3: backward of mul") as c:
        ga, gb = mul_backward(g, a, b)
        c.equal(ga.shape, (2, 3), hint="reduce the gradient over the broadcast axis")
        c.close(ga, expected, rtol=1e-5, hint="d(a*b)/da is b")

The first expectation that fails stops the block, like an ``assert``. Code that may raise because
of a likely mistake goes in a ``with c.step(hint=...)`` block: an exception there shows that hint
(with the exception) instead of a bare "your code raised"::

    with check("Part 3: standardize") as c:
        with c.step(hint="reduce with keepdims=True so the mean lines up with the rows"):
            rows = standardize(x, axis=1)
        c.close(rows, expected)

The first expectation that fails stops the block, like an ``assert``. The display has an HTML
form and a plain-text form without addresses or timings, so re-running a notebook gives the
same text (nbval compares it). Graded points come from nbgrader's hidden tests, not from here.
"""
from __future__ import annotations

import html
import os
import re
import traceback

import numpy as np

import labgrad

__all__ = ["check", "CheckResult"]

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"

_ICONS = {PASSED: "✓", FAILED: "✗", ERROR: "✗", NOT_ATTEMPTED: "○"}
_COLORS = {  # (border, background): readable on light and dark JupyterLab themes
    PASSED: ("#1a7f37", "rgba(26, 127, 55, 0.12)"),
    FAILED: ("#cf222e", "rgba(207, 34, 46, 0.12)"),
    ERROR: ("#cf222e", "rgba(207, 34, 46, 0.12)"),
    NOT_ATTEMPTED: ("#6e7781", "rgba(110, 119, 129, 0.12)"),
}
_OUR_DIRS = tuple(os.path.dirname(os.path.abspath(f)) + os.sep  # frames that are not the student's
                  for f in (np.__file__, labgrad.__file__, __file__))


_CODE = re.compile(r"`([^`]+)`")  # `name` in a message is code


class _ExpectationFailed(Exception):
    """Raised by ``check.equal/close/true`` to stop the block; always swallowed by ``check``."""

    def __init__(self, hint, detail):
        super().__init__(hint)
        self.hint, self.detail = hint, detail


class CheckResult:
    """What a check found: ``status`` is "passed", "failed", "error" or "not attempted".

    ``text`` is the one-paragraph plain-text form; notebooks show the HTML form.
    """

    def __init__(self, title, status, message="", detail=""):
        self.title, self.status, self.message, self.detail = title, status, message, detail

    @property
    def passed(self):
        return self.status == PASSED

    @property
    def text(self):
        line = f"{_ICONS[self.status]} {self.title}"
        if self.message:
            line += f": {self.message}"
        if self.detail:
            line += "\n" + "\n".join("    " + d for d in self.detail.splitlines())
        return line

    def __repr__(self):
        return self.text

    def _repr_html_(self):
        border, background = _COLORS[self.status]
        body = f"<b>{_ICONS[self.status]} {html.escape(self.title)}</b>"
        if self.message:
            body += ": " + _CODE.sub(r"<code>\1</code>", html.escape(self.message))
        if self.detail:
            body += (f'<div style="margin-top: 0.3em; font-family: var(--jp-code-font-family, '
                     f'monospace); white-space: pre-wrap;">{html.escape(self.detail)}</div>')
        return (f'<div class="lg-check lg-check-{self.status.replace(" ", "-")}" '
                f'style="border-left: 4px solid {border}; background: {background}; '
                f'padding: 0.4em 0.8em; margin: 0.2em 0; white-space: pre-wrap;">{body}</div>')


class check:
    """Context manager: run the student's code, compare, show ✓ / ✗ with a hint / "not attempted".

    Exceptions from the block are reported, not raised (``KeyboardInterrupt`` still stops the
    cell). After the block, ``c.result`` holds the :class:`CheckResult` and ``c.passed`` says
    whether everything held.
    """

    def __init__(self, title, *, show=True):
        self.title = str(title)
        self.show = show
        self.result = None

    # ---- expectations (each stops the block at the first failure)
    def equal(self, got, expected, hint="not the expected value"):
        """Expect ``got == expected``; arrays and tensors must match in shape and every value."""
        if _is_array_like(got) or _is_array_like(expected):
            g, e = _as_array(got, "got"), _as_array(expected, "expected")
            if g.shape != e.shape:
                self._fail(hint, f"got shape {_shape(g)}, expected shape {_shape(e)}")
            if not np.array_equal(g, e):
                self._fail(hint, _first_difference(g, e))
            return
        if got is None and expected is not None:
            self._fail(hint, "got None: does your function `return` its result?")
        try:
            same = bool(got == expected)
        except (ValueError, TypeError):  # e.g. lists of arrays: == gives no single answer
            same = False
        if not same:
            self._fail(hint, f"got {_short(got)}, expected {_short(expected)}")

    def close(self, got, expected, rtol=1e-5, atol=1e-8, hint="values are not close enough"):
        """Expect numbers, arrays or tensors close to ``expected`` (``numpy.allclose``), same shape."""
        if got is None:
            self._fail(hint, "got None: does your function `return` its result?")
        g, e = _as_array(got, "got"), _as_array(expected, "expected")
        if g.shape != e.shape:
            self._fail(hint, f"got shape {_shape(g)}, expected shape {_shape(e)}")
        if not _numeric(g):
            self._fail(hint, f"got values of dtype {g.dtype}, expected numbers")
        if not np.allclose(g, e, rtol=rtol, atol=atol):
            self._fail(hint, _first_difference(g, e, rtol=rtol, atol=atol))

    def true(self, condition, hint="the condition does not hold"):
        """Expect ``condition`` to be true (for arrays or tensors: every element)."""
        ok = bool(np.all(_as_array(condition, "condition"))) if _is_array_like(condition) else bool(condition)
        if not ok:
            self._fail(hint, "")

    def step(self, hint):
        """A ``with`` block whose exceptions fail the check with ``hint`` (and the exception).

        ``NotImplementedError`` still reads as "not attempted", and a failed expectation inside
        keeps its own hint.
        """
        return _Step(self, hint)

    def _fail(self, hint, detail):
        raise _ExpectationFailed(str(hint), detail)

    # ---- the with-block
    @property
    def passed(self):
        return self.result is not None and self.result.passed

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        if etype is not None and not issubclass(etype, Exception):
            return False  # KeyboardInterrupt, SystemExit: let them stop the cell
        if etype is None:
            self.result = CheckResult(self.title, PASSED)
        elif issubclass(etype, _ExpectationFailed):
            self.result = CheckResult(self.title, FAILED, exc.hint, exc.detail)
        elif issubclass(etype, NotImplementedError):
            name, _ = _user_function(tb)
            message = "not attempted yet"
            if name:
                message += f" (`{name}` still raises NotImplementedError)"
            self.result = CheckResult(self.title, NOT_ATTEMPTED, message, str(exc))
        else:
            name, line = _user_function(tb)
            detail = f"in `{name}`, line {line}" if name else ""
            self.result = CheckResult(self.title, ERROR,
                                      f"your code raised {etype.__name__}: {_first_line(exc)}",
                                      _rest(exc, detail))
        if self.show:
            _display(self.result)
        return True


class _Step:
    def __init__(self, check, hint):
        self.check, self.hint = check, hint

    def __enter__(self):
        return self.check

    def __exit__(self, etype, exc, tb):
        if etype is None or not issubclass(etype, Exception) \
                or issubclass(etype, (_ExpectationFailed, NotImplementedError)):
            return False
        name, line = _user_function(tb)
        where = f" (in `{name}`, line {line})" if name else ""
        raise _ExpectationFailed(str(self.hint),
                                 f"your code raised {etype.__name__}: {_first_line(exc)}{where}") from exc


def _display(result):
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: print the text form
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(result)
    else:
        print(result.text)


def _user_function(tb):
    """``(function name, line)`` of the innermost frame in the student's code, or ``("", 0)``."""
    frames = [f for f in traceback.extract_tb(tb)
              if not os.path.abspath(f.filename).startswith(_OUR_DIRS)
              and "site-packages" not in f.filename]
    if not frames or frames[-1].name == "<module>":
        return "", 0
    return frames[-1].name, frames[-1].lineno


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _rest(exc, detail):
    lines = str(exc).strip().splitlines()[1:]
    return "\n".join([detail] * bool(detail) + lines)


def _is_array_like(x):
    return isinstance(x, np.ndarray) or (hasattr(x, "numpy") and hasattr(x, "shape"))


def _as_array(x, what):
    if hasattr(x, "numpy") and hasattr(x, "shape"):
        x = x.numpy()
    try:
        return np.asarray(x)
    except Exception as err:  # ragged lists and other odd inputs
        raise _ExpectationFailed(f"{what} is not an array", f"{type(x).__name__}: {err}") from None


def _numeric(a):
    return a.dtype.kind in "biufc"


def _shape(a):
    return tuple(int(n) for n in a.shape)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _short(x, limit=80):
    if isinstance(x, (float, np.floating)):
        text = f"{float(x):.6g}"
    elif isinstance(x, np.ndarray):
        text = np.array2string(x, precision=4, threshold=8, edgeitems=2, separator=", ")
    else:
        text = _ADDRESS.sub("", repr(x))  # "<Foo object at 0x7f..>" -> "<Foo object>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _first_difference(g, e, rtol=0.0, atol=0.0):
    """Where the largest mismatch is, with both values: ``at index (1, 2): got 1.5, expected 1``."""
    if g.ndim == 0:
        return f"got {_short(g.item())}, expected {_short(e.item())}"
    if _numeric(g) and _numeric(e):
        with np.errstate(invalid="ignore", over="ignore"):
            excess = np.abs(g.astype(np.float64) - e) - (atol + rtol * np.abs(e.astype(np.float64)))
        excess = np.where(np.isnan(excess), np.inf, excess)
        idx = np.unravel_index(int(np.argmax(excess)), g.shape)
    else:
        idx = np.unravel_index(int(np.argmax(g != e)), g.shape)
    bad = int(np.sum(~np.isclose(g, e, rtol=rtol, atol=atol))) if _numeric(g) and _numeric(e) \
        else int(np.sum(g != e))
    idx_text = "(" + ", ".join(str(int(i)) for i in idx) + ("," if len(idx) == 1 else "") + ")"
    return (f"{bad} of {g.size} values differ; at index {idx_text}: "
            f"got {_short(g[idx].item())}, expected {_short(e[idx].item())}")
