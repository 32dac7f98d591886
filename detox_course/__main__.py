"""`python -m detox_course COMMAND` (docs/course.md, README): the lab without JupyterLab, each
command executing the notebooks themselves (`commands`), and the course on nbgrader: student
copies of the notebooks, and a whole class graded in one command, or one learner's notebook.

    python -m detox_course demo                            # make demo
    python -m detox_course student [FOLDER]                # make student
    python -m detox_course grade SUBMISSIONS [--timeout S]  # make grade SUBMISSIONS=...
    python -m detox_course grade NOTEBOOK                  # make grade NOTEBOOK=...

A mistake a user can fix: one line, status 2; a failing notebook: status 1; Ctrl-C: status 130
and how to continue.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detox_course import commands
from detox_course.course_folder import DEFAULT_TIMEOUT, STUDENT_DIR, write_student_notebooks
from detox_course.execute import NotebookFailed
from detox_course.grading import GRADES_DIR, grade_class, one_learner, summary
from detox_helpers.errors import DetoxError
from detox_helpers.layout import shown
from detox_helpers.settings import load_settings
from detox_helpers.tiny.command import build_tiny  # the command line may choose the tiny plug-in


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m detox_course", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands_of = top.add_subparsers(dest="command", required=True)
    add = commands_of.add_parser
    add("demo", help="run all notebooks headless on the offline tiny profile")
    add("run", help="run all notebooks headless on DETOX_PROFILE's profile")
    tiny = add("build-tiny", help="check (or rebuild) the offline tiny world")
    tiny.add_argument("--rebuild", action="store_true",
                      help="rebuild the world shipped in the package (after editing its builder)")
    tiny.add_argument("--output", help="build a world into this folder instead")
    add("data", help="build the dataset and print its sizes")
    evaluation = add("evaluate", help="evaluate the policy on the test split")
    evaluation.add_argument("--name", default="baseline",
                            help="name of the saved results (default: baseline)")
    training = add("train", help="PPO training with checkpoints")
    training.add_argument("--max-steps", type=int, help="steps in all (default: max_ppo_steps)")
    training.add_argument("--resume", action="store_true",
                          help="continue from the latest checkpoint")
    add("compare", help="evaluate the trained policy; write the report")
    add("rloo", help="notebook 06: RLOO beside PPO and best-of-k")
    add("curve", help="notebook 07: the proxy against the gold as the policy "
                                      "drifts, with and without the leash")
    adapter = add("make-adapter", help="fine-tune the instruct LoRA adapter")
    adapter.add_argument("--output", help="folder for the adapter "
                                          "(default: instruct-adapter in the artifacts folder)")
    student = add("student", help="write student copies of the notebooks")
    student.add_argument("folder", nargs="?", type=Path, default=STUDENT_DIR)
    graded = add("grade", help="grade a class's folder, or one notebook")
    graded.add_argument("submissions", type=Path,
                        help="a folder of learners' folders, or one notebook")
    graded.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help="seconds one cell may run (default %(default)s)")
    graded.add_argument("--out", type=Path, default=GRADES_DIR,
                        help="where grades.csv and feedback/ go (default artifacts/grades)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run = {"demo": lambda: commands.run_lab("tiny"), "run": lambda: commands.run_lab(None),
           "build-tiny": lambda: build_tiny(args.rebuild, args.output),
           "data": commands.show_data, "evaluate": lambda: commands.evaluate(args.name),
           "train": lambda: commands.run_training(args.max_steps, args.resume),
           "compare": commands.compare_and_report,
           "make-adapter": lambda: commands.make_adapter(args.output),
           "rloo": lambda: commands.run_notebooks(["06"]),
           "curve": lambda: commands.run_notebooks(["07"]),
           "student": lambda: student(args.folder),
           "grade": lambda: grade(args.submissions, args.out, args.timeout)}
    try:
        if args.command in commands.WRITE_A_RUN:
            with commands.holding(load_settings().layout, args.command):
                run[args.command]()
            return 0
        status = run[args.command]()  # student and grade return their exit status
        return status if isinstance(status, int) else 0
    except commands.Stopped as stop:
        print(f"stopped: {stop}", file=sys.stderr)
        return 130
    except DetoxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, NotebookFailed) else 2
    except KeyboardInterrupt:
        print("stopped.", file=sys.stderr)
        return 130


def student(folder: Path) -> int:
    written = write_student_notebooks(folder)
    print(f"{len(written)} student notebooks in {folder}")
    return 0


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
