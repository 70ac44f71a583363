"""Grade one filled-in exercise notebook the way the instructor's autograder will.

    python exercises/tools/grade.py path/to/02-define-by-run.ipynb
    python exercises/tools/grade.py my-copy.ipynb --source exercises/02-define-by-run.ipynb

The notebook is re-run from the top with the hidden tests put back (nbgrader ``autograde`` in a
throwaway course directory), and the points of each graded part are printed, with the first line
of the error for each part that lost points. The source exercise is found by file name, or else
by the notebook's nbgrader cell ids.
"""
import argparse
import sys
from pathlib import Path

from nbgrader_tools import STUDENT, Course, NbgraderError, find_source


def grade(filled, source=None, student=STUDENT):
    """Autograde ``filled`` against its source exercise; return the GradeReport."""
    source = Path(source) if source else find_source(filled)
    with Course.temporary() as course:
        aid = course.add(source)
        course.generate(aid)
        course.submit(aid, filled, student)
        return course.autograde(aid, student)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path, help="the filled-in notebook")
    parser.add_argument("--source", type=Path, help="its exercise (default: found automatically)")
    parser.add_argument("--student", default=STUDENT, help="student id to grade it under")
    args = parser.parse_args(argv)
    for path in (args.notebook, args.source):
        if path is not None and not path.is_file():
            parser.error(f"{path} is not a file")
    try:
        report = grade(args.notebook, args.source, args.student)
    except (FileNotFoundError, NbgraderError) as err:
        print(err, file=sys.stderr)
        return 1
    print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
