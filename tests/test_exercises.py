"""The exercise pipeline: nbgrader structure, student versions, autograding, the CLI tools.

For every exercise notebook in exercises/ (the instructor's source version, with solutions):
- its cells follow the nbgrader layout the tools and the visible checks rely on;
- the student version nbgrader generates runs top to bottom, every check saying "not attempted";
- nbgrader's autograder gives the solutions full marks and the untouched student version zero.
The tools themselves are tested on a small exercise in test_exercise_tools.py.
"""
import ast
import re
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "exercises" / "tools"
sys.path.insert(0, str(TOOLS))
import nbgrader_tools as nt  # noqa: E402

EXERCISES = nt.exercise_notebooks()
by_name = pytest.mark.parametrize("source", EXERCISES, ids=[p.stem for p in EXERCISES])


def cell_text(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def output_text(cell):
    """Everything a cell showed, as text (streams, text/plain of displays and results, errors)."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
        elif out["output_type"] in ("display_data", "execute_result"):
            plain = out.get("data", {}).get("text/plain", "")
            parts.append(plain if isinstance(plain, str) else "".join(plain))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "\n".join(parts)


# ---------------------------------------------------------------- structure (fast, no nbgrader)

def test_there_are_exercises_and_each_belongs_to_a_chapter():
    assert EXERCISES, "exercises/ has no exercise notebooks"
    for nb in EXERCISES:
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", nb.name), nb.name
        assert (REPO / "course" / nb.name).is_file(), \
            f"exercise {nb.name} has no chapter course/{nb.name} to go with it"


@by_name
def test_exercise_follows_the_nbgrader_layout(source):
    problems = nt.structure_problems(nt.read_notebook(source))
    assert not problems, f"{source.name}:\n" + "\n".join(problems)


@by_name
def test_solution_version_passes_its_own_checks(source):
    """The committed outputs of the source version show a tick for every part."""
    nb = nt.read_notebook(source)
    for cell in nt.check_cells(nb):
        shown = output_text(cell)
        assert "✓" in shown and "✗" not in shown and "not attempted" not in shown, \
            f"{source.name} {nt.nbgrader_meta(cell)['grade_id']}: committed output is {shown!r}"


def solution_regions(cell):
    """The code between each ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of a cell, dedented."""
    return [textwrap.dedent(m) for m in
            re.findall(r"### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", cell_text(cell), re.M | re.S)]


def solution_lines(cell):
    """Lines of solution code in a cell (blank lines and comments do not count)."""
    return sum(1 for region in solution_regions(cell) for line in region.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def all_parts():
    """(notebook, grade_id, solution cell) of every graded part."""
    return [(nb.name, nt.nbgrader_meta(cell)["grade_id"], cell)
            for nb in EXERCISES for cell in nt.read_notebook(nb)["cells"]
            if nt.nbgrader_meta(cell).get("solution")]


def test_most_parts_have_students_write_real_code():
    """Issue 9: at least 24 graded parts, and at least 14 of them need 5 or more lines of code."""
    parts = all_parts()
    substantial = [f"{name} {gid}" for name, gid, cell in parts if solution_lines(cell) >= 5]
    assert len(parts) >= 24, f"only {len(parts)} graded parts"
    assert len(substantial) >= 14, f"only {len(substantial)} parts need 5+ lines: {substantial}"


def _literals(tree):
    """Every literal (number, string, tuple/list/dict of literals) written in a parsed cell."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.Dict)):
            try:
                yield ast.literal_eval(node)
            except ValueError:
                pass


@by_name
def test_prediction_quizzes_are_graded_without_repeating_the_answer_key(source):
    """A part whose answer is a literal (a prediction quiz) must not have that literal in its check
    cell: the checks compute the expected values by running labgrad, so the hidden tests can grade
    items the visible check never showed, and no hint, failure message or assert spells out the key."""
    cells = nt.read_notebook(source)["cells"]
    for i, cell in enumerate(cells):
        if not nt.nbgrader_meta(cell).get("solution"):
            continue
        for region in solution_regions(cell):
            body = ast.parse(region).body
            if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
                continue
            try:
                key = ast.literal_eval(body[0].value)
            except ValueError:
                continue
            if not isinstance(key, (list, tuple, dict)):
                continue
            check_cell = cells[i + 1]
            written = list(_literals(ast.parse(cell_text(check_cell))))
            gid = nt.nbgrader_meta(check_cell)["grade_id"]
            assert key not in written, f"{source.name} {gid}: the answer key {key!r} is written in the check"
            # c.equal and c.close print "expected ..." when they fail: a quiz would show its answer
            assert not re.search(r"\bc\.(equal|close)\(", cell_text(check_cell)), \
                f"{source.name} {gid}: a quiz's check must use c.true, whose failure shows only the hint"


def test_find_source_by_name_and_by_check_cells(tmp_path):
    source = EXERCISES[0]
    renamed = tmp_path / f"{source.stem} (1).ipynb"
    renamed.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    assert nt.find_source(renamed) == source
    assert nt.find_source(tmp_path / source.name) == source  # by name, whatever is inside


# ---------------------------------------------------------------- nbgrader, end to end (slow)

@pytest.fixture(scope="module")
def course():
    with nt.Course.temporary() as c:
        yield c


_done = {}


def generated(course, source):
    """Student version of ``source`` (generated once per test module)."""
    key = ("generate", source)
    if key not in _done:
        aid = course.add(source)
        _done[key] = (aid, course.generate(aid))
    return _done[key]


def graded(course, source):
    """Autograde reports of the solution and of the untouched student version."""
    key = ("grade", source)
    if key not in _done:
        aid, student_nb = generated(course, source)
        course.submit(aid, source, "solution")
        course.submit(aid, student_nb, "untouched")
        _done[key] = course.autograde_all(aid)
    return _done[key]


@pytest.mark.slow
@pytest.mark.notebooks
@by_name
def test_student_version_runs_to_the_end_and_reports_not_attempted(course, source, tmp_path):
    import nbclient

    _, student_path = generated(course, source)
    student = nbformat.read(student_path, as_version=4)
    text = "\n".join(cell_text(c) for c in student.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{marker} survived into the student version"
    solution_cells = [c for c in student.cells if nt.nbgrader_meta(c).get("solution")]
    assert solution_cells and all("raise NotImplementedError()" in cell_text(c) for c in solution_cells)

    nbclient.NotebookClient(student, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [f"cell {i}: {output_text(c)}" for i, c in enumerate(student.cells)
              if any(o["output_type"] == "error" for o in c.get("outputs", []))]
    assert not errors, f"the student version of {source.name} stops with an error:\n" + "\n".join(errors)
    checks = nt.check_cells(student)
    assert checks
    for cell in checks:
        shown = output_text(cell)
        gid = nt.nbgrader_meta(cell)["grade_id"]
        assert "not attempted" in shown, f"{gid}: the untouched check shows {shown!r}"
        assert "✓" not in shown, f"{gid}: a check passes with no student code: {shown!r}"


@pytest.mark.slow
@pytest.mark.notebooks
@by_name
def test_autograde_gives_solutions_full_marks_and_untouched_zero(course, source):
    reports = graded(course, source)
    points = {nt.nbgrader_meta(c)["grade_id"]: nt.nbgrader_meta(c)["points"]
              for c in nt.check_cells(nt.read_notebook(source))}
    solution, untouched = reports["solution"], reports["untouched"]
    assert {p.grade_id: p.max_score for p in solution.parts} == points
    failed = [f"{p.grade_id}: {p.message}" for p in solution.parts if not p.passed]
    assert not failed, f"the solutions of {source.name} lose points:\n" + "\n".join(failed)
    assert solution.score == sum(points.values())
    earned = [f"{p.grade_id}: {p.score}" for p in untouched.parts if p.score]
    assert not earned, f"an untouched {source.name} earns points (hidden tests that cannot fail?): {earned}"
    assert untouched.score == 0 and len(untouched.parts) == len(points)
