"""Write the student versions of the exercises: solutions stubbed out, hidden tests removed.

    python exercises/tools/make_student.py                  # every exercise -> build/student/
    python exercises/tools/make_student.py --out DIR exercises/02-define-by-run.ipynb

This runs nbgrader's ``generate_assignment`` in a throwaway course directory (the same
``exercises/nbgrader_config.py`` an instructor uses) and copies ``release/`` out of it.
"""
import argparse
import shutil
import sys
from pathlib import Path

from nbgrader_tools import STUDENT_DIR, Course, NbgraderError, exercise_notebooks


def make_student_versions(notebooks, out):
    """Generate each notebook's student version into ``out``; return the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with Course.temporary() as course:
        for nb in notebooks:
            release = course.generate(course.add(nb))
            written.append(Path(shutil.copy(release, out / release.name)))
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
