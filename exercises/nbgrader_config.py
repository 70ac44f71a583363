"""nbgrader configuration for the labgrad exercises.

Copy this file into the root of your nbgrader course directory (the folder that holds
``source/``, ``release/``, ``submitted/``, ...) and run every instructor command from there;
see exercises/README.md for the whole workflow. ``make student`` and ``make grade`` use this
same file in a throwaway course directory, so what CI checks is what you run.
"""
import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

# The course directory is the folder this file lives in, wherever you run nbgrader from.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# Your course's name: the exchange, the JupyterHub groups ("formgrade-<id>", "nbgrader-<id>")
# and the JupyterHub service of a shared formgrader must all use this same id.
c.CourseDirectory.course_id = os.environ.get("LABGRAD_COURSE_ID", "labgrad")

# Where `release_assignment` puts assignments and `submit` puts submissions: a folder every
# user on the machine can read and write (`mkdir -p /srv/nbgrader/exchange &&
# chmod ugo+rw /srv/nbgrader/exchange`). Students need the same value in their own config.
c.Exchange.root = os.environ.get("LABGRAD_EXCHANGE", "/srv/nbgrader/exchange")
# Several courses on one hub: keep their files apart in the exchange.
c.Exchange.path_includes_course = True

# The exercises' contract with the student version: each solution region, which sits inside a
# function body, becomes this stub. The visible checks (viz.feedback.check) read the
# NotImplementedError as "not attempted yet", so an untouched notebook runs top to bottom.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
# Hidden tests are removed from the student version and restored from the gradebook at
# autograde time; they are what earns the points.
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Autograding re-runs each submission from the top. A cell of our exercises takes well under a
# second; the limit only stops runaway loops (a student's `while True`).
c.Execute.timeout = 120
