"""The course kit's fast checks: every notebook starts on a hosted runtime."""

import ast
import importlib.util
import os
import shutil
import sys
from pathlib import Path
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
    """Run the cell as a kernel would, with a stand-in shell that records `%pip` lines, their
    `{name}`s expanded from the cell's variables as IPython expands them."""
    magics, namespace = [], {}
    shell = SimpleNamespace(run_line_magic=lambda name, line: magics.append(
        (name, line.format(**namespace))))
    namespace["get_ipython"] = lambda: shell
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(TransformerManager().transform_cell(cell.source), namespace)
    return magics


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_installs_the_package_by_name_first_and_only_where_it_is_missing(
        path, monkeypatch, capsys):
    """A hosted runtime runs every notebook in a folder of its own, with no checkout: each
    notebook installs the lab's package by the one name its course sets (never by a path
    relative to the kernel's folder) before its first import of it, says that the runtime must
    restart, and, where the package imports, calls no pip at all."""
    cells = nbformat.read(path, as_version=4).cells
    index, cell = hosted_runtime_cell(path)
    title = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                 and c.source.startswith("# "))
    assert index == title + 1, f"{path.name}: the cell is not right after the title"
    assert cell.source == hosted_runtime_cell(NOTEBOOKS[0])[1].source  # one text everywhere
    assert ".." not in cell.source and cell.source.count("LAB_PACKAGE =") == 1
    assert run_cell(cell, monkeypatch) == [] and capsys.readouterr().out == ""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert run_cell(cell, monkeypatch) == [("pip", "install --quiet detox-helpers")]
    assert "restart the runtime" in capsys.readouterr().out


# --- student copies and grading (the class itself is graded in test_grading.py) -----------

from detox_course import course_folder, grading  # noqa: E402
from detox_helpers.errors import DetoxError  # noqa: E402
from detox_helpers.settings import load_settings  # noqa: E402


def marks(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_each_exercise_is_its_task_and_solution_then_a_locked_check_with_hidden_tests(path):
    """The notebook is the exercise's one source: its task in `# Your turn:` lines above the
    solution region, its check locked and worth a point, the exact checks hidden."""
    cells = [cell for cell in nbformat.read(path, as_version=4).cells if marks(cell)]
    graded = [cell for cell in cells if marks(cell).get("solution") or marks(cell).get("grade")]
    assert len(graded) % 2 == 0
    for solution, check in zip(graded[::2], graded[1::2], strict=True):
        name = marks(solution)["grade_id"]
        assert marks(solution).get("solution") and not marks(solution).get("grade"), name
        task = solution.source.split("### BEGIN SOLUTION")[0]
        assert "# Your turn:" in task and "### END SOLUTION" in solution.source, name
        assert marks(check)["grade_id"] == f"{name}-check" and marks(check)["locked"], name
        assert marks(check)["points"] > 0 and not marks(check).get("solution"), name
        hidden = check.source.split("### BEGIN HIDDEN TESTS")
        assert len(hidden) == 2 and "### END HIDDEN TESTS" in hidden[1], name
        assert "assert" in hidden[0] and "assert" in hidden[1], name  # examples, then exact
    parameters = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and marks(parameters[0])["locked"], path.name  # restored


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_student_copy_keeps_the_task_and_the_examples_but_no_answer(path, student_copies):
    original = nbformat.read(path, as_version=4).cells
    copy = nbformat.read(student_copies[path.stem], as_version=4).cells
    assert len(copy) == len(original)
    for before, after in zip(original, copy, strict=True):
        if marks(before).get("solution"):
            answer = before.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            assert answer.strip() not in after.source and "SOLUTION" not in after.source
            assert "raise NotImplementedError()" in after.source
            assert before.source.split("### BEGIN SOLUTION")[0].rstrip() in after.source
        elif marks(before).get("grade"):  # the hidden tests go, the rest stays
            visible, rest = before.source.split("### BEGIN HIDDEN TESTS")
            hidden, tail = rest.split("### END HIDDEN TESTS")
            assert hidden.strip() not in after.source and "HIDDEN" not in after.source
            assert visible.strip() in after.source and tail.strip() in after.source
        else:
            assert after.source == before.source
        assert after.get("outputs", []) == [] and after.get("execution_count") is None


def test_a_class_folder_is_read_learner_by_learner_and_every_other_file_is_named(tmp_path):
    for learner in ("alice", "bob"):
        (tmp_path / learner).mkdir()
    lab = course_folder.assignments()
    shutil.copy(lab["02_reward_model"], tmp_path / "alice")
    shutil.copy(lab["01_data"], tmp_path / "bob")
    (tmp_path / "bob" / "02_reward_model.ipynb").write_text("{not json")
    (tmp_path / "bob" / "notes.txt").write_text("")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "alice" / "07_other_lab.ipynb")
    (tmp_path / "index.html").write_text("")
    found, skipped = grading.read_submissions(tmp_path)
    assert found == {"alice": {"02_reward_model": tmp_path / "alice" / "02_reward_model.ipynb"},
                     "bob": {"01_data": tmp_path / "bob" / "01_data.ipynb"}}
    assert [line.split(":")[0] for line in skipped] == [
        "alice/07_other_lab.ipynb", "bob/02_reward_model.ipynb", "bob/notes.txt", "index.html"]
    assert "not a readable notebook" in skipped[1] and "not a notebook" in skipped[2]


@pytest.mark.parametrize("wrong, message", [
    ({"submissions": "missing"}, "No folder"),
    ({"submissions": "empty"}, "nothing to grade"),
    ({"timeout": 0}, "at least 1"),
])
def test_grading_bad_input_is_one_clear_error(wrong, message, tmp_path):
    (tmp_path / "empty" / "alice").mkdir(parents=True)
    arguments = {"submissions": "empty", "timeout": 300} | wrong
    with pytest.raises(DetoxError, match=message):
        grading.grade_class(tmp_path / arguments["submissions"], tmp_path / "out",
                            arguments["timeout"])


def test_a_learner_s_own_notebook_must_be_one_of_the_lab_s(tmp_path):
    with pytest.raises(DetoxError, match="not one of the lab's notebooks"):
        with grading.one_learner(tmp_path / "homework.ipynb"):
            pass


@pytest.mark.parametrize("number", sorted(grading.GRADING_SETTINGS))
def test_the_grading_settings_are_settings(number):
    settings = load_settings("tiny", environ=grading.GRADING_SETTINGS[number])
    for variable, value in grading.GRADING_SETTINGS[number].items():
        assert str(getattr(settings, variable.removeprefix("DETOX_").lower())) == value


def test_grading_s_commands_get_the_grader_s_settings_and_none_of_the_caller_s(monkeypatch):
    """A class is graded alike from any shell: the caller's DETOX_* variables (the tests' own
    12 steps, say) never reach the reference run nor a learner's kernel."""
    monkeypatch.setenv("DETOX_MAX_PPO_STEPS", "12")
    environment = course_folder.tools_environment(DETOX_PROFILE="tiny")
    assert {key: value for key, value in environment.items() if key.startswith("DETOX_")} == {
        "DETOX_PROFILE": "tiny"}
    assert environment["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert environment["HF_HUB_OFFLINE"] == "1"


def test_the_kit_uses_the_lab_s_package_and_the_package_never_imports_the_kit():
    """The command line and the course kit stand apart from what the notebooks import:
    detox_course may import detox_helpers, never the other way round (not even inside a
    function)."""
    package = Path(__file__).resolve().parents[1] / "detox_helpers"
    importers = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "detox_course" for name in names):
                importers.append(path.name)
    assert not importers
