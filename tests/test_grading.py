"""A class graded as an instructor grades it (make test-long): one command over a folder of
learners' folders, on nbgrader. For every exercise the class holds a blank, the solution, the
typical wrong answer and a correct answer written another way (tests/class_answers/), plus the
cheats an instructor met: checks replaced by a print, a check deleted, sys.exit in a solution,
a kernel killed, an endless loop, and files that are not the lab's notebooks. The grades CSV is
compared cell by cell with the score each answer deserves; the submitted files stay as they
were."""

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from detox_course.course_folder import assignments

pytestmark = pytest.mark.long

ANSWERS = Path(__file__).parent / "class_answers"
LAB = assignments()


def exercises(name):
    """The exercises of notebook `name`, read from its graded cells."""
    cells = nbformat.read(LAB[name], as_version=4).cells
    return [cell.metadata.nbgrader.grade_id.removesuffix("-check") for cell in cells
            if cell.metadata.get("nbgrader", {}).get("grade")]


def with_answers(name, kind=None, replace=None):
    """Notebook `name` with each exercise's solution region replaced by its answer file of
    `kind` ("wrong", "other"), or by `replace[exercise]` where given."""
    notebook = nbformat.read(LAB[name], as_version=4)
    for cell in notebook.cells:
        marks = cell.metadata.get("nbgrader", {})
        exercise = marks.get("grade_id")
        if not marks.get("solution"):
            continue
        code = (replace or {}).get(exercise)
        if code is None and kind:
            code = (ANSWERS / f"{exercise}.{kind}.py").read_text().rstrip("\n")
        if code is not None:  # in place of the marker lines and what is between them
            lines = cell.source.split("\n")
            begin = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
            end = next(i for i, line in enumerate(lines) if "### END SOLUTION" in line)
            cell.source = "\n".join(lines[:begin] + code.split("\n") + lines[end + 1:])
    return notebook


def without_check(notebook, exercise):
    notebook.cells = [cell for cell in notebook.cells
                      if cell.metadata.get("nbgrader", {}).get("grade_id") != f"{exercise}-check"]
    return notebook


def checks_printing(notebook):
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = 'print("checked")'
    return notebook


def write(folder, student, notebook, name):
    target = folder / student / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def digests(folder):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def read_grades(path):
    with open(path) as file:
        return {(row["student"], row["notebook"], row["exercise"]): float(row["score"])
                for row in csv.DictReader(file)}


def test_a_class_is_graded_exercise_by_exercise(tmp_path, student_copies):
    submissions, expected = tmp_path / "class", {}
    blanks = {name: nbformat.read(path, as_version=4) for name, path in student_copies.items()}

    def hand_in(student, name, notebook, scores):
        write(submissions, student, notebook, name)
        for exercise in exercises(name):
            expected[(student, name, exercise)] = scores.get(exercise, scores.get("*"))

    for name in LAB:
        hand_in("solved", name, nbformat.read(LAB[name], as_version=4), {"*": 1.0})
        hand_in("blank", name, blanks[name], {"*": 0.0})
        hand_in("wrong", name, with_answers(name, "wrong"), {"*": 0.0})
        hand_in("other", name, with_answers(name, "other"), {"*": 1.0})
    # the checks replaced by a print, on blank answers
    hand_in("cheat", "02_reward_model", checks_printing(blanks["02_reward_model"]),
            {"*": 0.0})
    # a junk answer whose check was deleted; the other exercises solved
    first = exercises("01_data")[0]
    hand_in("cheat", "01_data", without_check(with_answers(
        "01_data", replace={first: "    return True"}), first), {"*": 1.0, first: 0.0})
    # sys.exit in place of an answer: that exercise fails, the others are graded
    last = exercises("06_beyond_ppo")[-1]
    hand_in("cheat", "06_beyond_ppo", with_answers(
        "06_beyond_ppo", replace={last: "    import sys\n    sys.exit(0)"}), {"*": 1.0, last: 0.0})
    # a blank configs and a solved ppo-step: notebook 04 trains on the lab's configs, so the
    # step is graded on its own
    hand_in("partial", "04_ppo_training", with_answers(
        "04_ppo_training", replace={"configs": "raise NotImplementedError()"}),
        {"configs": 0.0, "ppo-step": 1.0})
    # a kernel killed: nothing of that notebook scores, and the line says why
    hand_in("killer", "01_data", with_answers(
        "01_data", replace={exercises("01_data")[-1]: "import os\nos._exit(0)"}), {"*": 0.0})
    (submissions / "cheat" / "notes.txt").write_text("not a notebook")
    nbformat.write(nbformat.v4.new_notebook(), submissions / "solved" / "07_other_lab.ipynb")
    (submissions / "README.txt").write_text("the platform's own file")
    before = digests(submissions)

    # an endless loop, graded at once beside the class in a folder of its own
    looping = tmp_path / "looping"
    write(looping, "loop", with_answers(
        "02_reward_model", replace={"label-lookup": "    while True:\n        pass"}),
        "02_reward_model")
    beside = subprocess.Popen([sys.executable, "-m", "detox_course", "grade",
                               str(looping), "--timeout", "30", "--out", str(tmp_path / "loop")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = tmp_path / "grades"
    done = subprocess.run([sys.executable, "-m", "detox_course", "grade",
                           str(submissions), "--out", str(out)],
                          capture_output=True, text=True)
    printed = beside.communicate()[0]
    assert done.returncode == 0 and beside.returncode == 0, done.stdout + done.stderr + printed

    grades = read_grades(out / "grades.csv")
    assert grades == expected, {key: (grades.get(key), value) for key, value in expected.items()
                                if grades.get(key) != value}
    assert read_grades(tmp_path / "loop" / "grades.csv") == {
        ("loop", "02_reward_model", "label-lookup"): 0.0,
        ("loop", "02_reward_model", "toxicity"): 1.0}
    assert digests(submissions) == before  # grading changes no submitted file
    for line in ("cheat/notes.txt: not a notebook", "solved/07_other_lab.ipynb: not one of",
                 "README.txt: not in a learner's folder", "killer/01_data: 0 of 3 (not graded"):
        assert line in done.stdout, done.stdout
    pages = {path.relative_to(out / "feedback").as_posix()
             for path in (out / "feedback").rglob("*.html")}
    assert {f"{student}/{name}.html" for student, name, _ in expected
            if student != "killer"} == pages
    shutil.rmtree(out / "inputs")  # the reference run is large next to the rest
