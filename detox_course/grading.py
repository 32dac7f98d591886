"""A class graded in one command. nbgrader does the grading: locked cells restored from the
source, a fresh kernel per notebook, a time limit per cell, the gradebook, the feedback pages.
This module only reads the class's folder, prepares what notebooks 03 to 07 read, and writes
the class's grades as one CSV."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import nbformat

from detox_course.course_folder import (
    DEFAULT_TIMEOUT,
    assignments,
    nbgrader,
    tools_environment,
    write_course,
)
from detox_helpers.errors import DetoxError
from detox_helpers.layout import shown
from detox_helpers.unattended import NOTEBOOKS_DIR

GRADES_DIR = NOTEBOOKS_DIR.parent / "artifacts" / "grades"
COLUMNS = ("student", "notebook", "exercise", "score", "max_score", "status")

# What each notebook is graded with (DETOX_* settings its kernel reads): short runs, so that
# grading stays fast. The grader's own data, baseline and reference run sit in the learner's
# artifacts folder beforehand; 04 trains a run of its own name, never the reference.
GRADING_SETTINGS = {
    "03": {"DETOX_EVAL_SIZE": "8"},
    "04": {"DETOX_MAX_PPO_STEPS": "2", "DETOX_RUN_NAME": "graded"},
    "06": {"DETOX_MAX_PPO_STEPS": "2"},
    # the reference run's snapshots are the leash; the run without it trains 2 steps here
    "07": {"DETOX_MAX_PPO_STEPS": "2", "DETOX_CURVE_PROMPTS": "4"},
}
# What the grader prepares once per class (the commands that run notebooks 01, 03 and 04 on
# the tiny profile's own settings): before and after differ in the reference run.
PREPARED = {"data": ["data"], "baseline": ["evaluate"], "reference run": ["train"]}
NEEDS = {"03": ("data",), "04": ("data",), "05": tuple(PREPARED), "06": tuple(PREPARED),
         "07": ("data", "reference run")}


# --- a class's submissions -------------------------------------------------------------------

def read_submissions(folder: Path) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """{student: {assignment: file}} from one folder per learner, and a line for each file that
    cannot be graded (not a notebook, not one of the lab's, or not in a learner's folder)."""
    if not folder.is_dir():
        raise DetoxError(f"No folder {folder}: give the folder that holds one folder per "
                         "learner, each with that learner's notebooks.")
    names, found, skipped = assignments(), {}, []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir():
            skipped.append(f"{entry.name}: not in a learner's folder, not graded")
            continue
        for file in sorted(p for p in entry.rglob("*") if p.is_file()):
            shown_name = f"{entry.name}/{file.relative_to(entry)}"
            reason = not_gradable(file, names)
            if reason:
                skipped.append(f"{shown_name}: {reason}, not graded")
            else:
                found.setdefault(entry.name, {})[file.stem] = file
    return found, skipped


def not_gradable(file: Path, names: dict[str, Path]) -> str:
    """Why `file` cannot be graded, or ""."""
    if file.suffix != ".ipynb":
        return "not a notebook"
    if file.stem not in names:
        return f"not one of the lab's notebooks ({', '.join(p.name for p in names.values())})"
    try:
        nbformat.read(file, as_version=4)
    except Exception as error:  # whatever made it unreadable is the learner's to fix
        return f"not a readable notebook ({type(error).__name__})"
    return ""


def prepare_inputs(folder: Path, needed: set[str], log: Path) -> Path:
    """The grader's own data, baseline and reference run, made once in `folder` (kept between
    gradings: a marker file says which are whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    for what, command in PREPARED.items():
        marker = folder / f".prepared-{what.replace(' ', '-')}"
        if what not in needed or marker.exists():
            continue
        print(f"preparing the {what} every learner is graded on ...", flush=True)
        env = tools_environment(DETOX_PROFILE="tiny", DETOX_ARTIFACTS_DIR=str(folder.resolve()))
        with open(log, "a") as output:
            done = subprocess.run([sys.executable, "-m", "detox_course", *command], env=env,
                                  stdout=output, stderr=subprocess.STDOUT)
        if done.returncode:
            raise DetoxError(f"Preparing the {what} failed: see {shown(log)}")
        marker.touch()
    return folder


