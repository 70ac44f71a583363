"""Write the student versions of the exercises: solutions stubbed out, hidden tests removed.

    python exercises/tools/make_student.py                  # every exercise -> build/student/
    python exercises/tools/make_student.py --out DIR exercises/02-define-by-run.ipynb

This runs nbgrader's ``generate_assignment`` in a throwaway course directory (the same
``exercises/nbgrader_config.py`` an instructor uses) and copies ``release/`` out of it.
"""
import argparse
import json
import sys
from pathlib import Path

from nbgrader_tools import STUDENT_DIR, Course, NbgraderError, exercise_notebooks, read_notebook, relink


def make_student_versions(notebooks, out):
    """Generate each notebook's student version into ``out``; return the written paths.

    Relative links (to the chapters) are rewritten so that they still work from ``out``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with Course.temporary() as course:
        for nb in map(Path, notebooks):
            release = course.generate(course.add(nb))
            student = relink(read_notebook(release), nb.parent, out)
            target = out / release.name
            target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="source exercise notebooks (default: exercises/*.ipynb)")
    parser.add_argument("--out", type=Path, default=STUDENT_DIR,
                        help=f"where to write them (default: {STUDENT_DIR})")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or exercise_notebooks()
    if not notebooks:
        parser.error("no exercise notebooks found in exercises/")
    try:
        written = make_student_versions(notebooks, args.out)
    except NbgraderError as err:
        print(err, file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
