"""The course kit's command line (docs/course.md): student copies of the notebooks, and a
whole class graded in one command on nbgrader, or one learner's own notebook.

    python -m detox_course student [FOLDER]                # make student
    python -m detox_course grade SUBMISSIONS [--timeout S]  # make grade SUBMISSIONS=...
    python -m detox_course grade NOTEBOOK                  # make grade NOTEBOOK=...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detox_course.course_folder import DEFAULT_TIMEOUT, STUDENT_DIR, write_student_notebooks
from detox_course.grading import GRADES_DIR, grade_class, one_learner, summary
from detox_helpers.errors import DetoxError
from detox_helpers.layout import shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detox_course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write student copies of the notebooks")
    student.add_argument("folder", nargs="?", type=Path, default=STUDENT_DIR)
    graded = commands.add_parser("grade", help="grade a class's folder, or one notebook")
    graded.add_argument("submissions", type=Path,
                        help="a folder of learners' folders, or one notebook")
    graded.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help="seconds one cell may run (default %(default)s)")
    graded.add_argument("--out", type=Path, default=GRADES_DIR,
                        help="where grades.csv and feedback/ go (default artifacts/grades)")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "student":
            written = write_student_notebooks(arguments.folder)
            print(f"{len(written)} student notebooks in {arguments.folder}")
            return 0
        return grade(arguments.submissions, arguments.out, arguments.timeout)
    except DetoxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def grade(submissions: Path, out: Path, timeout: int) -> int:
    """The command: a class folder, or one notebook (then its lines and its feedback page)."""
    if submissions.is_file():
        out = out / "self" if out == GRADES_DIR else out  # a class's grades stay
        with one_learner(submissions) as folder:
            rows = grade_class(folder, out, timeout)
        print(summary(rows))
        for row in rows:
            print(f"  {row['exercise']}: {row['score']:g} of {row['max_score']:g}")
        print(f"feedback: {shown(next((out / 'feedback' / 'me').glob('*.html')))}")
        return 0 if all(row["score"] == row["max_score"] for row in rows) else 1
    rows = grade_class(submissions, out, timeout)
    print(summary(rows))
    print(f"grades: {shown(out / 'grades.csv')}; feedback pages: {shown(out / 'feedback')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
