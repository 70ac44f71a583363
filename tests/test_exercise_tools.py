"""exercises/tools: the layout check, finding an exercise, make_student.py and grade.py.

They are run on a small two-part exercise built here, so each outcome (a top-level solution,
partial credit, a student who deleted the hidden tests) can be set up on purpose.
"""
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "exercises" / "tools"
sys.path.insert(0, str(TOOLS))
import nbgrader_tools as nt  # noqa: E402


def cell_text(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _exercise(parts):
    """A small exercise notebook in nbgrader format; parts: (grade_id, solution src, check src, points)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell("import numpy as np\nfrom viz.feedback import check"))
    for gid, solution, test, points in parts:
        sol = nbformat.v4.new_code_cell(solution)
        sol.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False,
                                    "grade_id": f"{gid}-solution", "schema_version": 3}
        chk = nbformat.v4.new_code_cell(test)
        chk.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True,
                                    "points": points, "grade_id": f"{gid}-check",
                                    "schema_version": 3}
        nb.cells += [sol, chk]
    return json.loads(nbformat.writes(nb))


SQUARE = ("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
          'with check("Part 1: square") as c:\n'
          '    c.close(square(np.array([1.0, 2.0])), [1.0, 4.0], hint="multiply x by itself")\n'
          "### BEGIN HIDDEN TESTS\nassert square(3.0) == 9.0\n### END HIDDEN TESTS")
CUBE = ("def cube(x):\n    ### BEGIN SOLUTION\n    return x * x * x\n    ### END SOLUTION",
        'with check("Part 2: cube") as c:\n    c.close(cube(2.0), 8.0, hint="x * x * x")\n'
        '### BEGIN HIDDEN TESTS\nassert cube(-1.0) == -1.0, "cube(-1) should be -1"\n'
        "### END HIDDEN TESTS")


def small_exercise():
    return _exercise([("p1", *SQUARE, 2), ("p2", *CUBE, 3)])


def test_structure_check_accepts_the_layout():
    assert nt.structure_problems(small_exercise()) == []


@pytest.mark.parametrize("breakage, expected", [
    (lambda nb: nb["cells"][1].update(source="### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
     "p1-solution: the solution region must sit inside a function body"),
    (lambda nb: nb["cells"][2].update(source='with check("Part 1: square") as c:\n    pass\n'),
     "p1-check: no hidden tests"),
    (lambda nb: nb["cells"][2].update(source="### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS"),
     "p1-check: no visible `with check(\"...\")` block"),
    (lambda nb: nb["cells"][4]["metadata"]["nbgrader"].update(grade_id="p1-check"),
     "grade_id p1-check is used twice"),
    (lambda nb: nb["cells"][4]["metadata"]["nbgrader"].update(points=0),
     "p2-check: points must be a positive number"),
    (lambda nb: nb["cells"][4]["metadata"]["nbgrader"].update(locked=False),
     "p2-check: a test cell must be locked"),
    (lambda nb: nb["cells"].insert(4, nb["cells"].pop(3)),
     "p2-check: must come right after its solution cell"),
    (lambda nb: nb["metadata"]["kernelspec"].update(name="python3.11"),
     "kernel must be python3"),
    (lambda nb: nb["cells"][4].update(source=cell_text(nb["cells"][4]).replace("Part 2: cube", "Part 1: square")),
     'check title "Part 1: square" is used twice'),
], ids=["top-level-solution", "no-hidden-tests", "no-visible-check", "duplicate-id", "no-points",
        "unlocked-test", "test-before-solution", "kernel", "duplicate-title"])
def test_structure_check_names_each_mistake(breakage, expected):
    nb = small_exercise()
    breakage(nb)
    problems = nt.structure_problems(nb)
    assert any(expected in p for p in problems), problems


def test_find_source_explains_an_unknown_notebook(tmp_path):
    stranger = tmp_path / "stranger.ipynb"
    stranger.write_text(json.dumps(small_exercise()), encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="Pass --source"):
        nt.find_source(stranger, sources=nt.exercise_notebooks())


def run_tool(script, *args):
    return subprocess.run([sys.executable, str(TOOLS / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_make_student_writes_stubbed_versions_with_working_links(tmp_path):
    nb = small_exercise()
    nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "source":
                           "Read [chapter 99](../course/99-small.ipynb#part-1) first; "
                           "see [nbgrader](https://nbgrader.readthedocs.io)."})
    source = tmp_path / "exercises" / "99-small.ipynb"
    source.parent.mkdir()
    source.write_text(json.dumps(nb), encoding="utf-8")
    out = tmp_path / "build" / "student"
    proc = run_tool("make_student.py", "--out", out, source)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out / '99-small.ipynb'}"
    student = nt.read_notebook(out / "99-small.ipynb")
    sources = [cell_text(c) for c in student["cells"]]
    assert sources[0] == ("Read [chapter 99](../../course/99-small.ipynb#part-1) first; "
                          "see [nbgrader](https://nbgrader.readthedocs.io).")
    assert "def square(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()" in sources
    assert not any("assert" in s or "HIDDEN" in s for s in sources)
    assert all(not c.get("outputs") for c in student["cells"] if c["cell_type"] == "code")
    nbformat.validate(nbformat.reads(json.dumps(student), as_version=4))


@pytest.mark.slow
def test_grade_gives_partial_credit_and_restores_tampered_tests(tmp_path):
    source = tmp_path / "99-small.ipynb"
    source.write_text(json.dumps(small_exercise()), encoding="utf-8")
    filled = copy.deepcopy(small_exercise())
    cube_solution, cube_check = filled["cells"][3], filled["cells"][4]
    cube_solution["source"] = "def cube(x):\n    return x * x"  # wrong: squares
    cube_check["source"] = 'with check("Part 2: cube") as c:\n    pass\n'  # hidden tests deleted
    submitted = tmp_path / "my attempt.ipynb"
    submitted.write_text(json.dumps(filled), encoding="utf-8")

    proc = run_tool("grade.py", submitted, "--source", source)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "99-small.ipynb"
    assert re.fullmatch(r"\s+p1-check Part 1: square\s+2 / 2\s+passed", lines[1]), lines[1]
    assert re.fullmatch(r"\s+p2-check Part 2: cube\s+0 / 3\s+FAILED: "
                        r"AssertionError: cube\(-1\) should be -1", lines[2]), lines[2]
    assert re.fullmatch(r"\s+total\s+2 / 5", lines[3]), lines[3]


def test_grade_explains_an_unknown_notebook(tmp_path):
    stranger = tmp_path / "stranger.ipynb"
    stranger.write_text(json.dumps(small_exercise()), encoding="utf-8")
    proc = run_tool("grade.py", stranger)
    assert proc.returncode == 1
    assert "cannot tell which exercise stranger.ipynb is" in proc.stderr
    assert "--source" in proc.stderr
