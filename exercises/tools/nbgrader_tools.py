"""Run nbgrader on the labgrad exercises in a throwaway course directory.

nbgrader wants a course directory (``source/<assignment>/<notebook>.ipynb``, then ``release/``,
``submitted/<student>/``, ``autograded/<student>/`` and a ``gradebook.db``). ``make student``,
``make grade`` and the tests build one in a temporary folder with the same
``exercises/nbgrader_config.py`` an instructor uses, run the real ``nbgrader`` commands in it,
and read the results back. Each exercise notebook is its own assignment, named after the file
(``exercises/02-define-by-run.ipynb`` is assignment ``02-define-by-run``)::

    with Course.temporary() as course:
        aid = course.add("exercises/02-define-by-run.ipynb")
        student_nb = course.generate(aid)           # solutions and hidden tests removed
        course.submit(aid, "my-filled-in.ipynb")
        print(course.autograde(aid).format())       # points per part, from the hidden tests
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXERCISES_DIR = REPO / "exercises"
CONFIG_TEMPLATE = EXERCISES_DIR / "nbgrader_config.py"
STUDENT_DIR = REPO / "build" / "student"
STUDENT = "student"


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds its log."""


def exercise_notebooks(directory=EXERCISES_DIR):
    """The source (instructor) versions: ``exercises/*.ipynb``, in order."""
    return sorted(Path(directory).glob("*.ipynb"))


def assignment_id(notebook):
    return Path(notebook).stem


