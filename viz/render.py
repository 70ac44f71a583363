"""Turning DOT text into pictures, with an external layout program.

The ``graphviz`` Python package only *writes* DOT; laying it out needs a program. By default
that is ``graphviz-pure`` (a pip wheel: a Rust port of Graphviz, so no system install and the
same bytes on every machine, which notebooks compared by nbval rely on). A system Graphviz
``dot`` can be used instead::

    viz.set_renderer("dot")             # or: export LABGRAD_DOT=/usr/bin/dot
    viz.set_renderer(None)              # back to the default search

The search order is: ``set_renderer``, then ``$LABGRAD_DOT``, then ``graphviz-pure`` next to
the running Python (``sysconfig.get_path("scripts")``: a venv's ``bin/`` is found even when the
venv is not activated, as in a Jupyter kernel), then ``graphviz-pure`` on ``PATH``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

PURE = "graphviz-pure"
ENV_VAR = "LABGRAD_DOT"
PNG_DPI = 144          # PNG at 2x the SVG's 72 points per inch: sharp on high-density screens

_choice = None         # set by set_renderer: None (search), or a program name or path


class RendererNotFoundError(RuntimeError):
    """No program to lay out graphs was found."""


class RenderError(RuntimeError):
    """The layout program rejected the DOT text (its message is included)."""


def set_renderer(program=None):
    """Choose the program that lays out graphs: ``"graphviz-pure"``, ``"dot"``, a path, or
    ``None`` for the default search. Returns the resolved path, so a typo fails here."""
    global _choice
    previous, _choice = _choice, program
    if program is None:
        return None
    try:
        return find_renderer()
    except RendererNotFoundError:
        _choice = previous
        raise


def find_renderer() -> str:
    """The path of the layout program that ``render`` will run."""
    if _choice is not None and _choice != PURE:
        return _resolve(_choice, f"viz.set_renderer({_choice!r})")
    configured = os.environ.get(ENV_VAR)
    if configured and _choice is None:
        return _resolve(configured, f"${ENV_VAR}={configured}")
    scripts = sysconfig.get_path("scripts")
    beside_python = os.path.join(scripts, PURE)
    if os.path.isfile(beside_python) and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which(PURE)
    if on_path:
        return on_path
    raise RendererNotFoundError(
        f"viz needs the program {PURE!r} to draw graphs, and it is not installed: looked in "
        f"{scripts} (next to this Python) and on PATH.\n"
        f"  Install it into this environment:  {sys.executable} -m pip install graphviz-pure\n"
        f"  (or, in a labgrad checkout:  pip install -e '.[viz]').\n"
        f"  To use a system Graphviz instead: viz.set_renderer('dot'), or set {ENV_VAR}=/usr/bin/dot.")


def _resolve(program, origin):
    path = program if os.sep in program else shutil.which(program)
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    hint = ("install Graphviz (e.g. apt-get install graphviz)" if os.path.basename(program) == "dot"
            else f"install it ({sys.executable} -m pip install graphviz-pure)")
    raise RendererNotFoundError(
        f"the graph renderer chosen by {origin} was not found"
        f"{'' if os.sep in program else ' on PATH'}: {program!r}.\n"
        f"  Either {hint}, or go back to the default with viz.set_renderer(None)"
        f"{f' and unset {ENV_VAR}' if origin.startswith('$') else ''}.")


def render(dot: str, fmt: str = "svg") -> bytes:
    """Lay out ``dot`` and return the picture's bytes in ``fmt`` (``svg``, ``png``, ...)."""
    program = find_renderer()
    command = [program, f"-T{fmt}"]
    if fmt == "png":
        command.append(f"-Gdpi={PNG_DPI}")
    done = subprocess.run(command, input=dot.encode("utf-8"), capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or "(no message)"
        raise RenderError(
            f"{os.path.basename(program)} could not render this graph (exit code "
            f"{done.returncode}):\n  {message}\n"
            f"  The DOT text starts with:\n{_excerpt(dot)}")
    return done.stdout


def render_svg(dot: str) -> str:
    """The SVG of ``dot`` as text, from ``<svg`` on (no XML prolog or generator comment), ready
    to be placed inline in a notebook or web page."""
    svg = render(dot, "svg").decode("utf-8")
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _excerpt(dot, lines=8):
    head = dot.splitlines()[:lines]
    return "\n".join("    " + line for line in head)
