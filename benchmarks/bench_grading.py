"""How long grading takes: a class of N learners, each handing in the six solved notebooks,
graded by `make grade`'s engine (nbgrader, a kernel per notebook) on this machine.

    python benchmarks/bench_grading.py [--learners N] [--out FOLDER]

Prints the one-off preparation (the data, baseline and reference run every learner is graded
on), then the time per learner and per notebook, and the class's time at that pace. A grading
of a class is preparation + N x the time per learner: learners are graded one after another.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

from detox_course import grading
from detox_course.course_folder import assignments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=1)
    parser.add_argument("--out", type=Path, help="grades folder (default: a temporary one)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        out = arguments.out or Path(scratch) / "grades"
        submissions = Path(scratch) / "class"
        for number in range(1, arguments.learners + 1):
            folder = submissions / f"learner-{number:02d}"
            folder.mkdir(parents=True)
            for path in assignments().values():
                shutil.copy(path, folder / path.name)
        started = time.perf_counter()
        grading.prepare_inputs(out / "inputs", set(grading.PREPARED), out / "prepare.log")
        prepared = time.perf_counter() - started
        started = time.perf_counter()
        rows = grading.grade_class(submissions, out)
        graded = time.perf_counter() - started
        with open(out / "grades.csv") as file:
            full = all(float(row["score"]) == float(row["max_score"])
                       for row in csv.DictReader(file))
    per_learner = graded / arguments.learners
    print(f"preparation (once per class): {prepared:.0f} s")
    print(f"{arguments.learners} learner(s) x {len(assignments())} notebooks: "
          f"{graded:.0f} s, {per_learner:.0f} s a learner, "
          f"{per_learner / len(assignments()):.0f} s a notebook; "
          f"every exercise scored: {full} ({len(rows)} rows)")
    print(f"a class of 30 at this pace: {(prepared + 30 * per_learner) / 60:.0f} minutes")


if __name__ == "__main__":
    main()