def read_notebook(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_ids(nb):
    """grade_id of every nbgrader cell, in notebook order."""
    return [nbgrader_meta(c)["grade_id"] for c in nb["cells"] if "grade_id" in nbgrader_meta(c)]


def check_cells(nb):
    """The graded test cells (``grade: true`` code cells), in notebook order."""
    return [c for c in nb["cells"]
            if c["cell_type"] == "code" and nbgrader_meta(c).get("grade")]


@dataclasses.dataclass
class PartScore:
    grade_id: str
    score: float
    max_score: float
    message: str = ""  # first line of the error that cost the points
    title: str = ""    # the visible check's title, e.g. "Part 2: the broadcasting rule"

    @property
    def passed(self):
        return self.score >= self.max_score


@dataclasses.dataclass
class GradeReport:
    notebook: str
    parts: list

    @property
    def score(self):
        return sum(p.score for p in self.parts)

    @property
    def max_score(self):
        return sum(p.max_score for p in self.parts)

    def format(self):
        """A plain-text table: one line per graded part, then the total."""
        names = [f"{p.grade_id} {p.title}".strip() for p in self.parts]
        width = max([len(n) for n in names] + [len("total")])
        lines = [f"{self.notebook}"]
        for name, p in zip(names, self.parts):
            mark = "passed" if p.passed else "FAILED"
            line = f"  {name:<{width}}  {_num(p.score):>3} / {_num(p.max_score):<3} {mark}"
            if p.message:
                line += f": {p.message}"
            lines.append(line)
        lines.append(f"  {'total':<{width}}  {_num(self.score):>3} / {_num(self.max_score)}")
        return "\n".join(lines)


def _num(x):
    return f"{x:g}"


class Course:
    """A throwaway nbgrader course directory (see the module docstring)."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONFIG_TEMPLATE, self.root / "nbgrader_config.py")
        self._sources = {}

    @classmethod
    @contextlib.contextmanager
    def temporary(cls):
        with tempfile.TemporaryDirectory(prefix="labgrad-nbgrader-") as tmp:
            yield cls(tmp)

    def add(self, notebook, assignment=None):
        """Copy a source notebook into ``source/<assignment>/``; return the assignment id."""
        notebook = Path(notebook)
        aid = assignment or assignment_id(notebook)
        target = self.root / "source" / aid / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, target)
        self._sources[aid] = notebook.name
        return aid

    def generate(self, aid):
        """``nbgrader generate_assignment``: the student version, at ``release/<aid>/``."""
        self._run("generate_assignment", aid, "--force")
        return self.root / "release" / aid / self._sources[aid]

    def submit(self, aid, notebook, student=STUDENT):
        """Place a filled-in notebook where ``nbgrader collect`` would: ``submitted/<student>/``."""
        target = self.root / "submitted" / student / aid / self._sources[aid]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, target)
        return target

    def autograde(self, aid, student=STUDENT):
        """``nbgrader autograde``: re-run the submission with hidden tests restored; score it."""
        self._run("autograde", aid, f"--student={student}", "--force")
        return self.report(aid, student)

    def autograde_all(self, aid):
        """Autograde every submission of ``aid`` in one nbgrader run: ``{student: report}``."""
        self._run("autograde", aid, "--force")
        students = sorted(p.name for p in (self.root / "submitted").iterdir()
                          if (p / aid).is_dir())
        return {s: self.report(aid, s) for s in students}

    def report(self, aid, student=STUDENT):
        """The scores nbgrader stored for one autograded submission, in notebook order."""
        from nbgrader.api import Gradebook  # only instructors' tools need nbgrader itself

        name = self._sources[aid]
        graded = read_notebook(self.root / "autograded" / student / aid / name)
        order = {gid: i for i, gid in enumerate(grade_ids(graded))}
        cells = {nbgrader_meta(c)["grade_id"]: c for c in check_cells(graded)}
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            nb = gb.find_submission_notebook(Path(name).stem, aid, student)
            parts = [_part(g, cells.get(g.name)) for g in nb.grades if g.max_score]
        return GradeReport(name, sorted(parts, key=lambda p: order.get(p.grade_id, len(order))))

    def _run(self, *args):
        cmd = [sys.executable, "-m", "nbgrader", *args]
        proc = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 or re.search(r"^\[\w+ \| (ERROR|CRITICAL)\]", log, re.M):
            raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}) "
                                f"in {self.root}:\n{log}")
        return log


def _part(grade, cell):
    score, max_score = float(grade.score), float(grade.max_score)
    if cell is None:
        return PartScore(grade.name, score, max_score, "its test cell is missing from the notebook")
    message = _error_line(cell) if score < max_score else ""
    return PartScore(grade.name, score, max_score, message, check_title(cell))


_TITLE = re.compile(r"""\bcheck\(\s*(?:f?)(["'])(.+?)\1""")


def check_title(cell):
    """The title of the first ``with check("...")`` in a test cell, or ``""``."""
    m = _TITLE.search(_source(cell))
    return m.group(2) if m else ""


def _error_line(cell):
    """First line of the error a test cell raised: ``AssertionError: cube(-1) should be -1``."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name = out.get("ename") or "error"
            value = (out.get("evalue") or "").strip().splitlines()
            if value:
                return f"{name}: {value[0]}"
            return "not attempted (NotImplementedError)" if name == "NotImplementedError" else name
    return "no error shown; the cell did not run to the end"


def find_source(filled, sources=None):
    """The exercise a filled-in notebook belongs to: same file name, else the same check cells.

    Students rename files ("02-define-by-run (1).ipynb"); the locked check cells, with their
    grade_ids and titles, survive that.
    """
    sources = exercise_notebooks() if sources is None else list(sources)
    filled = Path(filled)
    for src in sources:
        if src.name == filled.name:
            return src
    parts = _parts_signature(read_notebook(filled))
    matches = [s for s in sources if parts and _parts_signature(read_notebook(s)) == parts]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(s.name for s in sources) or "(none)"
    raise FileNotFoundError(
        f"cannot tell which exercise {filled.name} is: no exercise has that file name, and "
        f"{'several' if matches else 'none'} of the exercises have its check cells "
        f"({', '.join(sorted(gid for gid, _ in parts)) or 'no nbgrader check cells'}). "
        f"Exercises: {names}. Pass --source exercises/<name>.ipynb to say which.")


_MD_LINK = re.compile(r"(\]\()([^)\s#]+)([^)\s]*\))")


def relink(nb, from_dir, to_dir):
    """Rewrite relative Markdown links of a notebook moved from ``from_dir`` to ``to_dir``.

    A student version written to build/student/ must still reach ``../course/01-...ipynb``.
    """
    from_dir, to_dir = Path(from_dir).resolve(), Path(to_dir).resolve()

    def fix(m):
        target = m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("/"):
            return m.group(0)  # a URL or an absolute path
        moved = os.path.relpath(from_dir / target, to_dir).replace(os.sep, "/")
        return m.group(1) + moved + m.group(3)

    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = _MD_LINK.sub(fix, _source(cell))
    return nb


def _parts_signature(nb):
    return {(nbgrader_meta(c)["grade_id"], check_title(c)) for c in check_cells(nb)}


_BEGIN_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\s*$", re.M)
_END_SOLUTION = re.compile(r"^[ \t]*### END SOLUTION\s*$", re.M)
_HIDDEN = re.compile(r"^### BEGIN HIDDEN TESTS\s*$(.*?)^### END HIDDEN TESTS\s*$", re.M | re.S)


def structure_problems(nb):
    """What keeps a source notebook from working as a labgrad exercise; ``[]`` when it is fine.

    The layout (see exercises/README.md): each graded part is a solution cell whose
    ``### BEGIN SOLUTION`` region sits inside a function body, then a locked test cell with
    points: first a visible ``with check("...")`` block, then ``### BEGIN HIDDEN TESTS`` with
    asserts. That way the student version (regions replaced by ``raise NotImplementedError()``,
    hidden tests removed) still runs from top to bottom, every check saying "not attempted".
    """
    problems = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernel must be python3 (kernelspec name is {kernel!r})")
    seen_ids, seen_titles, previous = set(), set(), None
    for index, cell in enumerate(nb["cells"]):
        meta, text = nbgrader_meta(cell), _source(cell)
        gid = meta.get("grade_id", f"cell {index}")
        if meta:
            if gid in seen_ids:
                problems.append(f"grade_id {gid} is used twice")
            seen_ids.add(gid)
            if meta.get("schema_version") != 3:
                problems.append(f"{gid}: nbgrader schema_version must be 3")
        is_solution = bool(meta.get("solution")) and not meta.get("grade")
        is_test = bool(meta.get("grade")) and not meta.get("solution")
        begins, ends = _BEGIN_SOLUTION.findall(text), _END_SOLUTION.findall(text)
        if (begins or ends) and not is_solution:
            problems.append(f"{gid}: has a solution region but is not an nbgrader solution cell")
        if _HIDDEN.search(text) and not is_test:
            problems.append(f"{gid}: has hidden tests but is not an nbgrader test cell")
        if is_solution:
            if cell["cell_type"] != "code":
                problems.append(f"{gid}: a solution cell must be a code cell")
            if not begins or len(begins) != len(ends):
                problems.append(f"{gid}: needs matching ### BEGIN SOLUTION / ### END SOLUTION lines")
            if any(indent == "" for indent in begins):
                problems.append(f"{gid}: the solution region must sit inside a function body "
                                f"(indent ### BEGIN SOLUTION), so the student version still runs")
        if is_test:
            points = meta.get("points")
            if not isinstance(points, (int, float)) or points <= 0:
                problems.append(f"{gid}: points must be a positive number, not {points!r}")
            if not meta.get("locked"):
                problems.append(f"{gid}: a test cell must be locked")
            if previous is None or not previous:
                problems.append(f"{gid}: must come right after its solution cell")
            hidden = _HIDDEN.search(text)
            title = check_title(cell)
            if not hidden or not re.search(r"\bassert", hidden.group(1)):
                problems.append(f"{gid}: no hidden tests (### BEGIN HIDDEN TESTS, `assert ...` or "
                                f"np.testing.assert_*, ### END HIDDEN TESTS); they earn the points")
            if not title or not re.search(r"^with check\(", text, re.M) or \
                    (hidden and text.index("with check(") > hidden.start()):
                problems.append(f"{gid}: no visible `with check(\"...\")` block before the hidden tests")
            elif title in seen_titles:
                problems.append(f"{gid}: check title \"{title}\" is used twice")
            seen_titles.add(title)
        if meta:
            previous = is_solution
    return problems


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src
