"""The course kit's fast checks: every notebook starts on a hosted runtime."""

import importlib.util
import sys
from types import SimpleNamespace

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from detox_helpers.unattended import notebook_paths

NOTEBOOKS = notebook_paths()


def hosted_runtime_cell(path):
    """The code cell that installs the checkout where the package is missing, and its index."""
    cells = nbformat.read(path, as_version=4).cells
    found = [(index, cell) for index, cell in enumerate(cells)
             if cell.cell_type == "code" and "find_spec(\"detox_helpers\")" in cell.source]
    assert len(found) == 1, f"{path.name}: {len(found)} hosted-runtime cells, not one"
    return found[0]


def run_cell(cell, monkeypatch):
    """Run the cell as a kernel would, with a stand-in shell that records `%pip` lines."""
    magics = []
    shell = SimpleNamespace(run_line_magic=lambda name, line: magics.append((name, line)))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(TransformerManager().transform_cell(cell.source), {"get_ipython": lambda: shell})
    return magics


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_installs_the_checkout_first_and_only_where_it_is_missing(path,
                                                                                 monkeypatch):
    """Colab runs every notebook in its own runtime: each must install the lab before its first
    import of it, and, in .venv where the package is importable, call no pip at all."""
    cells = nbformat.read(path, as_version=4).cells
    index, cell = hosted_runtime_cell(path)
    title = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                 and c.source.startswith("# "))
    assert index == title + 1, f"{path.name}: the cell is not right after the title"
    assert cell.source == hosted_runtime_cell(NOTEBOOKS[0])[1].source  # one text everywhere
    monkeypatch.chdir(path.parent)
    assert run_cell(cell, monkeypatch) == []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert run_cell(cell, monkeypatch) == [("pip", "install --quiet -r ../requirements.txt -e ..")]


# --- student copies and grading -------------------------------------------------------------

from detox_helpers import course  # noqa: E402


def solution_cells():
    """(notebook path, cell) of every solution cell in the lab's notebooks."""
    return [(path, cell) for path in NOTEBOOKS
            for cell in nbformat.read(path, as_version=4).cells if course.role(cell) == "solution"]


def test_every_exercise_is_listed_once_and_every_solution_has_a_graded_check_after_it():
    marked = [(path.name[:2], cell.metadata.nbgrader.grade_id) for path, cell in solution_cells()]
    listed = [(item.notebook, item.name) for item in course.EXERCISES]
    assert sorted(marked) == sorted(listed) and len(set(listed)) == len(listed)
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        roles = [course.role(cell) for cell in cells if course.role(cell)]
        assert roles == ["solution", "check"] * (len(roles) // 2), path.name  # pairs, in order
        for cell in cells:
            marked_region = "### BEGIN SOLUTION" in cell.source
            assert marked_region == (course.role(cell) == "solution"), path.name
            if course.role(cell) == "check":
                assert cell.metadata.nbgrader.points > 0 and cell.metadata.nbgrader.locked


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_student_copy_keeps_every_cell_but_the_solutions_and_says_what_to_write(path):
    original = nbformat.read(path, as_version=4).cells
    copy = course.student_copy(path).cells
    assert len(copy) == len(original)
    for before, after in zip(original, copy, strict=True):
        if course.role(before) != "solution":
            assert after.source == before.source
            continue
        task = course.exercise(before.metadata.nbgrader.grade_id).task
        answer = before.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        assert "SOLUTION" not in after.source and answer.strip() not in after.source
        assert "raise NotImplementedError(" in after.source and task in after.source
    assert all(cell.get("outputs", []) == [] and cell.get("execution_count") is None
               for cell in copy)


def write_notebook(path, sources, marks):
    """A notebook of code cells; `marks[i]` is cell i's nbgrader metadata (or None)."""
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for cell, mark in zip(cells, marks, strict=True):
        if mark:
            cell.metadata["nbgrader"] = {"schema_version": 3, **mark}
    cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


SOLUTION = {"solution": True, "grade": False, "grade_id": "double"}
CHECK = {"solution": False, "grade": True, "grade_id": "double-check", "points": 2,
         "locked": True}
SECOND = {"solution": False, "grade": True, "grade_id": "second-check", "points": 1,
          "locked": True}


@pytest.fixture
def two_exercises(tmp_path, monkeypatch):
    """A two-exercise notebook graded without a model: a learner's `double`, then a check of a
    parameter that grading sets."""
    monkeypatch.setattr(course, "EXERCISES", (
        course.Exercise("99", "double", task="return 2 * x", wrong="return x + 2",
                        lesson="double(3)"),))
    return write_notebook(tmp_path / "99_toy.ipynb", [
        "profile = None",
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        "assert double(3) == 6, f'double(3) gave {double(3)}, not 6'",
        "print('the learner may print')\nopen('ran-on', 'w').close()  # in the notebook's folder",
        "assert profile == 'tiny', profile",
    ], [None, SOLUTION, CHECK, None, SECOND])


def test_grading_passes_the_solution_and_scores_every_exercise(two_exercises, capsys):
    assert course.main(["grade", str(two_exercises)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "double: passed (2 of 2)", "second-check: passed (1 of 1)", "score: 3 of 3"]
    assert (two_exercises.parent / "ran-on").exists()


@pytest.mark.parametrize("answer", ["blank", "wrong"])
def test_grading_fails_a_blank_or_wrong_answer_with_the_message_that_teaches(
        answer, two_exercises, tmp_path, capsys):
    item = course.exercise("double")
    code = course.stub(item.task) if answer == "blank" else item.wrong
    graded = tmp_path / "answered" / two_exercises.name
    graded.parent.mkdir()
    nbformat.write(course.with_answers(two_exercises, {"double": code}), graded)
    assert course.main(["grade", str(graded)]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = f"Your turn: {item.task}." if answer == "blank" else "double(3) gave 5, not 6"
    assert lines[0].startswith("double: failed (0 of 2): ") and lines[0].endswith(expected)
    assert lines[1:] == ["second-check: failed (0 of 1): not run: an earlier exercise failed",
                         "score: 0 of 3"]
    assert not (graded.parent / "ran-on").exists()  # a failure stops the run


def test_a_solution_region_outside_a_solution_cell_is_refused(tmp_path):
    path = write_notebook(tmp_path / "99_toy.ipynb", [
        "profile = None", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"], [None, None])
    with pytest.raises(RuntimeError, match="Solution region detected in a non-solution cell"):
        course.with_answers(path, {})


def test_make_student_writes_a_copy_of_every_notebook(tmp_path):
    written = course.write_student_notebooks(tmp_path)
    assert [path.name for path in written] == [path.name for path in NOTEBOOKS]