def grade_one(root: Path, student: str, name: str, inputs: Path, timeout: int) -> str:
    """Autograde one learner's notebook in a kernel whose artifacts folder is a fresh copy of
    the prepared inputs; returns "" or why it has no scores (a dead kernel, say)."""
    artifacts = root / "learners" / student / name
    shutil.copytree(inputs, artifacts, ignore=shutil.ignore_patterns(".prepared-*"),
                    dirs_exist_ok=True)
    env = tools_environment(DETOX_PROFILE="tiny", DETOX_ARTIFACTS_DIR=str(artifacts.resolve()),
                            **GRADING_SETTINGS.get(name[:2], {}))
    log = root / "logs" / f"{student}-{name}.log"
    log.parent.mkdir(exist_ok=True)
    nbgrader(root, "autograde", name, "--student", student, "--create", "--force",
             f"--ExecutePreprocessor.timeout={timeout}", env=env, log=log)
    if not (root / "autograded" / student / name / f"{name}.ipynb").exists():
        return "not graded: the notebook stopped its kernel (sys.exit, os._exit or no memory)"
    nbgrader(root, "generate_feedback", name, "--student", student, "--force", log=log)
    return ""


def scores(root: Path, student: str, name: str) -> dict[str, tuple[float, float]]:
    """{exercise: (score, max_score)} from the gradebook; 0 for any cell not autograded."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(name, name, student)
        except MissingEntry:
            notebook = None
        cells = gradebook.find_notebook(name, name).grade_cells
        graded = {grade.name: grade for grade in notebook.grades} if notebook else {}
        return {cell.name.removesuffix("-check"): (
            float(graded[cell.name].auto_score or 0) if cell.name in graded else 0.0,
            float(cell.max_score)) for cell in cells}


def grade_class(submissions: Path, out: Path = GRADES_DIR,
                timeout: int = DEFAULT_TIMEOUT) -> list[dict]:
    """Grade every notebook of every learner in `submissions`; writes `out`/grades.csv and
    `out`/feedback/<student>/<notebook>.html, and returns the CSV's rows."""
    if timeout < 1:
        raise DetoxError(f"TIMEOUT={timeout}: give the seconds one cell may run, at least 1.")
    found, skipped = read_submissions(submissions)
    for line in skipped:
        print(line)
    if not found:
        raise DetoxError(f"No lab notebook in {submissions}'s learner folders: nothing to grade.")
    out.mkdir(parents=True, exist_ok=True)
    needed = {what for files in found.values() for name in files for what in NEEDS.get(name[:2],
                                                                                          ())}
    inputs = prepare_inputs(out / "inputs", needed, out / "prepare.log")
    rows = []
    with tempfile.TemporaryDirectory(prefix="grading-", dir=out) as scratch:
        root = write_course(Path(scratch) / "course", timeout)
        for student, files in found.items():
            for name, file in files.items():
                target = root / "submitted" / student / name / f"{name}.ipynb"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)  # the learner's file is only read
            for name in files:
                print(f"grading {student}/{name}.ipynb ...", flush=True)
                status = grade_one(root, student, name, inputs, timeout) or "graded"
                rows += [dict(student=student, notebook=name, exercise=exercise, score=score,
                              max_score=most, status=status)
                         for exercise, (score, most) in scores(root, student, name).items()]
        keep_feedback(root, out / "feedback")
    write_rows(rows, out / "grades.csv")
    return rows


def keep_feedback(root: Path, folder: Path) -> None:
    """nbgrader's feedback pages, one per graded notebook: feedback/<student>/<notebook>.html
    (an earlier grading's pages go first)."""
    shutil.rmtree(folder, ignore_errors=True)
    for page in sorted((root / "feedback").glob("*/*/*.html")):
        target = folder / page.parent.parent.name / page.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)


def write_rows(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def summary(rows: list[dict]) -> str:
    """One line per learner and notebook: points, and the exercises that lost theirs."""
    lines, seen = [], {}
    for row in rows:
        seen.setdefault((row["student"], row["notebook"]), []).append(row)
    for (student, name), items in seen.items():
        earned = sum(row["score"] for row in items)
        lost = [row["exercise"] for row in items if row["score"] < row["max_score"]]
        note = f"; lost: {', '.join(lost)}" if lost else ""
        if items[0]["status"] != "graded":
            note = f" ({items[0]['status']})"  # nothing was scored, so nothing was lost
        lines.append(f"{student}/{name}: {earned:g} of {sum(r['max_score'] for r in items):g}"
                     f"{note}")
    return "\n".join(lines)


@contextmanager
def one_learner(notebook: Path):
    """A class of one, for a learner grading their own copy: the notebook, under its lab
    name (the file may have been renamed, e.g. "02_reward_model (1).ipynb")."""
    names = assignments()
    name = next((stem for stem in names if notebook.name.startswith(stem[:3])), None)
    if name is None:
        raise DetoxError(f"{notebook.name} is not one of the lab's notebooks: its name must start "
                         "with the notebook's number, e.g. 02_")
    with tempfile.TemporaryDirectory(prefix="self-") as folder:
        (Path(folder) / "me").mkdir()
        shutil.copyfile(notebook, Path(folder) / "me" / f"{name}.ipynb")
        yield Path(folder)
